//! OTLP receivers: gRPC (tonic) and HTTP (axum, protobuf or JSON bodies, optionally gzip).
//! Both decode, convert (pure, `convert`), write to the store, and answer only after the store
//! committed. A store that cannot commit answers `UNAVAILABLE` / 503, which OTLP clients retry,
//! so an acknowledged batch is always durable and an unacknowledged one is never lost by us.

pub mod convert;
pub mod limits;

use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::CompressionEncoding;

use crate::store::{Store, StoreError, WriteBatch, WriteOutcome};

/// Limits applied to every OTLP request.
#[derive(Clone, Debug)]
pub struct ReceiverLimits {
    /// Largest request body, after decompression, in bytes.
    pub max_body_bytes: usize,
    /// Requests being read or committed at once, over both OTLP listeners; more are turned
    /// away with 429 / `RESOURCE_EXHAUSTED` and a retry delay.
    pub max_concurrent_requests: usize,
    /// Series, label and timestamp limits (`limits`).
    pub ingest: limits::IngestLimits,
}

impl ReceiverLimits {
    /// The body limit alone, with the other limits at their defaults.
    pub fn with_body_limit(max_body_bytes: usize) -> Self {
        ReceiverLimits {
            max_body_bytes,
            max_concurrent_requests: 64,
            ingest: limits::IngestLimits::default(),
        }
    }
}

/// How long a throttled client is asked to wait before retrying.
const THROTTLE_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// What the receivers share: the store handle and the limits.
#[derive(Clone)]
pub struct Ingest {
    store: Store,
    limits: ReceiverLimits,
    /// Ingest tokens; open unless `auth.ingest_token_file` is set.
    tokens: crate::listen::Tokens,
    /// Whether each request also goes to the OTLP forward queue, committed with its data
    /// (`crate::forward`).
    forward_otlp: bool,
    /// Permits for requests in progress (`ReceiverLimits::max_concurrent_requests`).
    in_flight: std::sync::Arc<tokio::sync::Semaphore>,
    /// The series, label and timestamp limits in force: `limits.ingest` at start, then what
    /// configuration reloads set (`Ingest::with_live_limits`).
    ingest_limits: tokio::sync::watch::Receiver<limits::IngestLimits>,
}

/// Why an export was refused. `retryable` decides between UNAVAILABLE/503 (the client keeps
/// the data and retries) and INVALID_ARGUMENT/400 (retrying would not help).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct IngestError {
    pub message: String,
    pub retryable: bool,
    /// A limit refused the request whole (413 / `RESOURCE_EXHAUSTED`, not retryable).
    pub too_large: bool,
}

impl From<StoreError> for IngestError {
    fn from(e: StoreError) -> Self {
        IngestError {
            too_large: false,
            retryable: e.is_retryable(),
            message: format!("store: {e}"),
        }
    }
}

/// Counts accepted and rejected points of one request.
struct Accepted {
    rejected: i64,
    message: String,
}

fn now() -> (i64, i64) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (
        d.as_millis() as i64,
        d.as_nanos().min(i64::MAX as u128) as i64,
    )
}

impl Ingest {
    pub fn new(store: Store, limits: ReceiverLimits) -> Self {
        Ingest {
            in_flight: std::sync::Arc::new(tokio::sync::Semaphore::new(
                limits.max_concurrent_requests.max(1),
            )),
            store,
            ingest_limits: tokio::sync::watch::channel(limits.ingest).1,
            limits,
            tokens: crate::listen::Tokens::open(),
            forward_otlp: false,
        }
    }

    /// Applies the series, label and timestamp limits `limits` holds, from now on.
    pub fn with_live_limits(
        mut self,
        limits: tokio::sync::watch::Receiver<limits::IngestLimits>,
    ) -> Self {
        self.ingest_limits = limits;
        self
    }

    /// Requires one of `tokens`' ingest tokens on the OTLP/HTTP routes (the gRPC listener
    /// checks them in an interceptor, `listen::grpc_auth`).
    pub fn with_tokens(mut self, tokens: crate::listen::Tokens) -> Self {
        self.tokens = tokens;
        self
    }

    /// Queues every request for the upstream OTLP endpoint, in the transaction that stores it.
    pub fn forward_otlp(mut self, on: bool) -> Self {
        self.forward_otlp = on;
        self
    }

    #[tracing::instrument(name = "ingest", skip_all, fields(signal = signal, protocol = protocol, points = tracing::field::Empty))]
    async fn commit(
        &self,
        signal: &'static str,
        protocol: &'static str,
        mut batch: WriteBatch,
        mut dropped: convert::Dropped,
    ) -> Result<Accepted, IngestError> {
        let ingest_limits = *self.ingest_limits.borrow();
        if let Err(e) = limits::apply(&mut batch, &mut dropped, &ingest_limits, now().0) {
            metrics::counter!("redline_collector_rejected_total", "signal" => signal, "reason" => e.limit)
                .increment(1);
            return Err(IngestError {
                message: e.message,
                retryable: false,
                too_large: true,
            });
        }
        for (reason, n) in &dropped.by_reason {
            metrics::counter!("redline_collector_dropped_total", "signal" => signal, "reason" => *reason)
                .increment(*n as u64);
        }
        let points = batch.sample_count() + batch.spans.len() + batch.logs.len();
        tracing::Span::current().record("points", points);
        let started = std::time::Instant::now();
        let result = self.store.write(batch).await;
        metrics::histogram!("redline_collector_store_write_duration_seconds", "signal" => signal)
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(WriteOutcome {
                samples_rejected,
                rejection,
                ..
            }) => {
                metrics::counter!("redline_collector_received_total", "signal" => signal, "protocol" => protocol)
                    .increment(points as u64);
                let rejected = (dropped.rejected_points() + samples_rejected) as i64;
                let message = [dropped.message(), rejection]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; ");
                Ok(Accepted { rejected, message })
            }
            Err(e) => {
                metrics::counter!("redline_collector_rejected_total", "signal" => signal, "reason" => "store_unavailable")
                    .increment(points as u64);
                Err(e.into())
            }
        }
    }

    pub async fn metrics(
        &self,
        request: ExportMetricsServiceRequest,
        protocol: &'static str,
    ) -> Result<ExportMetricsServiceResponse, IngestError> {
        let forward = self
            .forward_otlp
            .then(|| crate::forward::otlp::metrics_payload(&request));
        let (mut batch, dropped) = convert::metrics(request, now().0);
        batch.forward.extend(forward);
        let a = self.commit("metrics", protocol, batch, dropped).await?;
        Ok(ExportMetricsServiceResponse {
            partial_success: (a.rejected > 0 || !a.message.is_empty()).then_some(
                ExportMetricsPartialSuccess {
                    rejected_data_points: a.rejected,
                    error_message: a.message,
                },
            ),
        })
    }

    pub async fn traces(
        &self,
        request: ExportTraceServiceRequest,
        protocol: &'static str,
    ) -> Result<ExportTraceServiceResponse, IngestError> {
        let forward = self
            .forward_otlp
            .then(|| crate::forward::otlp::traces_payload(&request));
        let (mut batch, dropped) = convert::traces(request);
        batch.forward.extend(forward);
        let a = self.commit("traces", protocol, batch, dropped).await?;
        Ok(ExportTraceServiceResponse {
            partial_success: (a.rejected > 0).then_some(ExportTracePartialSuccess {
                rejected_spans: a.rejected,
                error_message: a.message,
            }),
        })
    }

    pub async fn logs(
        &self,
        request: ExportLogsServiceRequest,
        protocol: &'static str,
    ) -> Result<ExportLogsServiceResponse, IngestError> {
        let forward = self
            .forward_otlp
            .then(|| crate::forward::otlp::logs_payload(&request));
        let (mut batch, dropped) = convert::logs(request, now().1);
        batch.forward.extend(forward);
        let a = self.commit("logs", protocol, batch, dropped).await?;
        Ok(ExportLogsServiceResponse {
            partial_success: (a.rejected > 0).then_some(ExportLogsPartialSuccess {
                rejected_log_records: a.rejected,
                error_message: a.message,
            }),
        })
    }

    /// The tonic services, with gzip accepted, the size limit applied, and the limit of
    /// requests in progress in front of them.
    pub fn grpc_router(&self) -> tonic::service::Routes {
        let limit = self.limits.max_body_bytes;
        let routes = tonic::service::Routes::new(
            MetricsServiceServer::new(self.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(limit),
        )
        .add_service(
            TraceServiceServer::new(self.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(limit),
        )
        .add_service(
            LogsServiceServer::new(self.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(limit),
        );
        let router = routes
            .into_axum_router()
            .layer(axum::middleware::from_fn_with_state(
                self.in_flight.clone(),
                grpc_limits,
            ));
        tonic::service::Routes::from(router)
    }

    /// The OTLP/HTTP routes: `POST /v1/metrics`, `/v1/traces`, `/v1/logs`.
    pub fn http_router(&self) -> Router {
        // The raw body may be compressed; allow it up to the decompressed limit, and check the
        // decompressed size separately while inflating.
        Router::new()
            .route("/v1/metrics", post(http_metrics))
            .route("/v1/traces", post(http_traces))
            .route("/v1/logs", post(http_logs))
            .layer(DefaultBodyLimit::max(self.limits.max_body_bytes))
            .layer(axum::middleware::from_fn_with_state(
                self.in_flight.clone(),
                http_concurrency,
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.tokens.clone(),
                http_auth,
            ))
            .with_state(self.clone())
    }
}

/// The limit of requests in progress on OTLP/HTTP: a request that finds every permit taken is
/// answered 429 with `Retry-After` before its body is read, so a burst cannot hold more than
/// `max_concurrent_requests` bodies in memory. OTLP clients retry 429 after the delay.
async fn http_concurrency(
    State(in_flight): State<std::sync::Arc<tokio::sync::Semaphore>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Ok(_permit) = in_flight.try_acquire_owned() else {
        metrics::counter!("redline_collector_limit_exceeded_total", "limit" => "max_concurrent_requests").increment(1);
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(JSON));
        let encoding = if json {
            Encoding::Json
        } else {
            Encoding::Protobuf
        };
        let mut response = http_error(
            encoding,
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests in progress (limits.max_concurrent_requests); retry later".into(),
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(THROTTLE_RETRY_AFTER.as_secs()),
        );
        return response;
    };
    next.run(request).await
}

/// `RESOURCE_EXHAUSTED` with a RetryInfo asking the client to come back after `delay`.
pub fn throttled(message: String, delay: std::time::Duration) -> tonic::Status {
    // OTLP clients retry `RESOURCE_EXHAUSTED` only when it comes with RetryInfo.
    let details = redline_common::retry::rpc::status_with_retry_info(
        tonic::Code::ResourceExhausted as i32,
        &message,
        delay,
    );
    tonic::Status::with_details(tonic::Code::ResourceExhausted, message, details.into())
}

/// The gRPC listener's limits around tonic: the limit of requests in progress (throttled with
/// RetryInfo), and tonic's own answer to an oversized message, `OUT_OF_RANGE`, turned into the
/// `RESOURCE_EXHAUSTED` gRPC itself uses for it (without RetryInfo, so clients drop the
/// request instead of sending it again).
async fn grpc_limits(
    State(in_flight): State<std::sync::Arc<tokio::sync::Semaphore>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Ok(_permit) = in_flight.try_acquire_owned() else {
        metrics::counter!("redline_collector_limit_exceeded_total", "limit" => "max_concurrent_requests").increment(1);
        return throttled(
            "too many requests in progress (limits.max_concurrent_requests); retry later".into(),
            THROTTLE_RETRY_AFTER,
        )
        .into_http::<axum::body::Body>();
    };
    let mut response = next.run(request).await;
    let out_of_range = response
        .headers()
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"11");
    if out_of_range {
        metrics::counter!("redline_collector_limit_exceeded_total", "limit" => "max_request_bytes")
            .increment(1);
        metrics::counter!("redline_collector_rejected_total", "signal" => "any", "reason" => "body_too_large").increment(1);
        response
            .headers_mut()
            .insert("grpc-status", header::HeaderValue::from_static("8"));
    }
    response
}

/// The OTLP/HTTP token check: 401 with a `google.rpc.Status` body in the request's encoding,
/// which OTLP clients do not retry. It runs before the body is read.
async fn http_auth(
    State(tokens): State<crate::listen::Tokens>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use crate::listen::Scope;
    match tokens.check_headers(Scope::Ingest, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(denied) => {
            crate::listen::count_denied("otlp_http", denied);
            let json = request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with(JSON));
            let encoding = if json {
                Encoding::Json
            } else {
                Encoding::Protobuf
            };
            let status = match denied {
                crate::listen::auth::Denied::Forbidden => StatusCode::FORBIDDEN,
                _ => StatusCode::UNAUTHORIZED,
            };
            let mut response = http_error(encoding, status, denied.message(Scope::Ingest));
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            response
        }
    }
}

fn grpc_status(e: IngestError) -> tonic::Status {
    if e.too_large {
        tonic::Status::resource_exhausted(e.message)
    } else if e.retryable {
        tonic::Status::unavailable(e.message)
    } else {
        tonic::Status::invalid_argument(e.message)
    }
}

#[tonic::async_trait]
impl MetricsService for Ingest {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.metrics(request.into_inner(), "grpc")
            .await
            .map(tonic::Response::new)
            .map_err(grpc_status)
    }
}

#[tonic::async_trait]
impl TraceService for Ingest {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.traces(request.into_inner(), "grpc")
            .await
            .map(tonic::Response::new)
            .map_err(grpc_status)
    }
}

#[tonic::async_trait]
impl LogsService for Ingest {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.logs(request.into_inner(), "grpc")
            .await
            .map(tonic::Response::new)
            .map_err(grpc_status)
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Encoding {
    Protobuf,
    Json,
}

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

fn http_error(encoding: Encoding, status: StatusCode, message: String) -> Response {
    let code = match status {
        StatusCode::SERVICE_UNAVAILABLE => 14,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => 8,
        StatusCode::UNAUTHORIZED => 16,
        StatusCode::FORBIDDEN => 7,
        _ => 3,
    };
    let mut response = match encoding {
        Encoding::Protobuf => (
            status,
            [(header::CONTENT_TYPE, PROTOBUF)],
            // `google.rpc.Status`, the error body OTLP/HTTP specifies.
            redline_common::retry::rpc::Status {
                code,
                message,
                details: Vec::new(),
            }
            .encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => (
            status,
            [(header::CONTENT_TYPE, JSON)],
            serde_json::json!({"code": code, "message": message}).to_string(),
        )
            .into_response(),
    };
    if status == StatusCode::SERVICE_UNAVAILABLE
        && let Ok(v) = header::HeaderValue::from_str("5")
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// Reads the body: checks the content type, inflates gzip within the size limit.
pub(crate) fn read_body(
    headers: &HeaderMap,
    body: Bytes,
    limit: usize,
    signal: &'static str,
) -> Result<(Encoding, Vec<u8>), Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let encoding = match content_type.as_str() {
        PROTOBUF => Encoding::Protobuf,
        JSON => Encoding::Json,
        other => {
            metrics::counter!("redline_collector_rejected_total", "signal" => signal, "reason" => "unsupported_media_type").increment(1);
            return Err(http_error(
                Encoding::Json,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported Content-Type {other:?}: use {PROTOBUF} or {JSON}"),
            ));
        }
    };
    let content_encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let data = match content_encoding.as_str() {
        "" | "identity" => body.to_vec(),
        "gzip" => {
            let mut out = Vec::new();
            let mut reader = flate2::read::MultiGzDecoder::new(&body[..]).take(limit as u64 + 1);
            if let Err(e) = reader.read_to_end(&mut out) {
                metrics::counter!("redline_collector_rejected_total", "signal" => signal, "reason" => "bad_gzip").increment(1);
                return Err(http_error(
                    encoding,
                    StatusCode::BAD_REQUEST,
                    format!("body is not valid gzip: {e}"),
                ));
            }
            if out.len() > limit {
                metrics::counter!("redline_collector_rejected_total", "signal" => signal, "reason" => "body_too_large").increment(1);
                return Err(http_error(
                    encoding,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("decompressed body exceeds the limit of {limit} bytes"),
                ));
            }
            out
        }
        other => {
            metrics::counter!("redline_collector_rejected_total", "signal" => signal, "reason" => "unsupported_encoding").increment(1);
            return Err(http_error(
                encoding,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported Content-Encoding {other:?}: use gzip or none"),
            ));
        }
    };
    Ok((encoding, data))
}

pub(crate) fn decode<T: Message + Default + serde::de::DeserializeOwned>(
    encoding: Encoding,
    data: &[u8],
    signal: &'static str,
) -> Result<T, Response> {
    let result = match encoding {
        Encoding::Protobuf => T::decode(data).map_err(|e| e.to_string()),
        Encoding::Json => serde_json::from_slice(data).map_err(|e| e.to_string()),
    };
    result.map_err(|e| {
        metrics::counter!("redline_collector_rejected_total", "signal" => signal, "reason" => "decode").increment(1);
        http_error(
            encoding,
            StatusCode::BAD_REQUEST,
            format!("cannot decode OTLP {signal} request: {e}"),
        )
    })
}

fn encode<T: Message + serde::Serialize>(encoding: Encoding, message: &T) -> Response {
    match encoding {
        Encoding::Protobuf => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, PROTOBUF)],
            message.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => match serde_json::to_vec(message) {
            Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, JSON)], body).into_response(),
            Err(e) => http_error(
                encoding,
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot encode response: {e}"),
            ),
        },
    }
}

fn ingest_error(encoding: Encoding, e: IngestError) -> Response {
    let status = if e.too_large {
        StatusCode::PAYLOAD_TOO_LARGE
    } else if e.retryable {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::BAD_REQUEST
    };
    http_error(encoding, status, e.message)
}

macro_rules! http_handler {
    ($fn:ident, $req:ty, $method:ident, $signal:literal) => {
        async fn $fn(State(ingest): State<Ingest>, headers: HeaderMap, body: Bytes) -> Response {
            let (encoding, data) =
                match read_body(&headers, body, ingest.limits.max_body_bytes, $signal) {
                    Ok(v) => v,
                    Err(r) => return r,
                };
            let request: $req = match decode(encoding, &data, $signal) {
                Ok(r) => r,
                Err(r) => return r,
            };
            match ingest.$method(request, "http").await {
                Ok(response) => encode(encoding, &response),
                Err(e) => ingest_error(encoding, e),
            }
        }
    };
}

http_handler!(
    http_metrics,
    ExportMetricsServiceRequest,
    metrics,
    "metrics"
);
http_handler!(http_traces, ExportTraceServiceRequest, traces, "traces");
http_handler!(http_logs, ExportLogsServiceRequest, logs, "logs");

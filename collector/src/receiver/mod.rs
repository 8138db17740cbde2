//! OTLP receivers: gRPC (tonic) and HTTP (axum, protobuf or JSON bodies, optionally gzip).
//! Both decode, convert (pure, `convert`), write to the store, and answer only after the store
//! committed. A store that cannot commit answers `UNAVAILABLE` / 503, which OTLP clients retry,
//! so an acknowledged batch is always durable and an unacknowledged one is never lost by us.

pub mod convert;

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
}

/// What the receivers share: the store handle and the limits.
#[derive(Clone)]
pub struct Ingest {
    store: Store,
    limits: ReceiverLimits,
}

/// Why an export was refused. `retryable` decides between UNAVAILABLE/503 (the client keeps
/// the data and retries) and INVALID_ARGUMENT/400 (retrying would not help).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct IngestError {
    pub message: String,
    pub retryable: bool,
}

impl From<StoreError> for IngestError {
    fn from(e: StoreError) -> Self {
        IngestError {
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
        Ingest { store, limits }
    }

    #[tracing::instrument(name = "ingest", skip_all, fields(signal = signal, protocol = protocol, points = tracing::field::Empty))]
    async fn commit(
        &self,
        signal: &'static str,
        protocol: &'static str,
        batch: WriteBatch,
        dropped: convert::Dropped,
    ) -> Result<Accepted, IngestError> {
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
        let (batch, dropped) = convert::metrics(request, now().0);
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
        let (batch, dropped) = convert::traces(request);
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
        let (batch, dropped) = convert::logs(request, now().1);
        let a = self.commit("logs", protocol, batch, dropped).await?;
        Ok(ExportLogsServiceResponse {
            partial_success: (a.rejected > 0).then_some(ExportLogsPartialSuccess {
                rejected_log_records: a.rejected,
                error_message: a.message,
            }),
        })
    }

    /// The tonic services, with gzip accepted and the size limit applied.
    pub fn grpc_router(&self) -> tonic::service::Routes {
        let limit = self.limits.max_body_bytes;
        tonic::service::Routes::new(
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
        )
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
            .with_state(self.clone())
    }
}

fn grpc_status(e: IngestError) -> tonic::Status {
    if e.retryable {
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

/// `google.rpc.Status`, the error body OTLP/HTTP specifies.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
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
        StatusCode::PAYLOAD_TOO_LARGE => 8,
        _ => 3,
    };
    let mut response = match encoding {
        Encoding::Protobuf => (
            status,
            [(header::CONTENT_TYPE, PROTOBUF)],
            RpcStatus { code, message }.encode_to_vec(),
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
    let status = if e.retryable {
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

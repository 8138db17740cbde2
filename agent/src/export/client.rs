//! OTLP clients: one attempt to deliver one [`Payload`] to the collector, classified into
//! [`Accepted`] (possibly a partial success) or an [`ExportError`] that says whether it is
//! retryable and whether the server asked for a delay. Retrying is the exporter task's job.
//!
//! - gRPC (default): the generated tonic clients of opentelemetry-proto over one lazily
//!   connected [`Channel`], requests gzip-compressed. The channel reconnects by itself.
//! - HTTP: reqwest, `POST <endpoint>/v1/<signal>`, protobuf body gzip-compressed by us with
//!   flate2 (`Content-Encoding: gzip`).
//!
//! Both send `authorization: Bearer <token>` when `exporter.token_file` is set, and speak TLS
//! (rustls, ring) to `https://` endpoints with the CA, optional client certificate and
//! optional server name of `exporter.tls`. A [`Client`] holds the credentials it was built
//! with; a reload builds a new one (see [`crate::export`]).
//!
//! [`Client`] is an `Arc` inside, so an in-flight export owns a cheap clone.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use reqwest::Url;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Channel, Endpoint};

use super::batch::{Payload, Signal};
use super::retry::{self, rpc};
use crate::config::{ExporterConfig, Protocol};
use crate::credentials::ExportCredentials;

/// What the collector accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Items the collector rejected in a partial success (not retried).
    pub rejected: u64,
    /// The collector's partial-success message, if any.
    pub message: String,
}

/// Why an attempt failed; the `reason` label of `redline_agent_export_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// The collector could not be reached (connection refused, DNS, reset).
    Connection,
    /// No answer within `exporter.timeout`.
    Timeout,
    /// The collector answered with a retryable status (UNAVAILABLE, 503, 429, ...).
    RetryableStatus,
    /// The collector answered with a permanent error status (INVALID_ARGUMENT, 400, ...).
    PermanentStatus,
    /// The answer could not be understood, or the request could not be built.
    BadResponse,
    /// The collector refused our credentials (401/403, UNAUTHENTICATED/PERMISSION_DENIED).
    Unauthenticated,
    /// The TLS handshake failed (unknown CA, expired or misnamed certificate, client
    /// certificate refused).
    Tls,
}

impl FailureReason {
    pub const ALL: [FailureReason; 7] = [
        FailureReason::Connection,
        FailureReason::Timeout,
        FailureReason::RetryableStatus,
        FailureReason::PermanentStatus,
        FailureReason::BadResponse,
        FailureReason::Unauthenticated,
        FailureReason::Tls,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Connection => "connection",
            FailureReason::Timeout => "timeout",
            FailureReason::RetryableStatus => "retryable_status",
            FailureReason::PermanentStatus => "permanent_status",
            FailureReason::BadResponse => "bad_response",
            FailureReason::Unauthenticated => "unauthenticated",
            FailureReason::Tls => "tls",
        }
    }
}

/// A failed attempt.
#[derive(Debug, Clone, thiserror::Error)]
#[error("export to {endpoint} failed ({}): {message}", reason.as_str())]
pub struct ExportError {
    pub endpoint: String,
    pub reason: FailureReason,
    /// Whether the OTLP specification allows retrying this failure.
    pub retryable: bool,
    /// Delay the server asked for (gRPC `RetryInfo`, HTTP `Retry-After`).
    pub retry_after: Option<Duration>,
    pub message: String,
}

/// An OTLP client for the configured protocol.
#[derive(Debug, Clone)]
pub enum Client {
    Grpc(Arc<GrpcClient>),
    Http(Arc<HttpClient>),
}

impl Client {
    /// Builds the client with `creds` (see [`ExportCredentials::load`]); connects lazily, so
    /// a collector that is down is not an error here. Must be called inside a tokio runtime.
    pub fn new(cfg: &ExporterConfig, creds: &ExportCredentials) -> anyhow::Result<Client> {
        Ok(match cfg.protocol {
            Protocol::Grpc => Client::Grpc(Arc::new(GrpcClient::new(
                &cfg.endpoint(),
                cfg.timeout,
                creds,
            )?)),
            Protocol::Http => Client::Http(Arc::new(HttpClient::new(
                &cfg.endpoint(),
                cfg.timeout,
                creds,
            )?)),
        })
    }

    /// One delivery attempt, bounded by the configured timeout.
    pub async fn export(&self, payload: &Payload) -> Result<Accepted, ExportError> {
        match self {
            Client::Grpc(c) => c.export(payload).await,
            Client::Http(c) => c.export(payload).await,
        }
    }
}

/// OTLP/gRPC client.
#[derive(Debug, Clone)]
pub struct GrpcClient {
    endpoint: String,
    timeout: Duration,
    /// `Bearer <token>`, marked sensitive so it is never logged.
    authorization: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    metrics: MetricsServiceClient<Channel>,
    traces: TraceServiceClient<Channel>,
    logs: LogsServiceClient<Channel>,
}

impl GrpcClient {
    pub fn new(
        endpoint: &Url,
        timeout: Duration,
        creds: &ExportCredentials,
    ) -> anyhow::Result<GrpcClient> {
        let text = endpoint.as_str().trim_end_matches('/').to_string();
        let mut ep = Endpoint::from_shared(text.clone())?
            .connect_timeout(timeout)
            .tcp_nodelay(true);
        if let Some(tls) = &creds.tls {
            // tonic builds its rustls config with the process's default provider, which
            // `crate::install_crypto_provider` set to ring (and tonic's own fallback is ring:
            // the `tls-ring` feature).
            let mut t = tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(&tls.ca_pem))
                .timeout(timeout);
            if let Some((cert, key)) = &tls.identity {
                t = t.identity(tonic::transport::Identity::from_pem(cert, key));
            }
            if let Some(name) = &tls.server_name {
                t = t.domain_name(name.clone());
            }
            ep = ep.tls_config(t)?;
        }
        let channel = ep.connect_lazy();
        let authorization = match &creds.token {
            Some(token) => {
                let mut v: tonic::metadata::MetadataValue<tonic::metadata::Ascii> =
                    format!("Bearer {token}").parse()?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        let gz = CompressionEncoding::Gzip;
        Ok(GrpcClient {
            endpoint: text,
            timeout,
            authorization,
            metrics: MetricsServiceClient::new(channel.clone())
                .send_compressed(gz)
                .accept_compressed(gz),
            traces: TraceServiceClient::new(channel.clone())
                .send_compressed(gz)
                .accept_compressed(gz),
            logs: LogsServiceClient::new(channel)
                .send_compressed(gz)
                .accept_compressed(gz),
        })
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        req.set_timeout(self.timeout); // tells the server our deadline (grpc-timeout)
        if let Some(v) = &self.authorization {
            req.metadata_mut().insert("authorization", v.clone());
        }
        req
    }

    async fn call(&self, payload: &Payload) -> Result<Accepted, tonic::Status> {
        // The generated clients take the message by value; the exporter keeps the original for
        // retries, so each attempt sends a clone.
        Ok(match payload {
            Payload::Metrics(r) => {
                let resp = self.metrics.clone().export(self.request(r.clone())).await?;
                let p = resp.into_inner().partial_success.unwrap_or_default();
                accepted(p.rejected_data_points, p.error_message)
            }
            Payload::Traces(r) => {
                let resp = self.traces.clone().export(self.request(r.clone())).await?;
                let p = resp.into_inner().partial_success.unwrap_or_default();
                accepted(p.rejected_spans, p.error_message)
            }
            Payload::Logs(r) => {
                let resp = self.logs.clone().export(self.request(r.clone())).await?;
                let p = resp.into_inner().partial_success.unwrap_or_default();
                accepted(p.rejected_log_records, p.error_message)
            }
        })
    }

    async fn export(&self, payload: &Payload) -> Result<Accepted, ExportError> {
        match tokio::time::timeout(self.timeout, self.call(payload)).await {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(status)) => Err(self.classify(&status)),
            Err(_) => Err(ExportError {
                endpoint: self.endpoint.clone(),
                reason: FailureReason::Timeout,
                retryable: true,
                retry_after: None,
                message: format!("no answer within {:?}", self.timeout),
            }),
        }
    }

    fn classify(&self, status: &tonic::Status) -> ExportError {
        let info = rpc::retry_info(status.details());
        let mut retryable = retry::grpc_retryable(status.code(), info.is_some());
        let reason = if matches!(
            status.code(),
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
        ) {
            FailureReason::Unauthenticated
        } else if is_tls_error(status) {
            FailureReason::Tls
        } else if is_connect_error(status) {
            FailureReason::Connection
        } else if status.code() == tonic::Code::DeadlineExceeded {
            FailureReason::Timeout
        } else if retryable {
            FailureReason::RetryableStatus
        } else {
            FailureReason::PermanentStatus
        };
        // tonic reports some transport failures (a handshake refused after the fact, a reset)
        // as UNKNOWN: the collector never judged the data, so they are retryable whatever the
        // code says.
        if matches!(reason, FailureReason::Tls | FailureReason::Connection) {
            retryable = true;
        }
        ExportError {
            endpoint: self.endpoint.clone(),
            reason,
            retryable,
            retry_after: info.flatten(),
            message: format!("{:?}: {}", status.code(), status.message()),
        }
    }
}

/// Does this status come from failing to connect (rather than from the server)?
fn is_connect_error(status: &tonic::Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(e) = source {
        if e.is::<tonic::ConnectError>() || e.is::<std::io::Error>() {
            return true;
        }
        source = e.source();
    }
    // tonic maps connect errors to UNAVAILABLE and keeps only the text.
    status.code() == tonic::Code::Unavailable
        && (status.message().contains("connect") || status.message().contains("transport"))
}

/// Does `err`'s source chain hold a rustls error (a failed handshake)? tokio-rustls reports
/// them as `io::Error`s wrapping the `rustls::Error`.
pub fn is_tls_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut e: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cur) = e {
        if cur.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = cur.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        // tonic keeps only the text of some connect errors.
        let text = cur.to_string();
        if text.contains("invalid peer certificate") || text.contains("received fatal alert") {
            return true;
        }
        e = cur.source();
    }
    false
}

fn accepted(rejected: i64, message: String) -> Accepted {
    Accepted {
        rejected: u64::try_from(rejected).unwrap_or(0),
        message,
    }
}

/// OTLP/HTTP (protobuf) client.
#[derive(Debug, Clone)]
pub struct HttpClient {
    http: reqwest::Client,
    urls: [Url; 3],
    /// `Bearer <token>`, marked sensitive.
    authorization: Option<reqwest::header::HeaderValue>,
}

/// `base` + `/v1/<signal>`, keeping any path prefix of `base` (as `OTEL_EXPORTER_OTLP_ENDPOINT`
/// does).
pub fn signal_url(base: &Url, signal: Signal) -> Url {
    let mut u = base.clone();
    let path = format!(
        "{}/v1/{}",
        base.path().trim_end_matches('/'),
        signal.as_str()
    );
    u.set_path(&path);
    u
}

/// Gzip-compresses `data`.
pub fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    enc.write_all(data)?;
    enc.finish()
}

impl HttpClient {
    pub fn new(
        endpoint: &Url,
        timeout: Duration,
        creds: &ExportCredentials,
    ) -> anyhow::Result<HttpClient> {
        crate::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout);
        if let Some(tls) = &creds.tls {
            // Our own rustls config (ring, the configured CA, client certificate and server
            // name); reqwest only adds ALPN for HTTP/1.1.
            let mut config = (*tls.rustls).clone();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            builder = builder.tls_backend_preconfigured(config);
        }
        let http = builder.build()?;
        let authorization = match &creds.token {
            Some(token) => {
                let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        Ok(HttpClient {
            http,
            urls: Signal::ALL.map(|s| signal_url(endpoint, s)),
            authorization,
        })
    }

    async fn export(&self, payload: &Payload) -> Result<Accepted, ExportError> {
        let url = &self.urls[payload.signal().index()];
        let err = |reason, retryable, retry_after, message: String| ExportError {
            endpoint: url.to_string(),
            reason,
            retryable,
            retry_after,
            message,
        };
        let raw = match payload {
            Payload::Metrics(r) => r.encode_to_vec(),
            Payload::Traces(r) => r.encode_to_vec(),
            Payload::Logs(r) => r.encode_to_vec(),
        };
        let body = gzip(&raw).map_err(|e| {
            err(
                FailureReason::BadResponse,
                false,
                None,
                format!("gzip: {e}"),
            )
        })?;
        drop(raw);
        let mut req = self
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .header(reqwest::header::CONTENT_ENCODING, "gzip");
        if let Some(v) = &self.authorization {
            req = req.header(reqwest::header::AUTHORIZATION, v.clone());
        }
        let resp = req.body(body).send().await.map_err(|e| {
            let reason = if is_tls_error(&e) {
                FailureReason::Tls
            } else if e.is_timeout() {
                FailureReason::Timeout
            } else if e.is_connect() {
                FailureReason::Connection
            } else if e.is_builder() {
                FailureReason::BadResponse
            } else {
                FailureReason::Connection
            };
            err(reason, !e.is_builder(), None, e.to_string())
        })?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry::parse_retry_after(v, std::time::SystemTime::now()));
        let bytes = resp.bytes().await.map_err(|e| {
            let reason = if e.is_timeout() {
                FailureReason::Timeout
            } else {
                FailureReason::Connection
            };
            err(reason, true, None, format!("reading response: {e}"))
        })?;
        if !(200..300).contains(&status) {
            let retryable = retry::http_retryable(status);
            let reason = if matches!(status, 401 | 403) {
                FailureReason::Unauthenticated
            } else if retryable {
                FailureReason::RetryableStatus
            } else {
                FailureReason::PermanentStatus
            };
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).into_owned();
            return Err(err(
                reason,
                retryable,
                retry_after,
                format!("HTTP {status}: {text}"),
            ));
        }
        if bytes.is_empty() {
            return Ok(Accepted::default());
        }
        let bad = |e: prost::DecodeError| {
            err(
                FailureReason::BadResponse,
                false,
                None,
                format!("undecodable response: {e}"),
            )
        };
        // A 2xx means the data was accepted; an undecodable body only loses the partial-success
        // detail, so it is not treated as a failure.
        let parsed = match payload.signal() {
            Signal::Metrics => ExportMetricsServiceResponse::decode(bytes.as_ref()).map(|r| {
                r.partial_success
                    .map(|p| accepted(p.rejected_data_points, p.error_message))
            }),
            Signal::Traces => ExportTraceServiceResponse::decode(bytes.as_ref()).map(|r| {
                r.partial_success
                    .map(|p| accepted(p.rejected_spans, p.error_message))
            }),
            Signal::Logs => ExportLogsServiceResponse::decode(bytes.as_ref()).map(|r| {
                r.partial_success
                    .map(|p| accepted(p.rejected_log_records, p.error_message))
            }),
        };
        match parsed {
            Ok(a) => Ok(a.unwrap_or_default()),
            Err(e) => {
                tracing::debug!(error = %bad(e), "ignoring undecodable OTLP/HTTP response body");
                Ok(Accepted::default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signal_urls() {
        let u = Url::parse("http://c:14318").unwrap();
        assert_eq!(
            signal_url(&u, Signal::Metrics).as_str(),
            "http://c:14318/v1/metrics"
        );
        let u = Url::parse("http://c:14318/otlp/").unwrap();
        assert_eq!(
            signal_url(&u, Signal::Logs).as_str(),
            "http://c:14318/otlp/v1/logs"
        );
    }

    #[test]
    fn gzip_roundtrip() {
        use std::io::Read;
        let data = vec![7u8; 10_000];
        let z = gzip(&data).unwrap();
        assert!(z.len() < 200);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(z.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
    }
}

//! OTLP forwarding: the queue payloads of received requests (the request re-encoded as
//! protobuf, whatever encoding it arrived in) and one export of a batch to the upstream, over
//! gRPC (tonic, TLS through rustls with ring) or OTLP/HTTP (protobuf, optionally gzip).
//!
//! Serialized export requests of one signal concatenate into one valid request (their
//! `resource_*` lists are repeated fields), so the forwarder joins queued rows by
//! concatenation; the gRPC client decodes the joined bytes once to hand tonic a message.

use std::str::FromStr;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::config::{OTLP_TARGET, OtlpForwardConfig, OtlpProtocol};
use super::retry;
use super::{SendError, Sent};
use crate::store::ForwardPayload;

/// The queue payload of a received metrics request; `items` counts its data points.
pub fn metrics_payload(request: &ExportMetricsServiceRequest) -> ForwardPayload {
    let points: usize = request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        })
        .sum();
    payload("metrics", points, request.encode_to_vec())
}

/// The queue payload of a received traces request; `items` counts its spans.
pub fn traces_payload(request: &ExportTraceServiceRequest) -> ForwardPayload {
    let spans: usize = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    payload("traces", spans, request.encode_to_vec())
}

/// The queue payload of a received logs request; `items` counts its log records.
pub fn logs_payload(request: &ExportLogsServiceRequest) -> ForwardPayload {
    let records: usize = request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum();
    payload("logs", records, request.encode_to_vec())
}

fn payload(signal: &'static str, items: usize, bytes: Vec<u8>) -> ForwardPayload {
    ForwardPayload {
        target: OTLP_TARGET.to_owned(),
        signal,
        items: items as u64,
        bytes,
    }
}

enum Transport {
    Grpc(Channel),
    Http(reqwest::Client),
}

/// The upstream OTLP endpoint's client and settings.
pub struct Client {
    transport: Transport,
    config: OtlpForwardConfig,
}

impl Client {
    /// Builds the client; the gRPC channel connects lazily (on the first export), so an
    /// upstream that is down at start only delays delivery.
    pub fn new(config: OtlpForwardConfig) -> Result<Client, String> {
        let transport = match config.protocol {
            OtlpProtocol::Grpc => {
                let mut endpoint = Endpoint::from_str(&config.endpoint)
                    .map_err(|e| format!("endpoint {:?}: {e}", config.endpoint))?
                    .timeout(config.timeout)
                    .connect_timeout(config.timeout);
                if config.endpoint.starts_with("https://") {
                    let tls = match &config.ca_pem {
                        Some(pem) => ClientTlsConfig::new()
                            .ca_certificate(tonic::transport::Certificate::from_pem(pem)),
                        None => ClientTlsConfig::new().with_native_roots(),
                    };
                    endpoint = endpoint
                        .tls_config(tls)
                        .map_err(|e| format!("TLS for {:?}: {e}", config.endpoint))?;
                }
                Transport::Grpc(endpoint.connect_lazy())
            }
            OtlpProtocol::Http => Transport::Http(super::http_client(config.ca_pem.clone())?),
        };
        Ok(Client { transport, config })
    }

    /// Exports one batch: `body` is the concatenation of queued requests of `signal`.
    pub async fn send(&self, signal: &str, body: &[u8], items: u64) -> Result<Sent, SendError> {
        match &self.transport {
            Transport::Grpc(channel) => self.send_grpc(channel.clone(), signal, body, items).await,
            Transport::Http(client) => self.send_http(client, signal, body, items).await,
        }
    }

    fn request<T>(&self, message: T) -> Result<tonic::Request<T>, SendError> {
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        for (name, value) in &self.config.headers {
            let key = MetadataKey::from_bytes(name.as_bytes())
                .map_err(|e| SendError::permanent(format!("header {name}: {e}")))?;
            let value = MetadataValue::try_from(value.as_str())
                .map_err(|e| SendError::permanent(format!("header {name}: {e}")))?;
            metadata.insert(key, value);
        }
        if let Some(token) = &self.config.token {
            let value = MetadataValue::try_from(format!("Bearer {}", token.0))
                .map_err(|e| SendError::permanent(format!("token: {e}")))?;
            metadata.insert("authorization", value);
        }
        Ok(request)
    }

    async fn send_grpc(
        &self,
        channel: Channel,
        signal: &str,
        body: &[u8],
        items: u64,
    ) -> Result<Sent, SendError> {
        let gzip = self.config.gzip;
        let decode =
            |e: prost::DecodeError| SendError::permanent(format!("queued {signal} request: {e}"));
        let rejected = match signal {
            "metrics" => {
                let mut client = MetricsServiceClient::new(channel);
                if gzip {
                    client = client.send_compressed(CompressionEncoding::Gzip);
                }
                let request =
                    self.request(ExportMetricsServiceRequest::decode(body).map_err(decode)?)?;
                let response = client.export(request).await.map_err(grpc_error)?;
                response
                    .into_inner()
                    .partial_success
                    .map(|p| (p.rejected_data_points, p.error_message))
            }
            "traces" => {
                let mut client = TraceServiceClient::new(channel);
                if gzip {
                    client = client.send_compressed(CompressionEncoding::Gzip);
                }
                let request =
                    self.request(ExportTraceServiceRequest::decode(body).map_err(decode)?)?;
                let response = client.export(request).await.map_err(grpc_error)?;
                response
                    .into_inner()
                    .partial_success
                    .map(|p| (p.rejected_spans, p.error_message))
            }
            "logs" => {
                let mut client = LogsServiceClient::new(channel);
                if gzip {
                    client = client.send_compressed(CompressionEncoding::Gzip);
                }
                let request =
                    self.request(ExportLogsServiceRequest::decode(body).map_err(decode)?)?;
                let response = client.export(request).await.map_err(grpc_error)?;
                response
                    .into_inner()
                    .partial_success
                    .map(|p| (p.rejected_log_records, p.error_message))
            }
            other => {
                return Err(SendError::permanent(format!(
                    "unknown signal {other:?} in the queue"
                )));
            }
        };
        Ok(sent(items, rejected))
    }

    async fn send_http(
        &self,
        client: &reqwest::Client,
        signal: &str,
        body: &[u8],
        items: u64,
    ) -> Result<Sent, SendError> {
        let url = format!("{}/v1/{signal}", self.config.endpoint);
        let mut request = client
            .post(&url)
            .timeout(self.config.timeout)
            .header("Content-Type", "application/x-protobuf")
            .header(
                "User-Agent",
                concat!("redline-collector/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in &self.config.headers {
            request = request.header(name, value);
        }
        if let Some(token) = &self.config.token {
            request = request.bearer_auth(&token.0);
        }
        let request = if self.config.gzip {
            use std::io::Write;
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder
                .write_all(body)
                .map_err(|e| SendError::permanent(format!("gzip: {e}")))?;
            let compressed = encoder
                .finish()
                .map_err(|e| SendError::permanent(format!("gzip: {e}")))?;
            request.header("Content-Encoding", "gzip").body(compressed)
        } else {
            request.body(body.to_vec())
        };
        let response = request.send().await.map_err(SendError::network)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry::parse_retry_after(v, std::time::SystemTime::now()));
        let bytes = response.bytes().await.unwrap_or_default();
        if (200..300).contains(&status) {
            // An empty or undecodable success body is a full success.
            let rejected = match signal {
                "metrics" => ExportMetricsServiceResponse::decode(bytes.as_ref())
                    .ok()
                    .and_then(|r| r.partial_success)
                    .map(|p| (p.rejected_data_points, p.error_message)),
                "traces" => ExportTraceServiceResponse::decode(bytes.as_ref())
                    .ok()
                    .and_then(|r| r.partial_success)
                    .map(|p| (p.rejected_spans, p.error_message)),
                _ => ExportLogsServiceResponse::decode(bytes.as_ref())
                    .ok()
                    .and_then(|r| r.partial_success)
                    .map(|p| (p.rejected_log_records, p.error_message)),
            };
            return Ok(sent(items, rejected));
        }
        let message = retry::rpc::Status::decode(bytes.as_ref())
            .map(|s| s.message)
            .ok()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| super::first_line(&String::from_utf8_lossy(&bytes)));
        Err(SendError {
            retryable: retry::otlp_http_retryable(status),
            server_delay: retry_after,
            reason: super::status_reason(status),
            message: format!("HTTP {status}: {message}"),
        })
    }
}

fn sent(items: u64, rejected: Option<(i64, String)>) -> Sent {
    let (rejected, message) = rejected.unwrap_or_default();
    if rejected > 0 || !message.is_empty() {
        tracing::debug!(rejected, message = %message, "upstream accepted the export partially");
    }
    Sent {
        items,
        rejected: rejected.max(0) as u64,
    }
}

fn grpc_error(status: tonic::Status) -> SendError {
    let info = retry::rpc::retry_info(status.details());
    SendError {
        retryable: retry::grpc_retryable(status.code(), info.is_some()),
        server_delay: info.flatten(),
        reason: grpc_reason(status.code()),
        message: format!("gRPC {:?}: {}", status.code(), status.message()),
    }
}

fn grpc_reason(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Unavailable => "unavailable",
        Code::DeadlineExceeded => "timeout",
        Code::ResourceExhausted => "resource_exhausted",
        Code::InvalidArgument => "invalid_argument",
        Code::Unauthenticated | Code::PermissionDenied => "unauthorized",
        Code::Unimplemented => "unimplemented",
        _ => "grpc_error",
    }
}

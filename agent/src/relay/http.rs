//! OTLP/HTTP relay (axum): `POST /v1/metrics`, `/v1/traces`, `/v1/logs` with
//! `Content-Type: application/x-protobuf` or `application/json`, optionally
//! `Content-Encoding: gzip`.
//!
//! The body is read with a byte limit, then inflated with the same limit on the *decompressed*
//! size (a gzip bomb stops at `relay.max_request_bytes + 1` bytes), then decoded. Answers, in
//! the request's encoding as the OTLP/HTTP specification asks: 200 with an empty
//! `Export*ServiceResponse`; 400 with a `google.rpc.Status` for undecodable bodies; 413 when too
//! large; 415 for other content types or encodings; 503 with `Retry-After` when the export
//! spool cannot take the request or the agent is shutting down; 401 (with
//! `WWW-Authenticate: Bearer`) without the configured bearer token.

use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio_stream::StreamExt;

use super::{RETRY_AFTER, Refusal, RelayState};
use crate::export::batch::{Payload, Signal};
use crate::export::retry::rpc;
use crate::listen::Incoming;
use crate::telemetry::{RejectReason, RelayProtocol};

/// Body encoding of a request (and of its response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// From a `Content-Type` value; parameters such as `charset` are ignored.
    pub fn from_content_type(value: &str) -> Option<Encoding> {
        let essence = value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }

    fn protocol(self) -> RelayProtocol {
        match self {
            Encoding::Protobuf => RelayProtocol::HttpProtobuf,
            Encoding::Json => RelayProtocol::HttpJson,
        }
    }
}

/// Why a body could not be turned into a payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("request body exceeds {0} bytes")]
    TooLarge(usize),
    #[error("invalid gzip body: {0}")]
    BadGzip(String),
    #[error("cannot decode body: {0}")]
    Undecodable(String),
}

/// Inflates a gzip body, refusing to produce more than `limit` bytes.
pub fn gunzip_limited(data: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity((data.len() * 4).min(limit));
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::GzDecoder::new(data)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| BodyError::BadGzip(e.to_string()))?;
    if out.len() > limit {
        return Err(BodyError::TooLarge(limit));
    }
    Ok(out)
}

/// Decodes a (decompressed) body for `signal`.
pub fn decode(signal: Signal, enc: Encoding, body: &[u8]) -> Result<Payload, BodyError> {
    let bad = |e: &dyn std::fmt::Display| BodyError::Undecodable(e.to_string());
    Ok(match (signal, enc) {
        (Signal::Metrics, Encoding::Protobuf) => {
            Payload::Metrics(ExportMetricsServiceRequest::decode(body).map_err(|e| bad(&e))?)
        }
        (Signal::Traces, Encoding::Protobuf) => {
            Payload::Traces(ExportTraceServiceRequest::decode(body).map_err(|e| bad(&e))?)
        }
        (Signal::Logs, Encoding::Protobuf) => {
            Payload::Logs(ExportLogsServiceRequest::decode(body).map_err(|e| bad(&e))?)
        }
        (Signal::Metrics, Encoding::Json) => {
            Payload::Metrics(serde_json::from_slice(body).map_err(|e| bad(&e))?)
        }
        (Signal::Traces, Encoding::Json) => {
            Payload::Traces(serde_json::from_slice(body).map_err(|e| bad(&e))?)
        }
        (Signal::Logs, Encoding::Json) => {
            Payload::Logs(serde_json::from_slice(body).map_err(|e| bad(&e))?)
        }
    })
}

/// Reads a request body, failing as soon as it exceeds `limit` bytes.
async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Undecodable(format!("reading body: {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A `google.rpc.Status` error body in `enc`, with `status`.
fn error_response(status: StatusCode, enc: Encoding, code: tonic::Code, message: &str) -> Response {
    let body = match enc {
        Encoding::Protobuf => rpc::Status {
            code: code as i32,
            message: message.to_string(),
            details: Vec::new(),
        }
        .encode_to_vec(),
        Encoding::Json => serde_json::json!({ "code": code as i32, "message": message })
            .to_string()
            .into_bytes(),
    };
    (status, [(header::CONTENT_TYPE, enc.content_type())], body).into_response()
}

fn success_response(signal: Signal, enc: Encoding) -> Response {
    let body = match enc {
        Encoding::Protobuf => match signal {
            Signal::Metrics => ExportMetricsServiceResponse::default().encode_to_vec(),
            Signal::Traces => ExportTraceServiceResponse::default().encode_to_vec(),
            Signal::Logs => ExportLogsServiceResponse::default().encode_to_vec(),
        },
        Encoding::Json => b"{}".to_vec(),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, enc.content_type())],
        body,
    )
        .into_response()
}

async fn handle(st: Arc<RelayState>, signal: Signal, headers: HeaderMap, body: Body) -> Response {
    let auth = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if !st.http_gate.admits(auth) {
        return crate::telemetry::unauthorized();
    }
    let reject = |r: RejectReason| st.telemetry.relay_rejected(r).increment(1);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(enc) = Encoding::from_content_type(content_type) else {
        reject(RejectReason::UnsupportedMediaType);
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Type {content_type:?}; use application/x-protobuf or application/json\n"),
        )
            .into_response();
    };
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => false,
        Some(v) if v.is_empty() || v == "identity" => false,
        Some(v) if v == "gzip" => true,
        Some(v) => {
            reject(RejectReason::UnsupportedMediaType);
            return error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                enc,
                tonic::Code::InvalidArgument,
                &format!("unsupported Content-Encoding {v:?}; use gzip or none"),
            );
        }
    };
    let limit = st.max_request_bytes;
    let decoded = async {
        let raw = read_limited(body, limit).await?;
        let plain = if gzip {
            gunzip_limited(&raw, limit)?
        } else {
            raw
        };
        decode(signal, enc, &plain)
    }
    .await;
    let payload = match decoded {
        Ok(p) => p,
        Err(e @ BodyError::TooLarge(_)) => {
            reject(RejectReason::TooLarge);
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                enc,
                tonic::Code::ResourceExhausted,
                &e.to_string(),
            );
        }
        Err(e) => {
            reject(RejectReason::Undecodable);
            return error_response(
                StatusCode::BAD_REQUEST,
                enc,
                tonic::Code::InvalidArgument,
                &e.to_string(),
            );
        }
    };
    match st.accept(payload, enc.protocol()).await {
        Ok(()) => success_response(signal, enc),
        Err(r) => {
            let msg = match r {
                Refusal::QueueFull => "redline-agent cannot spool this request now; retry later",
                Refusal::ShuttingDown => "redline-agent is shutting down",
            };
            let mut resp = error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                enc,
                tonic::Code::Unavailable,
                msg,
            );
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(RETRY_AFTER.as_secs()),
            );
            resp
        }
    }
}

/// The relay router (exposed for tests).
pub fn router(state: Arc<RelayState>) -> Router {
    let route = |signal: Signal| {
        post(
            move |State(st): State<Arc<RelayState>>, headers: HeaderMap, body: Body| {
                handle(st, signal, headers, body)
            },
        )
    };
    Router::new()
        .route("/v1/metrics", route(Signal::Metrics))
        .route("/v1/traces", route(Signal::Traces))
        .route("/v1/logs", route(Signal::Logs))
        .with_state(state)
}

/// Serves the OTLP/HTTP relay on `incoming` (plain or TLS) until `shutdown` resolves, then
/// finishes in-flight requests.
pub async fn serve(
    incoming: Incoming,
    state: Arc<RelayState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match incoming {
        Incoming::Plain(l) => {
            axum::serve(l, router(state))
                .with_graceful_shutdown(shutdown)
                .await
        }
        Incoming::Tls(l) => {
            axum::serve(l, router(state))
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::export::client::gzip;

    #[test]
    fn content_types() {
        assert_eq!(
            Encoding::from_content_type("application/x-protobuf"),
            Some(Encoding::Protobuf)
        );
        assert_eq!(
            Encoding::from_content_type("Application/JSON; charset=utf-8"),
            Some(Encoding::Json)
        );
        assert_eq!(Encoding::from_content_type("text/plain"), None);
        assert_eq!(Encoding::from_content_type(""), None);
    }

    #[test]
    fn gzip_bomb_is_stopped_at_the_limit() {
        let bomb = gzip(&vec![0u8; 10 << 20]).unwrap();
        assert!(bomb.len() < 64 << 10);
        assert_eq!(
            gunzip_limited(&bomb, 1 << 20),
            Err(BodyError::TooLarge(1 << 20))
        );
        let ok = gzip(b"hello").unwrap();
        assert_eq!(gunzip_limited(&ok, 5).unwrap(), b"hello");
        assert!(matches!(
            gunzip_limited(b"not gzip", 100),
            Err(BodyError::BadGzip(_))
        ));
    }

    #[test]
    fn decodes_protobuf_and_json() {
        let req = ExportTraceServiceRequest::default();
        let p = decode(Signal::Traces, Encoding::Protobuf, &req.encode_to_vec()).unwrap();
        assert_eq!(p.signal(), Signal::Traces);
        let json = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000"}]}]}]}"#;
        let p = decode(Signal::Traces, Encoding::Json, json).unwrap();
        assert_eq!(p.items(), 1);
        let Payload::Traces(t) = p else { panic!() };
        assert_eq!(
            t.resource_spans[0].scope_spans[0].spans[0].trace_id.len(),
            16
        );
        assert!(matches!(
            decode(Signal::Logs, Encoding::Json, b"{nope"),
            Err(BodyError::Undecodable(_))
        ));
        assert!(matches!(
            decode(Signal::Metrics, Encoding::Protobuf, &[0xff, 0xff, 0xff]),
            Err(BodyError::Undecodable(_))
        ));
    }
}

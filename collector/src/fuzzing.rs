//! Entry points for the cargo-fuzz targets in `collector/fuzz/`: thin `pub` wrappers over code
//! paths that are private to their modules, so the targets exercise exactly what a request
//! goes through without widening the modules' real API. Nothing in the daemon calls these.
//!
//! Each wrapper does no I/O, reads no clock (times are parameters) and ignores its outcome:
//! the fuzzer is looking for panics, overflows, runaway memory and runaway time, not for
//! particular answers.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, header};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::api::alertmanager::{PostableAlert, convert_alert};
use crate::receiver::{convert, decode, read_body};

/// Which OTLP signal a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Metrics,
    Traces,
    Logs,
}

/// One OTLP/HTTP request body through the receiver's handler path, minus the store:
/// `Content-Type` and `Content-Encoding` checks, gzip inflation within `limit` bytes, protobuf
/// or JSON decoding, then the pure conversion into a store batch at `now_ms`.
pub fn otlp_http(
    signal: Signal,
    content_type: &str,
    content_encoding: Option<&str>,
    body: &[u8],
    limit: usize,
    now_ms: i64,
) {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Some(v) = content_encoding.and_then(|e| HeaderValue::from_str(e).ok()) {
        headers.insert(header::CONTENT_ENCODING, v);
    }
    let Ok((encoding, data)) = read_body(&headers, Bytes::copy_from_slice(body), limit, "fuzz")
    else {
        return;
    };
    match signal {
        Signal::Metrics => {
            if let Ok(r) = decode::<ExportMetricsServiceRequest>(encoding, &data, "metrics") {
                let _ = convert::metrics(r, now_ms);
            }
        }
        Signal::Traces => {
            if let Ok(r) = decode::<ExportTraceServiceRequest>(encoding, &data, "traces") {
                let _ = convert::traces(r);
            }
        }
        Signal::Logs => {
            if let Ok(r) = decode::<ExportLogsServiceRequest>(encoding, &data, "logs") {
                let _ = convert::logs(r, now_ms.saturating_mul(1_000_000));
            }
        }
    }
}

/// A `POST /api/v2/alerts` body (Alertmanager's API v2): decoded and validated alert by alert
/// as the handler does, at `now_ms` with `resolve_timeout_ms`.
pub fn alertmanager_alerts(body: &[u8], now_ms: i64, resolve_timeout_ms: i64) {
    let Ok(alerts) = serde_json::from_slice::<Vec<PostableAlert>>(body) else {
        return;
    };
    for (i, alert) in alerts.into_iter().enumerate() {
        let _ = convert_alert(i, alert, now_ms, resolve_timeout_ms);
    }
}

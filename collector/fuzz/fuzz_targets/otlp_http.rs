//! One OTLP/HTTP request through the receiver's handler path minus the store
//! (`redline_collector::fuzzing::otlp_http`): content-type and content-encoding checks, gzip
//! inflation bounded by the decompressed-size limit, protobuf or JSON decoding, conversion.
//!
//! The first byte is the request's header: bits 0-1 the signal (metrics, traces, logs),
//! bit 2 the content type (protobuf or JSON), bits 3-5 the `Content-Encoding` (none, `gzip`,
//! ` GZip `, `identity`, `deflate`) and bits 6-7 the limit (64 KiB, 1 KiB, 1 MiB, 0). The rest is
//! the body as sent, usually gzip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redline_collector::fuzzing::{Signal, otlp_http};

fuzz_target!(|data: &[u8]| {
    let Some((&head, body)) = data.split_first() else {
        return;
    };
    let signal = match head & 3 {
        0 => Signal::Metrics,
        1 => Signal::Traces,
        _ => Signal::Logs,
    };
    let content_type = if head & 4 == 0 {
        "application/x-protobuf"
    } else {
        "application/json; charset=utf-8"
    };
    let encoding = match (head >> 3) & 7 {
        0 => None,
        1 | 5 => Some("gzip"),
        2 | 6 => Some(" GZip "),
        3 => Some("identity"),
        _ => Some("deflate"),
    };
    let limit = match head >> 6 {
        0 => 64 << 10,
        1 => 1 << 10,
        2 => 1 << 20,
        _ => 0,
    };
    otlp_http(
        signal,
        content_type,
        encoding,
        body,
        limit,
        1_700_000_000_000,
    );
});

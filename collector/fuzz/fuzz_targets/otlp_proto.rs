//! OTLP/protobuf export requests (metrics, traces, logs) through prost's decoding and the
//! receiver's pure conversion into store batches (`receiver::convert`), as the gRPC services
//! and the HTTP/protobuf handlers run them. The first byte picks the signal; the rest is the
//! request message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use redline_collector::receiver::convert;

/// 2023-11-14T22:13:20Z, the receiver's "now" for points without a timestamp.
const NOW_MS: i64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, message)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            if let Ok(r) = ExportMetricsServiceRequest::decode(message) {
                let _ = convert::metrics(r, NOW_MS);
            }
        }
        1 => {
            if let Ok(r) = ExportTraceServiceRequest::decode(message) {
                let _ = convert::traces(r);
            }
        }
        _ => {
            if let Ok(r) = ExportLogsServiceRequest::decode(message) {
                let _ = convert::logs(r, NOW_MS * 1_000_000);
            }
        }
    }
});

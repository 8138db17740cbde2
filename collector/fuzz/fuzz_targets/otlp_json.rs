//! OTLP/JSON export requests through the HTTP receiver's JSON decoding (serde with
//! opentelemetry-proto's `with-serde` mapping: hex ids, string 64-bit integers, camelCase) and
//! the pure conversion into store batches. The input is the JSON body; it is tried as each of
//! the three signals, so seeds stay plain JSON files.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use redline_collector::receiver::convert;

const NOW_MS: i64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = serde_json::from_slice::<ExportMetricsServiceRequest>(data) {
        let _ = convert::metrics(r, NOW_MS);
    }
    if let Ok(r) = serde_json::from_slice::<ExportTraceServiceRequest>(data) {
        let _ = convert::traces(r);
    }
    if let Ok(r) = serde_json::from_slice::<ExportLogsServiceRequest>(data) {
        let _ = convert::logs(r, NOW_MS * 1_000_000);
    }
});

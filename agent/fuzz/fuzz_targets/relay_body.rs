//! One relayed OTLP/HTTP body through the relay's decoding (`relay::http::gunzip_limited`
//! with its decompressed-size limit, then `relay::http::decode`), and relayed metrics through
//! the Prometheus exposition (`exposition::render`).
//!
//! The first byte is the request's header: bits 0-1 the signal (metrics, traces, logs), bit 2
//! the encoding (protobuf or JSON), bit 3 whether the body is gzip, bits 4-5 the limit
//! (64 KiB, 1 KiB, 1 MiB, 0). The rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redline_agent::export::batch::{Payload, Signal};
use redline_agent::exposition;
use redline_agent::relay::http::{Encoding, decode, gunzip_limited};

fuzz_target!(|data: &[u8]| {
    let Some((&head, body)) = data.split_first() else {
        return;
    };
    let signal = match head & 3 {
        0 => Signal::Metrics,
        1 => Signal::Traces,
        _ => Signal::Logs,
    };
    let encoding = if head & 4 == 0 {
        Encoding::Protobuf
    } else {
        Encoding::Json
    };
    let limit = match (head >> 4) & 3 {
        0 => 64 << 10,
        1 => 1 << 10,
        2 => 1 << 20,
        _ => 0,
    };
    let inflated;
    let body = if head & 8 != 0 {
        match gunzip_limited(body, limit) {
            Ok(b) => {
                inflated = b;
                &inflated[..]
            }
            Err(_) => return,
        }
    } else {
        body
    };
    if let Ok(Payload::Metrics(request)) = decode(signal, encoding, body) {
        let mut text = String::new();
        exposition::render(&request, &mut text);
    }
});

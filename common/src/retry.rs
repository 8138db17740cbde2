//! The OTLP specification's retry rules ("Failures": which gRPC codes and HTTP statuses are
//! retryable), the server's requested delay (`RetryInfo`, `Retry-After`), and exponential
//! backoff with full jitter, as pure functions: nothing here sleeps or reads the clock. The
//! agent's exporter and the collector's forwarders drive them with their own policies; the
//! collector's receiver and the agent's relay use [`rpc`] to ask their clients to wait.

use std::time::{Duration, SystemTime};

use tonic::Code;

/// Is a gRPC status retryable? OTLP/gRPC: CANCELLED, DEADLINE_EXCEEDED, ABORTED,
/// OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS are; RESOURCE_EXHAUSTED only when the server sent
/// `RetryInfo` (it is recoverable); everything else is permanent.
pub fn grpc_retryable(code: Code, has_retry_info: bool) -> bool {
    match code {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::ResourceExhausted => has_retry_info,
        _ => false,
    }
}

/// Is an HTTP status retryable? OTLP/HTTP: 429, 502, 503 and 504.
pub fn http_retryable(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// Parses a `Retry-After` header: delay seconds, or an HTTP-date (the delay until then, zero
/// if it has passed, measured from `now`). Anything else yields `None` (the exponential
/// backoff applies instead).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The upper bound of the delay before retry number `attempt` (0-based):
/// `min(max, initial * 2^attempt)`.
pub fn backoff_cap(initial: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
    initial.checked_mul(factor).unwrap_or(max).min(max)
}

/// Full jitter: a delay drawn uniformly from `[0, cap]`, given a uniform `unit` in `[0, 1)`.
pub fn jittered(cap: Duration, unit: f64) -> Duration {
    cap.mul_f64(unit.clamp(0.0, 1.0))
}

/// Minimal `google.rpc.Status` and `google.rpc.RetryInfo`, to read the retry delay a gRPC
/// server attaches to a status, and to attach one to our own throttling answers.
pub mod rpc {
    use std::time::Duration;

    /// `google.rpc.Status`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        #[prost(int32, tag = "1")]
        pub code: i32,
        #[prost(string, tag = "2")]
        pub message: String,
        #[prost(message, repeated, tag = "3")]
        pub details: Vec<Any>,
    }

    /// `google.protobuf.Any`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    /// `google.rpc.RetryInfo`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RetryInfo {
        #[prost(message, optional, tag = "1")]
        pub retry_delay: Option<ProtoDuration>,
    }

    /// `google.protobuf.Duration`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ProtoDuration {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }

    pub const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

    /// The `RetryInfo` delay in a serialized `google.rpc.Status` (tonic's `Status::details`):
    /// `None` when absent; `Some(None)` when present without a delay.
    pub fn retry_info(details: &[u8]) -> Option<Option<Duration>> {
        use prost::Message;
        if details.is_empty() {
            return None;
        }
        let status = Status::decode(details).ok()?;
        let any = status
            .details
            .iter()
            .find(|a| a.type_url.ends_with("google.rpc.RetryInfo"))?;
        let info = RetryInfo::decode(any.value.as_slice()).ok()?;
        Some(info.retry_delay.and_then(|d| {
            let secs = u64::try_from(d.seconds).ok()?;
            let nanos = u32::try_from(d.nanos).ok()?;
            Some(Duration::new(secs, nanos.min(999_999_999)))
        }))
    }

    /// A serialized `google.rpc.Status` carrying a `RetryInfo` with `delay`.
    pub fn status_with_retry_info(code: i32, message: &str, delay: Duration) -> Vec<u8> {
        use prost::Message;
        let info = RetryInfo {
            retry_delay: Some(ProtoDuration {
                seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
                nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
            }),
        };
        Status {
            code,
            message: message.to_string(),
            details: vec![Any {
                type_url: RETRY_INFO_TYPE.to_string(),
                value: info.encode_to_vec(),
            }],
        }
        .encode_to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_follow_the_otlp_spec() {
        for c in [
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unavailable,
            Code::DataLoss,
        ] {
            assert!(grpc_retryable(c, false), "{c:?}");
        }
        for c in [
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::Unimplemented,
            Code::Internal,
            Code::Unknown,
            Code::NotFound,
        ] {
            assert!(!grpc_retryable(c, true), "{c:?}");
        }
        assert!(!grpc_retryable(Code::ResourceExhausted, false));
        assert!(grpc_retryable(Code::ResourceExhausted, true));
    }

    #[test]
    fn http_statuses_and_retry_after() {
        for s in [429, 502, 503, 504] {
            assert!(http_retryable(s));
        }
        for s in [400, 401, 403, 404, 413, 415, 500, 501] {
            assert!(!http_retryable(s));
        }
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470); // 07:27:50
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let (initial, max) = (Duration::from_millis(500), Duration::from_secs(30));
        assert_eq!(backoff_cap(initial, max, 0), Duration::from_millis(500));
        assert_eq!(backoff_cap(initial, max, 1), Duration::from_secs(1));
        assert_eq!(backoff_cap(initial, max, 5), Duration::from_secs(16));
        assert_eq!(backoff_cap(initial, max, 6), Duration::from_secs(30));
        assert_eq!(backoff_cap(initial, max, 1000), Duration::from_secs(30));
        assert_eq!(jittered(Duration::from_secs(10), 0.0), Duration::ZERO);
        assert_eq!(
            jittered(Duration::from_secs(10), 0.5),
            Duration::from_secs(5)
        );
        assert_eq!(
            jittered(Duration::from_secs(10), 7.0),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn retry_info_roundtrip() {
        let bytes = rpc::status_with_retry_info(14, "busy", Duration::from_millis(1500));
        assert_eq!(
            rpc::retry_info(&bytes),
            Some(Some(Duration::from_millis(1500)))
        );
        assert_eq!(rpc::retry_info(&[]), None);
        assert_eq!(rpc::retry_info(&[0xff, 0xff]), None);
    }
}

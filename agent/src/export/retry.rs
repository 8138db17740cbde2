//! Retry policy of the exporter, as pure functions: which responses are retryable (OTLP
//! specification, "Failures"), how long to wait (exponential backoff with full jitter, or the
//! server's `RetryInfo` / `Retry-After`), and when to give up. The exporter task drives it;
//! nothing here sleeps or reads the clock (`now` is a parameter).
//!
//! There is no overall retry deadline any more: a retryable failure is retried until it
//! succeeds, because the batch is safe in the spool, which bounds what waits by size and age
//! instead. Authentication failures (401/403, UNAUTHENTICATED/PERMISSION_DENIED) are permanent
//! by the OTLP specification, but they say nothing about the data; neither does a failed TLS
//! handshake (unknown CA, expired or refused certificate). For both the agent keeps the data
//! and retries every `retry_max_backoff` (and at once after a reload), since a wrong token or
//! certificate is an operator's fix away ([`Class::Auth`]).

use std::time::{Duration, SystemTime};

use tonic::Code;

use crate::config::RetryConfig;

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
/// `min(max_backoff, initial_backoff * 2^attempt)`.
pub fn backoff_cap(policy: &RetryConfig, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
    policy
        .initial_backoff
        .checked_mul(factor)
        .unwrap_or(policy.max_backoff)
        .min(policy.max_backoff)
}

/// Full jitter: a delay drawn uniformly from `[0, cap]`, given a uniform `unit` in `[0, 1)`.
pub fn jittered(cap: Duration, unit: f64) -> Duration {
    cap.mul_f64(unit.clamp(0.0, 1.0))
}

/// How a failed attempt is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Retryable per the OTLP specification.
    Retryable,
    /// The collector refused our credentials, or the TLS handshake failed: keep the data,
    /// retry slowly.
    Auth,
    /// Permanent (bad data): drop the batch.
    Permanent,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait this long, then try again.
    RetryAfter(Duration),
    /// Stop: the error is permanent.
    GiveUpPermanent,
}

/// Decides the next step after a failed attempt number `attempt` (0-based). `server_delay`
/// (RetryInfo / Retry-After) replaces the jittered backoff when present; `unit` is a uniform
/// random number in `[0, 1)`.
pub fn next_step(
    policy: &RetryConfig,
    class: Class,
    attempt: u32,
    server_delay: Option<Duration>,
    unit: f64,
) -> Next {
    match class {
        Class::Permanent => Next::GiveUpPermanent,
        Class::Auth => Next::RetryAfter(server_delay.unwrap_or_default().max(policy.max_backoff)),
        Class::Retryable => Next::RetryAfter(
            server_delay.unwrap_or_else(|| jittered(backoff_cap(policy, attempt), unit)),
        ),
    }
}

/// Minimal `google.rpc.Status` and `google.rpc.RetryInfo`, to read the retry delay a gRPC
/// server attaches to a status (and to attach one in the relay's UNAVAILABLE answers).
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

    fn policy() -> RetryConfig {
        RetryConfig {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }

    #[test]
    fn grpc_codes() {
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
        ] {
            assert!(!grpc_retryable(c, false), "{c:?}");
        }
        assert!(!grpc_retryable(Code::ResourceExhausted, false));
        assert!(grpc_retryable(Code::ResourceExhausted, true));
    }

    #[test]
    fn http_statuses() {
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
    fn backoff_grows_and_caps() {
        let p = policy();
        assert_eq!(backoff_cap(&p, 0), Duration::from_millis(500));
        assert_eq!(backoff_cap(&p, 1), Duration::from_secs(1));
        assert_eq!(backoff_cap(&p, 5), Duration::from_secs(16));
        assert_eq!(backoff_cap(&p, 6), Duration::from_secs(30));
        assert_eq!(backoff_cap(&p, 1000), Duration::from_secs(30));
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
    fn next_steps() {
        let p = policy();
        assert_eq!(
            next_step(&p, Class::Permanent, 0, None, 0.5),
            Next::GiveUpPermanent
        );
        assert_eq!(
            next_step(&p, Class::Retryable, 2, None, 0.5),
            Next::RetryAfter(Duration::from_secs(1))
        );
        assert_eq!(
            next_step(&p, Class::Retryable, 0, Some(Duration::from_secs(42)), 0.5),
            Next::RetryAfter(Duration::from_secs(42))
        );
        // No deadline: the thousandth retry still waits at most max_backoff.
        assert_eq!(
            next_step(&p, Class::Retryable, 1000, None, 0.999_999),
            Next::RetryAfter(Duration::from_secs(30).mul_f64(0.999_999))
        );
        // Refused credentials: slowly, never dropped.
        assert_eq!(
            next_step(&p, Class::Auth, 0, None, 0.1),
            Next::RetryAfter(Duration::from_secs(30))
        );
        assert_eq!(
            next_step(&p, Class::Auth, 0, Some(Duration::from_secs(60)), 0.1),
            Next::RetryAfter(Duration::from_secs(60))
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

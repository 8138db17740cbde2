//! Which failures the forwarders retry and how long they wait, as pure functions: the OTLP
//! specification's retryable gRPC codes and HTTP statuses, remote_write 1.0's (5xx and 429),
//! the server's `RetryInfo` / `Retry-After`, and exponential backoff with full jitter. The
//! forwarder task drives them; nothing here sleeps or reads the clock.
//!
//! There is no give-up time: a forward queue is durable and bounded by bytes, so a long outage
//! ends in the oldest data being dropped by the queue's bound (counted), not in a timer.
//! (The agent has its own copy of the OTLP rules in `agent::export::retry`: the agent and the
//! collector share no code.)

use std::time::Duration;

use tonic::Code;

use super::config::Backoff;

/// The longest server-requested delay honoured; a larger `RetryInfo`/`Retry-After` is cut to
/// this, so a misconfigured upstream cannot park a queue for hours.
pub const MAX_SERVER_DELAY: Duration = Duration::from_secs(300);

/// OTLP/gRPC: CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS
/// are retryable; RESOURCE_EXHAUSTED only when the server sent `RetryInfo`.
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

/// OTLP/HTTP: 429, 502, 503 and 504 are retryable.
pub fn otlp_http_retryable(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// Prometheus remote_write 1.0: 5xx and 429 are retried, every other status is final.
pub fn remote_write_retryable(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// A `Retry-After` header in seconds. HTTP-dates are not supported and yield `None`, so the
/// exponential backoff applies.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The delay before retry number `attempt` (0-based): the server's delay when it sent one
/// (capped at `MAX_SERVER_DELAY`), else a uniform draw from
/// `[0, min(max, initial * 2^attempt)]` given a uniform `unit` in `[0, 1)` (full jitter).
pub fn delay(
    backoff: &Backoff,
    attempt: u32,
    server_delay: Option<Duration>,
    unit: f64,
) -> Duration {
    if let Some(d) = server_delay {
        return d.min(MAX_SERVER_DELAY);
    }
    let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
    let cap = backoff
        .initial
        .checked_mul(factor)
        .unwrap_or(backoff.max)
        .min(backoff.max);
    cap.mul_f64(unit.clamp(0.0, 1.0))
}

/// Minimal `google.rpc.Status` / `google.rpc.RetryInfo`, to read the delay a gRPC server
/// attaches to a status (`tonic::Status::details`).
pub mod rpc {
    use std::time::Duration;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        #[prost(int32, tag = "1")]
        pub code: i32,
        #[prost(string, tag = "2")]
        pub message: String,
        #[prost(message, repeated, tag = "3")]
        pub details: Vec<Any>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RetryInfo {
        #[prost(message, optional, tag = "1")]
        pub retry_delay: Option<ProtoDuration>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ProtoDuration {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }

    pub const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

    /// The `RetryInfo` in serialized status details: `None` when absent, `Some(None)` when
    /// present without a delay.
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

    /// Serialized status details carrying a `RetryInfo` with `delay` (for tests and peers).
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
            message: message.to_owned(),
            details: vec![Any {
                type_url: RETRY_INFO_TYPE.to_owned(),
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
            Code::NotFound,
        ] {
            assert!(!grpc_retryable(c, true), "{c:?}");
        }
        assert!(!grpc_retryable(Code::ResourceExhausted, false));
        assert!(grpc_retryable(Code::ResourceExhausted, true));
    }

    #[test]
    fn http_statuses() {
        for (status, otlp, rw) in [
            (400, false, false),
            (401, false, false),
            (404, false, false),
            (413, false, false),
            (429, true, true),
            (500, false, true),
            (502, true, true),
            (503, true, true),
            (504, true, true),
        ] {
            assert_eq!(otlp_http_retryable(status), otlp, "{status}");
            assert_eq!(remote_write_retryable(status), rw, "{status}");
        }
    }

    #[test]
    fn backoff_is_exponential_capped_and_jittered() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(delay(&b, 0, None, 1.0), Duration::from_millis(100));
        assert_eq!(delay(&b, 3, None, 1.0), Duration::from_millis(800));
        assert_eq!(delay(&b, 4, None, 1.0), Duration::from_secs(1));
        assert_eq!(delay(&b, 60, None, 1.0), Duration::from_secs(1));
        assert_eq!(delay(&b, 3, None, 0.5), Duration::from_millis(400));
        assert_eq!(delay(&b, 3, None, 0.0), Duration::ZERO);
        // The server's delay wins over the backoff, up to the cap.
        assert_eq!(
            delay(&b, 0, Some(Duration::from_secs(7)), 0.3),
            Duration::from_secs(7)
        );
        assert_eq!(
            delay(&b, 0, Some(Duration::from_secs(86_400)), 0.3),
            MAX_SERVER_DELAY
        );
    }

    #[test]
    fn retry_after_and_retry_info() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        let details = rpc::status_with_retry_info(14, "busy", Duration::from_millis(1500));
        assert_eq!(
            rpc::retry_info(&details),
            Some(Some(Duration::from_millis(1500)))
        );
        assert_eq!(rpc::retry_info(&[]), None);
    }
}

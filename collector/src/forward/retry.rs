//! Which failures the forwarders retry and how long they wait, as pure functions: the OTLP
//! specification's retryable gRPC codes and HTTP statuses, remote_write 1.0's (5xx and 429),
//! the server's `RetryInfo` / `Retry-After`, and exponential backoff with full jitter. The
//! forwarder task drives them; nothing here sleeps or reads the clock.
//!
//! There is no give-up time: a forward queue is durable and bounded by bytes, so a long outage
//! ends in the oldest data being dropped by the queue's bound (counted), not in a timer.
//! The OTLP rules are `redline_common::retry`, shared with the agent's exporter; this module
//! adds remote_write's rule and the forwarders' backoff.

use std::time::Duration;

pub use redline_common::retry::{
    grpc_retryable, http_retryable as otlp_http_retryable, parse_retry_after, rpc,
};

use super::config::Backoff;

/// The longest server-requested delay honoured; a larger `RetryInfo`/`Retry-After` is cut to
/// this, so a misconfigured upstream cannot park a queue for hours.
pub const MAX_SERVER_DELAY: Duration = Duration::from_secs(300);

/// Prometheus remote_write 1.0: 5xx and 429 are retried, every other status is final.
pub fn remote_write_retryable(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
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
    redline_common::retry::jittered(
        redline_common::retry::backoff_cap(backoff.initial, backoff.max, attempt),
        unit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

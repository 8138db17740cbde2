//! Retry policy of the exporter, as pure functions: which responses are retryable (OTLP
//! specification, "Failures"), how long to wait (exponential backoff with full jitter, or the
//! server's `RetryInfo` / `Retry-After`), and when to give up. The OTLP rules themselves are
//! `redline_common::retry`, shared with the collector's forwarders; this module adds the
//! agent's policy. The exporter task drives it; nothing here sleeps or reads the clock.
//!
//! There is no overall retry deadline any more: a retryable failure is retried until it
//! succeeds, because the batch is safe in the spool, which bounds what waits by size and age
//! instead. Authentication failures (401/403, UNAUTHENTICATED/PERMISSION_DENIED) are permanent
//! by the OTLP specification, but they say nothing about the data; neither does a failed TLS
//! handshake (unknown CA, expired or refused certificate). For both the agent keeps the data
//! and retries every `retry_max_backoff` (and at once after a reload), since a wrong token or
//! certificate is an operator's fix away ([`Class::Auth`]).

use std::time::Duration;

pub use redline_common::retry::{grpc_retryable, http_retryable, jittered, parse_retry_after, rpc};

use crate::config::RetryConfig;

/// The upper bound of the delay before retry number `attempt` (0-based):
/// `min(max_backoff, initial_backoff * 2^attempt)`.
pub fn backoff_cap(policy: &RetryConfig, attempt: u32) -> Duration {
    redline_common::retry::backoff_cap(policy.initial_backoff, policy.max_backoff, attempt)
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
    fn backoff_follows_the_policy() {
        let p = policy();
        assert_eq!(backoff_cap(&p, 0), Duration::from_millis(500));
        assert_eq!(backoff_cap(&p, 6), Duration::from_secs(30));
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
}

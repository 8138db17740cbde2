//! Wall-clock time for the async parts that schedule by it (notification dispatch, delivery
//! retries), read through `tokio::time` so that tests with paused time control it.
//!
//! `Clock::now_ms` is the wall-clock time at creation plus the monotonic time elapsed since,
//! as tokio measures it. In production the two agree up to clock adjustments made after start
//! (NTP slews), which only shift when a group flushes or a retry happens by that much; in tests
//! `tokio::time::pause` and `advance` move it without sleeping.

use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    base_ms: i64,
    base: tokio::time::Instant,
}

impl Clock {
    pub fn new() -> Clock {
        let base_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Clock {
            base_ms,
            base: tokio::time::Instant::now(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.base_ms + self.base.elapsed().as_millis() as i64
    }

    /// The tokio instant at which `now_ms()` reaches `at_ms` (now when it already has).
    pub fn instant_at(&self, at_ms: i64) -> tokio::time::Instant {
        let ahead = (at_ms - self.now_ms()).max(0) as u64;
        tokio::time::Instant::now() + std::time::Duration::from_millis(ahead)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_paused_time() {
        let clock = Clock::new();
        let start = clock.now_ms();
        tokio::time::advance(std::time::Duration::from_secs(300)).await;
        assert_eq!(clock.now_ms() - start, 300_000);
        let at = clock.instant_at(start + 301_000);
        assert_eq!(
            at - tokio::time::Instant::now(),
            std::time::Duration::from_secs(1)
        );
    }
}

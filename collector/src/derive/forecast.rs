//! Capacity forecasts: how long until a filling series (filesystem or memory utilization)
//! reaches its capacity, from a robust trend fit, for "disk will fill" rules that do not cry
//! wolf on a noisy line.
//!
//! Pure and bounded: each series keeps at most `MAX_POINTS` points, thinned to one per
//! `STEP_MS`. The slope is the median of the slopes between each point and the point half the
//! history later (a split-sample Theil–Sen estimator: robust to outliers, O(n log n)); the level
//! is the median residual. The forecast is finite only when the history spans at least
//! `MIN_SPAN_MS` and at least `CONSISTENCY` of those slopes are positive, so a flat or noisy
//! series reads `+Inf` ("not filling") rather than a shaky number. Owned by the derive task.

use std::collections::VecDeque;

pub const STEP_MS: i64 = 60_000;
pub const MAX_POINTS: usize = 360;
pub const MIN_SPAN_MS: i64 = 30 * 60_000;
pub const CONSISTENCY: f64 = 0.8;

#[derive(Clone, Debug, Default)]
pub struct Trend {
    points: VecDeque<(i64, f64)>,
}

impl Trend {
    pub fn observe(&mut self, t_ms: i64, value: f64) {
        if !value.is_finite() {
            return;
        }
        // One point per step (the first of each): bounded state whatever the sample rate.
        if let Some(last) = self.points.back()
            && t_ms < last.0 + STEP_MS
        {
            return;
        }
        if self.points.capacity() == 0 {
            self.points.reserve_exact(MAX_POINTS);
        }
        if self.points.len() == MAX_POINTS {
            self.points.pop_front();
        }
        self.points.push_back((t_ms, value));
    }

    /// Seconds until the fitted line reaches `capacity`, seen from `now_ms`: 0 when it is
    /// there already, `+Inf` when the series is not consistently rising (or too short).
    pub fn seconds_to(&self, capacity: f64, now_ms: i64) -> f64 {
        let n = self.points.len();
        let (Some(first), Some(last)) = (self.points.front(), self.points.back()) else {
            return f64::INFINITY;
        };
        if n < 10 || last.0 - first.0 < MIN_SPAN_MS {
            return f64::INFINITY;
        }
        let half = n / 2;
        let mut slopes: Vec<f64> = (0..n - half)
            .filter_map(|i| {
                let (t0, v0) = self.points[i];
                let (t1, v1) = self.points[i + half];
                (t1 > t0).then(|| (v1 - v0) / (t1 - t0) as f64)
            })
            .collect();
        if slopes.is_empty() {
            return f64::INFINITY;
        }
        let rising = slopes.iter().filter(|s| **s > 0.0).count() as f64 / slopes.len() as f64;
        slopes.sort_by(f64::total_cmp);
        let slope = slopes[slopes.len() / 2];
        let mut residuals: Vec<f64> = self
            .points
            .iter()
            .map(|(t, v)| v - slope * (*t - first.0) as f64)
            .collect();
        residuals.sort_by(f64::total_cmp);
        let level = residuals[residuals.len() / 2];
        let fitted_now = level + slope * (now_ms - first.0) as f64;
        if fitted_now >= capacity {
            return 0.0;
        }
        if slope <= 0.0 || rising < CONSISTENCY {
            return f64::INFINITY;
        }
        (capacity - fitted_now) / slope / 1000.0
    }

    /// The time of the newest point.
    pub fn last_ms(&self) -> Option<i64> {
        self.points.back().map(|p| p.0)
    }

    /// Bytes of state, for the state budget.
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.points.capacity() * std::mem::size_of::<(i64, f64)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn steady_fill_is_forecast_and_noise_is_not() {
        // 50% full, +1% per 10 minutes: full in 500 minutes.
        let mut t = Trend::default();
        for i in 0..120 {
            t.observe(i * MIN, 0.5 + 0.001 * i as f64);
        }
        let now = 119 * MIN;
        let expected = (1.0 - (0.5 + 0.119)) / 0.001 * 60.0;
        let got = t.seconds_to(1.0, now);
        assert!(
            (got - expected).abs() / expected < 0.01,
            "{got} vs {expected}"
        );
        // A flat noisy series: never a finite forecast.
        let mut flat = Trend::default();
        for i in 0..120 {
            flat.observe(i * MIN, 0.5 + if i % 2 == 0 { 0.02 } else { -0.02 });
        }
        assert_eq!(flat.seconds_to(1.0, 119 * MIN), f64::INFINITY);
        // Outliers do not move the fit much.
        let mut spiky = Trend::default();
        for i in 0..120 {
            let v = if i % 17 == 0 {
                0.99
            } else {
                0.5 + 0.001 * i as f64
            };
            spiky.observe(i * MIN, v);
        }
        let got = spiky.seconds_to(1.0, now);
        assert!(
            (got - expected).abs() / expected < 0.05,
            "{got} vs {expected}"
        );
    }

    #[test]
    fn short_history_full_and_falling_series() {
        let mut t = Trend::default();
        for i in 0..20 {
            t.observe(i * MIN, 0.5 + 0.01 * i as f64);
        }
        assert_eq!(
            t.seconds_to(1.0, 19 * MIN),
            f64::INFINITY,
            "under 30 minutes"
        );
        let mut full = Trend::default();
        let mut falling = Trend::default();
        for i in 0..60 {
            full.observe(i * MIN, 1.0);
            falling.observe(i * MIN, 0.9 - 0.001 * i as f64);
        }
        assert_eq!(full.seconds_to(1.0, 59 * MIN), 0.0);
        assert_eq!(falling.seconds_to(1.0, 59 * MIN), f64::INFINITY);
        // Samples every 10 s are thinned to one per minute; state stays bounded.
        let mut dense = Trend::default();
        for i in 0..100_000 {
            dense.observe(i * 10_000, 0.5);
        }
        assert!(dense.points.len() <= MAX_POINTS);
        assert!(dense.state_bytes() < 8 * 1024);
        dense.observe(5, f64::NAN);
    }
}

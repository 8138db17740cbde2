//! The streaming detector of one series: `Detector::observe(t_ms, value) -> score in [0, 1]`.
//!
//! First version: a robust rolling baseline. The score is the tail probability of the new
//! value's distance from the median of a trailing window, in units of the window's median
//! absolute deviation (a robust z-score), squashed into [0, 1]. Guard rails: no score before
//! `min_history` samples, near-constant windows score 0 unless the value leaves them by more
//! than the absolute floor.

use std::collections::VecDeque;

/// The production parameter set: the daemon and the NAB runner use `Params::default()`.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Samples in the trailing window of the baseline.
    pub window: usize,
    /// Samples needed before anything is scored.
    pub min_history: usize,
    /// Deviations smaller than this (absolute, in the series' unit) never score.
    pub absolute_floor: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            window: 288,
            min_history: 32,
            absolute_floor: 1e-9,
        }
    }
}

/// The state of one series.
#[derive(Clone, Debug)]
pub struct Detector {
    params: Params,
    window: VecDeque<f64>,
}

impl Detector {
    pub fn new(params: &Params) -> Detector {
        Detector {
            params: params.clone(),
            window: VecDeque::with_capacity(params.window),
        }
    }

    /// Scores `value` (observed at `t_ms`) against the history, then adds it to the history.
    pub fn observe(&mut self, _t_ms: i64, value: f64) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        let score = if self.window.len() >= self.params.min_history {
            let mut sorted: Vec<f64> = self.window.iter().copied().collect();
            sorted.sort_by(f64::total_cmp);
            let median = sorted[sorted.len() / 2];
            let mut deviations: Vec<f64> = sorted.iter().map(|v| (v - median).abs()).collect();
            deviations.sort_by(f64::total_cmp);
            let mad = deviations[deviations.len() / 2] * 1.4826;
            let distance = (value - median).abs();
            if distance <= self.params.absolute_floor {
                0.0
            } else if mad <= self.params.absolute_floor {
                1.0
            } else {
                let z = distance / mad;
                // 1 - exp(-z²/18): z = 3 → 0.39, z = 6 → 0.86, z = 9 → 0.99.
                1.0 - (-(z * z) / 18.0).exp()
            }
        } else {
            0.0
        };
        if self.window.len() == self.params.window {
            self.window.pop_front();
        }
        self.window.push_back(value);
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_series_never_scores_and_a_spike_does() {
        let mut d = Detector::new(&Params::default());
        for i in 0..200 {
            assert_eq!(d.observe(i, 5.0), 0.0);
        }
        let mut noisy = Detector::new(&Params::default());
        for i in 0..200 {
            let s = noisy.observe(i, 10.0 + ((i * 7919) % 13) as f64 / 13.0);
            assert!((0.0..=1.0).contains(&s));
        }
        assert!(noisy.observe(200, 30.0) > 0.9);
    }
}

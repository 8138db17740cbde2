//! Change points: a two-window test for level shifts.
//!
//! Why: a level shift of 2σ is invisible to a per-point test (each point is unremarkable) but is
//! exactly what an operator wants to hear about (a deploy doubled latency). The statistic is the
//! distance between the median of the last `short` samples and the median of the baseline
//! window, in units of the window's robust scale. Medians on both sides make it blind to a
//! single spike (the spike component's business) and let it fire only once more than half of
//! the short window has moved: the shift has lasted `short / 2` samples. It stays high until the
//! baseline window absorbs the new level, which the alarm cooldown then keeps from paging
//! twice. We tried a two-sided CUSUM first: on series with a trend or a daily cycle its sums
//! grow without bound while the baseline lags, so it was mostly measuring the trend.
//!
//! Stateless: it reads the detector's history ring.

use super::baseline::History;

/// Most samples in the short window.
pub const MAX_SHORT: usize = 32;

/// Median of the last `short` values of `history` (fewer if the history is shorter).
pub fn short_median(history: &History, short: usize) -> Option<f64> {
    let mut buf = [0f32; MAX_SHORT];
    let n = history.recent(short.clamp(1, MAX_SHORT), &mut buf);
    if n == 0 {
        return None;
    }
    let vals = &mut buf[..n];
    let (_, m, _) = vals.select_nth_unstable_by(n / 2, f32::total_cmp);
    Some(f64::from(*m))
}

//! Calibration: turns a component's raw deviation (a robust z, a CUSUM statistic, a distance to
//! the nearest k-means centroid) into *surprise*, measured in decades of rarity for this series
//! (`S = 2` means "as rare as the 1 % tail of what this series has produced so far").
//!
//! Why: one threshold must mean the same thing on a quiet CPU gauge and on a bursty tweet count.
//! A raw z of 6 is a page on the first and Tuesday on the second. Each `Tail` tracks two upper
//! quantiles of its component's raw values (q90 and q99, by stochastic approximation, O(1) state)
//! and assumes a power-law (Pareto) tail beyond them: then
//! `-log10 P(R ≥ r) ≈ 1 + ln(r/q90) / ln(q99/q90)`, so scores keep ranking by magnitude even
//! past anything seen before (no saturation, no ties at the top). A power law rather than an
//! exponential tail because operational metrics are heavy-tailed: an exponential extrapolation
//! turns every burst of a bursty series into a 10⁻³⁰ event.
//! Floors on both quantiles stop a series whose raw values have all been ~0 (a flat line) from
//! turning the first tiny wobble into a huge surprise.

use super::codec::{DecodeError, Reader, Writer};

#[derive(Clone, Debug, PartialEq)]
pub struct Tail {
    q90: f32,
    q99: f32,
    n: u32,
}

/// Quantiles never go below this: raw values are in σ-like units, so this is "nothing".
const Q_MIN: f32 = 1e-6;

impl Tail {
    pub const fn new() -> Self {
        Tail {
            q90: 1.0,
            q99: 1.0,
            n: 0,
        }
    }

    /// Surprise of `r` (≥ 0) in decades, given floors for the two quantiles (in raw units).
    pub fn surprise(&self, r: f64, floor90: f64, floor99: f64) -> f64 {
        let q90 = f64::from(self.q90).max(floor90);
        // The tail is never assumed lighter than the floors' ratio: a series whose raw values
        // have all been nearly equal (q90 ≈ q99) must not turn a modest excess into 10⁻⁵⁰.
        let q99 = f64::from(self.q99)
            .max(floor99)
            .max(q90 * (floor99 / floor90));
        if r <= q90 {
            r / q90
        } else {
            1.0 + (r / q90).ln() / (q99 / q90).ln()
        }
    }

    /// Adds `r` to the distribution. The quantiles move multiplicatively (a stochastic
    /// gradient step on the pinball loss of `ln q`): scale-free, and a quantile pushed up by a
    /// burst comes back down geometrically rather than at a fixed pace. `rate` is the step;
    /// the first samples move faster (1/√n) so a new series calibrates within ~100 samples.
    pub fn update(&mut self, r: f64, rate: f64) {
        let r = r.min(1e30) as f32;
        self.n = self.n.saturating_add(1);
        let eta = (rate as f32).max(0.5 / (self.n as f32).sqrt());
        // Equilibrium where P(R > q) = 1 − p.
        self.q90 *= (eta * if r > self.q90 { 0.9 } else { -0.1 }).exp();
        self.q99 *= (eta * if r > self.q99 { 0.99 } else { -0.01 }).exp();
        self.q90 = self.q90.max(Q_MIN);
        self.q99 = self.q99.max(self.q90);
    }

    pub fn write(&self, w: &mut Writer) {
        w.f32(self.q90);
        w.f32(self.q99);
        w.u32(self.n);
    }

    pub fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let at = r.position();
        let t = Tail {
            q90: r.f32()?,
            q99: r.f32()?,
            n: r.u32()?,
        };
        if [t.q90, t.q99].iter().all(|v| v.is_finite() && *v >= Q_MIN) {
            Ok(t)
        } else {
            Err(DecodeError::Invalid {
                what: "calibration",
                at,
            })
        }
    }
}

impl Default for Tail {
    fn default() -> Self {
        Tail::new()
    }
}

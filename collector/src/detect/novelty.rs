//! Long-memory novelty: a small codebook of the *incidents* this series has produced, ART-style.
//!
//! Why: the calibration tails forget within a few thousand samples and only see up to the 1 %
//! tail, so an incident that recurs every day (a nightly batch job's CPU spike, a load
//! balancer's periodic burst, a tweet storm every few days) is a 10⁻⁴ event each time it comes
//! back. A pager that fires on every nightly job gets muted. The best NAB detectors (ARTime,
//! HTM, CAD OSE) are novelty detectors with a long memory: a pattern seen before stops
//! alarming, a pattern never seen alarms once.
//!
//! A sample whose surprise reaches `level` is an *occurrence*. Its signature is the component
//! that dominates it (with the sign of the deviation) and the log of that component's raw
//! deviation (a scale-free magnitude). The codebook holds `SLOTS` prototypes: signature,
//! occurrences, the geometric mean gap between occurrences (samples) and the last occurrence.
//! An occurrence matches the nearest prototype of the same kind within the vigilance radius
//! `tol` (ln units); otherwise it takes a free slot or replaces the least recently seen
//! prototype (a fresh pattern: no damping). Occurrences less than `REFRACTORY` samples after
//! the prototype's last one belong to the same incident: they are judged, not learnt.
//!
//! A matched prototype seen at least `min_seen` times says how often this kind of incident
//! happens: once every `G` samples, so its per-sample probability is ~1/G, i.e. `log10 G`
//! decades of surprise. An incident arriving `k` samples after the previous one when `k ≪ G`
//! is rarer still (a Poisson gap is shorter than `k` with probability ≈ k/G), which adds
//! `log10(G/k)`. The sample's surprise is capped at that sum: a spike that comes back every
//! 100 samples is worth 2 decades at most (no alarm), the same spike arriving 10 times sooner
//! is worth 3 (an alarm: spikes getting denser is news). A magnitude never seen before, or a
//! different component, is a new prototype and keeps its full surprise.

use super::codec::{DecodeError, Reader, Writer};

/// Prototypes kept.
pub const SLOTS: usize = 8;
/// Quiet samples (surprise below `level`) that end an incident.
pub const REFRACTORY: u32 = 12;
const EMPTY: u8 = u8::MAX;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Proto {
    /// `component * 2 + (deviation < 0)`, or `EMPTY`.
    kind: u8,
    /// Occurrences, saturating.
    count: u16,
    /// ln of the raw deviation (moving average over occurrences).
    mag: f32,
    /// ln of the gap between occurrences, samples (moving average).
    gap: f32,
    /// Sample index of the last occurrence.
    last: u32,
}

const NONE: Proto = Proto {
    kind: EMPTY,
    count: 0,
    mag: 0.0,
    gap: 0.0,
    last: 0,
};

#[derive(Clone, Debug, PartialEq)]
pub struct Novelty {
    protos: [Proto; SLOTS],
}

impl Novelty {
    pub const fn new() -> Self {
        Novelty {
            protos: [NONE; SLOTS],
        }
    }

    /// The surprise of sample `n` after the novelty cap. `kind`/`raw` describe the dominant
    /// component (raw > 0). Learns the incident if this sample starts one.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &mut self,
        n: u32,
        surprise: f64,
        kind: u8,
        raw: f64,
        level: f64,
        tol: f64,
        min_seen: u16,
        margin: f64,
    ) -> f64 {
        if surprise < level || raw.is_nan() || raw <= 0.0 {
            return surprise;
        }
        let mag = raw.ln() as f32;
        let mut best: Option<(usize, f32)> = None;
        for (i, p) in self.protos.iter().enumerate() {
            if p.kind == kind {
                let d = (p.mag - mag).abs();
                if d <= tol as f32 && best.is_none_or(|(_, bd)| d < bd) {
                    best = Some((i, d));
                }
            }
        }
        let mut cap = f64::INFINITY;
        match best {
            Some((i, _)) => {
                let p = &mut self.protos[i];
                let k = n.wrapping_sub(p.last).max(1);
                let same_incident = k < REFRACTORY;
                if p.count >= min_seen.max(2) {
                    let g = f64::from(p.gap).exp();
                    let sooner = if same_incident {
                        0.0
                    } else {
                        (g / f64::from(k)).log10().max(0.0)
                    };
                    cap = g.log10() + sooner - margin;
                }
                if !same_incident {
                    let lk = f64::from(k).ln() as f32;
                    p.gap = if p.count <= 1 {
                        lk
                    } else {
                        let a = (1.0 / f32::from(p.count - 1)).max(0.125);
                        p.gap + a * (lk - p.gap)
                    };
                    let a = (1.0 / f32::from(p.count.saturating_add(1))).max(0.125);
                    p.mag += a * (mag - p.mag);
                    p.count = p.count.saturating_add(1);
                    p.last = n;
                }
            }
            None => {
                // A free slot, else the prototype seen least recently.
                let i = (0..SLOTS)
                    .min_by_key(|&i| {
                        let p = &self.protos[i];
                        if p.kind == EMPTY { (0, 0) } else { (1, p.last) }
                    })
                    .unwrap_or(0);
                self.protos[i] = Proto {
                    kind,
                    count: 1,
                    mag,
                    gap: 0.0,
                    last: n,
                };
            }
        }
        surprise.min(cap)
    }

    pub fn write(&self, w: &mut Writer) {
        for p in &self.protos {
            w.u8(p.kind);
            w.u16(p.count);
            w.f32(p.mag);
            w.f32(p.gap);
            w.u32(p.last);
        }
    }

    pub fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let at = r.position();
        let mut s = Novelty::new();
        for p in s.protos.iter_mut() {
            p.kind = r.u8()?;
            p.count = r.u16()?;
            p.mag = r.f32()?;
            p.gap = r.f32()?;
            p.last = r.u32()?;
        }
        let ok = s
            .protos
            .iter()
            .all(|p| p.mag.is_finite() && p.gap.is_finite());
        if ok {
            Ok(s)
        } else {
            Err(DecodeError::Invalid {
                what: "novelty memory",
                at,
            })
        }
    }
}

impl Default for Novelty {
    fn default() -> Self {
        Novelty::new()
    }
}

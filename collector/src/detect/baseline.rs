//! The robust baseline: the recent history of a series and its median and scale.
//!
//! `History` is a fixed ring of the last `HISTORY` preprocessed values, stored as `f32` to keep
//! a series under 2 KiB (relative precision 6e-8 is far below any deviation worth scoring). It
//! serves three readers: the median/MAD below, the shape detector's features, and the shape
//! model's training sample.
//!
//! `Robust` is the median and the MAD (scaled by 1.4826 to estimate a normal σ) of the last
//! `window` values. Median/MAD rather than mean/stddev because an anomaly must not drag the
//! baseline it is measured against: one spike of 1e6 moves the mean and stddev of 128 points a
//! lot, and their median and MAD not at all. The exact figures are recomputed every few samples
//! (selection in a stack buffer, O(window)), which costs a fraction of a microsecond per sample
//! and stays exact, unlike streaming quantile sketches at this size. When more than half the
//! window is one value (MAD = 0: counts that are mostly zero, a flat line with rare blips) the
//! mean absolute deviation stands in, and floors keep the scale away from zero.

use super::codec::{DecodeError, Reader, Writer};

/// Values kept per series.
pub const HISTORY: usize = 256;

#[derive(Clone, Debug)]
pub struct History {
    buf: [f32; HISTORY],
    /// Index of the next write.
    head: u16,
    len: u16,
}

impl History {
    pub const fn new() -> Self {
        History {
            buf: [0.0; HISTORY],
            head: 0,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, v: f64) {
        self.buf[usize::from(self.head)] = v as f32;
        self.head = ((usize::from(self.head) + 1) % HISTORY) as u16;
        if self.len() < HISTORY {
            self.len += 1;
        }
    }

    /// The value `k` samples ago (`k = 0`: the latest). `k` must be below `len()`.
    pub fn lag(&self, k: usize) -> f64 {
        let i = (usize::from(self.head) + HISTORY - 1 - k % HISTORY) % HISTORY;
        f64::from(self.buf[i])
    }

    /// Copies the last `n` values (fewer if the history is shorter), oldest first, into `out`;
    /// returns how many.
    pub fn recent(&self, n: usize, out: &mut [f32]) -> usize {
        let n = n.min(self.len()).min(out.len());
        for (j, slot) in out.iter_mut().take(n).enumerate() {
            *slot = self.lag(n - 1 - j) as f32;
        }
        n
    }

    pub fn write(&self, w: &mut Writer) {
        w.u16(self.len);
        // Oldest first, so the ring is rebuilt with head = len.
        for k in (0..self.len()).rev() {
            w.f32(self.lag(k) as f32);
        }
    }

    pub fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let at = r.position();
        let len = r.u16()?;
        if usize::from(len) > HISTORY {
            return Err(DecodeError::Invalid {
                what: "history length",
                at,
            });
        }
        let mut h = History::new();
        for _ in 0..len {
            let v = r.f32()?;
            if !v.is_finite() {
                return Err(DecodeError::Invalid {
                    what: "history value",
                    at,
                });
            }
            h.push(f64::from(v));
        }
        Ok(h)
    }
}

/// Equal when they hold the same values in the same order, wherever the ring's head is.
impl PartialEq for History {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && (0..self.len()).all(|k| self.lag(k).to_bits() == other.lag(k).to_bits())
    }
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

/// Median and robust scale of a window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Robust {
    pub median: f64,
    /// 1.4826 × MAD, or the mean absolute deviation when the MAD is 0; never below the floors
    /// given to `compute`.
    pub scale: f64,
    /// The scale before the floors: 0 for a constant window.
    pub raw_scale: f64,
}

impl Robust {
    pub const EMPTY: Robust = Robust {
        median: 0.0,
        scale: f64::INFINITY,
        raw_scale: 0.0,
    };

    /// Median and scale of the last `window` values of `history`; the scale is at least
    /// `abs_floor` and `rel_floor × |median|`.
    pub fn compute(history: &History, window: usize, abs_floor: f64, rel_floor: f64) -> Robust {
        let mut buf = [0f32; HISTORY];
        let n = history.recent(window, &mut buf);
        if n == 0 {
            return Robust::EMPTY;
        }
        let vals = &mut buf[..n];
        let mid = n / 2;
        let (_, m, _) = vals.select_nth_unstable_by(mid, f32::total_cmp);
        let median = f64::from(*m);
        let mut sum_abs = 0.0;
        for v in vals.iter_mut() {
            let d = (f64::from(*v) - median).abs();
            sum_abs += d;
            *v = d as f32;
        }
        let (_, mad, _) = vals.select_nth_unstable_by(mid, f32::total_cmp);
        let mut raw_scale = 1.4826 * f64::from(*mad);
        if raw_scale <= 0.0 {
            raw_scale = 1.2533 * sum_abs / n as f64;
        }
        let scale = raw_scale.max(abs_floor).max(rel_floor * median.abs());
        Robust {
            median,
            scale,
            raw_scale,
        }
    }
}

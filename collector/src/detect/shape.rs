//! The shape detector: k-means over short windows of the series' recent movement, as Netdata's
//! anomaly detection does.
//!
//! Each sample is described by a feature vector of the last `DIMS` first differences of the
//! series smoothed over `SMOOTH` samples, divided by the series' robust scale at training time.
//! Differences make the features blind to the level (the baseline's business) and sensitive to
//! how the series moves; smoothing removes sample noise; lags make a vector a small piece of
//! shape. k-means (linfa, k clusters) summarises the shapes of the recent history; a new
//! vector's distance to the nearest centroid is its raw score: large when the series moves in a
//! way it has not recently moved (a ramp in a sawtooth series, a flat stretch in a busy one,
//! oscillation in a smooth one).
//!
//! Training is the expensive part (a k-means fit over a few hundred vectors, tens of
//! microseconds to a millisecond), so it is kept off the hot path: `Detector::training_sample`
//! hands out a `TrainingSample` (owned data, `Send`), whose `fit` can run on a blocking task,
//! and `Detector::install` adds the resulting `ShapeModel`'s centroids to the series' `Shapes`
//! (the last `MEMORY` centroids). Scoring is a few dozen multiply-adds. The memory is
//! `MEMORY × DIMS` `f32`s, so it fits the 2 KiB budget; the training data is the detector's own
//! history ring, so no extra state is kept for it.

use linfa::DatasetBase;
use linfa::traits::Fit;
use linfa_clustering::KMeans;
use ndarray::Array2;

use super::baseline::{HISTORY, History};
use super::codec::{DecodeError, Reader, Writer};

/// Lags per feature vector.
pub const DIMS: usize = 6;
/// Samples averaged before differencing.
pub const SMOOTH: usize = 3;
/// Most clusters a model holds.
pub const MAX_K: usize = 4;
/// History needed to build one feature vector.
pub const SPAN: usize = DIMS + SMOOTH;

/// Feature vector of the window ending at `end` (an index into `vals`, inclusive), where
/// `vals` is oldest first. `end + 1` must be at least `SPAN`.
fn features_at(vals: &[f32], end: usize, scale: f64) -> [f64; DIMS] {
    let smoothed = |i: usize| -> f64 {
        let mut s = 0.0;
        for v in &vals[i + 1 - SMOOTH..=i] {
            s += f64::from(*v);
        }
        s / SMOOTH as f64
    };
    let mut out = [0.0; DIMS];
    for (j, slot) in out.iter_mut().enumerate() {
        let i = end - (DIMS - 1 - j);
        *slot = (smoothed(i) - smoothed(i - 1)) / scale;
    }
    out
}

/// The features of the latest sample in the series' own units, from the history (which must
/// hold at least `SPAN`).
pub fn current_features(history: &History) -> Option<[f64; DIMS]> {
    if history.len() < SPAN {
        return None;
    }
    let mut buf = [0f32; SPAN];
    let n = history.recent(SPAN, &mut buf);
    Some(features_at(&buf[..n], n - 1, 1.0))
}

/// The result of one fit: up to `MAX_K` centroids, in the series' own units.
#[derive(Clone, Debug, PartialEq)]
pub struct ShapeModel {
    centroids: [[f32; DIMS]; MAX_K],
    k: u8,
}

impl ShapeModel {
    pub fn centroids(&self) -> &[[f32; DIMS]] {
        &self.centroids[..usize::from(self.k)]
    }
}

/// Centroids kept per series: the last few fits' centroids together. A sample is scored by the
/// nearest centroid of any of them, so a shape counts as known if any recent model knew it.
/// This is Netdata's consensus of the last models: one fit covers only the history ring (under a
/// day at 5-minute samples), and a once-a-day event (a nightly job, the morning ramp) must not
/// look new because the latest window happened to miss it.
pub const MEMORY: usize = 8;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shapes {
    centroids: [[f32; DIMS]; MEMORY],
    len: u8,
    /// Where the next centroid goes once the memory is full (the oldest).
    next: u8,
}

impl Shapes {
    pub const fn new() -> Self {
        Shapes {
            centroids: [[0.0; DIMS]; MEMORY],
            len: 0,
            next: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a fit's centroids, replacing the oldest ones.
    pub fn install(&mut self, model: &ShapeModel) {
        for c in model.centroids() {
            self.centroids[usize::from(self.next)] = *c;
            self.next = ((usize::from(self.next) + 1) % MEMORY) as u8;
            self.len = (usize::from(self.len) + 1).min(MEMORY) as u8;
        }
    }

    /// Distance (in the series' units) from the features to the nearest centroid.
    pub fn distance(&self, f: &[f64; DIMS]) -> Option<f64> {
        let mut best = f64::INFINITY;
        for c in self.centroids.iter().take(usize::from(self.len)) {
            let mut d2 = 0.0;
            for (a, b) in f.iter().zip(c.iter()) {
                let d = a - f64::from(*b);
                d2 += d * d;
            }
            best = best.min(d2);
        }
        best.is_finite().then(|| best.sqrt())
    }

    pub fn write(&self, w: &mut Writer) {
        w.u8(self.len);
        w.u8(self.next);
        for c in self.centroids.iter().take(usize::from(self.len)) {
            for v in c {
                w.f32(*v);
            }
        }
    }

    pub fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let at = r.position();
        let len = r.u8()?;
        let next = r.u8()?;
        if usize::from(len) > MEMORY || usize::from(next) >= MEMORY {
            return Err(DecodeError::Invalid {
                what: "shape memory",
                at,
            });
        }
        let mut m = Shapes {
            centroids: [[0.0; DIMS]; MEMORY],
            len,
            next,
        };
        for c in m.centroids.iter_mut().take(usize::from(len)) {
            for v in c.iter_mut() {
                *v = r.f32()?;
                if !v.is_finite() {
                    return Err(DecodeError::Invalid {
                        what: "centroid",
                        at,
                    });
                }
            }
        }
        Ok(m)
    }
}

/// What a shape model is trained on: the feature vectors of the recent history. Owned and
/// `Send`, so the daemon can fit it on a blocking thread while the series goes on being scored.
#[derive(Clone, Debug)]
pub struct TrainingSample {
    rows: Vec<[f64; DIMS]>,
    scale: f64,
    k: usize,
}

impl TrainingSample {
    /// The sample of the whole history ring, features divided by `scale`.
    pub fn from_history(history: &History, scale: f64, k: usize) -> Option<TrainingSample> {
        let mut buf = [0f32; HISTORY];
        let n = history.recent(HISTORY, &mut buf);
        if n < SPAN + 2 * MAX_K || !(scale.is_finite() && scale > 0.0) {
            return None;
        }
        let rows = (SPAN - 1..n)
            .map(|end| features_at(&buf[..n], end, scale))
            .collect();
        Some(TrainingSample {
            rows,
            scale,
            k: k.clamp(1, MAX_K),
        })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Fits k-means (deterministic: linfa's fixed-seed generator, a bounded number of runs and
    /// iterations). `None` if linfa refuses the data (e.g. fewer distinct rows than clusters).
    pub fn fit(&self) -> Option<ShapeModel> {
        let flat: Vec<f64> = self.rows.iter().flatten().copied().collect();
        let data = Array2::from_shape_vec((self.rows.len(), DIMS), flat).ok()?;
        let dataset = DatasetBase::from(data);
        let model = KMeans::params(self.k)
            .n_runs(2)
            .max_n_iterations(30)
            .tolerance(1e-3)
            .fit(&dataset)
            .ok()?;
        let mut out = ShapeModel {
            centroids: [[0.0; DIMS]; MAX_K],
            k: 0,
        };
        for (slot, row) in out.centroids.iter_mut().zip(model.centroids().rows()) {
            // Back to the series' units, so centroids of fits at different scales mix.
            for (v, c) in slot.iter_mut().zip(row.iter()) {
                *v = (*c * self.scale) as f32;
            }
            out.k += 1;
        }
        (out.k > 0 && out.centroids.iter().flatten().all(|v| v.is_finite())).then_some(out)
    }
}

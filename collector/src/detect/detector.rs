//! The streaming detector of one series: `Detector::observe(t_ms, value) -> score in [0, 1]`.
//!
//! Goal (the anomaly-detection issue): every stored series can carry an anomaly score,
//! computed as samples arrive, cheap enough for every series of every host (≥ 1 M points/s per
//! core, ≤ 2 KiB per series) and good enough to page on. The score of a sample depends only on
//! that sample and the ones before it (no look-ahead) and one `Params` serves every series.
//!
//! A sample goes through five stages:
//!
//! 1. **Preprocessing by kind** (`Kind`). Gauges are used as they are. Counters become
//!    per-second rates, and a decrease is a reset (the counter restarted from 0, so the rate is
//!    `value / dt`), as Prometheus' `rate()` does: a counter's level is meaningless, its rate
//!    is the signal. Non-finite input is ignored (score 0, state untouched).
//! 2. **Components**, each a raw deviation of the sample from what this series' history predicts:
//!    - *spike*: robust z against the median/MAD of the recent window (`baseline`);
//!    - *seasonal*: robust z of the residual from the time-of-day/day-of-week profile
//!      (`seasonal`), listened to only where the profile explains the series;
//!    - *change point*: median of the last few samples against the window's median
//!      (`changepoint`), for level shifts too small for any single point to stand out;
//!    - *shape*: distance of the last few differenced, smoothed movements to the nearest
//!      k-means centroid of the recent history (`shape`), for changes in how the series moves.
//! 3. **Calibration** (`calibrate`): each component's raw value becomes *surprise*, in decades of
//!    rarity against that component's own running distribution on this series. A z of 6 on a
//!    bursty series that produces such z weekly is not surprising; on a quiet one it is. This is
//!    what makes one threshold mean the same for every series. The sample's surprise is the
//!    largest of its components' (each scaled by `Params::weights`), plus a share of its
//!    *likelihood* (HTM's anomaly likelihood): how far a short average of recent surprise lies
//!    in the tail of that average's own long-run distribution. A series that has started to
//!    misbehave (many moderately surprising samples, none alarming on its own) adds up to an
//!    alarm; on a series whose surprise is always high, the long-run distribution absorbs it.
//!    Then the **novelty cap** (`novelty`): a sample that would alarm is matched against a small
//!    long-memory codebook of the incidents this series has produced (dominant component,
//!    sign, magnitude); an incident kind seen several times, once every `G` samples, is worth
//!    at most `log10 G` decades (plus more when it comes much sooner than usual), so a nightly
//!    job's spike stops paging while a new kind of incident, or the same one getting denser,
//!    still does.
//! 4. **Alarm shaping**: once the surprise crosses `alarm_surprise`, the next `cooldown`
//!    samples are damped (by up to `cooldown_penalty` decades, fading out) unless they are
//!    clearly more surprising than the one that fired. One incident should page once: the
//!    samples after an anomaly are usually anomalous too (the aftermath, the baseline catching
//!    up), and a pager that repeats itself is a pager people mute. NAB scores it the same way:
//!    only the first detection in a window counts, later ones outside it cost.
//! 5. **Score**: `1 − 2^(−surprise/2)`, in [0, 1], monotonic in surprise: 0.5 ≈ 1 % tail,
//!    0.75 ≈ 10⁻⁴, 0.9 ≈ 10⁻⁶·⁶.
//!
//! Guard rails: no score before `min_history` samples (the first samples also warm up the
//! calibration); scales never fall below `absolute_floor` nor `relative_floor × |median|`, so a
//! flat or near-zero series does not page on a rounding wobble; a constant series has zero
//! deviation in every component, hence score 0.
//!
//! The shape model is trained off the hot path: `needs_training()` says when,
//! `training_sample()` hands out the data, `TrainingSample::fit` runs anywhere (a blocking
//! task), `install()` puts the model back. `train()` does all three inline (the NAB runner,
//! tests). Until a model exists, the shape component is silent.
//!
//! State is fixed-size (no heap): `state_bytes()` reports it; `to_bytes`/`from_bytes` persist it
//! in a compact little-endian encoding that starts with `STATE_VERSION`.

use super::baseline::{History, Robust};
use super::calibrate::Tail;
use super::changepoint;
pub use super::codec::DecodeError;
use super::codec::{Reader, Writer};
use super::novelty::Novelty;
use super::seasonal::Seasonal;
use super::shape::{self, ShapeModel, Shapes, TrainingSample};

/// First byte of `Detector::to_bytes`; bump it whenever the layout changes.
pub const STATE_VERSION: u8 = 3;

/// The production parameter set: the daemon and the NAB runner use `Params::default()`.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Samples needed before anything is scored (they still train the baseline and calibration).
    pub min_history: u32,
    /// Samples in the median/MAD window (at most `baseline::HISTORY`).
    pub window: u32,
    /// The median/MAD is recomputed every this many samples.
    pub refresh_every: u32,
    /// Deviations no larger than this (absolute, in the series' unit) never score, and no
    /// scale is smaller.
    pub absolute_floor: f64,
    /// No scale is smaller than this fraction of the series' median magnitude.
    pub relative_floor: f64,
    /// The seasonal component is used while residual scale / deviation scale is below this.
    pub seasonal_gate: f64,
    /// Samples in the short window of the change-point test (at most
    /// `changepoint::MAX_SHORT`).
    pub shift_window: u32,
    /// k-means clusters of the shape model.
    pub shape_clusters: u32,
    /// The shape model is retrained after this many samples. Training (linfa k-means) costs
    /// about 2000 scorings, so every 2048 samples it keeps the detector above 1 M points/s per
    /// core with training included (every 512 halved that, for no better NAB score).
    pub retrain_every: u32,
    /// Each component's surprise is multiplied by its weight (spike, seasonal, change point,
    /// shape) before the largest is taken: how much a component's rarity is trusted.
    pub weights: [f64; 4],
    /// Step size of the calibration quantiles, relative to the mean raw value.
    pub calibration_rate: f64,
    /// Surprise (decades) at which an alarm fires and the cooldown starts.
    pub alarm_surprise: f64,
    /// Samples damped after an alarm.
    pub cooldown: u32,
    /// Largest damping (decades), fading linearly over the cooldown.
    pub cooldown_penalty: f64,
    /// A damped sample escapes the damping if its surprise exceeds the alarm's by this much.
    pub cooldown_escape: f64,
    /// Long-memory novelty (`novelty`): surprise that starts an incident, vigilance radius
    /// (ln of the raw deviation), occurrences before a pattern is capped, and the cap's margin
    /// (decades).
    pub novelty_level: f64,
    pub novelty_tol: f64,
    pub novelty_seen: u32,
    pub novelty_margin: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            min_history: 96,
            window: 256,
            refresh_every: 8,
            absolute_floor: 1e-9,
            relative_floor: 1e-4,
            seasonal_gate: 0.7,
            shift_window: 16,
            shape_clusters: 2,
            retrain_every: 2048,
            weights: [0.85, 0.85, 0.95, 0.85],
            calibration_rate: 0.02,
            alarm_surprise: 2.5,
            cooldown: 150,
            cooldown_penalty: 8.0,
            cooldown_escape: 2.0,
            novelty_level: 2.5,
            novelty_tol: 0.4,
            novelty_seen: 4,
            novelty_margin: 0.0,
        }
    }
}

/// How a series' values are to be read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    /// A level (temperature, utilisation, queue length): scored as it is.
    #[default]
    Gauge,
    /// A monotonically increasing total (bytes sent): scored as a per-second rate, a decrease
    /// being a reset.
    Counter,
}

/// Components, in the order of `Detector::tails`.
const SPIKE: usize = 0;
const SEASONAL: usize = 1;
const CHANGE: usize = 2;
const SHAPE: usize = 3;
const COMPONENTS: usize = 4;

/// Floors of (q90, q99) of each component's raw values, so that a series whose components have
/// all been ~0 (a flat line) needs a real deviation before anything is called rare.
const TAIL_FLOORS: [(f64, f64); COMPONENTS] = [(2.0, 4.0), (2.0, 4.0), (2.0, 6.0), (1.0, 3.0)];

/// The state of one series.
#[derive(Clone, Debug, PartialEq)]
pub struct Detector {
    params: Params,
    kind: Kind,
    /// Counter preprocessing: the previous raw value and its time.
    prev_value: f64,
    prev_t_ms: i64,
    has_prev: bool,
    /// Samples learnt.
    n: u64,
    history: History,
    robust: Robust,
    since_refresh: u32,
    seasonal: Seasonal,
    shape: Shapes,
    since_train: u32,
    tails: [Tail; COMPONENTS],
    /// Exponentially weighted mean of |x − previous x| (memory ~ 500 samples): a floor under the
    /// window's scale, so a window that happens to be constant (a mostly-idle series) does not
    /// make the next blip a billion-σ event.
    diff_abs: f64,
    /// Each component's surprise for the latest sample (for `explain`).
    last: [f32; COMPONENTS],
    /// Samples left in the current alarm's cooldown, and the surprise that started it.
    cooldown_left: u32,
    fired: f64,
    /// Likelihood stage: short EWMA of surprise, long EWMA mean/var of the short average.
    lik_short: f32,
    lik_mean: f32,
    lik_var: f32,
    novelty: Novelty,
}

/// Likelihood stage (stage 3b): samples averaged by the short EWMA of surprise, the memory of
/// the long-run distribution of that average, the floor under its standard deviation
/// (decades), and how much of the likelihood's decades is added to the sample's surprise.
const LIKELIHOOD_SHORT: f64 = 15.0;
const LIKELIHOOD_LONG: f64 = 8000.0;
const LIKELIHOOD_SD_FLOOR: f64 = 0.2;
const LIKELIHOOD_WEIGHT: f64 = 0.3;

/// −log10 of the standard normal upper tail at `x` ≥ 0, minus −log10(0.5) so that `x = 0` is 0
/// (Börjesson–Sundberg approximation of the tail, within 0.3 % of it everywhere).
fn normal_tail_decades(x: f64) -> f64 {
    let x = x.max(0.0);
    let (a, b) = (0.339, 5.510);
    let ln_tail =
        0.5 * x * x + 0.918_938_533_204_672_8 + ((1.0 - a) * x + a * (x * x + b).sqrt()).ln();
    (ln_tail / std::f64::consts::LN_10 - std::f64::consts::LOG10_2).max(0.0)
}

impl Detector {
    pub fn new(params: &Params) -> Detector {
        Detector::with_kind(params, Kind::Gauge)
    }

    pub fn with_kind(params: &Params, kind: Kind) -> Detector {
        Detector {
            params: params.clone(),
            kind,
            prev_value: 0.0,
            prev_t_ms: 0,
            has_prev: false,
            n: 0,
            history: History::new(),
            robust: Robust::EMPTY,
            since_refresh: 0,
            seasonal: Seasonal::new(),
            shape: Shapes::new(),
            since_train: 0,
            tails: [Tail::new(), Tail::new(), Tail::new(), Tail::new()],
            diff_abs: 0.0,
            last: [0.0; COMPONENTS],
            cooldown_left: 0,
            fired: 0.0,
            lik_short: 0.0,
            lik_mean: 0.0,
            lik_var: 0.0,
            novelty: Novelty::new(),
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Bytes of state this series costs (all of it inline: the detector allocates nothing).
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Detector>()
    }

    /// Stage 1: the value to score, if any (a counter's first sample has no rate yet).
    fn preprocess(&mut self, t_ms: i64, value: f64) -> Option<f64> {
        match self.kind {
            Kind::Gauge => Some(value),
            Kind::Counter => {
                let prev = (self.prev_value, self.prev_t_ms, self.has_prev);
                if prev.2 && t_ms <= prev.1 {
                    // Out of order or duplicate: nothing to learn a rate from.
                    return None;
                }
                self.prev_value = value;
                self.prev_t_ms = t_ms;
                self.has_prev = true;
                if !prev.2 {
                    return None;
                }
                let dt_s = (t_ms - prev.1) as f64 / 1000.0;
                let delta = if value >= prev.0 {
                    value - prev.0
                } else {
                    value
                };
                Some(delta / dt_s)
            }
        }
    }

    /// Scores `value` (observed at `t_ms`) against the history, then adds it to the history.
    pub fn observe(&mut self, t_ms: i64, value: f64) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        let Some(x) = self.preprocess(t_ms, value) else {
            return 0.0;
        };
        if !x.is_finite() {
            return 0.0;
        }
        // The history keeps `f32`s; scoring in the same precision keeps a constant series exactly
        // constant (3.7e15 and its `f32` rounding differ by 1e8, which is not a deviation).
        let x = f64::from(x.clamp(-f64::from(f32::MAX), f64::from(f32::MAX)) as f32);
        let p = &self.params;
        if self.since_refresh >= p.refresh_every || self.robust.scale.is_infinite() {
            self.robust = Robust::compute(
                &self.history,
                p.window as usize,
                p.absolute_floor,
                p.relative_floor,
            );
            self.since_refresh = 0;
        }

        let mut raw = [0.0; COMPONENTS];
        // The sign of each component's deviation (the shape distance has none).
        let mut sign = [0.0f64; COMPONENTS];
        let dev = x - self.robust.median;
        sign[SPIKE] = dev;
        let scale = self.scale();
        let z = if scale.is_finite() { dev / scale } else { 0.0 };
        if dev.abs() > p.absolute_floor {
            raw[SPIKE] = z.abs();
        }
        if let Some(e) = self.seasonal.expect(t_ms)
            && e.ratio < p.seasonal_gate
        {
            let resid = x - e.expected;
            sign[SEASONAL] = resid;
            let scale = e
                .scale
                .max(p.absolute_floor)
                .max(p.relative_floor * e.expected.abs());
            raw[SEASONAL] = if resid.abs() > p.absolute_floor {
                resid.abs() / scale
            } else {
                0.0
            };
            // Where the profile explains the series, a value is a spike only if neither the
            // recent window nor the profile expected it: the daily ramp leaves the window's
            // median far behind every morning, and that is no news.
            raw[SPIKE] = raw[SPIKE].min(raw[SEASONAL]);
        }
        self.history.push(x);
        if scale.is_finite()
            && let Some(m) = changepoint::short_median(&self.history, p.shift_window as usize)
        {
            let shift = m - self.robust.median;
            sign[CHANGE] = shift;
            if shift.abs() > p.absolute_floor {
                raw[CHANGE] = shift.abs() / scale;
            }
        }
        if let Some(f) = shape::current_features(&self.history)
            && let Some(d) = self.shape.distance(&f)
        {
            raw[SHAPE] = d / scale;
        }

        let mut surprise: f64 = 0.0;
        let mut dominant = 0;
        for (c, r) in raw.iter().enumerate() {
            let r = if r.is_finite() { *r } else { 0.0 };
            let (f90, f99) = TAIL_FLOORS[c];
            let s = p.weights[c] * self.tails[c].surprise(r, f90, f99);
            self.last[c] = s as f32;
            if s > surprise {
                dominant = c;
            }
            surprise = surprise.max(s);
            self.tails[c].update(r, p.calibration_rate);
        }
        surprise += LIKELIHOOD_WEIGHT * self.likelihood(surprise);
        let p = &self.params;
        if self.n >= u64::from(p.min_history) {
            let negative = sign[dominant] < 0.0;
            let kind = (dominant * 2 + usize::from(negative)) as u8;
            surprise = self.novelty.apply(
                self.n as u32,
                surprise,
                kind,
                raw[dominant],
                p.novelty_level,
                p.novelty_tol,
                p.novelty_seen as u16,
                p.novelty_margin,
            );
        }

        self.seasonal.update(t_ms, x);
        if self.history.len() >= 2 {
            let step = (x - self.history.lag(1)).abs();
            let a = (1.0 / self.n.max(1) as f64).max(1.0 / 512.0);
            self.diff_abs += a * (step - self.diff_abs);
        }
        self.n += 1;
        self.since_refresh += 1;
        self.since_train = self.since_train.saturating_add(1);

        if self.n <= u64::from(self.params.min_history) {
            return 0.0;
        }
        let out = self.shape_alarm(surprise);
        let score = 1.0 - (-out.max(0.0) / 2.0).exp2();
        if score.is_finite() {
            score.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// Each component's surprise (decades) for the latest sample, in the order spike,
    /// seasonal, change point, shape: which part of the detector a score came from.
    pub fn explain(&self) -> [(&'static str, f64); COMPONENTS] {
        let names = ["spike", "seasonal", "change", "shape"];
        let mut out = [("", 0.0); COMPONENTS];
        for (c, slot) in out.iter_mut().enumerate() {
            *slot = (names[c], f64::from(self.last[c]));
        }
        out
    }

    /// The robust scale of the window, floored by the long-run step size.
    fn scale(&self) -> f64 {
        self.robust.scale.max(0.5 * self.diff_abs)
    }

    /// Stage 3b: how unusual the recent *level* of surprise is (decades, ≥ 0), as HTM's anomaly
    /// likelihood does. A short average of the sample's surprise is compared with the long-run
    /// distribution (mean, variance) of that same average, and the normal tail beyond it is
    /// the answer. One rare sample barely moves the short average; a stretch of moderately
    /// surprising samples (a series that has started to misbehave, no single point standing
    /// out) moves it a lot, and on a series that is always a little surprising the long-run
    /// mean and variance absorb it. Updates the state with `surprise`.
    fn likelihood(&mut self, surprise: f64) -> f64 {
        let a_short = 1.0 / LIKELIHOOD_SHORT;
        self.lik_short += (a_short * (surprise - f64::from(self.lik_short))) as f32;
        let short = f64::from(self.lik_short);
        let mean = f64::from(self.lik_mean);
        let sd = f64::from(self.lik_var).sqrt().max(LIKELIHOOD_SD_FLOOR);
        // The first samples only learn the distribution.
        let out = if self.n > 20 {
            normal_tail_decades((short - mean) / sd)
        } else {
            0.0
        };
        let a_long = (1.0 / (self.n + 1) as f64).max(1.0 / LIKELIHOOD_LONG);
        let d = short - mean;
        self.lik_mean += (a_long * d) as f32;
        self.lik_var += (a_long * (d * d - f64::from(self.lik_var))) as f32;
        // Never below 0 through rounding: `from_bytes` refuses a negative variance.
        self.lik_var = self.lik_var.max(0.0);
        if out.is_finite() { out } else { 0.0 }
    }

    /// Stage 4: damp the samples that follow an alarm.
    fn shape_alarm(&mut self, surprise: f64) -> f64 {
        let p = &self.params;
        let mut out = surprise;
        if self.cooldown_left > 0 {
            if surprise > self.fired + p.cooldown_escape {
                self.cooldown_left = 0;
            } else {
                let frac = f64::from(self.cooldown_left) / f64::from(p.cooldown.max(1));
                out = surprise - p.cooldown_penalty * frac;
                self.cooldown_left -= 1;
            }
        }
        if self.cooldown_left == 0 && surprise >= p.alarm_surprise {
            self.cooldown_left = p.cooldown;
            self.fired = surprise;
        }
        out
    }

    /// Whether the shape model should be (re)trained now.
    pub fn needs_training(&self) -> bool {
        self.history.len() >= 2 * shape::SPAN.max(64)
            && (self.shape.is_empty() || self.since_train >= self.params.retrain_every)
            && self.robust.scale.is_finite()
    }

    /// The data to train the shape model on (the recent history's feature vectors).
    pub fn training_sample(&self) -> Option<TrainingSample> {
        TrainingSample::from_history(
            &self.history,
            self.scale(),
            self.params.shape_clusters as usize,
        )
    }

    /// Puts a model trained from `training_sample` in place.
    pub fn install(&mut self, model: &ShapeModel) {
        self.shape.install(model);
        self.since_train = 0;
    }

    /// Trains the shape model inline. A fit that fails (degenerate data) leaves the previous
    /// model and waits `retrain_every` samples before trying again.
    pub fn train(&mut self) {
        match self.training_sample().and_then(|s| s.fit()) {
            Some(model) => self.install(&model),
            None => self.since_train = 0,
        }
    }

    /// The state, for persistence across restarts. `Params` are not included (they come from
    /// the configuration).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(STATE_VERSION);
        w.u8(match self.kind {
            Kind::Gauge => 0,
            Kind::Counter => 1,
        });
        w.u8(u8::from(self.has_prev));
        w.f64(self.prev_value);
        w.i64(self.prev_t_ms);
        w.u64(self.n);
        self.history.write(&mut w);
        w.f64(self.robust.median);
        w.f64(self.robust.scale);
        w.f64(self.robust.raw_scale);
        w.u32(self.since_refresh);
        self.seasonal.write(&mut w);
        self.shape.write(&mut w);
        w.u32(self.since_train);
        for t in &self.tails {
            t.write(&mut w);
        }
        w.f64(self.diff_abs);
        for v in self.last {
            w.f32(v);
        }
        w.u32(self.cooldown_left);
        w.f64(self.fired);
        w.f32(self.lik_short);
        w.f32(self.lik_mean);
        w.f32(self.lik_var);
        self.novelty.write(&mut w);
        w.buf
    }

    /// Restores a state written by `to_bytes`, with `params` from the configuration.
    pub fn from_bytes(params: &Params, bytes: &[u8]) -> Result<Detector, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != STATE_VERSION {
            return Err(DecodeError::Version(version));
        }
        let at = r.position();
        let kind = match r.u8()? {
            0 => Kind::Gauge,
            1 => Kind::Counter,
            _ => return Err(DecodeError::Invalid { what: "kind", at }),
        };
        let mut d = Detector::with_kind(params, kind);
        d.has_prev = r.u8()? != 0;
        d.prev_value = r.f64()?;
        d.prev_t_ms = r.i64()?;
        d.n = r.u64()?;
        d.history = History::read(&mut r)?;
        let at = r.position();
        d.robust = Robust {
            median: r.f64()?,
            scale: r.f64()?,
            raw_scale: r.f64()?,
        };
        if d.robust.median.is_nan() || d.robust.scale.is_nan() || d.robust.scale <= 0.0 {
            return Err(DecodeError::Invalid {
                what: "baseline",
                at,
            });
        }
        d.since_refresh = r.u32()?;
        d.seasonal = Seasonal::read(&mut r)?;
        d.shape = Shapes::read(&mut r)?;
        d.since_train = r.u32()?;
        for t in d.tails.iter_mut() {
            *t = Tail::read(&mut r)?;
        }
        d.diff_abs = r.f64()?;
        if !(d.diff_abs.is_finite() && d.diff_abs >= 0.0) {
            return Err(DecodeError::Invalid {
                what: "step size",
                at: r.position(),
            });
        }
        for v in d.last.iter_mut() {
            *v = r.f32()?;
        }
        d.cooldown_left = r.u32()?;
        d.fired = r.f64()?;
        let at = r.position();
        d.lik_short = r.f32()?;
        d.lik_mean = r.f32()?;
        d.lik_var = r.f32()?;
        let finite = [d.lik_short, d.lik_mean, d.lik_var]
            .iter()
            .all(|v| v.is_finite());
        if !(finite && d.lik_var >= 0.0) {
            return Err(DecodeError::Invalid {
                what: "likelihood",
                at,
            });
        }
        d.novelty = Novelty::read(&mut r)?;
        r.finish()?;
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const FIVE_MIN: i64 = 5 * MIN;
    const T0: i64 = 1_700_000_000_000;

    /// Deterministic noise in [-0.5, 0.5): xorshift64 with a fixed seed.
    struct Noise(u64);
    impl Noise {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        }
    }

    /// Runs a series through a fresh detector, training inline as the NAB runner does.
    fn run(values: &[(i64, f64)]) -> Vec<f64> {
        let mut d = Detector::new(&Params::default());
        values
            .iter()
            .map(|&(t, v)| {
                if d.needs_training() {
                    d.train();
                }
                d.observe(t, v)
            })
            .collect()
    }

    /// `days` of 5-minute samples of a noisy daily cycle.
    fn seasonal(days: usize, seed: u64) -> Vec<(i64, f64)> {
        let mut noise = Noise(seed);
        (0..days * 288)
            .map(|i| {
                let phase = (i % 288) as f64 / 288.0 * std::f64::consts::TAU;
                (
                    T0 + i as i64 * FIVE_MIN,
                    100.0 + 30.0 * phase.sin() + 4.0 * noise.next(),
                )
            })
            .collect()
    }

    #[test]
    fn constant_series_never_scores() {
        for c in [0.0, 5.0, -1e9, 1e-12, 3.7e15] {
            let series: Vec<_> = (0..3000).map(|i| (T0 + i * MIN, c)).collect();
            assert!(run(&series).iter().all(|s| *s == 0.0), "constant {c}");
        }
    }

    #[test]
    fn scores_stay_in_unit_interval_and_bad_input_never_panics() {
        let mut noise = Noise(7);
        let mut d = Detector::new(&Params::default());
        let specials = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
            -1e300,
            0.0,
        ];
        let mut walk = 0.0;
        for i in 0..20_000i64 {
            walk += noise.next();
            let v = match i % 97 {
                0 => specials[(i as usize / 97) % specials.len()],
                1 => walk * 1e6,
                _ => walk,
            };
            // Time going backwards and repeating must not matter either.
            let t = T0 + i * MIN - if i % 50 == 0 { 10 * MIN } else { 0 };
            if d.needs_training() {
                d.train();
            }
            let s = d.observe(t, v);
            assert!((0.0..=1.0).contains(&s), "score {s} at {i}");
        }
        let mut counter = Detector::with_kind(&Params::default(), Kind::Counter);
        for i in 0..2000i64 {
            let v = if i % 13 == 0 {
                f64::NAN
            } else {
                (i % 300) as f64
            };
            let s = counter.observe(T0 + (i / 2) * MIN, v);
            assert!((0.0..=1.0).contains(&s));
        }
    }

    #[test]
    fn scaling_a_series_barely_changes_its_scores() {
        let base = seasonal(6, 11);
        let a = run(&base);
        for k in [1e-3, 1e3, 1e6] {
            let scaled: Vec<_> = base.iter().map(|&(t, v)| (t, v * k)).collect();
            let b = run(&scaled);
            let max = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            assert!(max < 0.05, "scale {k}: max score difference {max}");
        }
    }

    #[test]
    fn a_spike_in_a_seasonal_series_is_caught_at_once() {
        let mut series = seasonal(10, 3);
        let at = 8 * 288 + 100;
        series[at].1 += 40.0;
        let scores = run(&series);
        let before = scores[at - 2 * 288..at].iter().copied().fold(0.0, f64::max);
        assert!(scores[at] > 0.5, "spike scored {}", scores[at]);
        assert!(
            scores[at] > before + 0.1,
            "spike {} vs {before}",
            scores[at]
        );
    }

    #[test]
    fn a_level_shift_in_a_seasonal_series_is_caught_within_a_few_points() {
        let mut series = seasonal(10, 5);
        let at = 8 * 288 + 100;
        for p in &mut series[at..] {
            p.1 += 15.0;
        }
        let scores = run(&series);
        let before = scores[at - 2 * 288..at].iter().copied().fold(0.0, f64::max);
        let caught = (at..at + 12).find(|&i| scores[i] > before + 0.05 && scores[i] > 0.5);
        assert!(caught.is_some(), "shift missed; before {before}");
    }

    #[test]
    fn counters_are_scored_as_rates_and_resets_are_not_anomalies() {
        let mut d = Detector::with_kind(&Params::default(), Kind::Counter);
        let mut noise = Noise(9);
        let mut total = 0.0;
        let mut max_before = 0.0f64;
        for i in 0..3000i64 {
            total += 100.0 + 10.0 * noise.next();
            // A restart at 2000: the counter starts again from 0.
            if i == 2000 {
                total = 100.0;
            }
            let s = d.observe(T0 + i * MIN, total);
            if i > 200 {
                max_before = max_before.max(s);
            }
        }
        assert!(max_before < 0.6, "steady rate scored {max_before}");
        // The rate triples.
        let s = (3000..3010i64)
            .map(|i| {
                total += 300.0;
                d.observe(T0 + i * MIN, total)
            })
            .fold(0.0, f64::max);
        assert!(s > 0.6, "tripled rate scored {s}");
    }

    #[test]
    fn state_is_small_deterministic_and_survives_a_round_trip() {
        let series = seasonal(4, 13);
        let mut d = Detector::new(&Params::default());
        assert!(d.state_bytes() <= 2048, "{} bytes", d.state_bytes());
        for &(t, v) in &series[..800] {
            if d.needs_training() {
                d.train();
            }
            d.observe(t, v);
        }
        let bytes = d.to_bytes();
        assert_eq!(bytes[0], STATE_VERSION);
        assert!(bytes.len() <= 2048, "{} bytes persisted", bytes.len());
        let mut restored = Detector::from_bytes(&Params::default(), &bytes).expect("decodes");
        assert_eq!(restored, d);
        for &(t, v) in &series[800..] {
            if d.needs_training() {
                d.train();
                restored.train();
            }
            assert_eq!(d.observe(t, v).to_bits(), restored.observe(t, v).to_bits());
        }
        assert_eq!(run(&series), run(&series));
    }

    #[test]
    fn a_recurring_spike_stops_alarming_and_a_new_one_still_does() {
        // A spike every 100 samples on a noisy flat series; then a spike three times as large.
        let mut noise = Noise(17);
        let mut series: Vec<(i64, f64)> = (0..4000i64)
            .map(|i| (T0 + i * FIVE_MIN, 10.0 + noise.next()))
            .collect();
        for i in (150..4000).step_by(100) {
            series[i].1 += 8.0;
        }
        let at = 3650;
        series[at].1 += 24.0;
        let scores = run(&series);
        let late = (2500..3600)
            .step_by(100)
            .map(|i| scores[i])
            .fold(0.0, f64::max);
        assert!(late < 0.55, "recurring spike still scored {late}");
        assert!(scores[at] > 0.6, "new spike scored {}", scores[at]);
    }

    #[test]
    fn corrupt_state_is_refused() {
        let d = Detector::new(&Params::default());
        let mut bytes = d.to_bytes();
        let p = Params::default();
        assert!(Detector::from_bytes(&p, &bytes[..bytes.len() - 1]).is_err());
        bytes.push(0);
        assert_eq!(
            Detector::from_bytes(&p, &bytes),
            Err(DecodeError::Trailing(1))
        );
        bytes[0] = 99;
        assert_eq!(
            Detector::from_bytes(&p, &bytes),
            Err(DecodeError::Version(99))
        );
        assert!(Detector::from_bytes(&p, &[]).is_err());
    }
}

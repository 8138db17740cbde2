//! Seasonality: a coarse expected value per time of day (48 half-hour bins) and per day of week
//! (7 offsets), learnt online, in 55 `f32`s.
//!
//! Why: host and service metrics follow the working day and the week. Without a profile the
//! evening dip is a "level shift" every evening and the Monday ramp a spike every Monday; with
//! one, the residual `x − expected(t)` is what is left to score, and a missing daily peak (which
//! no window-local test sees) becomes a large residual.
//!
//! Model: `expected(t) = level + day[bin(t)] + week[weekday(t)]`, with `level` an exponentially
//! weighted mean of time constant one day (by elapsed time, so irregular sampling is fine), and
//! the bins exponentially weighted means of what the level leaves. The daily part is used once
//! two days of data exist and the bin has been visited; the weekly part after two weeks. The
//! detector only listens to this component while the profile explains the series, i.e. while
//! the residuals are clearly smaller than the deviations from the level (`gain`).
//!
//! Times are taken as UTC milliseconds since the epoch; 1970-01-01 was a Thursday.

use super::codec::{DecodeError, Reader, Writer};

const DAY_MS: i64 = 86_400_000;
const BINS: usize = 48;
const BIN_MS: i64 = DAY_MS / BINS as i64;

#[derive(Clone, Debug, PartialEq)]
pub struct Seasonal {
    day: [f32; BINS],
    week: [f32; 7],
    /// Bit `b` set once bin `b` has a value.
    seen: u64,
    level: f64,
    first_ms: i64,
    last_ms: i64,
    /// Exponentially weighted mean absolute residual, and mean absolute deviation from `level`:
    /// their ratio says whether the profile is worth listening to.
    resid_abs: f32,
    dev_abs: f32,
    /// Residuals seen: the residual scale is trusted after `TRUSTED` of them.
    resid_n: u32,
    n: u32,
}

/// Residuals needed before the residual scale (and so the component) is used.
const TRUSTED: u32 = 144;

/// What the profile says about the next value.
#[derive(Clone, Copy, Debug)]
pub struct Expectation {
    pub expected: f64,
    /// Robust-ish σ of the residuals (1.25 × mean absolute residual).
    pub scale: f64,
    /// Residual scale over deviation scale: 1 = the profile explains nothing.
    pub ratio: f64,
}

impl Seasonal {
    pub const fn new() -> Self {
        Seasonal {
            day: [0.0; BINS],
            week: [0.0; 7],
            seen: 0,
            level: 0.0,
            first_ms: 0,
            last_ms: 0,
            resid_abs: 0.0,
            dev_abs: 0.0,
            resid_n: 0,
            n: 0,
        }
    }

    fn bin(t_ms: i64) -> usize {
        (t_ms.rem_euclid(DAY_MS) / BIN_MS) as usize % BINS
    }

    fn weekday(t_ms: i64) -> usize {
        t_ms.div_euclid(DAY_MS).rem_euclid(7) as usize
    }

    fn daily_ready(&self, t_ms: i64) -> bool {
        self.n > 0 && t_ms - self.first_ms >= 2 * DAY_MS && self.seen & (1 << Self::bin(t_ms)) != 0
    }

    fn weekly_ready(&self, t_ms: i64) -> bool {
        t_ms - self.first_ms >= 14 * DAY_MS
    }

    fn raw_expected(&self, t_ms: i64) -> f64 {
        let mut e = self.level + f64::from(self.day[Self::bin(t_ms)]);
        if self.weekly_ready(t_ms) {
            e += f64::from(self.week[Self::weekday(t_ms)]);
        }
        e
    }

    /// The expectation for time `t_ms`, if the profile is ready.
    pub fn expect(&self, t_ms: i64) -> Option<Expectation> {
        if !self.daily_ready(t_ms) || self.resid_n < TRUSTED {
            return None;
        }
        let dev = f64::from(self.dev_abs);
        let resid = f64::from(self.resid_abs);
        Some(Expectation {
            expected: self.raw_expected(t_ms),
            scale: 1.25 * resid,
            ratio: if dev > 0.0 { resid / dev } else { 1.0 },
        })
    }

    /// Learns `x` at `t_ms`. Samples going back in time only update the bins.
    pub fn update(&mut self, t_ms: i64, x: f64) {
        if self.n == 0 {
            self.first_ms = t_ms;
            self.last_ms = t_ms;
            self.level = x;
        }
        let dt = (t_ms - self.last_ms).clamp(0, DAY_MS) as f64;
        self.last_ms = self.last_ms.max(t_ms);
        self.n = self.n.saturating_add(1);
        let b = Self::bin(t_ms);
        let wd = Self::weekday(t_ms);
        if self.daily_ready(t_ms) {
            let resid = (x - self.raw_expected(t_ms)).abs() as f32;
            let dev = (x - self.level).abs() as f32;
            self.resid_n = self.resid_n.saturating_add(1);
            let a = (1.0 / self.resid_n as f32).max(0.005);
            self.resid_abs += a * (resid - self.resid_abs);
            self.dev_abs += a * (dev - self.dev_abs);
        }
        // The level follows a one-day time constant: slow enough to keep the daily shape in the
        // bins, fast enough to follow a trend over a few days.
        let a_level = 1.0 - (-dt / DAY_MS as f64).exp();
        self.level += a_level * (x - self.level);
        let week = if self.weekly_ready(t_ms) {
            f64::from(self.week[wd])
        } else {
            0.0
        };
        let target_day = x - self.level - week;
        if self.seen & (1 << b) == 0 {
            self.day[b] = target_day as f32;
            self.seen |= 1 << b;
        } else {
            self.day[b] += (0.1 * (target_day - f64::from(self.day[b]))) as f32;
        }
        // The weekly offsets learn with weight proportional to the elapsed time, so a day of
        // samples moves one offset about halfway whatever the sampling interval.
        let a_week = (0.5 * dt / DAY_MS as f64).min(0.05);
        let target_week = x - self.level - f64::from(self.day[b]);
        self.week[wd] += (a_week * (target_week - f64::from(self.week[wd]))) as f32;
    }

    pub fn write(&self, w: &mut Writer) {
        for v in self.day.iter().chain(self.week.iter()) {
            w.f32(*v);
        }
        w.u64(self.seen);
        w.f64(self.level);
        w.i64(self.first_ms);
        w.i64(self.last_ms);
        w.f32(self.resid_abs);
        w.f32(self.dev_abs);
        w.u32(self.resid_n);
        w.u32(self.n);
    }

    pub fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let at = r.position();
        let mut s = Seasonal::new();
        for v in s.day.iter_mut().chain(s.week.iter_mut()) {
            *v = r.f32()?;
        }
        s.seen = r.u64()?;
        s.level = r.f64()?;
        s.first_ms = r.i64()?;
        s.last_ms = r.i64()?;
        s.resid_abs = r.f32()?;
        s.dev_abs = r.f32()?;
        s.resid_n = r.u32()?;
        s.n = r.u32()?;
        let finite = s.day.iter().chain(s.week.iter()).all(|v| v.is_finite())
            && s.level.is_finite()
            && s.resid_abs.is_finite()
            && s.dev_abs.is_finite();
        if finite {
            Ok(s)
        } else {
            Err(DecodeError::Invalid {
                what: "seasonal profile",
                at,
            })
        }
    }
}

impl Default for Seasonal {
    fn default() -> Self {
        Seasonal::new()
    }
}

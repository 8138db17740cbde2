//! NAB's scorer, pure: row weights, the threshold sweep, per-file scores at a threshold and the
//! normalisation against the null and perfect detectors, exactly as
//! `/work/shared/nab/SCORING.md` describes NAB v1.1's `nab/sweeper.py` and `nab/scorer.py`.
//!
//! Callers hand in [`ScoringFile`]s (scores by row plus windows as row ranges; `nab.rs` builds
//! them from files) and get a [`CorpusReport`] back from [`score_corpus`]. No I/O, no clock.
//!
//! Where NAB's arithmetic has a particular order (the sigmoid written as `2·sigmoid(−5x) − 1`,
//! the TP weight `S·tpWeight / S(−1)`, a threshold's score summed as `fp + Σ windows` in the
//! order the windows first appear in the sorted sweep) this code follows it, so raw scores agree
//! with the official ones to the last few bits rather than merely to the printed decimals; that
//! also keeps the tie-break between thresholds of (nearly) equal score the same as NAB's.

/// The weights of one NAB application profile (`config/profiles.json`; `tnWeight` is never used).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Profile {
    pub name: &'static str,
    pub tp_weight: f64,
    pub fn_weight: f64,
    pub fp_weight: f64,
}

pub const STANDARD: Profile = Profile {
    name: "standard",
    tp_weight: 1.0,
    fn_weight: 1.0,
    fp_weight: 0.11,
};
pub const REWARD_LOW_FP_RATE: Profile = Profile {
    name: "reward_low_FP_rate",
    tp_weight: 1.0,
    fn_weight: 1.0,
    fp_weight: 0.22,
};
pub const REWARD_LOW_FN_RATE: Profile = Profile {
    name: "reward_low_FN_rate",
    tp_weight: 1.0,
    fn_weight: 2.0,
    fp_weight: 0.11,
};
/// The three profiles in NAB's reporting order.
pub const PROFILES: [Profile; 3] = [STANDARD, REWARD_LOW_FP_RATE, REWARD_LOW_FN_RATE];

/// The sweep's first candidate: nothing is detected (NAB starts its sweep at 1.1).
pub const NOTHING_DETECTED: f64 = 1.1;

/// NAB's scaled sigmoid: `2·sigmoid(−5x) − 1` for `x ≤ 3`, exactly `−1` beyond (the small
/// discontinuity at 3 is NAB's).
pub fn scaled_sigmoid(x: f64) -> f64 {
    if x > 3.0 {
        -1.0
    } else {
        2.0 * sigmoid(-5.0 * x) - 1.0
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Rows `0 .. probationary_rows(n)` of an `n`-row file are never scored:
/// `min(floor(0.15·n), 0.15·5000)` as NAB computes it.
pub fn probationary_rows(n: usize) -> usize {
    let p = (0.15 * n as f64).floor().min(0.15 * 5000.0);
    p as usize
}

/// A labelled window as an inclusive range of 0-based data rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowWindow {
    pub first: usize,
    pub last: usize,
}

impl RowWindow {
    fn width(&self) -> usize {
        self.last - self.first + 1
    }
}

/// One file to score: the detector's score of every data row, and the file's windows.
#[derive(Clone, Debug)]
pub struct ScoringFile {
    /// `<category>/<file>.csv`, as the labels name it.
    pub name: String,
    scores: Vec<f64>,
    windows: Vec<RowWindow>,
}

impl ScoringFile {
    /// Checks what the sweep relies on: finite scores, windows inside the file, in order and
    /// not overlapping. Scores may lie anywhere (the file readers enforce NAB's `[0, 1]`).
    pub fn new(
        name: impl Into<String>,
        scores: Vec<f64>,
        windows: Vec<RowWindow>,
    ) -> Result<ScoringFile, String> {
        let name = name.into();
        if let Some(row) = scores.iter().position(|s| !s.is_finite()) {
            return Err(format!("{name}: row {row}: score is not a finite number"));
        }
        let mut after = 0;
        for (k, w) in windows.iter().enumerate() {
            if w.first > w.last || w.last >= scores.len() {
                return Err(format!(
                    "{name}: window {k} (rows {}-{}) is not inside the file's {} rows",
                    w.first,
                    w.last,
                    scores.len()
                ));
            }
            if k > 0 && w.first < after {
                return Err(format!(
                    "{name}: window {k} (rows {}-{}) overlaps or precedes the window before it",
                    w.first, w.last
                ));
            }
            after = w.last + 1;
        }
        // `+ 0.0` turns −0.0 into 0.0: NAB compares scores with `==`, where they are equal.
        let scores = scores.into_iter().map(|s| s + 0.0).collect();
        Ok(ScoringFile {
            name,
            scores,
            windows,
        })
    }

    pub fn rows(&self) -> usize {
        self.scores.len()
    }

    pub fn scores(&self) -> &[f64] {
        &self.scores
    }

    pub fn windows(&self) -> &[RowWindow] {
        &self.windows
    }

    pub fn probationary_rows(&self) -> usize {
        probationary_rows(self.scores.len())
    }

    /// For each row, the profile-free part of its weight (SCORING.md §2.4) and its window.
    /// The walk is NAB's state machine: in window `k` from its first row to its last, then
    /// "after window k" until the next window starts.
    fn unit_weights(&self) -> impl Iterator<Item = (usize, Option<usize>, f64)> + '_ {
        let mut next = 0;
        let mut previous: Option<RowWindow> = None;
        (0..self.scores.len()).map(move |i| {
            if let Some(w) = self.windows.get(next).copied().filter(|w| w.first <= i) {
                let width = w.width() as f64;
                let position = -((w.last - i + 1) as f64) / width;
                let k = next;
                if i == w.last {
                    previous = Some(w);
                    next += 1;
                }
                (i, Some(k), scaled_sigmoid(position))
            } else {
                let unit = match previous {
                    None => -1.0,
                    // A window of width 1 would divide by zero in NAB; here the distance is
                    // infinite and the row costs the full fpWeight.
                    Some(w) => scaled_sigmoid((i - w.last) as f64 / (w.width() as f64 - 1.0)),
                };
                (i, None, unit)
            }
        })
    }

    /// The §2.4 weight of every row under `profile` (probationary rows included), like the
    /// `S(t)_<profile>` column NAB appends to results files.
    pub fn row_weights(&self, profile: &Profile) -> Vec<f64> {
        let s_max = scaled_sigmoid(-1.0);
        self.unit_weights()
            .map(|(_, window, unit)| weigh(profile, window.is_some(), unit, s_max))
            .collect()
    }
}

fn weigh(profile: &Profile, in_window: bool, unit: f64, s_max: f64) -> f64 {
    if in_window {
        unit * profile.tp_weight / s_max
    } else {
        unit * profile.fp_weight
    }
}

/// Row counts over the scorable rows (diagnostic; they do not enter the score).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Detected rows inside windows.
    pub tp: usize,
    /// Undetected rows outside windows.
    pub tn: usize,
    /// Detected rows outside windows.
    pub fp: usize,
    /// Undetected rows inside windows.
    pub fn_: usize,
    /// Scorable rows (`n − P` per file).
    pub total: usize,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.tp += o.tp;
        self.tn += o.tn;
        self.fp += o.fp;
        self.fn_ += o.fn_;
        self.total += o.total;
    }
}

/// One record of the threshold sweep: the corpus score when every scorable row with score
/// `≥ threshold` is a detection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SweepPoint {
    pub threshold: f64,
    pub raw: f64,
    pub counts: Counts,
}

/// A scorable row, ready for the sweep.
#[derive(Clone, Copy, Debug)]
struct Entry {
    score: f64,
    /// Corpus-wide window id, or `NO_WINDOW`.
    window: usize,
    unit: f64,
}

const NO_WINDOW: usize = usize::MAX;

/// The scorable rows of a set of files, sorted once by descending score; the three profiles
/// (which differ only in weights) all sweep this one list.
pub struct Sweep {
    entries: Vec<Entry>,
    /// Windows that have at least one scorable row, in the order they first appear in
    /// `entries`: NAB's dict of window scores has this order, and its sums follow it.
    window_order: Vec<usize>,
    /// All windows of the files, counted or not (K of the normalisation).
    windows: usize,
    in_window_rows: usize,
    total_rows: usize,
}

impl Sweep {
    pub fn new(files: &[ScoringFile]) -> Sweep {
        let mut entries =
            Vec::with_capacity(files.iter().map(|f| f.rows() - f.probationary_rows()).sum());
        let mut window_base = 0usize;
        for file in files {
            let p = file.probationary_rows();
            for (i, window, unit) in file.unit_weights() {
                if i < p {
                    continue;
                }
                let window = window.map_or(NO_WINDOW, |k| window_base + k);
                entries.push(Entry {
                    score: file.scores[i],
                    window,
                    unit,
                });
            }
            window_base += file.windows.len();
        }
        // Stable, like Python's `sorted(..., reverse=True)`: equal scores keep file order.
        entries.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut seen = vec![false; window_base];
        let mut window_order = Vec::new();
        let mut in_window_rows = 0;
        for e in &entries {
            if e.window != NO_WINDOW {
                in_window_rows += 1;
                let k = e.window;
                if !seen[k] {
                    seen[k] = true;
                    window_order.push(e.window);
                }
            }
        }
        Sweep {
            total_rows: entries.len(),
            entries,
            window_order,
            windows: window_base,
            in_window_rows,
        }
    }

    /// K: the number of windows in the files.
    pub fn windows(&self) -> usize {
        self.windows
    }

    /// Every record of the sweep, from "nothing detected" (θ = 1.1) down to the lowest score.
    pub fn points(&self, profile: &Profile) -> Vec<SweepPoint> {
        let mut points = Vec::new();
        self.walk(profile, |p| {
            points.push(p);
            true
        });
        points
    }

    /// The candidate with the largest raw score; ties go to the highest threshold.
    pub fn optimize(&self, profile: &Profile) -> SweepPoint {
        let mut best: Option<SweepPoint> = None;
        self.walk(profile, |p| {
            if best.is_none_or(|b| p.raw > b.raw) {
                best = Some(p);
            }
            true
        });
        // `walk` always yields at least one record.
        best.unwrap_or_else(|| self.at(profile, NOTHING_DETECTED))
    }

    /// The raw score with every scorable row of score `≥ threshold` detected, for any
    /// threshold (above every score: nothing detected; below every score: everything).
    pub fn at(&self, profile: &Profile, threshold: f64) -> SweepPoint {
        let mut state = State::new(self, profile);
        for e in self.entries.iter().take_while(|e| e.score >= threshold) {
            state.apply(e);
        }
        state.point(threshold)
    }

    /// Walks the sorted rows in groups of equal score, calling `record` after the initial
    /// "nothing detected" state and after each group, until `record` returns false.
    fn walk(&self, profile: &Profile, mut record: impl FnMut(SweepPoint) -> bool) {
        let mut state = State::new(self, profile);
        // NAB emits the 1.1 record when the first score different from 1.1 arrives, so a group
        // of scores equal to 1.1 is part of that record rather than a record of its own.
        let starts_at_nothing = self
            .entries
            .first()
            .is_none_or(|e| e.score != NOTHING_DETECTED);
        if starts_at_nothing && !record(state.point(NOTHING_DETECTED)) {
            return;
        }
        let mut i = 0;
        while i < self.entries.len() {
            let score = self.entries[i].score;
            while let Some(e) = self.entries.get(i).filter(|e| e.score == score) {
                state.apply(e);
                i += 1;
            }
            if !record(state.point(score)) {
                return;
            }
        }
    }
}

/// The sweep's running state at some threshold: each window's best value so far, the sum of
/// the FP weights, and the row counts.
struct State<'a> {
    sweep: &'a Sweep,
    profile: &'a Profile,
    s_max: f64,
    best: Vec<f64>,
    fp_sum: f64,
    tp: usize,
    fp: usize,
}

impl<'a> State<'a> {
    /// Nothing detected: every window with a scorable row is worth −fnWeight.
    fn new(sweep: &'a Sweep, profile: &'a Profile) -> State<'a> {
        let mut best = vec![0.0; sweep.windows];
        for &k in &sweep.window_order {
            best[k] = -profile.fn_weight;
        }
        State {
            sweep,
            profile,
            s_max: scaled_sigmoid(-1.0),
            best,
            fp_sum: 0.0,
            tp: 0,
            fp: 0,
        }
    }

    fn apply(&mut self, e: &Entry) {
        if e.window == NO_WINDOW {
            self.fp_sum += weigh(self.profile, false, e.unit, self.s_max);
            self.fp += 1;
        } else {
            let b = &mut self.best[e.window];
            *b = b.max(weigh(self.profile, true, e.unit, self.s_max));
            self.tp += 1;
        }
    }

    fn point(&self, threshold: f64) -> SweepPoint {
        // Python's `sum(scoreParts.values())`: 0 + fp, then each window in dict order.
        let mut raw = self.fp_sum;
        for &k in &self.sweep.window_order {
            raw += self.best[k];
        }
        let s = self.sweep;
        SweepPoint {
            threshold,
            raw,
            counts: Counts {
                tp: self.tp,
                fp: self.fp,
                fn_: s.in_window_rows - self.tp,
                tn: s.total_rows - s.in_window_rows - self.fp,
                total: s.total_rows,
            },
        }
    }
}

/// How the threshold of each profile is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ThresholdChoice {
    /// NAB's `--optimize`: the best threshold on the scored files themselves.
    Optimize,
    /// The same given threshold for every profile.
    Fixed(f64),
}

/// One file's score at its profile's threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct FileScore {
    pub name: String,
    pub raw: f64,
    pub counts: Counts,
}

/// One profile's result over the corpus.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileReport {
    pub profile: Profile,
    pub threshold: f64,
    /// `S(θ)`: the sum of the per-file scores, as NAB's `Totals` row.
    pub raw: f64,
    /// `100 × (S − S_null) / (S_perfect − S_null)`; `None` without windows.
    pub normalized: Option<f64>,
    pub counts: Counts,
    /// In the order the files were given.
    pub files: Vec<FileScore>,
}

/// The three profiles' results over a set of files.
#[derive(Clone, Debug, PartialEq)]
pub struct CorpusReport {
    pub choice: ThresholdChoice,
    /// K: windows in the scored files.
    pub windows: usize,
    pub profiles: Vec<ProfileReport>,
}

/// `100 × (raw − S_null) / (S_perfect − S_null)` with `S_perfect = tpWeight·K`,
/// `S_null = −fnWeight·K`; `None` when there are no windows (nothing to normalise against).
pub fn normalize(raw: f64, profile: &Profile, windows: usize) -> Option<f64> {
    if windows == 0 {
        return None;
    }
    let k = windows as f64;
    let perfect = profile.tp_weight * k;
    let null = -profile.fn_weight * k;
    Some(100.0 * (raw - null) / (perfect - null))
}

/// Scores `files` under the three profiles: chooses each profile's threshold (one for all
/// files), scores each file at it, sums and normalises.
pub fn score_corpus(files: &[ScoringFile], choice: ThresholdChoice) -> CorpusReport {
    let sweep = Sweep::new(files);
    let per_file: Vec<Sweep> = files
        .iter()
        .map(|f| Sweep::new(std::slice::from_ref(f)))
        .collect();
    let profiles = PROFILES
        .iter()
        .map(|profile| {
            let threshold = match choice {
                ThresholdChoice::Optimize => sweep.optimize(profile).threshold,
                ThresholdChoice::Fixed(t) => t,
            };
            let mut raw = 0.0;
            let mut counts = Counts::default();
            let files = files
                .iter()
                .zip(&per_file)
                .map(|(file, s)| {
                    let p = s.at(profile, threshold);
                    raw += p.raw;
                    counts += p.counts;
                    FileScore {
                        name: file.name.clone(),
                        raw: p.raw,
                        counts: p.counts,
                    }
                })
                .collect();
            ProfileReport {
                profile: *profile,
                threshold,
                raw,
                normalized: normalize(raw, profile, sweep.windows()),
                counts,
                files,
            }
        })
        .collect();
    CorpusReport {
        choice,
        windows: sweep.windows(),
        profiles,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, eps: f64) -> bool {
        (a - b).abs() <= eps
    }

    #[test]
    fn scaled_sigmoid_matches_the_reference_values() {
        // SCORING.md quotes tanh(2.5) = 0.9866142981514303; NAB's `2·sigmoid(5) − 1` (which this
        // follows) rounds to 0.9866142981514305 in f64, as it does in Python.
        assert_eq!(scaled_sigmoid(-1.0), 0.9866142981514305);
        assert!(close(scaled_sigmoid(-1.0), 2.5f64.tanh(), 1e-15));
        assert!(close(scaled_sigmoid(-0.5), 0.84828, 1e-5));
        assert_eq!(scaled_sigmoid(0.0), 0.0);
        assert!(close(scaled_sigmoid(1.0), -0.98661, 1e-5));
        assert!(close(scaled_sigmoid(3.0), -0.99999939, 1e-8));
        assert!(scaled_sigmoid(3.0) > -1.0);
        assert_eq!(scaled_sigmoid(3.0000001), -1.0);
        for x in [-2.0, -0.3, 0.7, 2.9] {
            assert!(close(scaled_sigmoid(x), -(2.5f64 * x).tanh(), 1e-15));
        }
    }

    #[test]
    fn probationary_period_is_15_percent_capped_at_750() {
        assert_eq!(probationary_rows(4032), 604);
        assert_eq!(probationary_rows(1127), 169);
        assert_eq!(probationary_rows(4999), 749);
        assert_eq!(probationary_rows(5000), 750);
        assert_eq!(probationary_rows(22695), 750);
        assert_eq!(probationary_rows(0), 0);
        for n in 0..30_000 {
            assert_eq!(probationary_rows(n), ((15 * n) / 100).min(750), "n = {n}");
        }
    }

    /// speed_7578's windows (SCORING.md §9) and the row weights of its table.
    #[test]
    fn row_weights_match_the_worked_example() {
        let windows = [(303, 331), (740, 768), (909, 937), (945, 973)]
            .map(|(first, last)| RowWindow { first, last })
            .to_vec();
        let file = ScoringFile::new("speed_7578", vec![0.0; 1127], windows).unwrap_or_else(|e| {
            panic!("{e}");
        });
        let standard = file.row_weights(&STANDARD);
        let low_fp = file.row_weights(&REWARD_LOW_FP_RATE);
        for (row, want_std, want_fp) in [
            (100, -0.11, -0.22),
            (200, -0.11, -0.22),
            (303, 1.0, 1.0),
            (310, 0.9689108275, 0.9689108275),
            (332, -0.0097954129, -0.0195908258),
            (340, -0.0732631530, -0.1465263060),
            (420, -0.11, -0.22),
            (750, 0.9397621574, 0.9397621574),
            (920, 0.9264709827, 0.9264709827),
            (925, 0.8187684579, 0.8187684579),
            (940, -0.0287792757, -0.0575585513),
            (973, 0.0871606838, 0.0871606838),
            (1000, -0.1082420015, -0.2164840029),
            (1126, -0.11, -0.22),
        ] {
            assert!(
                close(standard[row], want_std, 5e-11),
                "row {row}: {}",
                standard[row]
            );
            assert!(
                close(low_fp[row], want_fp, 5e-11),
                "row {row}: {}",
                low_fp[row]
            );
        }
        assert_eq!(file.row_weights(&REWARD_LOW_FN_RATE), standard);
    }

    #[test]
    fn equal_scores_form_one_candidate_and_ties_go_to_the_highest_threshold() {
        // One window at rows 200..=209 of 300 rows (P = 45). Rows 200 and 205 both score 0.8;
        // row 206 scores 0.6: a free later detection, so θ = 0.6 ties with θ = 0.8.
        let mut scores = vec![0.0; 300];
        scores[200] = 0.8;
        scores[205] = 0.8;
        scores[206] = 0.6;
        let file = ScoringFile::new(
            "f",
            scores,
            vec![RowWindow {
                first: 200,
                last: 209,
            }],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let sweep = Sweep::new(std::slice::from_ref(&file));
        let points = sweep.points(&STANDARD);
        let thresholds: Vec<f64> = points.iter().map(|p| p.threshold).collect();
        assert_eq!(thresholds, [1.1, 0.8, 0.6, 0.0]);
        assert_eq!(points[1].raw, 1.0);
        assert_eq!(points[1].counts.tp, 2);
        assert_eq!(points[2].raw, 1.0);
        let best = sweep.optimize(&STANDARD);
        assert_eq!(best.threshold, 0.8);
        // Everything detected: the window at its first row, 245 FP rows at −0.11 or less.
        assert_eq!(points[3].counts.fp, 300 - 45 - 10);
        // A threshold above every score detects nothing; below every score, everything.
        assert_eq!(sweep.at(&STANDARD, 5.0).raw, -1.0);
        assert_eq!(sweep.at(&STANDARD, -1.0).raw, points[3].raw);
        assert_eq!(sweep.at(&STANDARD, 0.7).raw, 1.0);
    }

    #[test]
    fn bad_files_are_refused() {
        assert!(ScoringFile::new("f", vec![f64::NAN], vec![]).is_err());
        let w = |first, last| RowWindow { first, last };
        assert!(ScoringFile::new("f", vec![0.0; 10], vec![w(5, 10)]).is_err());
        assert!(ScoringFile::new("f", vec![0.0; 10], vec![w(5, 4)]).is_err());
        assert!(ScoringFile::new("f", vec![0.0; 10], vec![w(2, 5), w(5, 6)]).is_err());
        assert!(ScoringFile::new("f", vec![0.0; 10], vec![w(2, 4), w(5, 6)]).is_ok());
    }

    #[test]
    fn normalisation_is_zero_for_null_and_100_for_perfect() {
        assert_eq!(normalize(-92.0, &STANDARD, 92), Some(0.0));
        assert_eq!(normalize(92.0, &REWARD_LOW_FP_RATE, 92), Some(100.0));
        assert_eq!(normalize(-184.0, &REWARD_LOW_FN_RATE, 92), Some(0.0));
        assert_eq!(normalize(0.0, &STANDARD, 0), None);
    }
}

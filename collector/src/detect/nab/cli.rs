//! The output of `redline-collector detect nab` and `detect nab-score`: `main.rs` parses the
//! arguments and calls [`run`] or [`score`], which print to the given writers and say whether
//! the command succeeded. Errors are printed as `error: <file>:<line>: ...`, never a panic.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use super::score::{CorpusReport, ThresholdChoice};
use super::{load_results, read_windows};
use crate::detect::detector::Params;

/// `detect nab DATA_DIR OUT_DIR [--windows WINDOWS_JSON]` with the production `Params`.
pub fn run(
    data_dir: &Path,
    out_dir: &Path,
    windows: Option<&Path>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> bool {
    let started = Instant::now();
    let result = windows
        .map(read_windows)
        .transpose()
        .and_then(|w| super::run(data_dir, out_dir, &Params::default(), w.as_ref()));
    match result {
        Ok(summary) => {
            for file in &summary.unlabelled {
                let _ = writeln!(
                    err,
                    "warning: the windows file has no entry for {file}; its labels are all 0"
                );
            }
            let rows: usize = summary.files.iter().map(|(_, n)| n).sum();
            let _ = writeln!(
                out,
                "{}: {} files, {rows} rows in {:.2} s",
                summary.results_dir.display(),
                summary.files.len(),
                started.elapsed().as_secs_f64()
            );
            true
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            false
        }
    }
}

/// What `detect nab-score` prints.
pub struct ScoreOptions<'a> {
    pub results_dir: &'a Path,
    pub windows: &'a Path,
    /// The detector name in the results paths (`redline` for `detect nab`'s output).
    pub detector: &'a str,
    /// Also print the per-file table (CSV, the columns of NAB's `*_scores.csv`).
    pub per_file: bool,
    /// Score at this threshold instead of optimizing it.
    pub threshold: Option<f64>,
}

/// `detect nab-score RESULTS_DIR --windows WINDOWS_JSON [--detector NAME] [--per-file]
/// [--threshold θ]`.
pub fn score(options: &ScoreOptions<'_>, out: &mut dyn Write, err: &mut dyn Write) -> bool {
    let started = Instant::now();
    let choice = match options.threshold {
        Some(t) if !t.is_finite() => {
            let _ = writeln!(err, "error: --threshold {t} is not a finite number");
            return false;
        }
        Some(t) => ThresholdChoice::Fixed(t),
        None => ThresholdChoice::Optimize,
    };
    let loaded = read_windows(options.windows)
        .and_then(|w| load_results(options.results_dir, options.detector, &w));
    let set = match loaded {
        Ok(set) => set,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return false;
        }
    };
    let loaded_in = started.elapsed();
    let report = super::score_corpus(&set.files, choice);
    let scored_in = started.elapsed() - loaded_in;
    if !set.missing.is_empty() {
        let _ = writeln!(
            err,
            "note: {} labelled files have no results under {} and are not scored \
             (normalisation counts only the scored files' windows)",
            set.missing.len(),
            options.results_dir.join(options.detector).display()
        );
    }
    if report.windows == 0 {
        let _ = writeln!(
            err,
            "note: the scored files have no windows, so the scores cannot be normalised"
        );
    }
    let _ = write!(
        out,
        "{}",
        summary(options.detector, set.files.len(), &report)
    );
    if options.per_file {
        let _ = write!(out, "\n{}", per_file_csv(&report));
    }
    let _ = writeln!(
        err,
        "read in {:.2} s, scored in {:.3} s",
        loaded_in.as_secs_f64(),
        scored_in.as_secs_f64()
    );
    true
}

/// A threshold the way NAB's JSON and CSV files print it (Python's `repr`: `1.0`, `0.953299`).
fn threshold_text(t: f64) -> String {
    format!("{t:?}")
}

/// The headline table: one line per profile, the normalised score in the fourth column.
pub fn summary(detector: &str, files: usize, report: &CorpusReport) -> String {
    let mut s = String::new();
    use std::fmt::Write as _;
    let how = match report.choice {
        ThresholdChoice::Optimize => "thresholds optimized on these files".to_owned(),
        ThresholdChoice::Fixed(t) => format!("fixed threshold {}", threshold_text(t)),
    };
    let rows = report.profiles.first().map_or(0, |p| p.counts.total);
    let _ = writeln!(
        s,
        "NAB scores of {detector}: {files} files, {} windows, {rows} scored rows, {how}",
        report.windows
    );
    let _ = writeln!(
        s,
        "{:<20} {:>20} {:>14} {:>10} {:>7} {:>7} {:>8} {:>8}",
        "profile", "threshold", "raw_score", "normalized", "TP", "FP", "FN", "TN"
    );
    for p in &report.profiles {
        let normalized = p
            .normalized
            .map_or_else(|| "n/a".to_owned(), |n| format!("{n:.4}"));
        let _ = writeln!(
            s,
            "{:<20} {:>20} {:>14.9} {:>10} {:>7} {:>7} {:>8} {:>8}",
            p.profile.name,
            threshold_text(p.threshold),
            p.raw,
            normalized,
            p.counts.tp,
            p.counts.fp,
            p.counts.fn_,
            p.counts.tn
        );
    }
    s
}

/// Per-file raw scores and row counts at each profile's threshold, with a `TOTAL` line per
/// profile: the columns of `examples/zscoreBaseline_dev_expected.csv`.
pub fn per_file_csv(report: &CorpusReport) -> String {
    use std::fmt::Write as _;
    let kind = match report.choice {
        ThresholdChoice::Optimize => "optimized".to_owned(),
        ThresholdChoice::Fixed(t) => format!("fixed_{}", threshold_text(t)),
    };
    let mut s = String::from(
        "profile,threshold_kind,file,threshold,raw_score,TP_rows,TN_rows,FP_rows,FN_rows,scored_rows\n",
    );
    for p in &report.profiles {
        let threshold = threshold_text(p.threshold);
        let rows = p
            .files
            .iter()
            .map(|f| (f.name.as_str(), f.raw, f.counts))
            .chain([("TOTAL", p.raw, p.counts)]);
        for (name, raw, c) in rows {
            let _ = writeln!(
                s,
                "{},{kind},{name},{threshold},{raw:.9},{},{},{},{},{}",
                p.profile.name, c.tp, c.tn, c.fp, c.fn_, c.total
            );
        }
    }
    s
}

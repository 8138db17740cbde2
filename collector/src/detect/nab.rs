//! The Numenta Anomaly Benchmark (NAB v1.1) for Redline's detector: reading NAB's files, running
//! the production [`Detector`] over a NAB data set, and scoring results files with a faithful
//! re-implementation of NAB's scorer (`/work/shared/nab/SCORING.md`).
//!
//! Called by the `redline-collector detect nab` and `detect nab-score` commands (through
//! [`cli`]), by `bench/nab.sh`, and by whoever tunes the detector ([`evaluate`] runs and scores
//! without writing files). The daemon never calls it. [`score`] is the pure scoring core; this
//! file owns the file formats and the run:
//!
//! - data files `DATA_DIR/<category>/<file>.csv`: `timestamp,value`, LF or CRLF, final newline
//!   optional;
//! - labels `windows.json`: `{"<category>/<file>.csv": [[start, end], ...]}`;
//! - results files `OUT_DIR/<detector>/<category>/<detector>_<file>.csv`:
//!   `timestamp,value,anomaly_score,label`, one row per data row, timestamps and values copied
//!   verbatim.
//!
//! Every problem with an input is a [`NabError`] naming the file (and line, where there is one);
//! nothing here panics on bad input.

pub mod cli;
pub mod score;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::civil::DateTime;

use crate::detect::detector::{Detector, Params};
pub use score::{
    CorpusReport, Counts, FileScore, PROFILES, Profile, ProfileReport, RowWindow, ScoringFile,
    Sweep, SweepPoint, ThresholdChoice, normalize, score_corpus,
};

/// The detector name in results paths (`<name>/<category>/<name>_<file>.csv`). NAB takes the
/// text before the first `_` as the detector, so it must be letters and digits only.
pub const DETECTOR_NAME: &str = "redline";

#[derive(Debug, thiserror::Error)]
pub enum NabError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A CSV row or header that is not what NAB writes.
    #[error("{}:{line}: {message}", path.display())]
    Csv {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// `windows.json` is not JSON of the expected shape.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A label entry that cannot be used: a bad timestamp, windows out of order, a window
    /// boundary that no row of the file has, a results file without labels.
    #[error("{}: {message}", path.display())]
    Labels { path: PathBuf, message: String },
    /// The detector broke its contract (a finite score in `[0, 1]` per row).
    #[error("{}:{line}: the detector returned {score}, not a number in [0, 1]", path.display())]
    Detector {
        path: PathBuf,
        line: usize,
        score: f64,
    },
    /// The directory holds no files of the expected layout.
    #[error("{}: {message}", path.display())]
    Layout { path: PathBuf, message: String },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> NabError + '_ {
    move |source| NabError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Parses `YYYY-MM-DD HH:MM:SS` with an optional fraction (`.000000` in `windows.json`); a `T`
/// separator is accepted too. NAB's timestamps have no time zone; Redline reads them as UTC.
pub fn parse_timestamp(text: &str) -> Option<DateTime> {
    let b = text.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i32> {
        let digits = &b[from..to];
        digits.iter().all(u8::is_ascii_digit).then(|| {
            digits
                .iter()
                .fold(0i32, |n, d| n * 10 + i32::from(d - b'0'))
        })
    };
    let mut nanos = 0i32;
    match &b[19..] {
        [] => {}
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            let digits = number(20, b.len())?;
            nanos = digits * 10i32.pow(9 - fraction.len() as u32);
        }
        _ => return None,
    }
    DateTime::new(
        i16::try_from(number(0, 4)?).ok()?,
        i8::try_from(number(5, 7)?).ok()?,
        i8::try_from(number(8, 10)?).ok()?,
        i8::try_from(number(11, 13)?).ok()?,
        i8::try_from(number(14, 16)?).ok()?,
        i8::try_from(number(17, 19)?).ok()?,
        nanos,
    )
    .ok()
}

/// Milliseconds since the Unix epoch of a NAB timestamp read as UTC.
pub fn unix_millis(time: DateTime) -> Option<i64> {
    jiff::tz::TimeZone::UTC
        .to_timestamp(time)
        .ok()
        .map(|t| t.as_millisecond())
}

/// A CSV file split into its header and data rows. NAB's files have no quoting, so neither
/// does this. Line numbers are 1-based lines of the file (the header is line 1); blank lines
/// are skipped, as pandas does.
struct Table<'a> {
    path: &'a Path,
    header: Vec<&'a str>,
    rows: Vec<(usize, Vec<&'a str>)>,
}

impl<'a> Table<'a> {
    fn parse(path: &'a Path, text: &'a str) -> Result<Table<'a>, NabError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .enumerate()
            .map(|(i, l)| (i + 1, l));
        let header = match lines.next() {
            Some((_, h)) if !h.trim().is_empty() => h.split(',').map(str::trim).collect(),
            _ => {
                return Err(NabError::Csv {
                    path: path.to_owned(),
                    line: 1,
                    message: "expected a header line".to_owned(),
                });
            }
        };
        let table = Table {
            path,
            header,
            rows: lines
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(n, l)| (n, l.split(',').collect()))
                .collect(),
        };
        for (line, fields) in &table.rows {
            if fields.len() != table.header.len() {
                return Err(table.error(
                    *line,
                    format!(
                        "{} fields, but the header has {}",
                        fields.len(),
                        table.header.len()
                    ),
                ));
            }
        }
        Ok(table)
    }

    fn column(&self, name: &str) -> Result<usize, NabError> {
        self.header.iter().position(|h| *h == name).ok_or_else(|| {
            self.error(
                1,
                format!("no `{name}` column in header `{}`", self.header.join(",")),
            )
        })
    }

    fn error(&self, line: usize, message: String) -> NabError {
        NabError::Csv {
            path: self.path.to_owned(),
            line,
            message,
        }
    }

    fn timestamp(&self, line: usize, text: &str) -> Result<DateTime, NabError> {
        parse_timestamp(text.trim()).ok_or_else(|| {
            self.error(
                line,
                format!("timestamp `{text}` is not `YYYY-MM-DD HH:MM:SS`"),
            )
        })
    }

    fn number(&self, line: usize, column: &str, text: &str) -> Result<f64, NabError> {
        match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.error(line, format!("{column} `{text}` is not a finite number"))),
        }
    }
}

/// One row of a NAB data file.
#[derive(Clone, Debug, PartialEq)]
pub struct DataRow {
    /// As written in the file (copied verbatim to results files).
    pub timestamp: String,
    pub time: DateTime,
    /// As written in the file (copied verbatim to results files).
    pub value_text: String,
    pub value: f64,
    /// Line in the file, for error messages.
    pub line: usize,
}

/// Parses a data file's text (`timestamp,value`); `path` is only for error messages.
pub fn parse_data(path: &Path, text: &str) -> Result<Vec<DataRow>, NabError> {
    let table = Table::parse(path, text)?;
    let (ts, value) = (table.column("timestamp")?, table.column("value")?);
    table
        .rows
        .iter()
        .map(|(line, fields)| {
            Ok(DataRow {
                timestamp: fields[ts].trim().to_owned(),
                time: table.timestamp(*line, fields[ts])?,
                value_text: fields[value].trim().to_owned(),
                value: table.number(*line, "value", fields[value])?,
                line: *line,
            })
        })
        .collect()
}

pub fn read_data(path: &Path) -> Result<Vec<DataRow>, NabError> {
    parse_data(
        path,
        &std::fs::read_to_string(path).map_err(io_error(path))?,
    )
}

/// One row of a results file: what the scorer needs.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultRow {
    pub time: DateTime,
    pub score: f64,
}

/// Parses a results file's text (`timestamp,...,anomaly_score,...`: the score is found by its
/// column name, as NAB does, so extra columns such as NAB's `S(t)_standard` are fine). Scores
/// must be finite and in `[0, 1]` (NAB's harness rejects anything else).
pub fn parse_results(path: &Path, text: &str) -> Result<Vec<ResultRow>, NabError> {
    let table = Table::parse(path, text)?;
    let (ts, score) = (table.column("timestamp")?, table.column("anomaly_score")?);
    table
        .rows
        .iter()
        .map(|(line, fields)| {
            let s = table.number(*line, "anomaly_score", fields[score])?;
            if !(0.0..=1.0).contains(&s) {
                return Err(table.error(*line, format!("anomaly_score {s} is outside [0, 1]")));
            }
            Ok(ResultRow {
                time: table.timestamp(*line, fields[ts])?,
                score: s,
            })
        })
        .collect()
}

pub fn read_results(path: &Path) -> Result<Vec<ResultRow>, NabError> {
    parse_results(
        path,
        &std::fs::read_to_string(path).map_err(io_error(path))?,
    )
}

/// A labelled window: every row with `start ≤ time ≤ end` is inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime,
    pub end: DateTime,
}

/// The contents of `windows.json`: each file's windows, in order, not overlapping.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Windows {
    by_file: BTreeMap<String, Vec<Window>>,
}

impl Windows {
    /// The windows of `<category>/<file>.csv`; `None` when the file has no entry.
    pub fn get(&self, file: &str) -> Option<&[Window]> {
        self.by_file.get(file).map(Vec::as_slice)
    }

    /// The labelled files, sorted.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.by_file.keys().map(String::as_str)
    }

    /// Windows of all files.
    pub fn count(&self) -> usize {
        self.by_file.values().map(Vec::len).sum()
    }
}

/// Parses `windows.json`'s text; `path` is only for error messages.
pub fn parse_windows(path: &Path, text: &str) -> Result<Windows, NabError> {
    let raw: BTreeMap<String, Vec<(String, String)>> = serde_json::from_str(text).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        let message = e.to_string();
        let suffix = format!(" at line {line} column {column}");
        NabError::Json {
            path: path.to_owned(),
            line,
            column,
            message: message.strip_suffix(&suffix).unwrap_or(&message).to_owned(),
        }
    })?;
    let mut by_file = BTreeMap::new();
    for (file, pairs) in raw {
        let error = |message: String| NabError::Labels {
            path: path.to_owned(),
            message: format!("{file}: {message}"),
        };
        let mut windows: Vec<Window> = Vec::with_capacity(pairs.len());
        for (k, (start, end)) in pairs.iter().enumerate() {
            let parse = |text: &str| {
                parse_timestamp(text)
                    .ok_or_else(|| error(format!("window {k}: `{text}` is not a timestamp")))
            };
            let w = Window {
                start: parse(start)?,
                end: parse(end)?,
            };
            if w.end < w.start {
                return Err(error(format!("window {k} ends before it starts")));
            }
            if windows.last().is_some_and(|prev| w.start <= prev.end) {
                return Err(error(format!(
                    "window {k} starts before the end of the window before it"
                )));
            }
            windows.push(w);
        }
        by_file.insert(file, windows);
    }
    Ok(Windows { by_file })
}

pub fn read_windows(path: &Path) -> Result<Windows, NabError> {
    parse_windows(
        path,
        &std::fs::read_to_string(path).map_err(io_error(path))?,
    )
}

/// Matches each window's boundaries to rows as NAB does: the first row whose timestamp equals
/// the start, the first whose timestamp equals the end (NAB's `timestamps.index(...)`).
pub fn resolve_windows(times: &[DateTime], windows: &[Window]) -> Result<Vec<RowWindow>, String> {
    let row = |k: usize, what: &str, t: DateTime| {
        times
            .iter()
            .position(|r| *r == t)
            .ok_or_else(|| format!("window {k}: no row has its {what} time {t}"))
    };
    windows
        .iter()
        .enumerate()
        .map(|(k, w)| {
            Ok(RowWindow {
                first: row(k, "start", w.start)?,
                last: row(k, "end", w.end)?,
            })
        })
        .collect()
}

/// NAB's `label` column: 1 for rows whose time lies inside a window, else 0.
pub fn labels(times: &[DateTime], windows: &[Window]) -> Vec<u8> {
    times
        .iter()
        .map(|t| u8::from(windows.iter().any(|w| w.start <= *t && *t <= w.end)))
        .collect()
}

/// A data file of the set: `<category>/<file>.csv` and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataFile {
    pub key: String,
    pub category: String,
    pub file: String,
    pub path: PathBuf,
}

fn sorted_entries(dir: &Path) -> Result<Vec<std::fs::DirEntry>, NabError> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(io_error(dir))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_error(dir))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    Ok(entries)
}

/// Every `*.csv` in the subdirectories of `data_dir` (one level: NAB's categories), sorted.
pub fn data_files(data_dir: &Path) -> Result<Vec<DataFile>, NabError> {
    let mut files = Vec::new();
    for category in sorted_entries(data_dir)? {
        let path = category.path();
        if !path.is_dir() {
            continue;
        }
        let category = category.file_name().to_string_lossy().into_owned();
        for entry in sorted_entries(&path)? {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.ends_with(".csv") && entry.path().is_file() {
                files.push(DataFile {
                    key: format!("{category}/{file}"),
                    category: category.clone(),
                    file,
                    path: entry.path(),
                });
            }
        }
    }
    if files.is_empty() {
        return Err(NabError::Layout {
            path: data_dir.to_owned(),
            message: "no data files (expected <category>/<file>.csv)".to_owned(),
        });
    }
    Ok(files)
}

/// Runs a fresh detector over one data file: its rows and the score of each.
pub fn detect_file(path: &Path, params: &Params) -> Result<(Vec<DataRow>, Vec<f64>), NabError> {
    let rows = read_data(path)?;
    let mut detector = Detector::new(params);
    let mut scores = Vec::with_capacity(rows.len());
    for row in &rows {
        let t_ms = unix_millis(row.time).ok_or_else(|| NabError::Csv {
            path: path.to_owned(),
            line: row.line,
            message: format!("timestamp `{}` is out of range", row.timestamp),
        })?;
        // The daemon retrains the shape model off the hot path; here, inline, at the same
        // points of the stream.
        if detector.needs_training() {
            detector.train();
        }
        let score = detector.observe(t_ms, row.value);
        if !(0.0..=1.0).contains(&score) {
            return Err(NabError::Detector {
                path: path.to_owned(),
                line: row.line,
                score,
            });
        }
        scores.push(score);
    }
    Ok((rows, scores))
}

/// Applies `job` to every item on all cores (files are independent streams), returning the
/// results in item order.
fn parallel<T: Sync, R: Send>(items: &[T], job: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(items.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = job(item);
                    // A poisoned lock means another worker panicked; the scope re-raises it.
                    if let Ok(mut d) = done.lock() {
                        d.push((i, r));
                    }
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|p| p.into_inner());
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// What [`run`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunSummary {
    /// `<category>/<file>.csv` and its row count, sorted.
    pub files: Vec<(String, usize)>,
    /// Files written with all labels 0 because `windows` had no entry for them.
    pub unlabelled: Vec<String>,
    /// The detector's directory: `OUT_DIR/redline`.
    pub results_dir: PathBuf,
}

/// Runs the production detector (fresh state per file) over every `DATA_DIR/<category>/*.csv`
/// and writes `OUT_DIR/redline/<category>/redline_<file>.csv` in NAB's results format, one row
/// per data row. `label` is 1 inside a window of `windows`, else 0 (all 0 without windows).
pub fn run(
    data_dir: &Path,
    out_dir: &Path,
    params: &Params,
    windows: Option<&Windows>,
) -> Result<RunSummary, NabError> {
    let files = data_files(data_dir)?;
    let results_dir = out_dir.join(DETECTOR_NAME);
    let outcomes = parallel(&files, |f| -> Result<(usize, bool), NabError> {
        let (rows, scores) = detect_file(&f.path, params)?;
        let file_windows = windows.and_then(|w| w.get(&f.key));
        let times: Vec<DateTime> = rows.iter().map(|r| r.time).collect();
        let labels = labels(&times, file_windows.unwrap_or(&[]));
        let dir = results_dir.join(&f.category);
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let path = dir.join(format!("{DETECTOR_NAME}_{}", f.file));
        let mut text = String::with_capacity(rows.len() * 48);
        text.push_str("timestamp,value,anomaly_score,label\n");
        for ((row, score), label) in rows.iter().zip(&scores).zip(&labels) {
            use std::fmt::Write as _;
            let _ = writeln!(
                text,
                "{},{},{},{}",
                row.timestamp, row.value_text, score, label
            );
        }
        std::fs::File::create(&path)
            .and_then(|mut out| out.write_all(text.as_bytes()))
            .map_err(io_error(&path))?;
        Ok((rows.len(), windows.is_some() && file_windows.is_none()))
    });
    let mut summary = RunSummary {
        results_dir,
        ..RunSummary::default()
    };
    for (f, outcome) in files.iter().zip(outcomes) {
        let (rows, unlabelled) = outcome?;
        summary.files.push((f.key.clone(), rows));
        if unlabelled {
            summary.unlabelled.push(f.key.clone());
        }
    }
    Ok(summary)
}

/// Runs the detector over the data set and scores it in memory, without writing results
/// files: the loop for tuning `Params`. Every data file needs an entry in `windows`.
pub fn evaluate(
    data_dir: &Path,
    windows: &Windows,
    params: &Params,
    choice: ThresholdChoice,
) -> Result<CorpusReport, NabError> {
    let files = data_files(data_dir)?;
    let scored = parallel(&files, |f| -> Result<ScoringFile, NabError> {
        let (rows, scores) = detect_file(&f.path, params)?;
        let file_windows = windows.get(&f.key).ok_or_else(|| NabError::Labels {
            path: f.path.clone(),
            message: format!("the windows file has no entry for {}", f.key),
        })?;
        let times: Vec<DateTime> = rows.iter().map(|r| r.time).collect();
        scoring_file(&f.path, &f.key, &times, scores, file_windows)
    });
    let files = scored.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(score_corpus(&files, choice))
}

fn scoring_file(
    path: &Path,
    key: &str,
    times: &[DateTime],
    scores: Vec<f64>,
    windows: &[Window],
) -> Result<ScoringFile, NabError> {
    let labels_error = |message: String| NabError::Labels {
        path: path.to_owned(),
        message: format!("{key}: {message}"),
    };
    let rows = resolve_windows(times, windows).map_err(labels_error)?;
    ScoringFile::new(key, scores, rows).map_err(labels_error)
}

/// The results files of one detector, ready to score.
#[derive(Clone, Debug)]
pub struct ResultsSet {
    /// In `<category>/<file>.csv` order.
    pub files: Vec<ScoringFile>,
    /// Labelled files without a results file: not scored, their windows not counted in K.
    pub missing: Vec<String>,
}

/// Loads `RESULTS_DIR/<detector>/<category>/<detector>_<file>.csv` for every file found there;
/// each must have an entry in `windows` (matched by `<category>/<file>.csv`). Window boundaries
/// are matched against the results files' timestamps, which NAB's format copies from the data.
pub fn load_results(
    results_dir: &Path,
    detector: &str,
    windows: &Windows,
) -> Result<ResultsSet, NabError> {
    let dir = results_dir.join(detector);
    if !dir.is_dir() {
        return Err(NabError::Layout {
            path: dir,
            message: format!(
                "no such directory (expected <dir>/{detector}/<category>/{detector}_<file>.csv)"
            ),
        });
    }
    let prefix = format!("{detector}_");
    let mut found = Vec::new();
    for category in sorted_entries(&dir)? {
        if !category.path().is_dir() {
            continue;
        }
        let category_name = category.file_name().to_string_lossy().into_owned();
        for entry in sorted_entries(&category.path())? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(file) = name.strip_prefix(&prefix).filter(|f| f.ends_with(".csv")) {
                found.push((format!("{category_name}/{file}"), entry.path()));
            }
        }
    }
    if found.is_empty() {
        return Err(NabError::Layout {
            path: dir,
            message: format!("no results files (expected <category>/{detector}_<file>.csv)"),
        });
    }
    let loaded = parallel(&found, |(key, path)| -> Result<ScoringFile, NabError> {
        let file_windows = windows.get(key).ok_or_else(|| NabError::Labels {
            path: path.clone(),
            message: format!("the windows file has no entry for {key}"),
        })?;
        let rows = read_results(path)?;
        let times: Vec<DateTime> = rows.iter().map(|r| r.time).collect();
        let scores = rows.iter().map(|r| r.score).collect();
        scoring_file(path, key, &times, scores, file_windows)
    });
    let files = loaded.into_iter().collect::<Result<Vec<_>, _>>()?;
    let missing = windows
        .files()
        .filter(|f| !found.iter().any(|(key, _)| key == f))
        .map(str::to_owned)
        .collect();
    Ok(ResultsSet { files, missing })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("x.csv")
    }

    #[test]
    fn data_files_with_crlf_and_no_final_newline_parse() {
        for text in [
            "timestamp,value\r\n2014-04-01 00:00:00,1.5\r\n2014-04-01 00:05:00,20\r\n",
            "timestamp,value\n2014-04-01 00:00:00,1.5\n2014-04-01 00:05:00,20",
            "timestamp,value\r\n2014-04-01 00:00:00,1.5\r\n2014-04-01 00:05:00,20",
        ] {
            let rows = parse_data(p(), text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(rows.len(), 2);
            assert_eq!(rows[0].timestamp, "2014-04-01 00:00:00");
            assert_eq!(rows[1].value_text, "20");
            assert_eq!(rows[1].value, 20.0);
            assert_eq!(rows[1].line, 3);
            assert_eq!(unix_millis(rows[1].time), Some(1_396_310_700_000));
        }
    }

    #[test]
    fn bad_rows_name_the_line() {
        for (text, needle) in [
            ("", "x.csv:1: expected a header"),
            ("time,value\n", "x.csv:1: no `timestamp` column"),
            (
                "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01,2\n",
                "x.csv:3: timestamp `2014-04-01`",
            ),
            (
                "timestamp,value\n2014-04-01 00:00:00,abc\n",
                "x.csv:2: value `abc`",
            ),
            (
                "timestamp,value\n2014-04-01 00:00:00,NaN\n",
                "x.csv:2: value `NaN`",
            ),
            (
                "timestamp,value\n2014-04-01 00:00:00\n",
                "x.csv:2: 1 fields",
            ),
            (
                "timestamp,value\n2014-02-30 00:00:00,1\n",
                "x.csv:2: timestamp",
            ),
        ] {
            let e = parse_data(p(), text).err().map(|e| e.to_string());
            assert!(
                e.as_deref().is_some_and(|e| e.starts_with(needle)),
                "{text:?}: {e:?}"
            );
        }
        let e = parse_results(
            p(),
            "timestamp,value,anomaly_score,label\n2014-04-01 00:00:00,1,1.5,0\n",
        )
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("x.csv:2: anomaly_score 1.5 is outside [0, 1]")
        );
    }

    #[test]
    fn timestamps_parse_with_and_without_fraction() {
        let a = parse_timestamp("2014-04-10 07:15:00.000000");
        assert!(a.is_some());
        assert_eq!(a, parse_timestamp("2014-04-10 07:15:00"));
        assert_eq!(a, parse_timestamp("2014-04-10T07:15:00"));
        assert!(parse_timestamp("2014-04-10 07:15:00.5") > a);
        for bad in [
            "2014-04-10 07:15",
            "2014-04-10 07:15:00Z",
            "2014-04-10 07:15:00.",
            "2014-13-10 07:15:00",
            "2014-04-10 24:00:00",
            "20a4-04-10 07:15:00",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn windows_json_errors_have_positions() {
        let e = parse_windows(p(), "{\n  \"a/b.csv\": [[\"2014-01-01 00:00:00\"]]\n}")
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref().is_some_and(|e| e.starts_with("x.csv:2:")),
            "{e:?}"
        );
        let e = parse_windows(
            p(),
            r#"{"a/b.csv": [["2014-01-02 00:00:00", "2014-01-01 00:00:00"]]}"#,
        )
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("x.csv: a/b.csv: window 0 ends before it starts")
        );
        let w = parse_windows(
            p(),
            r#"{"a/b.csv": [["2014-01-01 00:00:00.000000", "2014-01-01 00:10:00.000000"]], "a/c.csv": []}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.count(), 1);
        assert_eq!(w.files().collect::<Vec<_>>(), ["a/b.csv", "a/c.csv"]);
        let times: Vec<DateTime> = (0..4)
            .filter_map(|m| parse_timestamp(&format!("2014-01-01 00:{:02}:00", m * 5)))
            .collect();
        let ab = w.get("a/b.csv").unwrap_or(&[]);
        assert_eq!(labels(&times, ab), [1, 1, 1, 0]);
        assert_eq!(
            resolve_windows(&times, ab),
            Ok(vec![RowWindow { first: 0, last: 2 }])
        );
        assert!(resolve_windows(&times[1..], ab).is_err());
    }
}

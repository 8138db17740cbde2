//! The NAB scorer against NAB's official numbers (`SCORING.md` §9 and §10 of the NAB dev set in
//! `$NAB_DIR`, default `/work/shared/nab`), and the `detect nab` / `detect nab-score` commands
//! as black boxes. Without the NAB files the tests fail, saying where they are expected:
//! skipping would hide a regression of the scorer.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use redline_collector::detect::nab::{
    self, PROFILES, ScoringFile, Sweep, ThresholdChoice, Windows, score::STANDARD,
};

const BIN: &str = env!("CARGO_BIN_EXE_redline-collector");

fn nab_dir() -> PathBuf {
    let dir = std::env::var_os("NAB_DIR")
        .map_or_else(|| PathBuf::from("/work/shared/nab"), PathBuf::from);
    assert!(
        dir.join("SCORING.md").is_file(),
        "the NAB dev set is expected in {} (set NAB_DIR)",
        dir.display()
    );
    dir
}

fn windows() -> Windows {
    nab::read_windows(&nab_dir().join("labels/windows.json")).unwrap()
}

fn handmade() -> Vec<ScoringFile> {
    let set =
        nab::load_results(&nab_dir().join("examples/results"), "handmade", &windows()).unwrap();
    assert_eq!(set.missing.len(), 43);
    set.files
}

fn close(a: f64, b: f64, eps: f64) -> bool {
    (a - b).abs() <= eps
}

/// SCORING.md §9.1: both hand-made files at θ = 0.5.
#[test]
fn worked_example_at_fixed_threshold() {
    let files = handmade();
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "artificialNoAnomaly/art_noisy.csv",
            "realTraffic/speed_7578.csv"
        ]
    );
    let report = nab::score_corpus(&files, ThresholdChoice::Fixed(0.5));
    assert_eq!(report.windows, 4);
    let want = [
        // speed_7578, art_noisy, raw S, normalized
        (0.4617938250, -0.55, -0.0882061750, 48.8974),
        (-0.0900440166, -1.10, -1.1900440166, 35.1244),
        (-0.5382061750, -0.55, -1.0882061750, 57.5983),
    ];
    for (p, (speed, noisy, raw, normalized)) in report.profiles.iter().zip(want) {
        let name = p.profile.name;
        assert!(
            close(p.files[1].raw, speed, 5e-11),
            "{name}: {}",
            p.files[1].raw
        );
        assert!(
            close(p.files[0].raw, noisy, 1e-12),
            "{name}: {}",
            p.files[0].raw
        );
        assert!(close(p.raw, raw, 5e-11), "{name}: {}", p.raw);
        assert_eq!(
            format!("{:.4}", p.normalized.unwrap()),
            format!("{normalized:.4}")
        );
        let c = p.counts;
        assert_eq!(
            (c.tp, c.fp, c.fn_, c.tn, c.total),
            (5, 12, 111, 4258, 4386),
            "{name}"
        );
    }
}

/// SCORING.md §9.2: every candidate of the sweep, and the optimized results.
#[test]
fn worked_example_threshold_sweep() {
    let files = handmade();
    let sweep = Sweep::new(&files);
    #[rustfmt::skip]
    let table: [(f64, usize, usize, [f64; 3]); 17] = [
        (1.1, 0, 0, [-4.000000, -4.000000, -8.000000]),
        (0.95, 1, 0, [-2.031089, -2.031089, -5.031089]),
        (0.85, 2, 0, [-0.212321, -0.212321, -2.212321]),
        (0.8, 2, 1, [-0.222116, -0.231912, -2.222116]),
        (0.75, 3, 1, [-0.114414, -0.124209, -2.114414]),
        (0.7, 3, 3, [-0.334414, -0.564209, -2.334414]),
        (0.65, 3, 4, [-0.444414, -0.784209, -2.444414]),
        (0.6, 4, 5, [-0.442104, -0.810678, -2.442104]),
        (0.58, 4, 6, [-0.552104, -1.030678, -2.552104]),
        (0.55, 4, 7, [-0.625367, -1.177205, -2.625367]),
        (0.52, 4, 10, [-0.955367, -1.837205, -2.955367]),
        (0.5, 5, 12, [-0.088206, -1.190044, -1.088206]),
        (0.45, 5, 13, [-0.198206, -1.410044, -1.198206]),
        (0.4, 5, 14, [-0.306448, -1.626528, -1.306448]),
        (0.35, 5, 34, [-2.506448, -6.026528, -3.506448]),
        (0.3, 6, 34, [-0.566686, -4.086766, -0.566686]),
        (0.0, 116, 4270, [-462.787343, -929.574687, -462.787343]),
    ];
    for (k, profile) in PROFILES.iter().enumerate() {
        let points = sweep.points(profile);
        assert_eq!(points.len(), table.len(), "{}", profile.name);
        for (p, (threshold, tp, fp, raw)) in points.iter().zip(&table) {
            assert_eq!(p.threshold, *threshold);
            assert_eq!((p.counts.tp, p.counts.fp), (*tp, *fp), "θ = {threshold}");
            assert!(
                close(p.raw, raw[k], 5e-7),
                "{} θ = {threshold}: {}",
                profile.name,
                p.raw
            );
        }
    }
    let report = nab::score_corpus(&files, ThresholdChoice::Optimize);
    let want = [
        (0.5, -0.0882061750, 48.8974, (5, 12, 111, 4258)),
        (0.75, -0.1242090156, 48.4474, (3, 1, 113, 4269)),
        (0.3, -0.5666860191, 61.9443, (6, 34, 110, 4236)),
    ];
    for (p, (threshold, raw, normalized, counts)) in report.profiles.iter().zip(want) {
        assert_eq!(p.threshold, threshold, "{}", p.profile.name);
        assert!(close(p.raw, raw, 5e-11), "{}: {}", p.profile.name, p.raw);
        assert_eq!(
            format!("{:.4}", p.normalized.unwrap()),
            format!("{normalized:.4}")
        );
        let c = p.counts;
        assert_eq!((c.tp, c.fp, c.fn_, c.tn), counts, "{}", p.profile.name);
    }
}

/// SCORING.md §9.2, last paragraph: speed_7578 scored on its own.
#[test]
fn worked_example_speed_7578_alone() {
    let files: Vec<ScoringFile> = handmade()
        .into_iter()
        .filter(|f| f.name == "realTraffic/speed_7578.csv")
        .collect();
    let fixed = nab::score_corpus(&files, ThresholdChoice::Fixed(0.5));
    let normalized: Vec<String> = fixed
        .profiles
        .iter()
        .map(|p| format!("{:.4}", p.normalized.unwrap()))
        .collect();
    assert_eq!(normalized, ["55.7724", "48.8744", "62.1816"]);
    let best = nab::score_corpus(&files, ThresholdChoice::Optimize);
    for (p, (raw, normalized)) in best.profiles.iter().zip([
        (2.2933139809, 78.6664),
        (1.6332341379, 70.4154),
        (2.2933139809, 85.7776),
    ]) {
        assert_eq!(p.threshold, 0.3, "{}", p.profile.name);
        assert!(close(p.raw, raw, 5e-11), "{}: {}", p.profile.name, p.raw);
        assert_eq!(
            format!("{:.4}", p.normalized.unwrap()),
            format!("{normalized:.4}")
        );
    }
}

/// The z-score baseline's scores on the 45 dev files, as `ScoringFile`s with the windows
/// matched to the data files' timestamps.
fn zscore_files() -> Vec<ScoringFile> {
    let dir = nab_dir();
    let gz = std::fs::File::open(dir.join("examples/zscoreBaseline_dev_scores.csv.gz")).unwrap();
    let mut scores: HashMap<String, Vec<f64>> = HashMap::new();
    let mut order = Vec::new();
    for (i, line) in BufReader::new(flate2::read::GzDecoder::new(gz))
        .lines()
        .enumerate()
    {
        let line = line.unwrap();
        if i == 0 {
            assert_eq!(line, "file,row,anomaly_score");
            continue;
        }
        let mut fields = line.split(',');
        let (file, row, score) = (
            fields.next().unwrap(),
            fields.next().unwrap(),
            fields.next().unwrap(),
        );
        let list = scores.entry(file.to_owned()).or_insert_with(|| {
            order.push(file.to_owned());
            Vec::new()
        });
        assert_eq!(row.parse::<usize>().unwrap(), list.len(), "{line}");
        list.push(score.parse().unwrap());
    }
    assert_eq!(order.len(), 45);
    let windows = windows();
    order
        .into_iter()
        .map(|name| {
            let rows = nab::read_data(&dir.join("data").join(&name)).unwrap();
            let times: Vec<_> = rows.iter().map(|r| r.time).collect();
            let file_scores = scores.remove(&name).unwrap();
            assert_eq!(file_scores.len(), rows.len(), "{name}");
            let w = nab::resolve_windows(&times, windows.get(&name).unwrap()).unwrap();
            ScoringFile::new(name, file_scores, w).unwrap()
        })
        .collect()
}

/// SCORING.md §10: every per-file raw score and row count of
/// `zscoreBaseline_dev_expected.csv`, for optimized thresholds and for θ = 0.9.
#[test]
fn zscore_baseline_matches_the_official_per_file_scores() {
    let files = zscore_files();
    assert_eq!(files.iter().map(ScoringFile::rows).sum::<usize>(), 297_728);
    let started = Instant::now();
    let optimized = nab::score_corpus(&files, ThresholdChoice::Optimize);
    let elapsed = started.elapsed();
    eprintln!("scoring 45 files with optimization took {elapsed:?}");
    assert!(elapsed.as_secs() < 30, "the sweep is too slow: {elapsed:?}");
    let fixed = nab::score_corpus(&files, ThresholdChoice::Fixed(0.9));
    assert_eq!(optimized.windows, 92);

    let expected =
        std::fs::read_to_string(nab_dir().join("examples/zscoreBaseline_dev_expected.csv"))
            .unwrap();
    let mut checked = 0;
    for line in expected.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (profile, kind, file, threshold, raw) = (f[0], f[1], f[2], f[3], f[4]);
        let counts: Vec<usize> = f[5..10].iter().map(|n| n.parse().unwrap()).collect();
        let report = match kind {
            "optimized" => &optimized,
            "fixed_0.9" => &fixed,
            other => panic!("unknown threshold kind {other}"),
        };
        let p = report
            .profiles
            .iter()
            .find(|p| p.profile.name == profile)
            .unwrap();
        assert_eq!(p.threshold, threshold.parse::<f64>().unwrap(), "{line}");
        let (got_raw, c) = if file == "TOTAL" {
            (p.raw, p.counts)
        } else {
            let s = p.files.iter().find(|s| s.name == file).unwrap();
            (s.raw, s.counts)
        };
        let want_raw: f64 = raw.parse().unwrap();
        assert!(close(got_raw, want_raw, 1e-9), "{line}: got {got_raw:.12}");
        assert_eq!(vec![c.tp, c.tn, c.fp, c.fn_, c.total], counts, "{line}");
        checked += 1;
    }
    assert_eq!(checked, 2 * 3 * 46);

    let normalized = |r: &nab::CorpusReport| -> Vec<String> {
        r.profiles
            .iter()
            .map(|p| format!("{:.4}", p.normalized.unwrap()))
            .collect()
    };
    assert_eq!(normalized(&optimized), ["32.3242", "21.2843", "44.7379"]);
    assert_eq!(normalized(&fixed), ["23.1994", "-20.6062", "39.0170"]);
    // The optimum is also the sweep's own maximum, and re-scoring at it gives the same S.
    let best = Sweep::new(&files).optimize(&STANDARD);
    assert!(close(best.raw, optimized.profiles[0].raw, 1e-9));
}

fn run(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.success(), stdout, stderr)
}

/// A line of the summary table (not of the per-file CSV).
fn is_profile_line(l: &str) -> bool {
    PROFILES
        .iter()
        .any(|p| l.starts_with(&format!("{} ", p.name)))
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

#[test]
fn cli_nab_score_prints_the_worked_example() {
    let dir = nab_dir();
    let results = dir.join("examples/results");
    let windows = dir.join("labels/windows.json");
    let (ok, stdout, stderr) = run(&[
        os("detect"),
        os("nab-score"),
        results.as_os_str(),
        os("--windows"),
        windows.as_os_str(),
        os("--detector"),
        os("handmade"),
        os("--per-file"),
    ]);
    assert!(ok, "{stderr}");
    let normalized: Vec<(&str, &str, &str)> = stdout
        .lines()
        .filter(|l| is_profile_line(l))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0], f[1], f[3])
        })
        .collect();
    assert_eq!(
        normalized,
        [
            ("standard", "0.5", "48.8974"),
            ("reward_low_FP_rate", "0.75", "48.4474"),
            ("reward_low_FN_rate", "0.3", "61.9443"),
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "standard,optimized,realTraffic/speed_7578.csv,0.5,0.461793825,5,835,7,111,958"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("reward_low_FN_rate,optimized,TOTAL,0.3,-0.566686019,6,4236,34,110,4386")
    );
    assert!(
        stderr.contains("43 labelled files have no results"),
        "{stderr}"
    );
}

/// Copies two dev files (one CRLF, one without a final newline) into a fresh data directory.
fn small_data_set(root: &Path) -> PathBuf {
    let data = root.join("data");
    for name in [
        "realTraffic/speed_7578.csv",
        "realAdExchange/exchange-2_cpc_results.csv",
    ] {
        let to = data.join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(nab_dir().join("data").join(name), to).unwrap();
    }
    data
}

#[test]
fn cli_detect_nab_writes_one_results_row_per_data_row_then_scores_them() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_data_set(tmp.path());
    let out = tmp.path().join("results");
    let windows = nab_dir().join("labels/windows.json");
    let (ok, stdout, stderr) = run(&[
        os("detect"),
        os("nab"),
        data.as_os_str(),
        out.as_os_str(),
        os("--windows"),
        windows.as_os_str(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("2 files, 2751 rows"), "{stdout}");
    for (name, result, window_rows) in [
        (
            "realTraffic/speed_7578.csv",
            "realTraffic/redline_speed_7578.csv",
            4 * 29,
        ),
        (
            "realAdExchange/exchange-2_cpc_results.csv",
            "realAdExchange/redline_exchange-2_cpc_results.csv",
            163,
        ),
    ] {
        let input = std::fs::read_to_string(data.join(name)).unwrap();
        let output = std::fs::read_to_string(out.join("redline").join(result)).unwrap();
        let mut lines = output.lines();
        assert_eq!(lines.next(), Some("timestamp,value,anomaly_score,label"));
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        let inputs: Vec<&str> = input
            .lines()
            .skip(1)
            .map(|l| l.trim_end_matches('\r'))
            .collect();
        assert_eq!(rows.len(), inputs.len(), "{name}");
        for (row, line) in rows.iter().zip(&inputs) {
            assert_eq!(format!("{},{}", row[0], row[1]), *line);
            let score: f64 = row[2].parse().unwrap();
            assert!((0.0..=1.0).contains(&score), "{name}: {score}");
        }
        let labelled = rows.iter().filter(|r| r[3] == "1").count();
        assert_eq!(labelled, window_rows, "{name}");
    }
    let (ok, stdout, stderr) = run(&[
        os("detect"),
        os("nab-score"),
        out.as_os_str(),
        os("--windows"),
        windows.as_os_str(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("2 files, 5 windows"), "{stdout}");
    assert_eq!(stdout.lines().filter(|l| is_profile_line(l)).count(), 3);
    // The same detector scored in memory agrees with the CLI's results files.
    let report = nab::evaluate(
        &data,
        &nab::read_windows(&windows).unwrap(),
        &redline_collector::detect::detector::Params::default(),
        ThresholdChoice::Optimize,
    )
    .unwrap();
    let standard = &report.profiles[0];
    let line = stdout.lines().find(|l| l.starts_with("standard ")).unwrap();
    let normalized = line.split_whitespace().nth(3).unwrap();
    assert_eq!(format!("{:.4}", standard.normalized.unwrap()), normalized);
}

#[test]
fn cli_errors_name_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data/cat");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("bad.csv"),
        "timestamp,value\r\n2014-04-01 00:00:00,1\r\n2014-04-01 00:05:00,oops\r\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let (ok, _, stderr) = run(&[
        os("detect"),
        os("nab"),
        tmp.path().join("data").as_os_str(),
        out.as_os_str(),
    ]);
    assert!(!ok);
    assert!(stderr.contains("bad.csv:3: value `oops`"), "{stderr}");

    // A windows file with a syntax error: file:line:column.
    let windows = tmp.path().join("windows.json");
    std::fs::write(
        &windows,
        "{\n  \"cat/bad.csv\": [\n    [\"2014-04-01 00:00:00\",]\n]}\n",
    )
    .unwrap();
    let (ok, _, stderr) = run(&[
        os("detect"),
        os("nab-score"),
        out.as_os_str(),
        os("--windows"),
        windows.as_os_str(),
    ]);
    assert!(!ok);
    assert!(stderr.contains("windows.json:3:"), "{stderr}");

    // A results file with a score outside [0, 1].
    std::fs::write(&windows, "{\"cat/bad.csv\": []}").unwrap();
    let results = out.join("redline/cat");
    std::fs::create_dir_all(&results).unwrap();
    std::fs::write(
        results.join("redline_bad.csv"),
        "timestamp,value,anomaly_score,label\n2014-04-01 00:00:00,1,0,0\n2014-04-01 00:05:00,2,NaN,0",
    )
    .unwrap();
    let (ok, _, stderr) = run(&[
        os("detect"),
        os("nab-score"),
        out.as_os_str(),
        os("--windows"),
        windows.as_os_str(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("redline_bad.csv:3: anomaly_score `NaN`"),
        "{stderr}"
    );

    // No results at all.
    let (ok, _, stderr) = run(&[
        os("detect"),
        os("nab-score"),
        tmp.path().as_os_str(),
        os("--windows"),
        windows.as_os_str(),
    ]);
    assert!(!ok);
    assert!(stderr.contains("redline: no such directory"), "{stderr}");
}

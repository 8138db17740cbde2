//! Unit tests of the pure evaluator over hand-made series, one group per family. Expected
//! values are worked out by hand from Prometheus' definitions (comments show the arithmetic).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use super::*;
use crate::model::Labels;

const BASE: i64 = 1_000_000; // seconds; keeps windows away from the epoch

fn labels(name: &str, pairs: &[(&str, &str)]) -> Labels {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.push(("__name__".into(), name.into()));
    Labels::new(v)
}

/// A series with samples at `BASE + t` seconds.
fn series(name: &str, pairs: &[(&str, &str)], points: &[(i64, f64)]) -> SeriesData {
    SeriesData {
        labels: Arc::new(labels(name, pairs)),
        samples: points
            .iter()
            .map(|(t, v)| Sample {
                timestamp_ms: (BASE + t) * 1000,
                value: *v,
            })
            .collect(),
    }
}

fn at(t: i64) -> i64 {
    (BASE + t) * 1000
}

fn instant(src: &MemorySource, q: &str, t: i64) -> Result<Value, QueryError> {
    evaluate_instant(&parse(q)?, at(t), src, &EvalOptions::default())
}

/// The vector as sorted `(labels text, value)` pairs.
fn vec_of(src: &MemorySource, q: &str, t: i64) -> Vec<(String, f64)> {
    match instant(src, q, t).unwrap() {
        Value::Vector(v) => {
            let mut out: Vec<(String, f64)> = v
                .into_iter()
                .map(|(l, s)| (eval::fmt_labels(&l), s.value))
                .collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        other => panic!("{q}: not a vector: {other:?}"),
    }
}

fn one(src: &MemorySource, q: &str, t: i64) -> f64 {
    let v = vec_of(src, q, t);
    assert_eq!(v.len(), 1, "{q}: {v:?}");
    v[0].1
}

fn scalar(src: &MemorySource, q: &str, t: i64) -> f64 {
    match instant(src, q, t).unwrap() {
        Value::Scalar(s) => s.value,
        other => panic!("{q}: not a scalar: {other:?}"),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

fn exec_err(src: &MemorySource, q: &str, t: i64) -> String {
    let e = instant(src, q, t).unwrap_err();
    assert_eq!(e.error_type(), "execution", "{q}: {e}");
    e.to_string()
}

fn counter() -> MemorySource {
    MemorySource::new(vec![series(
        "c",
        &[("job", "x")],
        &[(0, 10.0), (15, 20.0), (30, 5.0), (45, 15.0), (60, 25.0)],
    )])
}

#[test]
fn rate_increase_delta_extrapolate_and_correct_resets() {
    let src = counter();
    // Increase 25 - 10 = 15, plus 20 for the reset at 30 s: 35. The window is [60-300, 60]:
    // 240 s before the first sample, but the counter would reach zero 60 * 10/35 = 17.14 s
    // before it, which is past 1.1 * 15 s, so extrapolate half an interval (7.5 s); the end is
    // at the last sample. 35 * (60 + 7.5) / 60 = 39.375.
    assert!(close(one(&src, "increase(c[5m])", 60), 39.375));
    assert!(close(one(&src, "rate(c[5m])", 60), 39.375 / 300.0));
    // delta: no reset correction, no zero clamp: 15 * 67.5 / 60.
    assert!(close(one(&src, "delta(c[5m])", 60), 16.875));
    // Window [15, 60] (45 s range at 60): starts on a sample, ends on one: no extrapolation
    // beyond them. 20 -> 5 reset: (25 - 20) + 20 = 25.
    assert!(close(one(&src, "increase(c[45s])", 60), 25.0));
    // irate/idelta use the last two samples; resets and changes count.
    assert!(close(one(&src, "irate(c[5m])", 60), 10.0 / 15.0));
    assert!(close(one(&src, "idelta(c[5m])", 60), 10.0));
    assert_eq!(one(&src, "resets(c[5m])", 60), 1.0);
    assert_eq!(one(&src, "changes(c[5m])", 60), 4.0);
    // One sample: no rate.
    assert!(vec_of(&src, "rate(c[10s])", 60).is_empty());
    // Functions drop the metric name.
    assert_eq!(vec_of(&src, "rate(c[5m])", 60)[0].0, "{job=\"x\"}");
    // irate right after a reset takes the new value as the increase.
    assert!(close(one(&src, "irate(c[20s])", 30), 5.0 / 15.0));
}

#[test]
fn extrapolation_to_zero_and_both_edges() {
    // Counter starting at 0.5 with slope 1/s, samples every 10 s from 100 to 160 s; window
    // [50, 170] at 170 with 2m: the start gap (50 s) is cut to the zero point, 0.5 s before
    // the first sample, which is within 1.1 intervals (11 s): +0.5 s; the end gap 10 s < 11 s:
    // +10 s. Increase 60 * (60 + 0.5 + 10) / 60.
    let pts: Vec<(i64, f64)> = (0..=6)
        .map(|i| (100 + i * 10, 0.5 + i as f64 * 10.0))
        .collect();
    let src = MemorySource::new(vec![series("c", &[], &pts)]);
    assert!(close(one(&src, "increase(c[2m])", 170), 60.0 * 70.5 / 60.0));
}

#[test]
fn staleness_and_lookback() {
    let stale = f64::from_bits(crate::receiver::convert::STALE_NAN_BITS);
    let src = MemorySource::new(vec![
        series("g", &[("i", "1")], &[(0, 1.0), (60, 2.0), (120, stale)]),
        series("g", &[("i", "2")], &[(0, 3.0)]),
    ]);
    // The lookback window is closed: a sample exactly 5 minutes old still counts.
    assert_eq!(vec_of(&src, "g", 300).len(), 1);
    assert_eq!(vec_of(&src, "g", 301).len(), 0);
    // The staleness marker ends series 1 at once.
    assert_eq!(
        vec_of(&src, "g", 119),
        vec![
            ("{__name__=\"g\", i=\"1\"}".into(), 2.0),
            ("{__name__=\"g\", i=\"2\"}".into(), 3.0)
        ]
    );
    assert_eq!(
        vec_of(&src, "g", 120),
        vec![("{__name__=\"g\", i=\"2\"}".into(), 3.0)]
    );
    // Range vectors drop the marker but keep the rest.
    assert_eq!(one(&src, "count_over_time(g{i=\"1\"}[5m])", 150), 2.0);
    assert_eq!(one(&src, "last_over_time(g{i=\"1\"}[5m])", 150), 2.0);
    // last_over_time keeps the name.
    assert!(
        vec_of(&src, "last_over_time(g{i=\"1\"}[5m])", 150)[0]
            .0
            .contains("__name__")
    );
    // Range windows are closed too: [60, 120] holds the samples at 60 (and the marker).
    assert_eq!(one(&src, "count_over_time(g{i=\"1\"}[1m])", 120), 1.0);
    // Offset and @.
    assert_eq!(one(&src, "g{i=\"1\"} offset 1m", 119), 1.0);
    assert_eq!(
        one(&src, &format!("g{{i=\"1\"}} @ {}", BASE + 60), 1000),
        2.0
    );
    // absent and absent_over_time.
    assert_eq!(
        vec_of(&src, "absent(g{i=\"1\"})", 130),
        vec![("{i=\"1\"}".into(), 1.0)]
    );
    assert!(vec_of(&src, "absent(g)", 130).is_empty());
    assert_eq!(
        vec_of(&src, "absent(nope{a=\"x\", b=~\"y\", c=\"1\", c=\"2\"})", 0),
        vec![("{a=\"x\"}".into(), 1.0)]
    );
    assert_eq!(one(&src, "absent_over_time(g{i=\"1\"}[1m])", 250), 1.0);
    assert!(vec_of(&src, "absent_over_time(g{i=\"1\"}[5m])", 250).is_empty());
}

fn histogram() -> MemorySource {
    let b =
        |le: &str, v: f64, job: &str| series("h_bucket", &[("le", le), ("job", job)], &[(0, v)]);
    MemorySource::new(vec![
        b("0.5", 2.0, "a"),
        b("1", 6.0, "a"),
        b("+Inf", 10.0, "a"),
        // Not monotonic: the 1.0 bucket is raised to 5.
        b("0.5", 5.0, "b"),
        b("1", 3.0, "b"),
        b("+Inf", 10.0, "b"),
        // No +Inf bucket.
        b("1", 3.0, "c"),
        // Only +Inf: fewer than two buckets.
        b("+Inf", 3.0, "d"),
        // Unparseable bound: skipped.
        b("x", 3.0, "e"),
    ])
}

#[test]
fn histogram_quantile_like_prometheus() {
    let src = histogram();
    let v = vec_of(&src, "histogram_quantile(0.5, h_bucket)", 0);
    let get = |job: &str| {
        v.iter()
            .find(|(l, _)| l == &format!("{{job=\"{job}\"}}"))
            .map(|x| x.1)
            .unwrap()
    };
    // rank 5 falls in (0.5, 1] holding 4 of which 3 are needed: 0.5 + 0.5 * 3/4.
    assert!(close(get("a"), 0.875));
    assert!(close(get("b"), 0.5));
    assert!(get("c").is_nan());
    assert!(get("d").is_nan());
    assert_eq!(v.len(), 4);
    // Above the last finite bucket: its bound.
    let v = vec_of(&src, "histogram_quantile(0.95, h_bucket{job=\"a\"})", 0);
    assert_eq!(v[0].1, 1.0);
    assert_eq!(
        one(&src, "histogram_quantile(2, h_bucket{job=\"a\"})", 0),
        f64::INFINITY
    );
    assert_eq!(
        one(&src, "histogram_quantile(-1, h_bucket{job=\"a\"})", 0),
        f64::NEG_INFINITY
    );
}

fn matching() -> MemorySource {
    MemorySource::new(vec![
        series("req", &[("job", "a"), ("code", "200")], &[(0, 10.0)]),
        series("req", &[("job", "a"), ("code", "500")], &[(0, 2.0)]),
        series("req", &[("job", "b"), ("code", "200")], &[(0, 5.0)]),
        series("lim", &[("job", "a"), ("team", "x")], &[(0, 4.0)]),
        series("lim", &[("job", "b"), ("team", "y")], &[(0, 8.0)]),
        series("one", &[("job", "a"), ("code", "200")], &[(0, 1.0)]),
    ])
}

#[test]
fn vector_matching_and_cardinality_errors() {
    let src = matching();
    // One-to-one on all labels but the name.
    assert_eq!(
        vec_of(&src, "req + one", 0),
        vec![("{code=\"200\", job=\"a\"}".into(), 11.0)]
    );
    // on(): only the listed labels survive in one-to-one matching.
    assert_eq!(
        vec_of(&src, "sum by (job) (req) / on(job) lim", 0),
        vec![
            ("{job=\"a\"}".into(), 3.0),
            ("{job=\"b\"}".into(), 5.0 / 8.0)
        ]
    );
    // group_left copies `team` from the one side; the many side keeps its labels.
    assert_eq!(
        vec_of(&src, "req * on(job) group_left(team) lim", 0),
        vec![
            ("{code=\"200\", job=\"a\", team=\"x\"}".into(), 40.0),
            ("{code=\"200\", job=\"b\", team=\"y\"}".into(), 40.0),
            ("{code=\"500\", job=\"a\", team=\"x\"}".into(), 8.0),
        ]
    );
    // group_right mirrors it.
    assert_eq!(
        vec_of(&src, "lim * on(job) group_right(team) req", 0).len(),
        3
    );
    // ignoring.
    assert_eq!(
        vec_of(
            &src,
            "req{code=\"200\"} - ignoring(code, team) group_left lim",
            0
        ),
        vec![
            ("{code=\"200\", job=\"a\"}".into(), 6.0),
            ("{code=\"200\", job=\"b\"}".into(), -3.0)
        ]
    );
    // Many on the "one" side.
    let e = exec_err(&src, "lim * on(job) group_left req", 0);
    assert!(
        e.starts_with("found duplicate series for the match group {job=\"a\"} on the right hand-side of the operation: [")
            && e.ends_with(";many-to-many matching not allowed: matching labels must be unique on one side"),
        "{e}"
    );
    let e = exec_err(&src, "lim + on(job) req", 0);
    assert!(e.contains("many-to-many matching not allowed"), "{e}");
    let e = exec_err(&src, "req + on(job) lim", 0);
    assert_eq!(
        e,
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    );
    // Functions dropping the name can collide.
    let e = exec_err(
        &src,
        "abs({__name__=~\"req|one\", code=\"200\", job=\"a\"})",
        0,
    );
    assert_eq!(e, "vector cannot contain metrics with the same labelset");
}

#[test]
fn comparisons_filter_or_return_bool() {
    let src = matching();
    // Filtering keeps the left value and the name.
    assert_eq!(
        vec_of(&src, "req > 4", 0),
        vec![
            ("{__name__=\"req\", code=\"200\", job=\"a\"}".into(), 10.0),
            ("{__name__=\"req\", code=\"200\", job=\"b\"}".into(), 5.0)
        ]
    );
    // A scalar on the left still yields the vector's value.
    assert_eq!(vec_of(&src, "4 < req", 0).len(), 2);
    assert_eq!(vec_of(&src, "4 < req", 0)[0].1, 10.0);
    // bool: every element, 0 or 1, no name.
    assert_eq!(
        vec_of(&src, "req > bool 4", 0),
        vec![
            ("{code=\"200\", job=\"a\"}".into(), 1.0),
            ("{code=\"200\", job=\"b\"}".into(), 1.0),
            ("{code=\"500\", job=\"a\"}".into(), 0.0)
        ]
    );
    // Vector-vector comparison keeps the left side's value.
    assert_eq!(
        vec_of(&src, "req >= ignoring(code, team) group_left lim", 0).len(),
        1
    );
    assert_eq!(scalar(&src, "1 < bool 2", 0), 1.0);
    assert_eq!(scalar(&src, "2 ^ 3 % 5", 0), 3.0);
}

#[test]
fn set_operators() {
    let src = matching();
    assert_eq!(vec_of(&src, "req and one", 0).len(), 1);
    assert_eq!(vec_of(&src, "req and on(job) lim", 0).len(), 3);
    assert_eq!(vec_of(&src, "req unless one", 0).len(), 2);
    assert_eq!(
        vec_of(&src, "req unless on(job) lim{job=\"a\"}", 0).len(),
        1
    );
    // or adds the right side's elements whose groups the left lacks; names kept.
    let v = vec_of(&src, "req{job=\"b\"} or on(job) lim", 0);
    assert_eq!(v.len(), 2);
    assert!(v.iter().any(|(l, _)| l.contains("lim")));
    assert_eq!(vec_of(&src, "nothing or one", 0).len(), 1);
}

#[test]
fn aggregations() {
    let src = matching();
    assert_eq!(
        vec_of(&src, "sum by (job) (req)", 0),
        vec![("{job=\"a\"}".into(), 12.0), ("{job=\"b\"}".into(), 5.0)]
    );
    assert_eq!(
        vec_of(&src, "sum without (code) (req)", 0),
        vec![("{job=\"a\"}".into(), 12.0), ("{job=\"b\"}".into(), 5.0)]
    );
    assert_eq!(one(&src, "count(req)", 0), 3.0);
    assert!(close(one(&src, "avg(req)", 0), 17.0 / 3.0));
    assert_eq!(one(&src, "min(req)", 0), 2.0);
    assert_eq!(one(&src, "max(req)", 0), 10.0);
    assert_eq!(one(&src, "group(req)", 0), 1.0);
    // Population standard deviation of 10, 2, 5: mean 17/3.
    let m = 17.0 / 3.0;
    let var = ((10.0f64 - m).powi(2) + (2.0f64 - m).powi(2) + (5.0f64 - m).powi(2)) / 3.0;
    assert!(close(one(&src, "stddev(req)", 0), var.sqrt()));
    assert!(close(one(&src, "stdvar(req)", 0), var));
    // quantile interpolates: sorted 2, 5, 10; rank 0.5 * 2 = 1 → 5; 0.75 → 1.5 → 7.5.
    assert_eq!(one(&src, "quantile(0.5, req)", 0), 5.0);
    assert_eq!(one(&src, "quantile(0.75, req)", 0), 7.5);
    // topk/bottomk keep the series' labels.
    let v = vec_of(&src, "topk(2, req)", 0);
    assert_eq!(v.iter().map(|x| x.1).collect::<Vec<_>>(), vec![10.0, 5.0]);
    assert!(v[0].0.contains("__name__"));
    assert_eq!(vec_of(&src, "bottomk by (job) (1, req)", 0).len(), 2);
    assert!(vec_of(&src, "topk(0, req)", 0).is_empty());
    // count_values adds the value label.
    assert_eq!(
        vec_of(&src, "count_values(\"v\", req)", 0),
        vec![
            ("{v=\"10\"}".into(), 1.0),
            ("{v=\"2\"}".into(), 1.0),
            ("{v=\"5\"}".into(), 1.0)
        ]
    );
    assert_eq!(
        vec_of(&src, "count_values without (code) (\"v\", req)", 0).len(),
        3
    );
    let e = exec_err(&src, "count_values(\"a-b\", req)", 0);
    assert!(e.contains("invalid label name"), "{e}");
    // by (__name__) keeps the name.
    assert_eq!(
        vec_of(&src, "sum by (__name__) ({job=\"a\"})", 0),
        vec![
            ("{__name__=\"lim\"}".into(), 4.0),
            ("{__name__=\"one\"}".into(), 1.0),
            ("{__name__=\"req\"}".into(), 12.0)
        ]
    );
}

#[test]
fn over_time_functions() {
    let src = MemorySource::new(vec![series(
        "g",
        &[],
        &[(0, 1.0), (10, 3.0), (20, 2.0), (30, 6.0)],
    )]);
    assert_eq!(one(&src, "avg_over_time(g[1m])", 30), 3.0);
    assert_eq!(one(&src, "sum_over_time(g[1m])", 30), 12.0);
    assert_eq!(one(&src, "min_over_time(g[1m])", 30), 1.0);
    assert_eq!(one(&src, "max_over_time(g[1m])", 30), 6.0);
    assert_eq!(one(&src, "count_over_time(g[1m])", 30), 4.0);
    assert_eq!(one(&src, "present_over_time(g[1m])", 30), 1.0);
    // Sorted 1 2 3 6, rank 0.5 * 3 = 1.5 → 2.5.
    assert_eq!(one(&src, "quantile_over_time(0.5, g[1m])", 30), 2.5);
    // Population variance of 1 3 2 6 around 3: (4 + 0 + 1 + 9) / 4.
    assert!(close(one(&src, "stdvar_over_time(g[1m])", 30), 3.5));
    assert!(close(
        one(&src, "stddev_over_time(g[1m])", 30),
        3.5f64.sqrt()
    ));
    // Least squares over x = 0, 10, 20, 30 s: slope = cov / var = 70 / 500 per second.
    assert!(close(one(&src, "deriv(g[1m])", 30), 0.14));
    // predict_linear from the fit at t: intercept at t (x = 0 at 30 s) plus 60 s of slope.
    let intercept_at_30 = 3.0 + 0.14 * (30.0 - 15.0);
    assert!(close(
        one(&src, "predict_linear(g[1m], 60)", 30),
        intercept_at_30 + 0.14 * 60.0
    ));
    // Subquery: max of the 10 s steps of g over the last 30 s (aligned on multiples of 10 s).
    assert_eq!(one(&src, "max_over_time(g[30s:10s])", 30), 6.0);
    assert_eq!(one(&src, "count_over_time(g[30s:10s])", 30), 4.0);
    assert_eq!(one(&src, "count_over_time((g * 2)[1m:])", 60), 1.0);
}

#[test]
fn scalars_labels_and_time() {
    let src = matching();
    assert_eq!(scalar(&src, "scalar(one)", 0), 1.0);
    assert!(scalar(&src, "scalar(req)", 0).is_nan());
    assert_eq!(scalar(&src, "time()", 5), (BASE + 5) as f64);
    assert_eq!(vec_of(&src, "vector(3)", 0), vec![("{}".into(), 3.0)]);
    assert_eq!(one(&src, "timestamp(one)", 100), BASE as f64);
    assert_eq!(one(&src, "timestamp(one * 1)", 100), (BASE + 100) as f64);
    assert_eq!(
        vec_of(
            &src,
            "label_replace(one, \"dst\", \"c-$1\", \"code\", \"(.)00\")",
            0
        ),
        vec![(
            "{__name__=\"one\", code=\"200\", dst=\"c-2\", job=\"a\"}".into(),
            1.0
        )]
    );
    // No match: unchanged.
    assert_eq!(
        vec_of(
            &src,
            "label_replace(one, \"dst\", \"$1\", \"code\", \"x(.*)\")",
            0
        )[0]
        .0,
        "{__name__=\"one\", code=\"200\", job=\"a\"}"
    );
    assert_eq!(
        vec_of(&src, "label_join(one, \"j\", \"/\", \"job\", \"code\")", 0)[0].0,
        "{__name__=\"one\", code=\"200\", j=\"a/200\", job=\"a\"}"
    );
    let e = exec_err(&src, "label_replace(one, \"a-b\", \"\", \"code\", \"\")", 0);
    assert!(e.contains("invalid destination label name"), "{e}");
    let e = exec_err(&src, r#"label_replace(one, "d", "", "code", "a{1001}")"#, 0);
    assert!(
        e.contains("invalid regular expression in label_replace(): a{1001}"),
        "{e}"
    );
    assert_eq!(one(&src, "round(one * 2.5)", 0), 3.0);
    assert_eq!(one(&src, "round(one * 2.4, 0.5)", 0), 2.5);
    assert_eq!(one(&src, "clamp_max(one * 7, 5)", 0), 5.0);
    assert_eq!(one(&src, "clamp_min(one * -7, 0)", 0), 0.0);
    assert!(vec_of(&src, "clamp(one, 5, 1)", 0).is_empty());
    assert_eq!(one(&src, "ceil(one * 1.2)", 0), 2.0);
    assert_eq!(one(&src, "floor(one * 1.2)", 0), 1.0);
    assert_eq!(one(&src, "abs(one * -3)", 0), 3.0);
    // sort keeps labels and orders by value.
    match instant(&src, "sort_desc(req)", 0).unwrap() {
        Value::Vector(v) => {
            let vals: Vec<f64> = v.iter().map(|(_, s)| s.value).collect();
            assert_eq!(vals, vec![10.0, 5.0, 2.0]);
        }
        other => panic!("{other:?}"),
    }
    // 1970-01-12T13:46:40Z is BASE; a Monday.
    assert_eq!(one(&src, "day_of_month(timestamp(one))", 0), 12.0);
    assert_eq!(one(&src, "day_of_week(timestamp(one))", 0), 1.0);
    assert_eq!(one(&src, "hour(timestamp(one))", 0), 13.0);
    assert_eq!(one(&src, "minute(timestamp(one))", 0), 46.0);
    // Day 59 after the epoch is 1970-03-01.
    assert_eq!(one(&src, "days_in_month(vector(5097600))", 0), 31.0);
}

#[test]
fn range_queries_join_steps() {
    let src = MemorySource::new(vec![
        series("g", &[("i", "1")], &[(0, 1.0), (60, 5.0)]),
        series("g", &[("i", "2")], &[(0, 3.0), (60, 2.0)]),
    ]);
    let expr = parse("topk(1, g)").unwrap();
    let v = evaluate_range(&expr, at(0), at(60), 60_000, &src, &EvalOptions::default()).unwrap();
    match v {
        Value::Matrix(m) => {
            // i=2 wins at 0, i=1 at 60: two series, one point each, sorted by labels.
            assert_eq!(m.len(), 2);
            assert_eq!(
                m[0].1,
                vec![Sample {
                    timestamp_ms: at(60),
                    value: 5.0
                }]
            );
            assert_eq!(
                m[1].1,
                vec![Sample {
                    timestamp_ms: at(0),
                    value: 3.0
                }]
            );
        }
        other => panic!("{other:?}"),
    }
    let expr = parse("time()").unwrap();
    match evaluate_range(&expr, at(0), at(30), 15_000, &src, &EvalOptions::default()).unwrap() {
        Value::Matrix(m) => {
            assert_eq!(m.len(), 1);
            assert!(m[0].0.is_empty());
            assert_eq!(m[0].1.len(), 3);
        }
        other => panic!("{other:?}"),
    }
    let expr = parse("g[1m]").unwrap();
    let err =
        evaluate_range(&expr, at(0), at(30), 15_000, &src, &EvalOptions::default()).unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
}

#[test]
fn cancellation_stops_evaluation() {
    let src = counter();
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let options = EvalOptions {
        cancel: Some(flag),
        ..EvalOptions::default()
    };
    let expr = parse("rate(c[5m])").unwrap();
    let err = evaluate_range(&expr, at(0), at(60), 15_000, &src, &options).unwrap_err();
    assert_eq!(err.error_type(), "timeout");
}

//! Redline's PromQL against Prometheus' own: the same generated samples are remote-written into
//! a real Prometheus (Debian's `prometheus`, 2.42) and written into a Redline store, then a broad
//! set of queries is run on both, as instant queries at several times and as a range query, and
//! the answers must agree: same result type, same label sets, values equal within 1e-9 relative
//! (NaN equals NaN), same `errorType` for invalid queries.
//!
//! Without `prometheus` on PATH the test prints a note and passes, unless `CI` is set.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message;
use redline_collector::config::QueryLimits;
use redline_collector::model::{Labels, Sample, SeriesSamples};
use redline_collector::query::{Engine, QueryError, Value};
use redline_collector::store::{Store, StoreOptions, WriteBatch};
use redline_testkit::{Guard, free_port};
use serde_json::Value as Json;

const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;
const STEP_MS: i64 = 15_000;
const POINTS: i64 = 200; // 50 minutes at 15 s

// --- prompb (remote write 1.0) -------------------------------------------------------------

#[derive(Clone, PartialEq, prost::Message)]
struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    samples: Vec<PSample>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Label {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PSample {
    #[prost(double, tag = "1")]
    value: f64,
    #[prost(int64, tag = "2")]
    timestamp: i64,
}

// --- the data set ----------------------------------------------------------------------------

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Rounded to milli-units, as exporters' values usually are.
    fn value(&mut self, scale: f64) -> f64 {
        (self.unit() * scale * 1000.0).round() / 1000.0
    }
}

struct Series {
    labels: Vec<(String, String)>,
    samples: Vec<(i64, f64)>,
}

fn series(name: &str, pairs: &[(&str, &str)]) -> Series {
    let mut labels: Vec<(String, String)> = pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    labels.push(("__name__".into(), name.into()));
    labels.sort();
    Series {
        labels,
        samples: Vec::new(),
    }
}

/// Counters with resets, gauges, a series that goes stale, one with a long gap, classic
/// histograms and info-style series, at 15 s steps with up to ±400 ms of jitter.
fn generate(t0: i64) -> Vec<Series> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    let ts = |rng: &mut Rng, i: i64| t0 + i * STEP_MS + (rng.next() % 801) as i64 - 400;

    for instance in ["i1", "i2", "i3"] {
        for code in ["200", "500"] {
            let mut s = series(
                "http_requests_total",
                &[("job", "api"), ("instance", instance), ("code", code)],
            );
            let mut v = rng.value(100.0);
            for i in 0..POINTS {
                // Resets now and then (more often for i3).
                let reset_every = if instance == "i3" { 37 } else { 83 };
                if i > 0 && i % reset_every == 0 {
                    v = rng.value(3.0);
                } else {
                    v += rng.value(if code == "200" { 20.0 } else { 2.0 });
                }
                s.samples.push((ts(&mut rng, i), v));
            }
            out.push(s);
        }
        let mut up = series("up", &[("job", "api"), ("instance", instance)]);
        let mut load = series("node_load", &[("job", "node"), ("instance", instance)]);
        let mut info = series(
            "build_info",
            &[
                ("instance", instance),
                ("version", &format!("1.{}", instance.len())),
            ],
        );
        let mut g = rng.value(4.0);
        for i in 0..POINTS {
            let t = ts(&mut rng, i);
            up.samples.push((
                t,
                if (i / 20) % 5 == 4 && instance == "i2" {
                    0.0
                } else {
                    1.0
                },
            ));
            g = (g + rng.value(1.0) - 0.5).abs();
            load.samples.push((t, g));
            info.samples.push((t, 1.0));
        }
        out.extend([up, load, info]);
    }

    for room in ["a", "b"] {
        let mut s = series("temperature", &[("room", room)]);
        let mut v = 20.0;
        for i in 0..POINTS {
            v += rng.value(1.0) - 0.5;
            s.samples
                .push((ts(&mut rng, i), (v * 1000.0f64).round() / 1000.0));
        }
        out.push(s);
    }

    // Goes stale at step 100 (a staleness marker), comes back at step 140.
    let mut flappy = series("flappy", &[("instance", "x")]);
    for i in 0..POINTS {
        let t = ts(&mut rng, i);
        match i {
            0..100 => flappy.samples.push((t, rng.value(10.0))),
            100 => flappy.samples.push((t, f64::from_bits(STALE_NAN))),
            101..140 => {}
            _ => flappy.samples.push((t, rng.value(10.0))),
        }
    }
    out.push(flappy);

    // No data for 10 minutes (steps 80 to 119).
    let mut gappy = series("gappy", &[("instance", "y")]);
    for i in 0..POINTS {
        let t = ts(&mut rng, i);
        if !(80..120).contains(&i) {
            gappy.samples.push((t, rng.value(50.0)));
        }
    }
    out.push(gappy);

    // Classic histograms.
    let bounds = ["0.1", "0.5", "1", "+Inf"];
    for instance in ["i1", "i2"] {
        let mut buckets: Vec<Series> = bounds
            .iter()
            .map(|le| {
                series(
                    "req_duration_seconds_bucket",
                    &[("job", "api"), ("instance", instance), ("le", le)],
                )
            })
            .collect();
        let mut sum = series(
            "req_duration_seconds_sum",
            &[("job", "api"), ("instance", instance)],
        );
        let mut count = series(
            "req_duration_seconds_count",
            &[("job", "api"), ("instance", instance)],
        );
        let mut counts = [0.0f64; 4];
        let mut total = 0.0;
        for i in 0..POINTS {
            let t = ts(&mut rng, i);
            let n = (rng.next() % 20) as usize;
            for _ in 0..n {
                let x = rng.unit() * 1.5;
                total += x;
                for (b, bound) in [0.1, 0.5, 1.0, f64::INFINITY].iter().enumerate() {
                    if x <= *bound {
                        counts[b] += 1.0;
                    }
                }
            }
            for (b, s) in buckets.iter_mut().enumerate() {
                s.samples.push((t, counts[b]));
            }
            sum.samples.push((t, (total * 1e6).round() / 1e6));
            count.samples.push((t, counts[3]));
        }
        out.extend(buckets);
        out.extend([sum, count]);
    }
    out
}

// --- Prometheus ------------------------------------------------------------------------------

/// The Prometheus process (killed when dropped), its API address and its data directory.
struct Prometheus {
    _child: Guard,
    base: String,
    _dir: tempfile::TempDir,
}

fn find_prometheus() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
}

async fn start_prometheus(bin: PathBuf, client: &reqwest::Client) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "").unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let p = Prometheus {
        _child: Guard(child),
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{}/-/ready", p.base)).send().await
            && r.status().is_success()
        {
            return p;
        }
        if Instant::now() > deadline {
            let log =
                std::fs::read_to_string(p._dir.path().join("prometheus.log")).unwrap_or_default();
            panic!("prometheus did not become ready:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn remote_write(p: &Prometheus, client: &reqwest::Client, data: &[Series]) {
    let request = WriteRequest {
        timeseries: data
            .iter()
            .map(|s| TimeSeries {
                labels: s
                    .labels
                    .iter()
                    .map(|(n, v)| Label {
                        name: n.clone(),
                        value: v.clone(),
                    })
                    .collect(),
                samples: s
                    .samples
                    .iter()
                    .map(|(t, v)| PSample {
                        value: *v,
                        timestamp: *t,
                    })
                    .collect(),
            })
            .collect(),
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .unwrap();
    let r = client
        .post(format!("{}/api/v1/write", p.base))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert!(
        status.is_success(),
        "remote write: {status}: {}",
        r.text().await.unwrap_or_default()
    );
}

// --- comparison ------------------------------------------------------------------------------

/// A series' points as (ms, value).
type Points = Vec<(i64, f64)>;

/// A result normalised for comparison: label sets as sorted maps, values as f64.
#[derive(Debug)]
enum Answer {
    Vector(Vec<(BTreeMap<String, String>, f64)>),
    Matrix(BTreeMap<Vec<(String, String)>, Points>),
    Scalar(i64, f64),
    String(i64, String),
    Error(String, String),
}

fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn ms_of(j: &Json) -> i64 {
    (j.as_f64().unwrap() * 1000.0).round() as i64
}

fn num(j: &Json) -> f64 {
    j.as_str().unwrap().parse().unwrap()
}

fn metric(j: &Json) -> BTreeMap<String, String> {
    j.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

fn from_prometheus(j: &Json) -> Answer {
    if j["status"] != "success" {
        return Answer::Error(
            j["errorType"].as_str().unwrap_or("").to_owned(),
            j["error"].as_str().unwrap_or("").to_owned(),
        );
    }
    let data = &j["data"];
    let result = &data["result"];
    match data["resultType"].as_str().unwrap() {
        "vector" => Answer::Vector(
            result
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (metric(&e["metric"]), num(&e["value"][1])))
                .collect(),
        ),
        "matrix" => Answer::Matrix(
            result
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        metric(&e["metric"]).into_iter().collect(),
                        e["values"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|p| (ms_of(&p[0]), num(&p[1])))
                            .collect(),
                    )
                })
                .collect(),
        ),
        "scalar" => Answer::Scalar(ms_of(&result[0]), num(&result[1])),
        "string" => Answer::String(ms_of(&result[0]), result[1].as_str().unwrap().to_owned()),
        other => panic!("unknown resultType {other}"),
    }
}

fn label_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

fn from_redline(r: Result<Value, QueryError>) -> Answer {
    match r {
        Err(e) => Answer::Error(e.error_type().to_owned(), e.to_string()),
        Ok(Value::Vector(v)) => {
            Answer::Vector(v.iter().map(|(l, s)| (label_map(l), s.value)).collect())
        }
        Ok(Value::Matrix(m)) => Answer::Matrix(
            m.iter()
                .map(|(l, s)| {
                    (
                        label_map(l).into_iter().collect(),
                        s.iter().map(|x| (x.timestamp_ms, x.value)).collect(),
                    )
                })
                .collect(),
        ),
        Ok(Value::Scalar(s)) => Answer::Scalar(s.timestamp_ms, s.value),
        Ok(Value::String(t, s)) => Answer::String(t, s),
    }
}

fn same(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

impl Answer {
    /// The error message, if this is an error.
    fn error(&self) -> Option<&str> {
        match self {
            Answer::Error(_, m) => Some(m),
            _ => None,
        }
    }

    /// Whether the answer holds data (not an error, not an empty vector or matrix).
    fn has_data(&self) -> bool {
        match self {
            Answer::Vector(v) => !v.is_empty(),
            Answer::Matrix(m) => !m.is_empty(),
            Answer::Scalar(..) | Answer::String(..) => true,
            Answer::Error(..) => false,
        }
    }
}

/// `None` when the answers agree, else what differs. `ordered` compares vector order too (by
/// value, since ties may be listed either way).
fn compare(prom: &Answer, ours: &Answer, ordered: bool) -> Option<String> {
    match (prom, ours) {
        (Answer::Error(pt, pm), Answer::Error(ot, om)) => {
            (pt != ot).then(|| format!("errorType {pt} ({pm}) vs {ot} ({om})"))
        }
        (Answer::Scalar(pt, pv), Answer::Scalar(ot, ov)) => {
            (pt != ot || !same(*pv, *ov)).then(|| format!("scalar {pt}:{pv} vs {ot}:{ov}"))
        }
        (Answer::String(pt, ps), Answer::String(ot, os)) => {
            (pt != ot || ps != os).then(|| format!("string {ps:?} vs {os:?}"))
        }
        (Answer::Vector(p), Answer::Vector(o)) => {
            if p.len() != o.len() {
                return Some(format!(
                    "{} elements vs {}: {p:?} vs {o:?}",
                    p.len(),
                    o.len()
                ));
            }
            if ordered {
                for (a, b) in p.iter().zip(o) {
                    if !same(a.1, b.1) {
                        return Some(format!("order/value differs: {p:?} vs {o:?}"));
                    }
                }
            }
            let pm: BTreeMap<_, _> = p.iter().cloned().collect();
            let om: BTreeMap<_, _> = o.iter().cloned().collect();
            for (l, v) in &pm {
                match om.get(l) {
                    None => return Some(format!("missing {l:?} in ours: {p:?} vs {o:?}")),
                    Some(w) if !same(*v, *w) => return Some(format!("{l:?}: {v} vs {w}")),
                    _ => {}
                }
            }
            (pm.len() != om.len()).then(|| "duplicate label sets".to_owned())
        }
        (Answer::Matrix(p), Answer::Matrix(o)) => {
            if p.len() != o.len() {
                let pk: Vec<_> = p.keys().collect();
                let ok: Vec<_> = o.keys().collect();
                return Some(format!(
                    "{} series vs {}: {pk:?} vs {ok:?}",
                    p.len(),
                    o.len()
                ));
            }
            for (l, pts) in p {
                let Some(ours) = o.get(l) else {
                    return Some(format!("missing series {l:?} in ours"));
                };
                if pts.len() != ours.len() {
                    return Some(format!(
                        "{l:?}: {} points vs {}: {pts:?} vs {ours:?}",
                        pts.len(),
                        ours.len()
                    ));
                }
                for (a, b) in pts.iter().zip(ours) {
                    if a.0 != b.0 || !same(a.1, b.1) {
                        return Some(format!("{l:?}: point {a:?} vs {b:?}"));
                    }
                }
            }
            None
        }
        _ => Some(format!("different result types: {prom:?} vs {ours:?}")),
    }
}

/// The query set: every function, aggregation and operator the engine claims, with
/// by/without/on/ignoring/group_left/group_right/bool/offset/@, and a few invalid queries.
fn queries(t0: i64) -> Vec<String> {
    let q = [
        // Selectors, matchers, offset, @.
        "http_requests_total",
        "http_requests_total{code=\"500\"}",
        "http_requests_total{code!=\"500\", instance=\"i1\"}",
        "http_requests_total{instance=~\"i[12]\"}",
        "http_requests_total{instance!~\"i1|i2\"}",
        "{__name__=~\"node_.*|temperature\"}",
        "node_load offset 5m",
        "node_load offset -2m",
        "node_load @ start()",
        "node_load @ end() offset 1m",
        "flappy",
        "gappy",
        "flappy offset 10m",
        "http_requests_total[2m]",
        "flappy[10m]",
        "up == 0",
        // Counters and gauges over time.
        "rate(http_requests_total[5m])",
        "rate(http_requests_total[1m])",
        "rate(http_requests_total[10m] offset 3m)",
        "irate(http_requests_total[5m])",
        "increase(http_requests_total[15m])",
        "increase(http_requests_total{instance=\"i3\"}[30m])",
        "delta(temperature[10m])",
        "idelta(temperature[5m])",
        "deriv(node_load[10m])",
        "deriv(up[5m])",
        "predict_linear(node_load[15m], 3600)",
        "resets(http_requests_total[30m])",
        "changes(up[20m])",
        "changes(flappy[20m])",
        "avg_over_time(node_load[10m])",
        "min_over_time(temperature[10m])",
        "max_over_time(temperature[10m])",
        "sum_over_time(node_load[5m])",
        "count_over_time(flappy[10m])",
        "count_over_time(gappy[3m])",
        "stddev_over_time(node_load[10m])",
        "stdvar_over_time(temperature[15m])",
        "quantile_over_time(0.9, node_load[10m])",
        "quantile_over_time(0, temperature[5m])",
        "last_over_time(flappy[10m])",
        "holt_winters(node_load[10m], 0.5, 0.3)",
        "holt_winters(temperature[5m], 0.1, 0.9)",
        "last_over_time(gappy[7m])",
        "present_over_time(gappy[2m])",
        "absent_over_time(gappy[2m])",
        "absent_over_time(nonexistent{job=\"x\", instance=~\"y\"}[5m])",
        "absent(nonexistent{job=\"x\"})",
        "absent(flappy)",
        "absent(gappy{instance=\"y\"})",
        // Histograms.
        "histogram_quantile(0.9, rate(req_duration_seconds_bucket[5m]))",
        "histogram_quantile(0.5, sum by (le) (rate(req_duration_seconds_bucket[10m])))",
        "histogram_quantile(0.99, sum by (le, instance) (increase(req_duration_seconds_bucket[5m])))",
        "histogram_quantile(0, req_duration_seconds_bucket)",
        "histogram_quantile(1.5, req_duration_seconds_bucket)",
        "histogram_quantile(0.5, req_duration_seconds_bucket{le!=\"+Inf\"})",
        "rate(req_duration_seconds_sum[5m]) / rate(req_duration_seconds_count[5m])",
        // Math and clamping.
        "abs(temperature - 20)",
        "ceil(node_load)",
        "floor(node_load)",
        "round(node_load)",
        "round(temperature, 0.25)",
        "clamp_min(node_load, 1.5)",
        "clamp_max(node_load, 1.5)",
        "clamp(temperature, 19.5, 20.5)",
        "sqrt(node_load)",
        "exp(node_load)",
        "ln(node_load)",
        "log2(http_requests_total)",
        "sgn(temperature - 20)",
        // Time.
        "time()",
        "timestamp(node_load)",
        "timestamp(flappy offset 1m)",
        "time() - timestamp(gappy)",
        "vector(time())",
        "minute(timestamp(up{instance=\"i1\"}))",
        "hour()",
        // Scalars and vectors.
        "scalar(up{instance=\"i1\"})",
        "scalar(up)",
        "vector(1)",
        "vector(scalar(sum(up)))",
        "node_load * scalar(temperature{room=\"a\"})",
        "1 + 2 * 3",
        "2 ^ 10 % 7",
        "\"hello\"",
        "-node_load",
        "(1 > bool 2) + 1",
        // Labels.
        "label_replace(up, \"host\", \"$1\", \"instance\", \"i(.*)\")",
        "label_replace(up, \"instance\", \"\", \"instance\", \".*\")",
        "label_replace(up, \"x\", \"$1\", \"instance\", \"nomatch(.*)\")",
        "label_join(up, \"id\", \"/\", \"job\", \"instance\")",
        "sort(node_load)",
        "sort_desc(temperature)",
        // Aggregations.
        "sum(http_requests_total)",
        "sum by (code) (rate(http_requests_total[5m]))",
        "sum without (instance) (rate(http_requests_total[5m]))",
        "avg by (job) (node_load)",
        "min(node_load)",
        "max by (code) (http_requests_total)",
        "count(up)",
        "count by (job) (up == 1)",
        "group by (job) (up)",
        "stddev(node_load)",
        "stdvar by (code) (http_requests_total)",
        "quantile(0.75, node_load)",
        "quantile by (code) (0.1, rate(http_requests_total[5m]))",
        "topk(2, node_load)",
        "topk by (code) (1, http_requests_total)",
        "bottomk(2, rate(http_requests_total[5m]))",
        "count_values(\"value\", up)",
        "count_values without (instance) (\"v\", up)",
        "sum(up) by (instance)",
        "sum by (__name__) ({job=\"api\"})",
        // Arithmetic and vector matching.
        "http_requests_total{code=\"500\"} / ignoring(code) http_requests_total{code=\"200\"}",
        "sum by (instance) (http_requests_total) / on(instance) group_left node_load",
        "http_requests_total * on(instance) group_left(version) build_info",
        "build_info * on(instance) group_right(version) http_requests_total",
        "node_load + on(instance) up",
        "node_load - ignoring(job) up",
        "rate(http_requests_total[5m]) * 60",
        "100 * (1 - avg by (instance) (up))",
        "node_load atan2 on() group_left temperature{room=\"a\"}",
        "vector(1) + on() group_right node_load",
        "node_load / 0",
        "node_load % 0.7",
        "node_load ^ 2",
        "1 / (up - 1)",
        "ln(node_load - 2)",
        "http_requests_total + on(job) http_requests_total",
        "sum(http_requests_total) + on() group_left sum by (code) (http_requests_total)",
        // Comparisons.
        "node_load > 1",
        "node_load > bool 1",
        "1 < node_load",
        "node_load >= on(instance) group_left node_load offset 1m",
        "temperature != bool 20",
        "up == bool on(instance) node_load > bool 1",
        "rate(http_requests_total[5m]) > 0.5",
        // Set operators.
        "node_load and ignoring(job) up == 1",
        "node_load and on(instance) up == 0",
        "node_load or temperature",
        "up or on(instance) node_load",
        "node_load unless on(instance) up == 0",
        "http_requests_total unless ignoring(code) (http_requests_total{code=\"500\"} > 30)",
        "flappy or gappy",
        // Subqueries.
        "max_over_time(rate(http_requests_total[5m])[30m:1m])",
        "avg_over_time(node_load[10m:])",
        "min_over_time(sum(node_load)[15m:2m] offset 5m)",
        "rate(sum(http_requests_total)[10m:30s])",
        "node_load[5m:1m]",
        "avg_over_time(rate(http_requests_total[2m])[10m:45s] offset 2m)",
        "max_over_time(node_load[10m:1m] @ end())",
        "sum_over_time(flappy[20m:15s])",
        // Ties, NaN and edge cases.
        "topk(1, up)",
        "bottomk(2, up)",
        "topk(2, build_info)",
        "topk(scalar(count(up)) - 1, node_load)",
        "quantile(0.5, up)",
        "quantile(1.5, up)",
        "count_values(\"v\", node_load)",
        "count_values by (instance) (\"v\", up)",
        "sort(up)",
        "sum without () (node_load)",
        "absent(up{job=\"api\", instance=\"i9\"})",
        "absent_over_time(flappy[1m])",
        "last_over_time(flappy[1m])",
        "rate(flappy[5m])",
        "deriv(flappy[5m])",
        "idelta(http_requests_total[1m])",
        "irate(http_requests_total{instance=\"i3\"}[1m])",
        "changes(temperature[5m])",
        "predict_linear(http_requests_total[5m], 600)",
        "stddev by (code) (rate(http_requests_total[5m]))",
        "sort_desc(sum by (instance) (rate(http_requests_total[5m])))",
        "sum by (code) (rate(http_requests_total[5m])) > bool 0.5",
        "round(-node_load)",
        "clamp(node_load, 2, 1)",
        "timestamp(vector(1))",
        "day_of_week()",
        "days_in_month()",
        "year(vector(1e9))",
        "month()",
        "pi()",
        "scalar(node_load) > bool 0",
        "-(node_load)",
        "node_load offset 1h",
        "{__name__=~\"req_duration.*\", le=\"+Inf\"}",
        "increase(req_duration_seconds_count[5m])",
        "sort(ln(node_load - 2))",
        "topk(2, ln(node_load - 2))",
        "max(ln(node_load - 2))",
        "min(ln(node_load - 2))",
        "sort_desc(ln(node_load - 2))",
        "count_values(\"v\", node_load * 2)",
        "count_values(\"v\", (up - 1) / (up - 1))",
        "count_values(\"v\", 1 / (up - 1))",
        "quantile(0.5, ln(node_load - 2))",
        "avg(1 / (up - 1))",
        "stddev(1 / (up - 1))",
        "sum_over_time((1 / (up - 1))[5m:])",
        "changes(ln(node_load - 2)[5m:30s])",
        "histogram_quantile(0.5, rate(req_duration_seconds_bucket[1m]) * 0)",
        "sum by (le) (req_duration_seconds_bucket) / ignoring(le) group_left sum(req_duration_seconds_count)",
        "label_join(up, \"x\", \"-\")",
        "label_replace(up, \"__name__\", \"foo_$1\", \"instance\", \"(.*)\")",
        "timestamp(timestamp(up))",
        "up @ start() offset 2m",
        "rate(http_requests_total[5m] @ end())",
        "absent(sum(nonexistent))",
        "absent(nonexistent{job=\"a\"} offset 5m)",
        "vector(1) and on() absent(nonexistent)",
        "scalar(vector(NaN))",
        "predict_linear(up[5m], 100)",
        "-1 * up",
        "up == bool up",
        "up != up",
        "node_load > on(instance) group_left() up",
        "max_over_time(max_over_time(node_load[2m:30s])[10m:1m])",
        "sum(count_over_time(http_requests_total[1m:10s]))",
        "avg_over_time(node_load[5m:30s] @ start())",
        "rate(http_requests_total[5m:1m])",
        "quantile_over_time(0.5, node_load[5m:1m])",
        "bottomk(1, -node_load)",
        "topk by (job) (1, node_load)",
        "count without (instance, code) (http_requests_total)",
        // Invalid queries.
        "1 > 2",
        "holt_winters(node_load[10m], 1, 0.3)",
        "up[5m] + 1",
        "absent(up, up)",
        "sum by (instance) (up) * on(instance) group_left(instance) up",
        "sum(",
        "rate(node_load)",
        "foo bar",
        "label_replace(up, \"a-b\", \"\", \"\", \"\")",
        "{job=~\".*\"}",
        "topk(nope, up)",
    ];
    let mut q: Vec<String> = q.iter().map(|s| s.to_string()).collect();
    // `@` with a literal time inside the data and before it.
    q.push(format!("node_load @ {}", secs(t0 + 20 * 60_000)));
    q.push(format!(
        "rate(http_requests_total[5m] @ {})",
        secs(t0 + 30 * 60_000 + 1)
    ));
    q.push(format!("up @ {}", secs(t0 - 3_600_000)));
    q
}

async fn prom_query(client: &reqwest::Client, base: &str, params: &[(&str, String)]) -> Json {
    let path = if params.iter().any(|(k, _)| *k == "step") {
        "query_range"
    } else {
        "query"
    };
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let r = client
        .post(format!("{base}/api/v1/{path}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_answers_equal_prometheus() {
    // This test builds HTTP clients before any collector (which installs it) starts.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(bin) = find_prometheus() else {
        if std::env::var_os("CI").is_some() {
            panic!("prometheus is not on PATH (Debian package `prometheus`), and CI is set");
        }
        eprintln!("note: prometheus is not on PATH; skipping the comparison with Prometheus");
        return;
    };
    let started = Instant::now();
    let client = reqwest::Client::new();
    let prom = start_prometheus(bin, &client).await;

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // 50 minutes of data ending about a minute ago, on whole seconds plus jitter.
    let t0 = (now - POINTS * STEP_MS - 60_000) / 1000 * 1000;
    let data = generate(t0);
    remote_write(&prom, &client, &data).await;

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions::new(dir.path())).unwrap();
    let batch = WriteBatch {
        series: data
            .iter()
            .map(|s| SeriesSamples {
                labels: Labels::new(s.labels.clone()),
                samples: s
                    .samples
                    .iter()
                    .map(|(t, v)| Sample {
                        timestamp_ms: *t,
                        value: *v,
                    })
                    .collect(),
            })
            .collect(),
        ..WriteBatch::default()
    };
    store.write(batch).await.unwrap();
    let engine = Arc::new(Engine::new(
        store.clone(),
        QueryLimits {
            max_series: 10_000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(30),
        },
    ));

    // Instant times: early, inside the stale stretch and the gap, late; a range query across
    // everything with a step that does not divide the data's.
    let instants = [
        t0 + 7 * 60_000 + 3_500,
        t0 + 21 * 60_000,
        t0 + 26 * 60_000 + 7_250,
        t0 + 33 * 60_000,
        t0 + 48 * 60_000 + 500,
    ];
    let (start, end, step) = (t0 + 5 * 60_000, t0 + 49 * 60_000, 45_000);

    let (mut checked, mut with_data, mut errors) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    let list = queries(t0);
    for q in &list {
        let ordered = q.starts_with("sort");
        for &t in &instants {
            let p = prom_query(
                &client,
                &prom.base,
                &[("query", q.clone()), ("time", secs(t))],
            )
            .await;
            let ours = engine.instant(q, t).await;
            checked += 1;
            let p = from_prometheus(&p);
            with_data += usize::from(p.has_data());
            errors += usize::from(matches!(p, Answer::Error(..)));
            if let Some(diff) = compare(&p, &from_redline(ours), ordered) {
                failures.push(format!("instant {q} @ {}: {diff}", secs(t)));
            }
        }
        let p = prom_query(
            &client,
            &prom.base,
            &[
                ("query", q.clone()),
                ("start", secs(start)),
                ("end", secs(end)),
                ("step", secs(step)),
            ],
        )
        .await;
        let ours = engine.range(q, start, end, step).await;
        checked += 1;
        let p = from_prometheus(&p);
        with_data += usize::from(p.has_data());
        errors += usize::from(matches!(p, Answer::Error(..)));
        let ours = from_redline(ours);
        if let (Some(pm), Some(om)) = (p.error(), ours.error())
            && pm != om
        {
            // Same errorType (checked below), different words: shown, not failed.
            println!("error wording: {q:?}\n  prometheus: {pm}\n  redline:    {om}");
        }
        if let Some(diff) = compare(&p, &ours, false) {
            failures.push(format!("range {q}: {diff}"));
        }
    }
    store.close().await.unwrap();
    println!(
        "promql vs prometheus: {} of {checked} comparisons matched ({} queries × ({} instants + 1 range); {with_data} with data, {errors} errors on both sides) in {:.1}s",
        checked - failures.len(),
        list.len(),
        instants.len(),
        started.elapsed().as_secs_f64()
    );
    // Guard against a vacuous pass (data not ingested, every answer empty).
    assert!(
        with_data * 10 >= checked * 8,
        "only {with_data} of {checked} answers held data"
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} comparisons differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

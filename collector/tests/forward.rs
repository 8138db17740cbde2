//! Forwarding against real peers: remote_write into a real VictoriaMetrics and a real
//! Prometheus (read back through their own query APIs and compared, labels and values, with
//! what the collector itself stored), delivery across an upstream outage and a collector
//! restart, and OTLP forwarding of metrics, traces and logs into a second Redline collector
//! over gRPC and OTLP/HTTP, plus the retry rules against a scripted OTLP server.
//!
//! The peer binaries come from Debian packages (`victoria-metrics`, `prometheus`); they are
//! started on 127.0.0.1 with a free port and a temporary data directory. Without one, the test
//! that needs it prints a note and passes, unless `CI` is set, where it fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use redline_collector::config::Config;
use redline_testkit::{Guard, free_port};
use serde_json::Value;
use support::collector::{self, Running};
use support::otlp::{kv, now_ms};

// ---------------------------------------------------------------------------------------
// Peers

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
}

/// The peer binary, or `None` (after a note) when it is missing and `CI` is not set.
fn peer(names: &[&str], package: &str) -> Option<PathBuf> {
    match find_binary(names) {
        Some(p) => Some(p),
        None if std::env::var_os("CI").is_some() => {
            panic!(
                "{} is not on PATH (Debian package `{package}`), and CI is set",
                names[0]
            )
        }
        None => {
            eprintln!(
                "note: {} is not on PATH (Debian package `{package}`); skipping",
                names[0]
            );
            None
        }
    }
}

/// A peer process, killed when dropped.
struct Peer {
    _child: Guard,
    base: String,
    dir: tempfile::TempDir,
    what: &'static str,
}

impl Peer {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("peer.log")).unwrap_or_default()
    }

    async fn wait_ready(self, path: &str) -> Peer {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(format!("{}{path}", self.base)).send().await
                && r.status().is_success()
            {
                return self;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not become ready:\n{}",
                self.what,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn start_victoria(bin: &Path, port: u16) -> Peer {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("peer.log")).unwrap();
    let child = Command::new(bin)
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg(format!(
            "-storageDataPath={}",
            dir.path().join("data").display()
        ))
        .arg("-retentionPeriod=100y")
        .arg("-search.latencyOffset=0s")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Peer {
        _child: Guard(child),
        base: format!("http://127.0.0.1:{port}"),
        dir,
        what: "victoria-metrics",
    }
    .wait_ready("/health")
    .await
}

async fn start_prometheus(bin: &Path) -> Peer {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "").unwrap();
    let log = std::fs::File::create(dir.path().join("peer.log")).unwrap();
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
    Peer {
        _child: Guard(child),
        base: format!("http://127.0.0.1:{port}"),
        dir,
        what: "prometheus",
    }
    .wait_ready("/-/ready")
    .await
}

/// One series as a peer returns it: labels, and (ms, value) samples in time order.
type SeriesSet = BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>>;

fn number(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        other => other.as_f64().unwrap(),
    }
}

fn labels_of(metric: &Value) -> BTreeMap<String, String> {
    metric
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// A Prometheus-API matrix (`/api/v1/query` of a range selector) as a series set.
fn matrix(body: &Value) -> SeriesSet {
    assert_eq!(body["status"], "success", "{body}");
    body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let samples = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                        number(&p[1]),
                    )
                })
                .collect();
            (labels_of(&s["metric"]), samples)
        })
        .collect()
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn query_matrix(base: String, q: String) -> SeriesSet {
    let body: Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/query?query={}", encode(&q)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    matrix(&body)
}

/// VictoriaMetrics' raw samples (`/api/v1/export`, JSON lines).
async fn victoria_export(base: &str, selector: &str) -> SeriesSet {
    let client = reqwest::Client::new();
    // Makes recently ingested samples searchable now rather than within a second or two.
    let _ = client
        .get(format!("{base}/internal/force_flush"))
        .send()
        .await;
    let text = client
        .get(format!("{base}/api/v1/export?match[]={}", encode(selector)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut out = SeriesSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        let ts = v["timestamps"].as_array().unwrap();
        let vals = v["values"].as_array().unwrap();
        let mut samples: Vec<(i64, f64)> = ts
            .iter()
            .zip(vals)
            .map(|(t, v)| (t.as_i64().unwrap(), number(v)))
            .collect();
        samples.sort_by_key(|s| s.0);
        out.entry(labels_of(&v["metric"]))
            .or_default()
            .extend(samples);
    }
    out
}

/// Polls `read` until it equals `want` (bounded; not a timing assertion).
async fn wait_equal<F, Fut>(what: &str, want: &SeriesSet, mut read: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = SeriesSet>,
{
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let got = read().await;
        if &got == want {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: the peer's data differs from the collector's\n  want: {want:?}\n  got:  {got:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

// ---------------------------------------------------------------------------------------
// The collector

/// The harness' configuration with the `forward:` section given as YAML.
fn config_with(data: &Path, forward_yaml: &str) -> Config {
    let mut c = collector::config(data);
    c.forward = Config::from_yaml(forward_yaml, Path::new("forward.yaml"))
        .unwrap()
        .forward;
    // Derived series (anomaly scores) would be forwarded too; they are not what these
    // tests look at.
    c.detect.enabled = false;
    c
}

fn resource(service: &str, host: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", service), kv("host.name", host)],
        ..Default::default()
    })
}

/// A request with a gauge, a monotonic cumulative sum and a histogram, `n` points each,
/// ending a few seconds ago, from `host`; metric names start with `prefix`.
fn mixed_metrics(prefix: &str, host: &str, t0: i64, n: usize) -> ExportMetricsServiceRequest {
    let ns = |t: i64| (t as u64) * 1_000_000;
    let mut gauge_points = Vec::new();
    let mut sum_points = Vec::new();
    let mut hist_points = Vec::new();
    for i in 0..n {
        let t = t0 + i as i64 * 1000;
        gauge_points.push(NumberDataPoint {
            time_unix_nano: ns(t),
            value: Some(number_data_point::Value::AsDouble(0.25 * i as f64 - 1.5)),
            attributes: vec![kv("cpu", "0"), kv("state", "user")],
            ..Default::default()
        });
        sum_points.push(NumberDataPoint {
            start_time_unix_nano: ns(t0 - 60_000),
            time_unix_nano: ns(t),
            value: Some(number_data_point::Value::AsInt(100 + 7 * i as i64)),
            attributes: vec![kv("http.route", "/cart"), kv("Zone", "eu-1")],
            ..Default::default()
        });
        hist_points.push(HistogramDataPoint {
            start_time_unix_nano: ns(t0 - 60_000),
            time_unix_nano: ns(t),
            count: 10 + i as u64,
            sum: Some(1.5 * (10 + i) as f64),
            bucket_counts: vec![2, 5 + i as u64, 3],
            explicit_bounds: vec![0.1, 1.0],
            ..Default::default()
        });
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("shop", host),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    Metric {
                        name: format!("{prefix}.cpu.load"),
                        unit: "1".into(),
                        data: Some(metric::Data::Gauge(
                            opentelemetry_proto::tonic::metrics::v1::Gauge {
                                data_points: gauge_points,
                            },
                        )),
                        ..Default::default()
                    },
                    Metric {
                        name: format!("{prefix}.requests"),
                        unit: "{request}".into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: sum_points,
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: format!("{prefix}.latency"),
                        unit: "s".into(),
                        data: Some(metric::Data::Histogram(Histogram {
                            data_points: hist_points,
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// What the collector itself stored for the metrics matching `name_re`.
async fn collector_series(c: &Running, name_re: &str) -> SeriesSet {
    query_matrix(
        format!("http://{}", c.http),
        format!("{{__name__=~\"{name_re}\"}}[30m]"),
    )
    .await
}

async fn own_metrics(c: &Running) -> String {
    reqwest::get(c.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the first `/metrics` line starting with `prefix` (0 when absent).
fn metric_value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------
// remote_write

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_reaches_victoria_metrics_and_prometheus_exactly() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (Some(vm_bin), Some(prom_bin)) = (
        peer(
            &["victoria-metrics", "victoria-metrics-prod"],
            "victoria-metrics",
        ),
        peer(&["prometheus"], "prometheus"),
    ) else {
        return;
    };
    let vm = start_victoria(&vm_bin, free_port()).await;
    let prom = start_prometheus(&prom_bin).await;
    let dir = tempfile::tempdir().unwrap();
    // A small max_samples_per_send so one export is split over several requests; an external
    // label, as a collector that shards a fleet sets, which every forwarded series carries.
    let mut config = config_with(
        dir.path(),
        &format!(
            "forward:\n  remote_write:\n    - {{url: '{}/api/v1/write', name: vm-exact, max_samples_per_send: 7, initial_backoff: 20ms, max_backoff: 200ms}}\n    - {{url: '{}/api/v1/write', name: prom-exact, initial_backoff: 20ms, max_backoff: 200ms}}\n",
            vm.base, prom.base
        ),
    );
    config
        .rules
        .external_labels
        .insert("shard".into(), "eu-1".into());
    let c = collector::start(config).await;
    let t0 = (now_ms() - 120_000) / 1000 * 1000 + 123;
    c.export(mixed_metrics("rwexact", "web-1", t0, 12)).await;
    c.export(mixed_metrics("rwexact", "web-2", t0 + 500, 12))
        .await;

    let want = collector_series(&c, "rwexact_.*").await;
    let names: std::collections::BTreeSet<&str> =
        want.keys().map(|l| l["__name__"].as_str()).collect();
    // Not a vacuous comparison: the gauge, the counter and the histogram's series are there,
    // named as the collector's OTLP → Prometheus conversion names them.
    for n in [
        "rwexact_cpu_load_ratio",
        "rwexact_requests_total",
        "rwexact_latency_seconds_bucket",
        "rwexact_latency_seconds_sum",
        "rwexact_latency_seconds_count",
    ] {
        assert!(names.contains(n), "{n} missing from {names:?}");
    }
    let samples: usize = want.values().map(Vec::len).sum();
    assert_eq!(samples, 2 * 12 * (1 + 1 + 3 + 2), "{want:?}");
    let want: SeriesSet = want
        .into_iter()
        .map(|(mut labels, samples)| {
            assert!(!labels.contains_key("shard"));
            labels.insert("shard".into(), "eu-1".into());
            (labels, samples)
        })
        .collect();

    wait_equal("victoria-metrics", &want, || {
        victoria_export(&vm.base, "{__name__=~\"rwexact_.*\"}")
    })
    .await;
    wait_equal("prometheus", &want, || {
        query_matrix(prom.base.clone(), "{__name__=~\"rwexact_.*\"}[30m]".into())
    })
    .await;

    let m = own_metrics(&c).await;
    assert!(
        metric_value(
            &m,
            "redline_collector_forward_sent_total{target=\"remote_write:vm-exact\""
        ) >= samples as f64,
        "{m}"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_survives_an_outage_and_a_restart_exactly_once() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(vm_bin) = peer(
        &["victoria-metrics", "victoria-metrics-prod"],
        "victoria-metrics",
    ) else {
        return;
    };
    let port = free_port();
    let forward = format!(
        "forward:\n  remote_write:\n    - {{url: 'http://127.0.0.1:{port}/api/v1/write', name: vm-outage, max_samples_per_send: 5, initial_backoff: 20ms, max_backoff: 100ms}}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let t0 = (now_ms() - 300_000) / 1000 * 1000;
    let points = |from: i64, n: i64| -> Vec<(i64, f64)> {
        (0..n)
            .map(|i| (t0 + (from + i) * 1000, (from + i) as f64 * 1.25))
            .collect()
    };

    // 1. The upstream is down: the export is acknowledged (stored and queued), then the
    //    collector stops with the queue still full.
    let c = collector::start(config_with(dir.path(), &forward)).await;
    c.gauge("outage.gauge", "", "db-1", &points(0, 20), &[])
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = own_metrics(&c).await;
        if metric_value(
            &m,
            "redline_collector_forward_retries_total{target=\"remote_write:vm-outage\"",
        ) >= 2.0
        {
            assert!(
                metric_value(
                    &m,
                    "redline_collector_forward_queue_rows{target=\"remote_write:vm-outage\""
                ) >= 4.0,
                "{m}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no retries: {m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.stop().await;

    // 2. Restarted with the queue from before, upstream still down; more data arrives.
    let c = collector::start(config_with(dir.path(), &forward)).await;
    c.gauge("outage.gauge", "", "db-1", &points(20, 10), &[])
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 3. The upstream comes up: everything arrives, exactly once.
    let vm = start_victoria(&vm_bin, port).await;
    let want = collector_series(&c, "outage_gauge").await;
    assert_eq!(want.values().map(Vec::len).sum::<usize>(), 30, "{want:?}");
    wait_equal("victoria-metrics", &want, || {
        victoria_export(&vm.base, "{__name__=\"outage_gauge\"}")
    })
    .await;
    // The queue drains to empty.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = own_metrics(&c).await;
        if metric_value(
            &m,
            "redline_collector_forward_queue_rows{target=\"remote_write:vm-outage\"",
        ) == 0.0
        {
            break;
        }
        assert!(Instant::now() < deadline, "queue not drained: {m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.stop().await;
    // Nothing was sent twice: still exactly the collector's samples after a while.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        victoria_export(&vm.base, "{__name__=\"outage_gauge\"}").await,
        want
    );
}

/// One request a scripted receiver got: the status it answered and the (ms, value) samples.
type Answered = (u16, Vec<(i64, f64)>);

/// A remote_write receiver that answers from a script, and records what it got.
#[derive(Clone, Default)]
struct Scripted {
    /// Statuses to answer, in order; 204 once exhausted.
    script: Arc<Mutex<Vec<u16>>>,
    /// (status answered, samples in the request) per request.
    got: Arc<Mutex<Vec<Answered>>>,
}

async fn scripted_receiver(state: Scripted) -> String {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};
    use prost::Message;
    async fn write(
        axum::extract::State(s): axum::extract::State<Scripted>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        assert_eq!(headers["content-encoding"], "snappy");
        assert_eq!(headers["content-type"], "application/x-protobuf");
        assert_eq!(headers["x-prometheus-remote-write-version"], "0.1.0");
        assert_eq!(headers["authorization"], "Bearer rw-token");
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let req =
            redline_collector::forward::remote_write::WriteRequest::decode(raw.as_slice()).unwrap();
        let samples = req
            .timeseries
            .iter()
            .flat_map(|t| t.samples.iter().map(|s| (s.timestamp, s.value)))
            .collect();
        let status = {
            let mut script = s.script.lock().unwrap();
            if script.is_empty() {
                204
            } else {
                script.remove(0)
            }
        };
        s.got.lock().unwrap().push((status, samples));
        StatusCode::from_u16(status).unwrap()
    }
    let app = axum::Router::new()
        .route("/api/v1/write", axum::routing::post(write))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/api/v1/write")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_retries_5xx_and_429_but_drops_other_4xx() {
    let state = Scripted::default();
    *state.script.lock().unwrap() = vec![503, 429, 204, 400];
    let url = scripted_receiver(state.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "rw-token\n").unwrap();
    let c = collector::start(config_with(
        &dir.path().join("data"),
        &format!(
            "forward:\n  remote_write:\n    - {{url: '{url}', name: scripted, bearer_token_file: '{}', initial_backoff: 10ms, max_backoff: 50ms}}\n",
            token.display()
        ),
    ))
    .await;
    let t = now_ms() / 1000 * 1000 - 10_000;
    c.gauge("scripted.a", "", "h", &[(t, 1.0)], &[]).await;
    wait_until(|| state.got.lock().unwrap().len() >= 3).await;
    c.gauge("scripted.b", "", "h", &[(t, 2.0)], &[]).await;
    wait_until(|| state.got.lock().unwrap().len() >= 4).await;
    c.gauge("scripted.c", "", "h", &[(t, 3.0)], &[]).await;
    wait_until(|| state.got.lock().unwrap().len() >= 5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = state.got.lock().unwrap().clone();
    // 503 and 429 were retried with the same samples; the 400 was not retried: the next
    // request already carries the next write.
    assert_eq!(
        got,
        vec![
            (503, vec![(t, 1.0)]),
            (429, vec![(t, 1.0)]),
            (204, vec![(t, 1.0)]),
            (400, vec![(t, 2.0)]),
            (204, vec![(t, 3.0)]),
        ]
    );
    let m = own_metrics(&c).await;
    assert_eq!(
        metric_value(
            &m,
            "redline_collector_forward_dropped_total{target=\"remote_write:scripted\",reason=\"rejected\"}"
        ),
        1.0,
        "{m}"
    );
    c.stop().await;
}

async fn wait_until(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "condition not reached");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------
// OTLP forward

fn spans(service: &str, trace: u8, n: usize) -> ExportTraceServiceRequest {
    let t = support::otlp::now_ns() - 5_000_000_000;
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(service, "web-1"),
            scope_spans: vec![ScopeSpans {
                spans: (0..n)
                    .map(|i| Span {
                        trace_id: vec![trace; 16],
                        span_id: vec![i as u8 + 1; 8],
                        parent_span_id: if i == 0 { Vec::new() } else { vec![1; 8] },
                        name: format!("op-{i}"),
                        kind: 2,
                        start_time_unix_nano: t + i as u64 * 1000,
                        end_time_unix_nano: t + 1_000_000 + i as u64 * 1000,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn logs(service: &str, n: usize) -> ExportLogsServiceRequest {
    let t = support::otlp::now_ns() - 5_000_000_000;
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(service, "web-1"),
            scope_logs: vec![ScopeLogs {
                log_records: (0..n)
                    .map(|i| LogRecord {
                        time_unix_nano: t + i as u64,
                        severity_number: 9,
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(format!("line {i}"))),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Sends metrics, traces and logs of `service` to `c`.
async fn send_all_signals(c: &Running, prefix: &str, service: &str, trace: u8) {
    let t0 = (now_ms() - 60_000) / 1000 * 1000;
    let mut metrics = mixed_metrics(prefix, "web-1", t0, 5);
    metrics.resource_metrics[0].resource = resource(service, "web-1");
    c.export(metrics).await;
    let mut client = TraceServiceClient::connect(format!("http://{}", c.grpc))
        .await
        .unwrap();
    client.export(spans(service, trace, 3)).await.unwrap();
    let mut client = LogsServiceClient::connect(format!("http://{}", c.grpc))
        .await
        .unwrap();
    client.export(logs(service, 4)).await.unwrap();
}

/// Waits until `upstream` holds what `send_all_signals` sent to `origin`: the same metric
/// series and samples, the three spans, the four log records.
async fn assert_forwarded(
    origin: &Running,
    upstream: &Running,
    prefix: &str,
    service: &str,
    trace: u8,
) {
    let want = collector_series(origin, &format!("{prefix}_.*")).await;
    assert_eq!(want.values().map(Vec::len).sum::<usize>(), 5 * 7);
    let base = format!("http://{}", upstream.http);
    wait_equal("upstream collector", &want, || {
        query_matrix(base.clone(), format!("{{__name__=~\"{prefix}_.*\"}}[30m]"))
    })
    .await;
    let id = format!("{trace:02x}").repeat(16);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = upstream.get_with_status(&format!("/api/traces/{id}")).await;
        if status == 200 && body["data"][0]["spans"].as_array().map(Vec::len) == Some(3) {
            break;
        }
        assert!(Instant::now() < deadline, "trace {id}: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = upstream
            .get(&format!("/api/v1/logs?service={service}"))
            .await;
        let mut lines: Vec<String> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["body"].as_str().unwrap().to_owned())
            .collect();
        lines.sort();
        if lines == ["line 0", "line 1", "line 2", "line 3"] {
            break;
        }
        assert!(Instant::now() < deadline, "logs of {service}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_forward_over_grpc_and_http_into_a_second_collector() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The upstream is down at first: the first collector queues, then delivers once it is up.
    let up_dir = tempfile::tempdir().unwrap();
    let grpc_port = free_port();
    let grpc_dir = tempfile::tempdir().unwrap();
    let via_grpc = collector::start(config_with(
        grpc_dir.path(),
        &format!(
            "forward:\n  otlp: {{endpoint: 'http://127.0.0.1:{grpc_port}', protocol: grpc, initial_backoff: 20ms, max_backoff: 200ms, headers: {{x-scope-orgid: tenant-a}}}}\n"
        ),
    ))
    .await;
    send_all_signals(&via_grpc, "viagrpc", "svc-grpc", 0xa1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut up_config = config_with(up_dir.path(), "");
    up_config.otlp_grpc_listen = format!("127.0.0.1:{grpc_port}").parse().unwrap();
    let upstream = collector::start(up_config).await;
    assert_forwarded(&via_grpc, &upstream, "viagrpc", "svc-grpc", 0xa1).await;

    // OTLP/HTTP with gzip, upstream up from the start.
    let http_dir = tempfile::tempdir().unwrap();
    let via_http = collector::start(config_with(
        http_dir.path(),
        &format!(
            "forward:\n  otlp: {{endpoint: 'http://{}', protocol: http, initial_backoff: 20ms, max_backoff: 200ms}}\n",
            upstream.otlp_http
        ),
    ))
    .await;
    send_all_signals(&via_http, "viahttp", "svc-http", 0xb2).await;
    assert_forwarded(&via_http, &upstream, "viahttp", "svc-http", 0xb2).await;

    via_grpc.stop().await;
    via_http.stop().await;
    upstream.stop().await;
}

type GotOtlp = (String, Vec<f64>);

/// An OTLP metrics server that answers from a script and records the gauge values it got.
#[derive(Clone, Default)]
struct ScriptedOtlp {
    script: Arc<Mutex<Vec<tonic::Status>>>,
    /// Partial success to report once the script is exhausted: rejected points.
    rejected: i64,
    /// The answer (a gRPC code's name, or `ok`) and the gauge values, per request.
    got: Arc<Mutex<Vec<GotOtlp>>>,
}

#[tonic::async_trait]
impl MetricsService for ScriptedOtlp {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let values: Vec<f64> = request
            .get_ref()
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .flat_map(|m| match &m.data {
                Some(metric::Data::Gauge(g)) => g.data_points.clone(),
                _ => Vec::new(),
            })
            .filter_map(|p| match p.value {
                Some(number_data_point::Value::AsDouble(v)) => Some(v),
                _ => None,
            })
            .collect();
        let next = {
            let mut script = self.script.lock().unwrap();
            (!script.is_empty()).then(|| script.remove(0))
        };
        let answer = next
            .as_ref()
            .map_or("ok".to_owned(), |s| format!("{:?}", s.code()));
        self.got.lock().unwrap().push((answer, values));
        match next {
            Some(status) => Err(status),
            None => Ok(tonic::Response::new(ExportMetricsServiceResponse {
                partial_success: (self.rejected > 0).then(|| ExportMetricsPartialSuccess {
                    rejected_data_points: self.rejected,
                    error_message: "one point too old".into(),
                }),
            })),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_forward_retries_per_the_spec() {
    let unavailable_with_delay = tonic::Status::with_details(
        tonic::Code::Unavailable,
        "busy",
        redline_collector::forward::retry::rpc::status_with_retry_info(
            14,
            "busy",
            Duration::from_millis(50),
        )
        .into(),
    );
    let server = ScriptedOtlp {
        script: Arc::new(Mutex::new(vec![
            unavailable_with_delay,
            tonic::Status::resource_exhausted("no RetryInfo: permanent"),
            tonic::Status::invalid_argument("bad"),
        ])),
        rejected: 1,
        got: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = MetricsServiceServer::new(server.clone())
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let dir = tempfile::tempdir().unwrap();
    let c = collector::start(config_with(
        dir.path(),
        &format!("forward:\n  otlp: {{endpoint: 'http://{addr}', initial_backoff: 10ms, max_backoff: 50ms}}\n"),
    ))
    .await;
    let t = now_ms() - 10_000;
    let started = Instant::now();
    c.gauge("retry.a", "", "h", &[(t, 1.0)], &[]).await;
    wait_until(|| server.got.lock().unwrap().len() >= 2).await;
    // RetryInfo's delay was waited for.
    assert!(started.elapsed() >= Duration::from_millis(50));
    c.gauge("retry.b", "", "h", &[(t, 2.0)], &[]).await;
    wait_until(|| server.got.lock().unwrap().len() >= 3).await;
    c.gauge("retry.c", "", "h", &[(t, 3.0)], &[]).await;
    wait_until(|| server.got.lock().unwrap().len() >= 4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = server.got.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![
            ("Unavailable".to_owned(), vec![1.0]),
            ("ResourceExhausted".to_owned(), vec![1.0]),
            ("InvalidArgument".to_owned(), vec![2.0]),
            ("ok".to_owned(), vec![3.0]),
        ]
    );
    let m = own_metrics(&c).await;
    assert!(
        metric_value(
            &m,
            "redline_collector_forward_rejected_total{target=\"otlp\",signal=\"metrics\"}"
        ) >= 1.0,
        "{m}"
    );
    c.stop().await;
}

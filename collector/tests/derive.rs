//! Derived series end to end in one process: host metrics over OTLP become `anomaly_score` and
//! `anomaly_rate` series, spans become span metrics, a filling filesystem gets a forecast — all
//! readable through PromQL.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use serde_json::Value;
use support::collector::{self, Running};
use support::otlp::{kv, now_ms};

async fn start(data: &Path) -> Running {
    start_with_rules(data, None).await
}

async fn start_with_rules(data: &Path, rules: Option<&Path>) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = collector::config(data);
    config.rules.paths = rules.map(|r| vec![r.to_owned()]).unwrap_or_default();
    config.rules.default_paths = false;
    config.detect.interval = Duration::from_millis(100);
    config.detect.flush_interval = Duration::from_millis(50);
    collector::start(config).await
}

fn value(v: &Value) -> f64 {
    v["value"][1].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn issue_5_spike_in_a_host_metric_scores_high_and_raises_the_host_anomaly_rate() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    // Two hours of a quiet load average every 30 s, the last point a spike.
    let end = now_ms();
    let points: Vec<(i64, f64)> = (0..240)
        .map(|i| {
            let t = end - (240 - i) * 30_000;
            let v = if i == 239 {
                9.0
            } else {
                1.0 + ((i * 37) % 11) as f64 / 100.0
            };
            (t, v)
        })
        .collect();
    c.gauge(
        "system.cpu.load_average.1m",
        "{thread}",
        "web1",
        &points[..239],
        &[],
    )
    .await;
    c.gauge(
        "system.cpu.load_average.1m",
        "{thread}",
        "web1",
        &points[239..],
        &[],
    )
    .await;
    let scores = c
        .wait_query(
            "anomaly_score{metric=\"system_cpu_load_average_1m\"}",
            |r| r.len() == 1 && value(&r[0]) > 0.9,
        )
        .await;
    assert_eq!(scores[0]["metric"]["host_name"], "web1");
    // The quiet stretch scored low.
    let quiet = c
        .query(
            "max_over_time(anomaly_score{metric=\"system_cpu_load_average_1m\"}[30m] offset 40m)",
        )
        .await;
    assert!(value(&quiet[0]) < 0.5, "{quiet:?}");
    c.wait_query("anomaly_rate{host_name=\"web1\"}", |r| {
        r.len() == 1 && value(&r[0]) == 1.0
    })
    .await;
    c.stop().await;
}

#[tokio::test]
async fn issue_5_spans_become_red_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    let t = (now_ms() as u64) * 1_000_000;
    let span = |i: u8, ms: u64, error: bool| Span {
        trace_id: vec![i; 16],
        span_id: vec![i; 8],
        name: "GET /cart".into(),
        kind: 2,
        start_time_unix_nano: t,
        end_time_unix_nano: t + ms * 1_000_000,
        status: error.then(|| Status {
            code: 2,
            message: "boom".into(),
        }),
        ..Default::default()
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "checkout")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![span(1, 3, false), span(2, 30, false), span(3, 300, true)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut client = TraceServiceClient::connect(format!("http://{}", c.grpc))
        .await
        .unwrap();
    client.export(request).await.unwrap();
    let calls = c
        .wait_query(
            "sum by (status_code) (traces_span_metrics_calls_total{service_name=\"checkout\"})",
            |r| r.len() == 2,
        )
        .await;
    let count = |status: &str| {
        calls
            .iter()
            .find(|s| s["metric"]["status_code"] == status)
            .map(value)
            .unwrap()
    };
    assert_eq!(count("STATUS_CODE_UNSET"), 2.0);
    assert_eq!(count("STATUS_CODE_ERROR"), 1.0);
    let p50 = c
        .query("histogram_quantile(0.5, sum by (le) (traces_span_metrics_duration_seconds_bucket{span_name=\"GET /cart\"}))")
        .await;
    let p50 = value(&p50[0]);
    assert!(p50 > 0.01 && p50 <= 0.05, "{p50}");
    c.stop().await;
}

#[tokio::test]
async fn issue_5_filling_filesystem_gets_a_forecast() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    let end = now_ms();
    // Two hours, +1% every 10 minutes from 60%: full in about 33 hours from the end.
    let points: Vec<(i64, f64)> = (0..120)
        .map(|i| (end - (119 - i) * 60_000, 0.6 + 0.001 * i as f64))
        .collect();
    c.gauge(
        "system.filesystem.utilization",
        "1",
        "db1",
        &points,
        &[("mountpoint", "/var"), ("device", "sda1")],
    )
    .await;
    let forecast = c
        .wait_query(
            "forecast_seconds_to_full{metric=\"system_filesystem_utilization_ratio\"}",
            |r| r.len() == 1 && value(&r[0]).is_finite(),
        )
        .await;
    let hours = value(&forecast[0]) / 3600.0;
    assert!((hours - 0.281 / 0.001 / 60.0).abs() < 1.0, "{hours} h");
    assert_eq!(forecast[0]["metric"]["mountpoint"], "/var");
    c.stop().await;
}

/// The shipped `HostMetricAnomalous` rule, loaded from `rules/anomaly.yml` unchanged, fires on
/// a level shift in a host metric sent over OTLP.
#[tokio::test]
async fn issue_5_anomaly_in_a_host_metric_fires_the_shipped_rule() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/anomaly.yml"),
        rules.join("anomaly.yml"),
    )
    .unwrap();
    let c = start_with_rules(&dir.path().join("data"), Some(&rules)).await;
    // Three hours of memory use near 30% every 30 s, then the last 6 minutes near 90%.
    let end = now_ms();
    let n = 360;
    let points: Vec<(i64, f64)> = (0..n)
        .map(|i| {
            let t = end - (n - i) * 30_000;
            let noise = ((i * 37) % 11) as f64 / 1000.0;
            let v = if i >= n - 12 {
                0.90 + noise
            } else {
                0.30 + noise
            };
            (t, v)
        })
        .collect();
    for chunk in points.chunks(30) {
        c.gauge(
            "system.memory.utilization",
            "1",
            "web1",
            chunk,
            &[("state", "used")],
        )
        .await;
    }
    let url = format!("http://{}/api/v1/alerts", c.http);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        let firing = body["data"]["alerts"].as_array().unwrap().iter().any(|a| {
            a["labels"]["alertname"] == "HostMetricAnomalous"
                && a["labels"]["metric"] == "system_memory_utilization_ratio"
                && a["labels"]["host_name"] == "web1"
                && a["state"] == "firing"
        });
        if firing {
            break;
        }
        if Instant::now() > deadline {
            let scores = c
                .query("anomaly_score{metric=\"system_memory_utilization_ratio\"}[20m]")
                .await;
            panic!("no alert: {body}; scores: {scores:?}");
        }
        // Rules evaluate after writes (debounced) and on their interval; nudge with a reload.
        let _ = reqwest::Client::new()
            .post(format!("http://{}/-/reload", c.http))
            .send()
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The firing alert opened an incident, and the anomaly peak that preceded it is on the
    // incident's timeline (issue 6).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let incidents = c.get("/api/v1/incidents").await;
        let id = incidents
            .as_array()
            .and_then(|a| a.first())
            .map(|i| i["id"].clone());
        if let Some(id) = id {
            let timeline = c.get(&format!("/api/v1/incidents/{id}/timeline")).await;
            let peak = timeline
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["kind"] == "anomaly_peak");
            if let Some(peak) = peak {
                assert_eq!(peak["refs"]["metric"], "system_memory_utilization_ratio");
                assert_eq!(peak["actor"], "collector");
                break;
            }
            assert!(Instant::now() < deadline, "no anomaly peak on {timeline:#}");
        }
        assert!(Instant::now() < deadline, "no incident: {incidents:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.stop().await;
}

#[tokio::test]
async fn issue_5_samples_stored_before_detection_ran_are_scored_at_start() {
    // Samples that reached the store while no detector ran (detection off, or the window
    // between the commit tap starting and the warm-up reading the history) are scored by the
    // warm-up and their scores written, once.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut config = collector::config(&data);
    config.rules.default_paths = false;
    config.rules.paths = Vec::new();
    config.detect.enabled = false;
    let c = collector::start(config).await;
    let end = now_ms();
    let points: Vec<(i64, f64)> = (0..200)
        .map(|i| {
            (
                end - (200 - i) * 30_000,
                1.0 + ((i * 37) % 11) as f64 / 100.0,
            )
        })
        .collect();
    c.gauge(
        "system.cpu.load_average.1m",
        "{thread}",
        "web1",
        &points,
        &[],
    )
    .await;
    c.stop().await;
    let c = start(&data).await;
    let scores = c
        .wait_query(
            "count_over_time(anomaly_score{metric=\"system_cpu_load_average_1m\"}[2h])",
            |r| r.len() == 1 && value(&r[0]) == 200.0,
        )
        .await;
    assert_eq!(scores[0]["metric"]["host_name"], "web1");
    c.stop().await;
    // A second start writes nothing twice.
    let c = start(&data).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = c
        .query("count_over_time(anomaly_score{metric=\"system_cpu_load_average_1m\"}[2h])")
        .await;
    assert_eq!(value(&again[0]), 200.0);
    c.stop().await;
}

//! Derived series end to end in one process: host metrics over OTLP become `anomaly_score` and
//! `anomaly_rate` series, spans become span metrics, a filling filesystem gets a forecast — all
//! readable through PromQL.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use redline_collector::config::Config;
use serde_json::Value;

struct Running {
    grpc: SocketAddr,
    http: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(data: &Path) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = Config {
        data_dir: data.to_owned(),
        otlp_grpc_listen: "127.0.0.1:0".parse().unwrap(),
        otlp_http_listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    config.rules.paths = vec![];
    config.detect.interval = Duration::from_millis(100);
    config.detect.flush_interval = Duration::from_millis(50);
    let collector = redline_collector::bind(config).await.unwrap();
    let (grpc, http) = (collector.otlp_grpc_addr(), collector.http_addr());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(collector.run(async {
        let _ = rx.await;
    }));
    Running {
        grpc,
        http,
        stop,
        task,
    }
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

impl Running {
    /// Sends a gauge with the given (ms, value) points for one host.
    async fn gauge(
        &self,
        name: &str,
        unit: &str,
        host: &str,
        points: &[(i64, f64)],
        attrs: &[(&str, &str)],
    ) {
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "redline-agent"), kv("host.name", host)],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: name.into(),
                        unit: unit.into(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: points
                                .iter()
                                .map(|(t, v)| NumberDataPoint {
                                    time_unix_nano: (*t as u64) * 1_000_000,
                                    value: Some(number_data_point::Value::AsDouble(*v)),
                                    attributes: attrs.iter().map(|(k, v)| kv(k, v)).collect(),
                                    ..Default::default()
                                })
                                .collect(),
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let mut client = MetricsServiceClient::connect(format!("http://{}", self.grpc))
            .await
            .unwrap();
        client.export(request).await.unwrap();
    }

    async fn query(&self, q: &str) -> Vec<Value> {
        let url = format!(
            "http://{}/api/v1/query?query={}",
            self.http,
            form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        );
        let body: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Polls a query until it returns something satisfying `pred` (bounded; not a timing
    /// assertion).
    async fn wait(&self, q: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.query(q).await;
            if pred(&r) {
                return r;
            }
            assert!(Instant::now() < deadline, "{q}: {r:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
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
        .wait(
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
    c.wait("anomaly_rate{host_name=\"web1\"}", |r| {
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
        .wait(
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
        .wait(
            "forecast_seconds_to_full{metric=\"system_filesystem_utilization_ratio\"}",
            |r| r.len() == 1 && value(&r[0]).is_finite(),
        )
        .await;
    let hours = value(&forecast[0]) / 3600.0;
    assert!((hours - 0.281 / 0.001 / 60.0).abs() < 1.0, "{hours} h");
    assert_eq!(forecast[0]["metric"]["mountpoint"], "/var");
    c.stop().await;
}

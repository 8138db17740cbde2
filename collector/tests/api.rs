//! In-process tests of the collector library: real listeners on 127.0.0.1:0, a real SQLite
//! file, real OTLP over gRPC (tonic client, gzip) and HTTP (protobuf, JSON, gzip).
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::path::Path;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use redline_collector::config::Config;
use serde_json::Value;
use support::collector::{self, Running};
use support::otlp::{kv, now_ns};
use tonic::codec::CompressionEncoding;

/// A collector on `data` that takes requests of up to 64 KiB.
async fn start_in(data: &Path) -> Running {
    collector::start(Config {
        max_request_bytes: 64 * 1024,
        ..collector::config(data)
    })
    .await
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", service),
            kv("service.instance.id", "web-1"),
            kv("host.name", "web-1"),
        ],
        ..Default::default()
    })
}

fn cpu_request(t: u64, value: f64) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("redline-agent"),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "system.cpu.time".into(),
                    unit: "s".into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: vec![NumberDataPoint {
                            attributes: vec![kv("cpu", "cpu0"), kv("state", "user")],
                            time_unix_nano: t,
                            value: Some(number_data_point::Value::AsDouble(value)),
                            ..Default::default()
                        }],
                        aggregation_temporality: 2,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test]
async fn otlp_grpc_metrics_are_queryable_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = start_in(dir.path()).await;
    let mut client = MetricsServiceClient::connect(format!("http://{}", c.grpc))
        .await
        .unwrap()
        .send_compressed(CompressionEncoding::Gzip);
    let t = now_ns();
    let response = client
        .export(cpu_request(t, 12.5))
        .await
        .unwrap()
        .into_inner();
    assert!(response.partial_success.is_none());
    // A retried delivery is acknowledged and not stored twice.
    client.export(cpu_request(t, 12.5)).await.unwrap();

    let (status, body) = c
        .get_with_status("/api/v1/query?query=system_cpu_time_seconds_total")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["resultType"], "vector");
    let result = &body["data"]["result"][0];
    assert_eq!(result["metric"]["host_name"], "web-1");
    assert_eq!(result["metric"]["job"], "redline-agent");
    assert_eq!(result["metric"]["instance"], "web-1");
    assert_eq!(result["metric"]["cpu"], "cpu0");
    assert_eq!(result["value"][1], "12.5");

    let start = t / 1_000_000_000 - 60;
    let body = c
        .get(&format!(
            "/api/v1/query_range?query=system_cpu_time_seconds_total{{state=~\"us.*\"}}&start={start}&end={}&step=15s",
            start + 120
        ))
        .await;
    assert_eq!(body["data"]["resultType"], "matrix");
    assert_eq!(body["data"]["result"].as_array().unwrap().len(), 1);
    let values = body["data"]["result"][0]["values"].as_array().unwrap();
    assert!(!values.is_empty());

    let body = c
        .get("/api/v1/series?match[]=system_cpu_time_seconds_total")
        .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    let body = c.get("/api/v1/labels").await;
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .contains(&Value::from("host_name"))
    );
    let body = c.get("/api/v1/label/__name__/values").await;
    assert_eq!(
        body["data"],
        serde_json::json!(["system_cpu_time_seconds_total"])
    );
    let body = c.get("/api/v1/metadata").await;
    assert_eq!(
        body["data"]["system_cpu_time_seconds_total"][0]["type"],
        "counter"
    );

    // POST with a form body, as Prometheus clients (Grafana) send long queries.
    let form = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.replace('{', "%7B")
                        .replace('}', "%7D")
                        .replace('"', "%22")
                        .replace('=', "%3D")
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    };
    let http = reqwest::Client::new();
    let post = |path: &'static str, body: String| {
        http.post(format!("http://{}{path}", c.http))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let body: Value = post(
        "/api/v1/query",
        form(&[("query", "system_cpu_time_seconds_total{state=\"user\"}")]),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(body["data"]["result"][0]["value"][1], "12.5", "{body}");
    let body: Value = post(
        "/api/v1/series",
        form(&[("match[]", "system_cpu_time_seconds_total")]),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "{body}");

    // Restart on the same directory: the data is still there.
    c.stop().await;
    let c = start_in(dir.path()).await;
    let body = c
        .get("/api/v1/query?query=system_cpu_time_seconds_total")
        .await;
    assert_eq!(
        body["data"]["result"].as_array().unwrap().len(),
        1,
        "{body}"
    );
    c.stop().await;
}

#[tokio::test]
async fn prometheus_style_errors() {
    let dir = tempfile::tempdir().unwrap();
    let c = start_in(dir.path()).await;
    let (status, body) = c.get_with_status("/api/v1/query?query=up%7B").await;
    assert_eq!(status, 400);
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorType"], "bad_data");
    let (status, body) = c.get_with_status("/api/v1/query").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = c
        .get_with_status("/api/v1/query_range?query=up&start=1&end=2&step=0")
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = c
        .get_with_status("/api/v1/query?query=up&time=yesterday")
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("time"));
    let (status, _) = c.get_with_status("/api/v1/series").await;
    assert_eq!(status, 400);
    let (status, body) = c
        .get_with_status("/api/v1/query?query=histogram_count(up)")
        .await;
    assert_eq!(status, 422);
    assert!(body["error"].as_str().unwrap().contains("function call"));
    c.stop().await;
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn otlp_http_protobuf_json_gzip_and_bad_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let c = start_in(dir.path()).await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/v1/metrics", c.otlp_http);
    let body = gzip(&cpu_request(now_ns(), 1.0).encode_to_vec());
    let r = http
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");

    // A gzip bomb: small on the wire, far beyond the 64 KiB limit inflated.
    let bomb = gzip(&vec![0u8; 10 << 20]);
    assert!(bomb.len() < 64 * 1024);
    let r = http
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // Too large on the wire.
    let r = http
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(vec![0u8; 128 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    let r = http
        .post(&url)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);

    let r = http
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"resourceMetrics\": 5}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert!(err["message"].as_str().unwrap().contains("cannot decode"));

    let r = http
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // gRPC refuses messages over the limit with RESOURCE_EXHAUSTED (without RetryInfo, so OTLP
    // clients do not send it again).
    let mut client = MetricsServiceClient::connect(format!("http://{}", c.grpc))
        .await
        .unwrap();
    let mut big = cpu_request(now_ns(), 1.0);
    big.resource_metrics[0].scope_metrics[0].metrics[0].description = "x".repeat(100 * 1024);
    let status = client.export(big).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("limit"), "{status:?}");

    // The collector is still healthy and still has the first sample.
    let body = c
        .get("/api/v1/query?query=system_cpu_time_seconds_total")
        .await;
    assert_eq!(body["data"]["result"].as_array().unwrap().len(), 1);
    let metrics = reqwest::get(format!("http://{}/metrics", c.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("redline_collector_rejected_total"),
        "{metrics}"
    );
    c.stop().await;
}

#[tokio::test]
async fn traces_read_back_in_jaeger_shape_and_logs_are_searchable() {
    let dir = tempfile::tempdir().unwrap();
    let c = start_in(dir.path()).await;
    let t = now_ns();
    let trace_id = vec![0xab; 16];
    let spans = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("checkout"),
            scope_spans: vec![ScopeSpans {
                spans: vec![
                    Span {
                        trace_id: trace_id.clone(),
                        span_id: vec![1; 8],
                        name: "GET /cart".into(),
                        kind: 2,
                        start_time_unix_nano: t,
                        end_time_unix_nano: t + 5_000_000,
                        attributes: vec![kv("http.route", "/cart")],
                        ..Default::default()
                    },
                    Span {
                        trace_id: trace_id.clone(),
                        span_id: vec![2; 8],
                        parent_span_id: vec![1; 8],
                        name: "SELECT cart".into(),
                        kind: 3,
                        start_time_unix_nano: t + 1_000_000,
                        end_time_unix_nano: t + 2_000_000,
                        status: Some(Status {
                            code: 2,
                            message: "timeout".into(),
                        }),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut client = TraceServiceClient::connect(format!("http://{}", c.grpc))
        .await
        .unwrap();
    client.export(spans).await.unwrap();

    let body = c.get("/api/services").await;
    assert_eq!(body["data"], serde_json::json!(["checkout"]));
    let body = c.get("/api/services/checkout/operations").await;
    assert_eq!(
        body["data"],
        serde_json::json!(["GET /cart", "SELECT cart"])
    );
    let body = c.get("/api/traces?service=checkout&limit=10").await;
    let traces = body["data"].as_array().unwrap();
    assert_eq!(traces.len(), 1);
    let id = "ab".repeat(16);
    assert_eq!(traces[0]["traceID"], id.as_str());
    assert_eq!(traces[0]["spans"].as_array().unwrap().len(), 2);
    let (status, body) = c.get_with_status(&format!("/api/traces/{id}")).await;
    assert_eq!(status, 200);
    let trace = &body["data"][0];
    let child = &trace["spans"][1];
    assert_eq!(child["references"][0]["refType"], "CHILD_OF");
    assert_eq!(child["duration"], 1000);
    assert!(
        child["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "error")
    );
    let pid = trace["spans"][0]["processID"].as_str().unwrap();
    assert_eq!(trace["processes"][pid]["serviceName"], "checkout");
    let (status, _) = c
        .get_with_status(&format!("/api/traces/{}", "cd".repeat(16)))
        .await;
    assert_eq!(status, 404);
    let (status, _) = c.get_with_status("/api/traces/not-hex").await;
    assert_eq!(status, 400);

    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("checkout"),
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    LogRecord {
                        time_unix_nano: t,
                        severity_number: 17,
                        severity_text: "ERROR".into(),
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("payment declined".into())),
                        }),
                        trace_id: trace_id.clone(),
                        span_id: vec![2; 8],
                        ..Default::default()
                    },
                    LogRecord {
                        time_unix_nano: t + 1,
                        severity_number: 9,
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("cart loaded".into())),
                        }),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut client = LogsServiceClient::connect(format!("http://{}", c.grpc))
        .await
        .unwrap();
    client.export(logs).await.unwrap();
    let body = c.get("/api/v1/logs?service=checkout").await;
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    let body = c.get("/api/v1/logs?severity=ERROR").await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"][0]["trace_id"], id.as_str());
    let body = c.get("/api/v1/logs?contains=cart").await;
    assert_eq!(body["data"][0]["body"], "cart loaded");
    let body = c
        .get(&format!("/api/v1/logs?trace_id={}", id.to_uppercase()))
        .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    let (status, _) = c.get_with_status("/api/v1/logs?severity=LOUD").await;
    assert_eq!(status, 400);
    c.stop().await;
}

#![allow(clippy::unwrap_used)]

use super::*;
use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    Sum,
};

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

#[test]
fn floats_format_like_prometheus() {
    assert_eq!(format_float(0.005), "0.005");
    assert_eq!(format_float(1.0), "1");
    assert_eq!(format_float(2.5), "2.5");
    assert_eq!(format_float(f64::INFINITY), "+Inf");
    assert_eq!(format_float(1e21), "1e+21");
    assert_eq!(format_float(0.00001), "1e-05");
}

fn request(metric: Metric) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "redline-agent"),
                    kv("service.instance.id", "web-1"),
                    kv("host.name", "web-1"),
                    kv("telemetry.sdk.name", "x"),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![metric],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn sums_carry_resource_labels_and_attributes() {
    let m = Metric {
        name: "system.cpu.time".into(),
        unit: "s".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                attributes: vec![kv("cpu", "cpu0"), kv("state", "user")],
                time_unix_nano: 1_700_000_000_123_456_789,
                value: Some(number_data_point::Value::AsDouble(12.5)),
                ..Default::default()
            }],
            aggregation_temporality: 2,
            is_monotonic: true,
        })),
        ..Default::default()
    };
    let (batch, dropped) = metrics(request(m), 0);
    assert_eq!(dropped.total(), 0);
    assert_eq!(batch.series.len(), 1);
    let s = &batch.series[0];
    assert_eq!(
        s.labels.iter().collect::<Vec<_>>(),
        vec![
            ("__name__", "system_cpu_time_seconds_total"),
            ("cpu", "cpu0"),
            ("host_name", "web-1"),
            ("instance", "web-1"),
            ("job", "redline-agent"),
            ("state", "user"),
        ]
    );
    assert_eq!(s.samples[0].timestamp_ms, 1_700_000_000_123);
    assert_eq!(batch.metadata[0].kind, MetricKind::Counter);
    assert_eq!(batch.metadata[0].temporality, Temporality::Cumulative);
    assert_eq!(batch.metadata[0].otel_name, "system.cpu.time");
}

#[test]
fn histograms_become_cumulative_buckets() {
    let m = Metric {
        name: "http.server.duration".into(),
        unit: "ms".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                time_unix_nano: 1_000_000,
                count: 6,
                sum: Some(123.0),
                bucket_counts: vec![1, 2, 3],
                explicit_bounds: vec![10.0, 100.0],
                ..Default::default()
            }],
            aggregation_temporality: 2,
        })),
        ..Default::default()
    };
    let (batch, _) = metrics(request(m), 0);
    let got: Vec<(String, Option<String>, f64)> = batch
        .series
        .iter()
        .map(|s| {
            (
                s.labels.metric_name().to_owned(),
                s.labels.get("le").map(str::to_owned),
                s.samples[0].value,
            )
        })
        .collect();
    let b = "http_server_duration_milliseconds_bucket".to_owned();
    assert_eq!(
        got,
        vec![
            (b.clone(), Some("10".into()), 1.0),
            (b.clone(), Some("100".into()), 3.0),
            (b, Some("+Inf".into()), 6.0),
            ("http_server_duration_milliseconds_sum".into(), None, 123.0),
            ("http_server_duration_milliseconds_count".into(), None, 6.0),
        ]
    );
}

/// Found by the `otlp_proto` fuzz target: bucket counts summing past u64::MAX overflowed
/// the cumulative count (a panic with overflow checks, a wrapped count without).
#[test]
fn huge_bucket_counts_saturate() {
    let m = Metric {
        name: "d".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                time_unix_nano: 1_000_000,
                count: u64::MAX,
                bucket_counts: vec![u64::MAX, 2, 3],
                explicit_bounds: vec![1.0, 2.0],
                ..Default::default()
            }],
            aggregation_temporality: 2,
        })),
        ..Default::default()
    };
    let (batch, _) = metrics(request(m), 0);
    let buckets: Vec<f64> = batch
        .series
        .iter()
        .filter(|s| s.labels.get("le").is_some())
        .map(|s| s.samples[0].value)
        .collect();
    assert_eq!(buckets, vec![u64::MAX as f64; 3]);
}

#[test]
fn stale_flag_and_missing_time() {
    let m = Metric {
        name: "g".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                flags: 1,
                value: Some(number_data_point::Value::AsInt(3)),
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    let (batch, _) = metrics(request(m), 42);
    let s = batch.series[0].samples[0];
    assert_eq!(s.timestamp_ms, 42);
    assert_eq!(s.value.to_bits(), STALE_NAN_BITS);
}

#[test]
fn exponential_histograms_are_dropped_and_counted() {
    use opentelemetry_proto::tonic::metrics::v1::{
        ExponentialHistogram, ExponentialHistogramDataPoint,
    };
    let m = Metric {
        name: "e".into(),
        data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint::default(); 2],
            aggregation_temporality: 2,
        })),
        ..Default::default()
    };
    let (batch, dropped) = metrics(request(m), 0);
    assert!(batch.series.is_empty());
    assert_eq!(dropped.rejected_points(), 2);
    assert!(dropped.message().unwrap().contains("exponential_histogram"));
}

#[test]
fn otlp_json_bodies_decode() {
    let body = r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
        "scopeMetrics":[{"metrics":[{"name":"queue.depth","unit":"{item}","gauge":{"dataPoints":[
        {"timeUnixNano":"1700000000000000000","asInt":"7","attributes":[{"key":"q","value":{"stringValue":"a"}}]}]}}]}]}]}"#;
    let req: ExportMetricsServiceRequest = serde_json::from_str(body).unwrap();
    let (batch, _) = metrics(req, 0);
    assert_eq!(batch.series[0].labels.metric_name(), "queue_depth");
    assert_eq!(batch.series[0].samples[0].value, 7.0);
    assert_eq!(batch.series[0].labels.get("job"), Some("svc"));
}

#[test]
fn spans_keep_ids_and_service() {
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "checkout")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![
                    Span {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        name: "GET /".into(),
                        start_time_unix_nano: 5,
                        end_time_unix_nano: 9,
                        attributes: vec![kv("http.method", "GET")],
                        ..Default::default()
                    },
                    Span::default(),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let (batch, dropped) = traces(req);
    assert_eq!(dropped.rejected_points(), 1);
    let s = &batch.spans[0];
    assert_eq!(s.trace_id, "01".repeat(16));
    assert_eq!(s.span_id, "02".repeat(8));
    assert_eq!(s.service, "checkout");
    assert_eq!(s.attributes, r#"{"http.method":"GET"}"#);
}

//! OTLP requests for the tests and benches that send metrics to a collector. Shared by the test
//! crates that `mod support;` it and by benches (`#[path = "../tests/support/otlp.rs"]`); not
//! every crate uses every item.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// A string attribute.
pub fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// An export of one gauge `name` in `unit` (`""` for none) from a resource with the attributes
/// `resource`: `points` as (Unix ms, value), each point with the attributes `attributes`. (The
/// collector stores milliseconds, so whole milliseconds lose nothing.)
pub fn gauge(
    resource: &[(&str, &str)],
    name: &str,
    unit: &str,
    points: &[(i64, f64)],
    attributes: &[(&str, &str)],
) -> ExportMetricsServiceRequest {
    let attrs = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| kv(k, v)).collect::<Vec<_>>();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: attrs(resource),
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
                                attributes: attrs(attributes),
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
    }
}

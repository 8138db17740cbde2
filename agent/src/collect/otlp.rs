//! Small constructors for the OTLP protobuf types the collectors emit, so every family builds
//! its metrics the same way: a [`Metric`] is a name, a unit, a description and either a
//! cumulative [`Sum`] (monotonic or not) or a [`Gauge`] of [`NumberDataPoint`]s. Used only by
//! the `collect` families; the exporter and the relay never build metrics.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, Sum, metric, number_data_point,
};

/// A string attribute.
pub fn kv(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// Timestamps shared by all points of one collection cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Start of cumulative series (boot time), Unix nanoseconds.
    pub start_ns: u64,
    /// Collection time, Unix nanoseconds.
    pub now_ns: u64,
}

/// The kind of a metric, which decides its OTLP data type (and its Prometheus name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Cumulative monotonic sum (a counter).
    Counter,
    /// Cumulative non-monotonic sum (an up-down counter, e.g. bytes in use).
    UpDown,
    /// Gauge (a sampled value, e.g. a ratio or a load average).
    Gauge,
}

/// Static description of one metric.
#[derive(Debug, Clone, Copy)]
pub struct Desc {
    pub name: &'static str,
    pub unit: &'static str,
    pub description: &'static str,
    pub kind: Kind,
}

/// Accumulates the points of one metric, then turns into a [`Metric`].
pub struct MetricBuilder {
    desc: Desc,
    stamp: Stamp,
    points: Vec<NumberDataPoint>,
}

impl MetricBuilder {
    pub fn new(desc: Desc, stamp: Stamp) -> Self {
        Self::with_capacity(desc, stamp, 0)
    }

    pub fn with_capacity(desc: Desc, stamp: Stamp, n: usize) -> Self {
        MetricBuilder {
            desc,
            stamp,
            points: Vec::with_capacity(n),
        }
    }

    fn point(&mut self, attributes: Vec<KeyValue>, value: number_data_point::Value) {
        let start = match self.desc.kind {
            Kind::Gauge => 0,
            Kind::Counter | Kind::UpDown => self.stamp.start_ns,
        };
        self.points.push(NumberDataPoint {
            attributes,
            start_time_unix_nano: start,
            time_unix_nano: self.stamp.now_ns,
            value: Some(value),
            ..Default::default()
        });
    }

    /// Adds an integer point.
    pub fn int(&mut self, attributes: Vec<KeyValue>, value: u64) {
        let v = i64::try_from(value).unwrap_or(i64::MAX);
        self.point(attributes, number_data_point::Value::AsInt(v));
    }

    /// Adds a floating-point point.
    pub fn double(&mut self, attributes: Vec<KeyValue>, value: f64) {
        self.point(attributes, number_data_point::Value::AsDouble(value));
    }

    /// Finishes the metric; `None` when it has no points (so empty metrics are not sent).
    pub fn finish(self) -> Option<Metric> {
        if self.points.is_empty() {
            return None;
        }
        let data = match self.desc.kind {
            Kind::Gauge => metric::Data::Gauge(Gauge {
                data_points: self.points,
            }),
            Kind::Counter | Kind::UpDown => metric::Data::Sum(Sum {
                data_points: self.points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: self.desc.kind == Kind::Counter,
            }),
        };
        Some(Metric {
            name: self.desc.name.to_string(),
            description: self.desc.description.to_string(),
            unit: self.desc.unit.to_string(),
            data: Some(data),
            ..Default::default()
        })
    }

    /// Finishes the metric into `out` if it has points.
    pub fn finish_into(self, out: &mut Vec<Metric>) {
        if let Some(m) = self.finish() {
            out.push(m);
        }
    }
}

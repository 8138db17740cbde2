//! Pure conversion of OTLP requests into store batches. No I/O, no clock: the receive time is
//! passed in for points that carry no timestamp.
//!
//! Metric and label names are translated the way Prometheus' own OTLP receiver translates them
//! (its `otlptranslator` with unit and type suffixes), so PromQL written against Prometheus
//! works unchanged. The mapping table is in the README; the rules are:
//! - names (`redline_common::naming`, shared with the agent's `/metrics`): the metric name is
//!   split on every character but ASCII letters, digits and `:` and rejoined with `_`; the
//!   unit becomes a suffix (`s` → `seconds`, `By` → `bytes`, `x/y` → `x_per_y`, units in
//!   braces are dropped), unless the name already contains it; monotonic sums get `_total`,
//!   gauges with unit `1` get `_ratio`; label names have every character but ASCII letters
//!   and digits replaced by `_`, a leading digit prefixed with `key_`;
//! - histograms become `_bucket{le=…}`, `_sum` and `_count` series; summaries
//!   `{quantile=…}`, `_sum`, `_count`;
//! - `service.name` (with `service.namespace/` before it when set) becomes `job`,
//!   `service.instance.id` becomes `instance`, and the other resource attributes become labels
//!   (Prometheus calls this promoting them), except `telemetry.sdk.*`.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;
use redline_common::naming::{MetricType, label_name, metric_name};
use serde_json::{Map, Value as Json};

use crate::model::{
    LogRecord, METRIC_NAME, MetricKind, MetricMeta, Sample, SeriesSamples, SpanRecord, Temporality,
};
use crate::store::WriteBatch;

/// The bit pattern Prometheus uses as a staleness marker; written for OTLP points flagged
/// "no recorded value".
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Points dropped during conversion, by reason; the receiver counts them in `/metrics` and
/// reports them as a partial success.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub by_reason: HashMap<&'static str, usize>,
    /// The first refusal explained in full (which series, which limit), for the message.
    pub detail: Option<String>,
}

impl Dropped {
    pub(crate) fn add(&mut self, reason: &'static str, n: usize) {
        if n > 0 {
            *self.by_reason.entry(reason).or_default() += n;
        }
    }

    pub fn total(&self) -> usize {
        self.by_reason.values().sum()
    }

    /// Points the client should hear were rejected (exemplars are auxiliary and not counted).
    pub fn rejected_points(&self) -> usize {
        self.by_reason
            .iter()
            .filter(|(r, _)| **r != "exemplar")
            .map(|(_, n)| n)
            .sum()
    }

    pub fn message(&self) -> Option<String> {
        if self.rejected_points() == 0 {
            return None;
        }
        let mut parts: Vec<String> = self
            .by_reason
            .iter()
            .filter(|(r, _)| **r != "exemplar")
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        parts.sort();
        let mut message = format!("dropped data points: {}", parts.join(", "));
        if let Some(detail) = &self.detail {
            message.push_str("; first: ");
            message.push_str(detail);
        }
        Some(message)
    }

    /// Keeps `detail` as the explanation of the first refusal, unless one is kept already.
    pub(crate) fn note(&mut self, detail: String) {
        self.detail.get_or_insert(detail);
    }
}

/// Converts a metrics request. `now_ms` stands in for points without a timestamp.
pub fn metrics(request: ExportMetricsServiceRequest, now_ms: i64) -> (WriteBatch, Dropped) {
    let mut batch = WriteBatch::default();
    let mut dropped = Dropped::default();
    let mut meta_seen: HashMap<String, ()> = HashMap::new();
    for rm in request.resource_metrics {
        let resource_labels = resource_labels(rm.resource.as_ref());
        for sm in rm.scope_metrics {
            for m in sm.metrics {
                let Some(data) = m.data else {
                    continue;
                };
                let (kind, temporality) = match &data {
                    metric::Data::Gauge(_) => (MetricKind::Gauge, Temporality::Unspecified),
                    metric::Data::Sum(s) => (
                        if s.is_monotonic {
                            MetricKind::Counter
                        } else {
                            MetricKind::UpDownCounter
                        },
                        temporality(s.aggregation_temporality),
                    ),
                    metric::Data::Histogram(h) => (
                        MetricKind::Histogram,
                        temporality(h.aggregation_temporality),
                    ),
                    metric::Data::ExponentialHistogram(h) => {
                        dropped.add("exponential_histogram", h.data_points.len());
                        continue;
                    }
                    metric::Data::Summary(_) => (MetricKind::Summary, Temporality::Cumulative),
                };
                let naming = match kind {
                    MetricKind::Gauge => MetricType::Gauge,
                    MetricKind::Counter => MetricType::MonotonicCounter,
                    MetricKind::UpDownCounter | MetricKind::Histogram | MetricKind::Summary => {
                        MetricType::Other
                    }
                };
                let name = metric_name(&m.name, &m.unit, naming);
                if name.is_empty() {
                    dropped.add("empty_name", point_count(&data));
                    continue;
                }
                if meta_seen.insert(name.clone(), ()).is_none() {
                    batch.metadata.push(MetricMeta {
                        name: name.clone(),
                        otel_name: m.name.clone(),
                        kind,
                        temporality,
                        unit: m.unit.clone(),
                        help: m.description.clone(),
                    });
                }
                let series = &mut batch.series;
                let mut push = |name: &str,
                                attrs: &[KeyValue],
                                extra: Option<(&str, String)>,
                                t: u64,
                                v: f64| {
                    let mut pairs: Vec<(String, String)> =
                        Vec::with_capacity(resource_labels.promoted.len() + attrs.len() + 3);
                    pairs.extend(resource_labels.promoted.iter().cloned());
                    for kv in attrs {
                        pairs.push((label_name(&kv.key), any_to_string(kv.value.as_ref())));
                    }
                    pairs.extend(resource_labels.identity.iter().cloned());
                    if let Some((k, v)) = extra {
                        pairs.push((k.to_owned(), v));
                    }
                    pairs.push((METRIC_NAME.to_owned(), name.to_owned()));
                    series.push(SeriesSamples {
                        labels: crate::model::Labels::new(pairs),
                        samples: vec![Sample {
                            timestamp_ms: timestamp_ms(t, now_ms),
                            value: v,
                        }],
                    });
                };
                match data {
                    metric::Data::Gauge(g) => {
                        for p in g.data_points {
                            dropped.add("exemplar", p.exemplars.len());
                            let v = number_value(p.value, p.flags);
                            push(&name, &p.attributes, None, p.time_unix_nano, v);
                        }
                    }
                    metric::Data::Sum(s) => {
                        for p in s.data_points {
                            dropped.add("exemplar", p.exemplars.len());
                            let v = number_value(p.value, p.flags);
                            push(&name, &p.attributes, None, p.time_unix_nano, v);
                        }
                    }
                    metric::Data::Histogram(h) => {
                        let bucket = format!("{name}_bucket");
                        let sum = format!("{name}_sum");
                        let count = format!("{name}_count");
                        for p in h.data_points {
                            dropped.add("exemplar", p.exemplars.len());
                            let stale = p.flags & 1 == 1;
                            let val = |v: f64| {
                                if stale {
                                    f64::from_bits(STALE_NAN_BITS)
                                } else {
                                    v
                                }
                            };
                            let t = p.time_unix_nano;
                            let mut cumulative = 0u64;
                            for (i, bound) in p.explicit_bounds.iter().enumerate() {
                                // Saturating: counts near u64::MAX (a broken or hostile client) must not
                                // overflow; the value becomes an f64 anyway.
                                cumulative = cumulative
                                    .saturating_add(p.bucket_counts.get(i).copied().unwrap_or(0));
                                push(
                                    &bucket,
                                    &p.attributes,
                                    Some(("le", format_float(*bound))),
                                    t,
                                    val(cumulative as f64),
                                );
                            }
                            push(
                                &bucket,
                                &p.attributes,
                                Some(("le", "+Inf".to_owned())),
                                t,
                                val(p.count as f64),
                            );
                            if let Some(s) = p.sum {
                                push(&sum, &p.attributes, None, t, val(s));
                            }
                            push(&count, &p.attributes, None, t, val(p.count as f64));
                        }
                    }
                    metric::Data::Summary(s) => {
                        let sum = format!("{name}_sum");
                        let count = format!("{name}_count");
                        for p in s.data_points {
                            let stale = p.flags & 1 == 1;
                            let val = |v: f64| {
                                if stale {
                                    f64::from_bits(STALE_NAN_BITS)
                                } else {
                                    v
                                }
                            };
                            let t = p.time_unix_nano;
                            for q in &p.quantile_values {
                                push(
                                    &name,
                                    &p.attributes,
                                    Some(("quantile", format_float(q.quantile))),
                                    t,
                                    val(q.value),
                                );
                            }
                            push(&sum, &p.attributes, None, t, val(p.sum));
                            push(&count, &p.attributes, None, t, val(p.count as f64));
                        }
                    }
                    metric::Data::ExponentialHistogram(_) => {}
                }
            }
        }
    }
    (batch, dropped)
}

fn point_count(data: &metric::Data) -> usize {
    match data {
        metric::Data::Gauge(g) => g.data_points.len(),
        metric::Data::Sum(s) => s.data_points.len(),
        metric::Data::Histogram(h) => h.data_points.len(),
        metric::Data::ExponentialHistogram(h) => h.data_points.len(),
        metric::Data::Summary(s) => s.data_points.len(),
    }
}

fn temporality(value: i32) -> Temporality {
    match value {
        1 => Temporality::Delta,
        2 => Temporality::Cumulative,
        _ => Temporality::Unspecified,
    }
}

fn number_value(value: Option<number_data_point::Value>, flags: u32) -> f64 {
    if flags & 1 == 1 {
        return f64::from_bits(STALE_NAN_BITS);
    }
    match value {
        Some(number_data_point::Value::AsDouble(v)) => v,
        Some(number_data_point::Value::AsInt(v)) => v as f64,
        None => f64::from_bits(STALE_NAN_BITS),
    }
}

fn timestamp_ms(unix_nano: u64, now_ms: i64) -> i64 {
    if unix_nano == 0 {
        now_ms
    } else {
        (unix_nano / 1_000_000).min(i64::MAX as u64) as i64
    }
}

/// Formats a float the way Prometheus formats `le` and `quantile` values (Go's `%g`-like
/// shortest form: `0.005`, `1`, `+Inf`).
pub fn format_float(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v.is_nan() {
        return "NaN".into();
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        let s = format!("{v:e}");
        // Go writes exponents with a sign and two digits: 1e+21, 1e-05.
        if let Some((mant, exp)) = s.split_once('e') {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            return format!("{mant}e{sign}{digits:0>2}");
        }
        return s;
    }
    format!("{v}")
}

struct ResourceLabels {
    /// Promoted resource attributes, lowest precedence.
    promoted: Vec<(String, String)>,
    /// `job` and `instance`, highest precedence.
    identity: Vec<(String, String)>,
    service: String,
    json: String,
}

fn resource_labels(resource: Option<&Resource>) -> ResourceLabels {
    let mut promoted = Vec::new();
    let mut service_name = None;
    let mut namespace = None;
    let mut instance = None;
    let attrs: &[KeyValue] = resource.map(|r| r.attributes.as_slice()).unwrap_or(&[]);
    for kv in attrs {
        let value = any_to_string(kv.value.as_ref());
        match kv.key.as_str() {
            "service.name" => service_name = Some(value),
            "service.namespace" => namespace = Some(value),
            "service.instance.id" => instance = Some(value),
            k if k.starts_with("telemetry.sdk.") => {}
            k => promoted.push((label_name(k), value)),
        }
    }
    let mut identity = Vec::new();
    let service = service_name
        .clone()
        .unwrap_or_else(|| "unknown_service".to_owned());
    if let Some(name) = service_name {
        let job = match namespace {
            Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
            _ => name,
        };
        identity.push(("job".to_owned(), job));
    }
    if let Some(i) = instance {
        identity.push(("instance".to_owned(), i));
    }
    ResourceLabels {
        promoted,
        identity,
        service,
        json: attributes_json(attrs),
    }
}

/// An attribute value as label text: strings as they are, numbers and booleans in their
/// usual text, arrays and maps as JSON.
pub fn any_to_string(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => format_float(*d),
        Some(other) => any_to_json_inner(other).to_string(),
    }
}

fn any_to_json(value: Option<&AnyValue>) -> Json {
    match value.and_then(|v| v.value.as_ref()) {
        None => Json::Null,
        Some(v) => any_to_json_inner(v),
    }
}

fn any_to_json_inner(value: &any_value::Value) -> Json {
    match value {
        any_value::Value::StringValue(s) => Json::String(s.clone()),
        any_value::Value::BoolValue(b) => Json::Bool(*b),
        any_value::Value::IntValue(i) => Json::from(*i),
        any_value::Value::DoubleValue(d) => serde_json::Number::from_f64(*d)
            .map_or_else(|| Json::String(format_float(*d)), Json::Number),
        any_value::Value::ArrayValue(a) => {
            Json::Array(a.values.iter().map(|v| any_to_json(Some(v))).collect())
        }
        any_value::Value::KvlistValue(kv) => Json::Object(
            kv.values
                .iter()
                .map(|kv| (kv.key.clone(), any_to_json(kv.value.as_ref())))
                .collect(),
        ),
        any_value::Value::BytesValue(b) => Json::String(hex(b)),
        #[allow(unreachable_patterns)]
        _ => Json::Null,
    }
}

/// Attributes as a JSON object text.
pub fn attributes_json(attrs: &[KeyValue]) -> String {
    let map: Map<String, Json> = attrs
        .iter()
        .map(|kv| (kv.key.clone(), any_to_json(kv.value.as_ref())))
        .collect();
    Json::Object(map).to_string()
}

/// Lowercase hex of an id; empty for an empty or all-zero id (OTLP's "invalid").
pub fn hex(bytes: &[u8]) -> String {
    if bytes.iter().all(|b| *b == 0) {
        return String::new();
    }
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn nanos(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

/// Converts a trace request. Spans without a valid trace or span id are dropped.
pub fn traces(request: ExportTraceServiceRequest) -> (WriteBatch, Dropped) {
    let mut batch = WriteBatch::default();
    let mut dropped = Dropped::default();
    for rs in request.resource_spans {
        let resource = resource_labels(rs.resource.as_ref());
        for ss in rs.scope_spans {
            let scope = ss
                .scope
                .as_ref()
                .map(|s| serde_json::json!({"name": s.name, "version": s.version}).to_string())
                .unwrap_or_else(|| "{}".to_owned());
            for span in ss.spans {
                let trace_id = hex(&span.trace_id);
                let span_id = hex(&span.span_id);
                if trace_id.len() != 32 || span_id.len() != 16 {
                    dropped.add("invalid_id", 1);
                    continue;
                }
                let events: Vec<Json> = span
                    .events
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "time_ns": nanos(e.time_unix_nano),
                            "name": e.name,
                            "attributes": serde_json::from_str::<Json>(&attributes_json(&e.attributes)).unwrap_or(Json::Null),
                        })
                    })
                    .collect();
                let links: Vec<Json> = span
                    .links
                    .iter()
                    .map(|l| serde_json::json!({"trace_id": hex(&l.trace_id), "span_id": hex(&l.span_id)}))
                    .collect();
                let status = span.status.unwrap_or_default();
                batch.spans.push(SpanRecord {
                    trace_id,
                    span_id,
                    parent_span_id: hex(&span.parent_span_id),
                    service: resource.service.clone(),
                    name: span.name,
                    kind: span.kind,
                    start_ns: nanos(span.start_time_unix_nano),
                    end_ns: nanos(span.end_time_unix_nano),
                    status_code: status.code,
                    status_message: status.message,
                    attributes: attributes_json(&span.attributes),
                    resource: resource.json.clone(),
                    events: Json::Array(events).to_string(),
                    links: Json::Array(links).to_string(),
                    scope: scope.clone(),
                });
            }
        }
    }
    (batch, dropped)
}

/// Converts a logs request. `now_ns` stands in when a record has neither time nor observed time.
pub fn logs(request: ExportLogsServiceRequest, now_ns: i64) -> (WriteBatch, Dropped) {
    let mut batch = WriteBatch::default();
    for rl in request.resource_logs {
        let resource = resource_labels(rl.resource.as_ref());
        for sl in rl.scope_logs {
            for r in sl.log_records {
                let observed = nanos(r.observed_time_unix_nano);
                let time = match (r.time_unix_nano, observed) {
                    (0, 0) => now_ns,
                    (0, o) => o,
                    (t, _) => nanos(t),
                };
                let body = match r.body.as_ref().and_then(|b| b.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => s.clone(),
                    None => String::new(),
                    Some(other) => any_to_json_inner(other).to_string(),
                };
                batch.logs.push(LogRecord {
                    time_ns: time,
                    observed_ns: if observed == 0 { now_ns } else { observed },
                    service: resource.service.clone(),
                    severity_number: r.severity_number,
                    severity_text: r.severity_text,
                    body,
                    attributes: attributes_json(&r.attributes),
                    resource: resource.json.clone(),
                    trace_id: hex(&r.trace_id),
                    span_id: hex(&r.span_id),
                });
            }
        }
    }
    (batch, Dropped::default())
}

#[cfg(test)]
mod tests;

//! The API's wire shapes, the only place the API uses serde: Prometheus' `{status, data}`
//! envelopes and result types, Jaeger's query-service JSON, and log records.

use std::collections::BTreeMap;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json, json};

use crate::model::{Labels, LogRecord, MetricMeta, Sample, SpanRecord};
use crate::query::Value;

fn respond(status: StatusCode, body: Json) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `{"status":"success","data":…}`.
pub fn success(data: Json) -> Response {
    respond(StatusCode::OK, json!({"status": "success", "data": data}))
}

/// `{"status":"error","errorType":…,"error":…}`.
pub fn error(status: StatusCode, error_type: &str, message: String) -> Response {
    respond(
        status,
        json!({"status": "error", "errorType": error_type, "error": message}),
    )
}

fn labels_json(labels: &Labels) -> Json {
    Json::Object(
        labels
            .iter()
            .map(|(k, v)| (k.to_owned(), Json::String(v.to_owned())))
            .collect(),
    )
}

/// A sample value as Prometheus writes it: a string, `NaN`, `+Inf`, `-Inf`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn point(s: &Sample) -> Json {
    json!([s.timestamp_ms as f64 / 1000.0, format_value(s.value)])
}

pub fn query_result(value: &Value) -> Response {
    let data = match value {
        Value::Vector(v) => json!({
            "resultType": "vector",
            "result": v.iter().map(|(l, s)| json!({"metric": labels_json(l), "value": point(s)})).collect::<Vec<_>>(),
        }),
        Value::Matrix(m) => json!({
            "resultType": "matrix",
            "result": m.iter().map(|(l, s)| json!({"metric": labels_json(l), "values": s.iter().map(point).collect::<Vec<_>>()})).collect::<Vec<_>>(),
        }),
        Value::Scalar(s) => json!({"resultType": "scalar", "result": point(s)}),
        Value::String(t, s) => json!({"resultType": "string", "result": [*t as f64 / 1000.0, s]}),
    };
    success(data)
}

pub fn series<'a>(labels: impl Iterator<Item = &'a Labels>) -> Json {
    Json::Array(labels.map(labels_json).collect())
}

/// `/api/v1/metadata`: metric name → list of `{type, help, unit}`.
pub fn metadata(meta: &[MetricMeta]) -> Json {
    let mut out = Map::new();
    for m in meta {
        out.insert(
            m.name.clone(),
            json!([{"type": m.kind.as_str(), "help": m.help, "unit": m.unit}]),
        );
    }
    Json::Object(out)
}

fn parse_object(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or(Json::Object(Map::new()))
}

fn rfc3339_ns(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    if secs < 0 {
        return format!("{ns}ns");
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::new(secs as u64, nanos);
    humantime::format_rfc3339_nanos(t).to_string()
}

pub fn logs(records: &[LogRecord]) -> Json {
    Json::Array(
        records
            .iter()
            .map(|r| {
                json!({
                    "timestamp": rfc3339_ns(r.time_ns),
                    "time_unix_nano": r.time_ns.to_string(),
                    "observed_time_unix_nano": r.observed_ns.to_string(),
                    "service": r.service,
                    "severity_number": r.severity_number,
                    "severity_text": r.severity_text,
                    "body": r.body,
                    "attributes": parse_object(&r.attributes),
                    "resource": parse_object(&r.resource),
                    "trace_id": r.trace_id,
                    "span_id": r.span_id,
                })
            })
            .collect(),
    )
}

/// Jaeger's response envelope.
pub fn jaeger(data: Json) -> Response {
    let total = data.as_array().map_or(0, Vec::len);
    respond(
        StatusCode::OK,
        json!({"data": data, "total": total, "limit": 0, "offset": 0, "errors": null}),
    )
}

pub fn jaeger_error(status: StatusCode, message: String) -> Response {
    respond(
        status,
        json!({"data": null, "total": 0, "limit": 0, "offset": 0, "errors": [{"code": status.as_u16(), "msg": message}]}),
    )
}

/// Attributes JSON → Jaeger tags.
fn tags(attributes: &Json) -> Vec<Json> {
    let Some(map) = attributes.as_object() else {
        return Vec::new();
    };
    map.iter()
        .map(|(k, v)| match v {
            Json::Bool(b) => json!({"key": k, "type": "bool", "value": b}),
            Json::Number(n) if n.is_i64() || n.is_u64() => {
                json!({"key": k, "type": "int64", "value": n})
            }
            Json::Number(n) => json!({"key": k, "type": "float64", "value": n}),
            Json::String(s) => json!({"key": k, "type": "string", "value": s}),
            other => json!({"key": k, "type": "string", "value": other.to_string()}),
        })
        .collect()
}

const SPAN_KINDS: [&str; 6] = [
    "unspecified",
    "internal",
    "server",
    "client",
    "producer",
    "consumer",
];

/// One trace in Jaeger's JSON model.
pub fn jaeger_trace(spans: &[SpanRecord]) -> Json {
    // One process per distinct (service, resource).
    let mut processes: BTreeMap<(String, String), String> = BTreeMap::new();
    for s in spans {
        let next = format!("p{}", processes.len() + 1);
        processes
            .entry((s.service.clone(), s.resource.clone()))
            .or_insert(next);
    }
    let trace_id = spans
        .first()
        .map(|s| s.trace_id.clone())
        .unwrap_or_default();
    let json_spans: Vec<Json> = spans
        .iter()
        .map(|s| {
            let mut references = Vec::new();
            if !s.parent_span_id.is_empty() {
                references.push(json!({"refType": "CHILD_OF", "traceID": s.trace_id, "spanID": s.parent_span_id}));
            }
            if let Json::Array(links) = parse_object_or_array(&s.links) {
                for l in links {
                    references.push(json!({"refType": "FOLLOWS_FROM", "traceID": l["trace_id"], "spanID": l["span_id"]}));
                }
            }
            let mut span_tags = tags(&parse_object(&s.attributes));
            if let Some(kind) = SPAN_KINDS.get(s.kind as usize).filter(|k| **k != "unspecified" && **k != "internal") {
                span_tags.push(json!({"key": "span.kind", "type": "string", "value": kind}));
            }
            match s.status_code {
                1 => span_tags.push(json!({"key": "otel.status_code", "type": "string", "value": "OK"})),
                2 => {
                    span_tags.push(json!({"key": "otel.status_code", "type": "string", "value": "ERROR"}));
                    span_tags.push(json!({"key": "error", "type": "bool", "value": true}));
                }
                _ => {}
            }
            if !s.status_message.is_empty() {
                span_tags.push(json!({"key": "otel.status_description", "type": "string", "value": s.status_message}));
            }
            let logs: Vec<Json> = match parse_object_or_array(&s.events) {
                Json::Array(events) => events
                    .iter()
                    .map(|e| {
                        let mut fields = vec![json!({"key": "event", "type": "string", "value": e["name"]})];
                        fields.extend(tags(&e["attributes"]));
                        json!({"timestamp": e["time_ns"].as_i64().unwrap_or(0) / 1000, "fields": fields})
                    })
                    .collect(),
                _ => Vec::new(),
            };
            json!({
                "traceID": s.trace_id,
                "spanID": s.span_id,
                "operationName": s.name,
                "references": references,
                "startTime": s.start_ns / 1000,
                "duration": (s.end_ns - s.start_ns).max(0) / 1000,
                "tags": span_tags,
                "logs": logs,
                "processID": processes.get(&(s.service.clone(), s.resource.clone())),
                "warnings": null,
                "flags": 1,
            })
        })
        .collect();
    let processes: Map<String, Json> = processes
        .into_iter()
        .map(|((service, resource), id)| {
            let resource = parse_object(&resource);
            let process_tags: Vec<Json> = tags(&resource)
                .into_iter()
                .filter(|t| t["key"] != "service.name")
                .collect();
            (id, json!({"serviceName": service, "tags": process_tags}))
        })
        .collect();
    json!({"traceID": trace_id, "spans": json_spans, "processes": processes, "warnings": null})
}

fn parse_object_or_array(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or(Json::Null)
}

fn rfc3339_ms(ms: i64) -> String {
    rfc3339_ns(ms.saturating_mul(1_000_000))
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`, which Prometheus uses for alert values.
pub fn go_exp(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{v:e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, d) = e.strip_prefix('-').map_or(('+', e), |d| ('-', d));
            format!("{m}e{sign}{d:0>2}")
        }
        None => s,
    }
}

fn alert_json(a: &crate::alert::state::Alert) -> Json {
    json!({
        "labels": labels_json(&a.labels),
        "annotations": a.annotations,
        "state": a.state.as_str(),
        "activeAt": rfc3339_ms(a.active_at),
        "value": go_exp(a.value),
    })
}

/// `/api/v1/alerts` data.
pub fn alerts(alerts: &[crate::alert::state::Alert]) -> Json {
    json!({"alerts": alerts.iter().map(alert_json).collect::<Vec<_>>()})
}

/// `/api/v1/rules` data, optionally only alerting (`alert`) or recording (`record`) rules.
pub fn rules(status: &crate::alert::manager::RulesStatus, kind: Option<&str>) -> Json {
    use crate::alert::state::State;
    use crate::rules::RuleKind;
    let groups: Vec<Json> = status
        .groups
        .iter()
        .map(|g| {
            let rules: Vec<Json> = g
                .rules
                .iter()
                .filter(|r| match kind {
                    Some("alert") => r.rule.is_alerting(),
                    Some("record") => !r.rule.is_alerting(),
                    _ => true,
                })
                .map(|r| {
                    let last = r.last_evaluation_ms.map(rfc3339_ms).unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
                    match &r.rule.kind {
                        RuleKind::Alerting {
                            name,
                            for_ms,
                            keep_firing_for_ms,
                            labels_text,
                            annotations_text,
                            ..
                        } => {
                            let state = if r.alerts.iter().any(|a| a.state == State::Firing) {
                                "firing"
                            } else if r.alerts.iter().any(|a| a.state == State::Pending) {
                                "pending"
                            } else {
                                "inactive"
                            };
                            json!({
                                "state": state,
                                "name": name,
                                "query": r.rule.expr_text,
                                "duration": *for_ms as f64 / 1000.0,
                                "keepFiringFor": *keep_firing_for_ms as f64 / 1000.0,
                                "labels": labels_text,
                                "annotations": annotations_text,
                                "alerts": r.alerts.iter().map(alert_json).collect::<Vec<_>>(),
                                "health": r.health,
                                "lastError": r.last_error.clone().unwrap_or_default(),
                                "evaluationTime": r.evaluation_seconds,
                                "lastEvaluation": last,
                                "type": "alerting",
                            })
                        }
                        RuleKind::Recording { name, labels } => json!({
                            "name": name,
                            "query": r.rule.expr_text,
                            "labels": labels,
                            "health": r.health,
                            "lastError": r.last_error.clone().unwrap_or_default(),
                            "evaluationTime": r.evaluation_seconds,
                            "lastEvaluation": last,
                            "type": "recording",
                        }),
                    }
                })
                .collect();
            json!({
                "name": g.name,
                "file": g.file,
                "rules": rules,
                "interval": g.interval.as_secs_f64(),
                "limit": g.limit,
                "evaluationTime": g.evaluation_seconds,
                "lastEvaluation": g.last_evaluation_ms.map(rfc3339_ms).unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            })
        })
        .collect();
    json!({"groups": groups})
}

/// `/api/v1/alerts/history` data: resolved alerts, newest first.
pub fn alert_history(entries: &[crate::store::AlertHistoryEntry]) -> Json {
    Json::Array(
        entries
            .iter()
            .map(|e| {
                json!({
                    "rule": e.rule_key,
                    "labels": labels_json(&e.labels),
                    "annotations": e.annotations,
                    "activeAt": rfc3339_ms(e.active_at),
                    "firedAt": e.fired_at.map(rfc3339_ms),
                    "resolvedAt": rfc3339_ms(e.resolved_at),
                })
            })
            .collect(),
    )
}

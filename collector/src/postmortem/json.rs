//! The post-mortem as JSON, schema `redline.postmortem/v1` (`SCHEMA`).
//!
//! The document is data, not prose: the written sections of the Markdown and HTML files are
//! not in it. Times are RFC 3339 text in UTC, durations are numbers of seconds, and anything
//! unknown is `null` (never omitted). Ids are the stored ones: the incident's number, each
//! timeline entry's id, each deployment's id, so a consumer can join the document with the
//! API's records.
//!
//! ```text
//! {
//!   "schema": "redline.postmortem/v1",
//!   "generated_at": time,
//!   "incident": {
//!     "id": int, "key": str, "title": str, "status": "triggered"|"acknowledged"|"resolved",
//!     "severity": "SEV1".."SEV4", "source": "alert"|"user", "service": str,
//!     "environment": str, "hosts": [str], "owner": str|null,
//!     "opened_at": time, "acknowledged_at": time|null, "mitigated_at": time|null,
//!     "resolved_at": time|null,
//!     "alerts": [{"fingerprint": str, "labels": {str: str}, "firing": bool,
//!                 "starts_at": time, "ends_at": time|null}]        (by start time)
//!   },
//!   "key_moments": [{"moment": "impact_start"|"detected"|"acknowledged"|"mitigated"|"resolved",
//!                    "label": str, "at": time|null}]                 (always five, in that order)
//!   "durations": {"time_to_detect_seconds": num|null, "time_to_acknowledge_seconds": num|null,
//!                 "time_to_mitigate_seconds": num|null, "time_to_resolve_seconds": num|null,
//!                 "failed_deployment_recovery_seconds": num|null},
//!   "timeline": [{"id": int, "at": time, "actor": str, "kind": str,
//!                 "milestone": "detected"|"acknowledged"|"mitigated"|"resolved"|null,
//!                 "message": str, "refs": {str: str}}]              (in time order)
//!   "deployments": [{"id": str, "link": "suspected"|"confirmed", "role": "cause"|"fix",
//!                    "service": str, "environment": str, "version": str,
//!                    "status": "success"|"failure", "started_at": time, "finished_at": time,
//!                    "rollback_of": str|null, "fixes_incident": int|null, "source": str,
//!                    "commits": [{"sha": str, "committed_at": time}],
//!                    "verdict": "pass"|"fail"|"inconclusive"|null,
//!                    "analyses": [{"indicator": str, "query": str,
//!                                  "direction": "higher_is_worse"|"lower_is_worse",
//!                                  "at": time, "sequence": int,
//!                                  "baseline": summary, "analysis": summary,
//!                                  "p_value": num|null, "effect": num|null,
//!                                  "outcome": "pass"|"fail"|"inconclusive",
//!                                  "consecutive_failures": int, "reason": str}]}]
//!   "leads": [{"rank": int, "series": {str: str}, "metric": str|null,
//!              "first_anomalous_at": time, "before_detection_seconds": num,
//!              "peak_score": num|null}]                              (rank 1 first)
//!   "chart": null | {"title": str, "unit": str, "points": [[time, num|null]]}
//! }
//! summary = {"raw_count": int, "count": int, "median": num|null, "mean": num|null,
//!            "min": num|null, "max": num|null}
//! ```
//!
//! Non-finite numbers (NaN, infinities) are written as `null`.

use serde_json::{Map, Value, json};

use super::document::sorted_timeline;
use super::{Input, Moment, SCHEMA, is_fix, key_moments, link_str, outcome_str, rfc3339};
use crate::incident::Source;
use crate::verify::{Analysis, Direction, Summary};

fn time(ms: i64) -> Value {
    Value::String(rfc3339(ms))
}

fn time_opt(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, time)
}

fn num(v: Option<f64>) -> Value {
    v.and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

fn seconds(ms: Option<i64>) -> Value {
    num(ms.map(|ms| ms as f64 / 1000.0))
}

fn labels(l: &crate::notify::LabelSet) -> Value {
    Value::Object(
        l.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

fn summary(s: &Summary) -> Value {
    json!({
        "raw_count": s.raw_count,
        "count": s.count,
        "median": num(s.median),
        "mean": num(s.mean),
        "min": num(s.min),
        "max": num(s.max),
    })
}

fn analysis(a: &Analysis) -> Value {
    json!({
        "indicator": a.indicator,
        "query": a.query,
        "direction": match a.direction {
            Direction::HigherIsWorse => "higher_is_worse",
            Direction::LowerIsWorse => "lower_is_worse",
        },
        "at": time(a.at),
        "sequence": a.sequence,
        "baseline": summary(&a.baseline),
        "analysis": summary(&a.analysis),
        "p_value": num(a.p_value),
        "effect": num(a.effect),
        "outcome": outcome_str(a.outcome),
        "consecutive_failures": a.consecutive_failures,
        "reason": a.reason,
    })
}

/// The post-mortem as JSON in the documented, versioned schema (`"schema": SCHEMA`; the
/// outline is in this module's source documentation): stable ids, RFC 3339 times, durations
/// in seconds and `null` for anything unknown.
pub fn render_json(input: &Input) -> Value {
    let i = &input.incident;
    let m = key_moments(input);
    let mut alerts: Vec<(&String, &crate::incident::MemberAlert)> = i.alerts.iter().collect();
    alerts.sort_by_key(|(fp, a)| (a.starts_at, fp.as_str()));
    let incident = json!({
        "id": i.id,
        "key": i.key,
        "title": i.title,
        "status": i.status.as_str(),
        "severity": i.severity.as_str(),
        "source": match i.source {
            Source::Alert => "alert",
            Source::User => "user",
        },
        "service": i.service,
        "environment": i.environment,
        "hosts": i.hosts.iter().collect::<Vec<_>>(),
        "owner": i.owner,
        "opened_at": time(i.opened_at),
        "acknowledged_at": time_opt(i.acknowledged_at),
        "mitigated_at": time_opt(i.mitigated_at),
        "resolved_at": time_opt(i.resolved_at),
        "alerts": alerts.iter().map(|(fp, a)| json!({
            "fingerprint": fp,
            "labels": labels(&a.labels),
            "firing": a.firing,
            "starts_at": time(a.starts_at),
            "ends_at": time_opt(a.ends_at),
        })).collect::<Vec<_>>(),
    });
    let key_moments: Vec<Value> = Moment::ALL
        .iter()
        .map(|&moment| {
            json!({
                "moment": moment.as_str(),
                "label": moment.label(),
                "at": time_opt(m.at(moment)),
            })
        })
        .collect();
    let durations = json!({
        "time_to_detect_seconds": seconds(m.time_to_detect_ms),
        "time_to_acknowledge_seconds": seconds(m.time_to_acknowledge_ms),
        "time_to_mitigate_seconds": seconds(m.time_to_mitigate_ms),
        "time_to_resolve_seconds": seconds(m.time_to_resolve_ms),
        "failed_deployment_recovery_seconds": num(m.failed_deployment_recovery_seconds),
    });
    let timeline: Vec<Value> = sorted_timeline(input)
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id,
                "at": time(e.at),
                "actor": e.actor,
                "kind": e.kind.as_str(),
                "milestone": Moment::of_entry(e.kind).map(Moment::as_str),
                "message": e.message,
                "refs": labels(&e.refs),
            })
        })
        .collect();
    let deployments: Vec<Value> = input
        .deployments
        .iter()
        .map(|d| {
            let dep = &d.deployment;
            json!({
                "id": dep.id,
                "link": link_str(d.link),
                "role": if is_fix(input, d) { "fix" } else { "cause" },
                "service": dep.service,
                "environment": dep.environment,
                "version": dep.version,
                "status": dep.status.as_str(),
                "started_at": time(dep.started_at),
                "finished_at": time(dep.finished_at),
                "rollback_of": dep.rollback_of,
                "fixes_incident": dep.fixes_incident,
                "source": dep.source,
                "commits": dep.commits.iter().map(|c| json!({
                    "sha": c.sha,
                    "committed_at": time(c.committed_at),
                })).collect::<Vec<_>>(),
                "verdict": d.verdict.map(outcome_str),
                "analyses": d.analyses.iter().map(analysis).collect::<Vec<_>>(),
            })
        })
        .collect();
    let leads: Vec<Value> = input
        .leads
        .iter()
        .enumerate()
        .map(|(n, l)| {
            json!({
                "rank": n + 1,
                "series": labels(&l.series),
                "metric": l.series.get("__name__"),
                "first_anomalous_at": time(l.first_anomalous_at),
                "before_detection_seconds": seconds(Some(m.detected - l.first_anomalous_at)),
                "peak_score": num(Some(l.peak_score)),
            })
        })
        .collect();
    let chart = input.chart.as_ref().map_or(Value::Null, |c| {
        json!({
            "title": c.title,
            "unit": c.unit,
            "points": c.points.iter().map(|&(t, v)| json!([time(t), num(Some(v))])).collect::<Vec<_>>(),
        })
    });
    json!({
        "schema": SCHEMA,
        "generated_at": time(input.generated_at),
        "incident": incident,
        "key_moments": key_moments,
        "durations": durations,
        "timeline": timeline,
        "deployments": deployments,
        "leads": leads,
        "chart": chart,
    })
}

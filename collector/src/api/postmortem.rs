//! `GET /api/v1/incidents/{id}/postmortem?format=markdown|json|html`: gathers what the
//! collector knows about an incident (`gather`, the I/O half) and renders it with the pure
//! `crate::postmortem`.
//!
//! What is gathered:
//! - the incident, its timeline, the deployments linked to it (with their verification
//!   analyses and verdicts) and the rollbacks of those (`rollback_of`);
//! - **what moved first**: every `anomaly_score` series, across all hosts, that reached the
//!   detection threshold in the hour before the incident was detected, ranked by when it first
//!   did (earliest first, at most 10);
//! - the **chart**: the expression of the rule of the incident's first alert, evaluated around
//!   the incident (before impact and after resolution, margins in proportion to its length),
//!   the series whose labels the alert carries;
//! - **impact start**: the earliest of the first anomalous sample of a series that concerns the
//!   incident (same host or service) and the start of its first alert;
//! - **failed deployment recovery time** for a causing deployment: the earlier of its first
//!   successful rollback's finish and the incident's resolution, minus its finish.

use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Api;
use crate::incident::deployment::DeploymentStatus;
use crate::incident::{Incident, IncidentId};
use crate::notify::LabelSet;
use crate::postmortem::{Chart, Input, Lead, LinkedDeployment};
use crate::query::Value;
use crate::verify::Outcome;
use crate::verify::judge::Verdict;

const LEADS: usize = 10;
const LEAD_WINDOW_MS: i64 = 3_600_000;

fn labels_of(l: &crate::model::Labels) -> LabelSet {
    l.iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Everything the post-mortem of incident `id` is made of; `None` when there is no such
/// incident.
pub async fn gather(
    api: &Api,
    id: IncidentId,
    threshold: f64,
    now: i64,
) -> Result<Option<Input>, String> {
    let Some(incident) = api.store.incident(id).await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let timeline = api.store.timeline(id).await.map_err(|e| e.to_string())?;
    let mut deployments = Vec::new();
    let (all_deployments, _) = api
        .store
        .dora_events(incident.service.clone(), incident.environment.clone())
        .await
        .map_err(|e| e.to_string())?;
    let mut recovery_seconds = None;
    for link in &incident.deployments {
        let Some(d) = api
            .store
            .deployment(link.deployment_id.clone())
            .await
            .map_err(|e| e.to_string())?
        else {
            continue;
        };
        let analyses = api
            .store
            .analyses(d.id.clone())
            .await
            .map_err(|e| e.to_string())?;
        let verdict = api
            .store
            .verification(d.id.clone())
            .await
            .map_err(|e| e.to_string())?
            .and_then(|v| match v.verdict {
                Verdict::Pass => Some(Outcome::Pass),
                Verdict::Fail => Some(Outcome::Fail),
                Verdict::Inconclusive => Some(Outcome::Inconclusive),
                Verdict::Running => None,
            });
        if d.rollback_of.is_none() && recovery_seconds.is_none() {
            let rollback = all_deployments
                .iter()
                .filter(|r| {
                    r.rollback_of.as_deref() == Some(d.id.as_str())
                        && r.status == DeploymentStatus::Success
                })
                .map(|r| r.finished_at)
                .min();
            let recovered = [rollback, incident.resolved_at].into_iter().flatten().min();
            recovery_seconds = recovered.map(|r| (r - d.finished_at) as f64 / 1000.0);
        }
        deployments.push(LinkedDeployment {
            deployment: d,
            link: link.kind,
            analyses,
            verdict,
        });
    }
    // Rollbacks of the linked deployments belong to the story too.
    let linked: Vec<String> = deployments
        .iter()
        .map(|l| l.deployment.id.clone())
        .collect();
    for r in all_deployments
        .iter()
        .filter(|r| r.rollback_of.as_ref().is_some_and(|of| linked.contains(of)))
    {
        if linked.contains(&r.id) {
            continue;
        }
        deployments.push(LinkedDeployment {
            deployment: r.clone(),
            link: crate::incident::LinkKind::Confirmed,
            analyses: Vec::new(),
            verdict: None,
        });
    }
    let leads = leads(api, &incident, threshold).await;
    let first_alert = incident.alerts.values().map(|a| a.starts_at).min();
    let first_anomaly = leads
        .iter()
        .filter(|l| crate::incident::core::concerns(&incident, &l.series))
        .map(|l| l.first_anomalous_at)
        .min();
    let impact_start = [first_alert, first_anomaly].into_iter().flatten().min();
    let chart = chart(api, &incident, impact_start, now).await;
    Ok(Some(Input {
        incident,
        timeline,
        deployments,
        leads,
        chart,
        impact_start,
        recovery_seconds,
        generated_at: now,
    }))
}

async fn leads(api: &Api, incident: &Incident, threshold: f64) -> Vec<Lead> {
    let to = incident.opened_at;
    let from = to - LEAD_WINDOW_MS;
    let Ok(Value::Matrix(series)) = api.engine.range("anomaly_score", from, to, 15_000).await
    else {
        return Vec::new();
    };
    let mut leads: Vec<Lead> = series
        .into_iter()
        .filter_map(|(labels, samples)| {
            let first = samples.iter().find(|s| s.value >= threshold)?.timestamp_ms;
            let peak = samples.iter().map(|s| s.value).fold(0.0, f64::max);
            Some(Lead {
                series: labels_of(&labels),
                first_anomalous_at: first,
                peak_score: peak,
            })
        })
        .collect();
    leads.sort_by(|a, b| {
        a.first_anomalous_at
            .cmp(&b.first_anomalous_at)
            .then(b.peak_score.total_cmp(&a.peak_score))
    });
    leads.truncate(LEADS);
    leads
}

async fn chart(
    api: &Api,
    incident: &Incident,
    impact_start: Option<i64>,
    now: i64,
) -> Option<Chart> {
    let alert = incident.alerts.values().min_by_key(|a| a.starts_at)?;
    let name = alert.labels.get("alertname")?;
    let expr = {
        let status = api.rules.read().ok()?;
        status
            .groups
            .iter()
            .flat_map(|g| g.rules.iter())
            .find(|r| {
                r.rule.name() == name
                    && matches!(r.rule.kind, crate::rules::file::RuleKind::Alerting { .. })
            })
            .map(|r| r.rule.expr_text.clone())?
    };
    // Margins in proportion to the incident (a minute to half an hour before, half a minute
    // to ten minutes after), and about 400 points.
    let begin = impact_start.unwrap_or(incident.opened_at);
    let finish = incident.resolved_at.unwrap_or(now);
    let length = (finish - begin).max(0);
    let start = begin - length.clamp(60_000, 30 * 60_000);
    let end = (finish + (length / 2).clamp(30_000, 10 * 60_000)).min(now);
    let step = ((end - start) / 400).max(100);
    let r = api.engine.range(&expr, start, end, step).await;
    let Ok(Value::Matrix(series)) = r else {
        return None;
    };
    // The series the alert came from: its labels are all on the alert.
    let pick = series
        .iter()
        .find(|(l, _)| {
            l.iter()
                .all(|(k, v)| k == "__name__" || alert.labels.get(k).map(String::as_str) == Some(v))
        })
        .or_else(|| series.first())?;
    Some(Chart {
        title: format!("{expr} ({name})"),
        unit: String::new(),
        points: pick.1.iter().map(|s| (s.timestamp_ms, s.value)).collect(),
    })
}

pub async fn handler(
    State(api): State<Api>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let params: std::collections::BTreeMap<String, String> =
        form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let format = params
        .get("format")
        .map(String::as_str)
        .unwrap_or("markdown");
    if !matches!(format, "markdown" | "json" | "html") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": format!("{format:?} is not markdown, json or html"), "field": "format"})),
        )
            .into_response();
    }
    let Some(id) = id.parse::<IncidentId>().ok().filter(|i| *i > 0) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": format!("no incident {id:?}")})),
        )
            .into_response();
    };
    let input = match gather(&api, id, api.anomaly_threshold, super::now_ms()).await {
        Ok(Some(i)) => i,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({"error": format!("no incident {id}")})),
            )
                .into_response();
        }
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"error": e})),
            )
                .into_response();
        }
    };
    match format {
        "json" => axum::Json(crate::postmortem::render_json(&input)).into_response(),
        "html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            crate::postmortem::render_html(&input),
        )
            .into_response(),
        _ => (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            crate::postmortem::render_markdown(&input),
        )
            .into_response(),
    }
}

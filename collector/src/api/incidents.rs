//! Incidents, deployments and DORA over HTTP: `/api/v1/incidents…`, `/api/v1/deployments…`,
//! `/api/v1/webhooks/github` and `/api/v1/dora`.
//!
//! Reads go to the store; every change goes through the incident manager, which saves it
//! before answering. Bodies are JSON (at most `MAX_BODY_BYTES`); times are RFC 3339 or Unix
//! seconds. Errors are `{"error": "...", "field": "..."}` with 400 (unreadable body), 401 (bad
//! webhook signature), 404 (unknown id), 409 (not in that state), 422 (a field is wrong) or 503
//! (store or manager unavailable; retry).

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::Api;
use crate::incident::core::{NewIncident, Op, OpError};
use crate::incident::deployment::PostableDeployment;
use crate::incident::manager::{IncidentHandle, ManagerError};
use crate::incident::time::{self, Timestamp};
use crate::incident::{IncidentId, Severity, Status};
use crate::store::IncidentFilter;

/// Largest request body: a deployment with many commits, an imported incident with notes.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Most incidents one list returns.
const MAX_LIST: usize = 1000;

pub fn router() -> Router<Api> {
    Router::new()
        .route(
            "/api/v1/incidents",
            get(list_incidents).post(report_incident),
        )
        .route(
            "/api/v1/incidents/{id}",
            get(get_incident).patch(patch_incident),
        )
        .route("/api/v1/incidents/{id}/timeline", get(get_timeline))
        .route("/api/v1/incidents/{id}/ack", post(ack))
        .route("/api/v1/incidents/{id}/mitigate", post(mitigate))
        .route("/api/v1/incidents/{id}/resolve", post(resolve))
        .route("/api/v1/incidents/{id}/notes", post(note))
        .route("/api/v1/incidents/{id}/deployments", post(link))
        .route(
            "/api/v1/deployments",
            post(post_deployment).get(list_deployments),
        )
        .route("/api/v1/deployments/{id}", get(get_deployment))
        .route("/api/v1/webhooks/github", post(github_webhook))
        .route("/api/v1/dora", get(dora))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// `{"error": message, "field": field}` with `status`: the error shape of the `/api/v1`
/// incident, deployment, verification and post-mortem endpoints.
pub(super) fn error(
    status: StatusCode,
    message: impl Into<String>,
    field: Option<&str>,
) -> Response {
    let mut body = serde_json::json!({"error": message.into()});
    if let Some(f) = field {
        body["field"] = serde_json::Value::String(f.to_owned());
    }
    (status, Json(body)).into_response()
}

fn manager_error(e: ManagerError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let field = match &e {
        ManagerError::Op(OpError::Invalid { field, .. }) => Some(field.clone()),
        _ => None,
    };
    let message = match &e {
        ManagerError::Op(OpError::Invalid { problem, .. }) => problem.clone(),
        other => other.to_string(),
    };
    error(status, message, field.as_deref())
}

fn handle(api: &Api) -> Result<&IncidentHandle, Response> {
    api.incidents.as_ref().ok_or_else(|| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "incidents are not available on this collector",
            None,
        )
    })
}

fn parse_id(text: &str) -> Result<IncidentId, Response> {
    text.parse::<IncidentId>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("no incident {text:?}"), None))
}

/// Decodes a JSON body, naming the line, column and problem when it cannot.
pub(super) fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Response> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        let status = if e.is_data() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::BAD_REQUEST
        };
        error(status, format!("request body: {e}"), None)
    })
}

fn query_params(raw: Option<String>) -> BTreeMap<String, String> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn time_param(params: &BTreeMap<String, String>, name: &str) -> Result<Option<i64>, Response> {
    match params.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => time::parse(v)
            .map(Some)
            .map_err(|e| error(StatusCode::BAD_REQUEST, e, Some(name))),
    }
}

/// `user:<name>` for a named actor, `api` otherwise.
pub(super) fn actor_of(actor: Option<String>) -> String {
    match actor.filter(|a| !a.trim().is_empty()) {
        Some(a) => format!("user:{}", a.trim()),
        None => "api".to_owned(),
    }
}

async fn list_incidents(State(api): State<Api>, RawQuery(raw): RawQuery) -> Response {
    let params = query_params(raw);
    let status = match params.get("status").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match Status::parse(s) {
            Some(s) => Some(s),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("{s:?} is not triggered, acknowledged or resolved"),
                    Some("status"),
                );
            }
        },
    };
    let (since, until) = match (time_param(&params, "since"), time_param(&params, "until")) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(l)) if (1..=MAX_LIST).contains(&l) => l,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("must be a number from 1 to {MAX_LIST}"),
                Some("limit"),
            );
        }
    };
    let filter = IncidentFilter {
        status,
        service: params.get("service").filter(|s| !s.is_empty()).cloned(),
        environment: params.get("environment").filter(|s| !s.is_empty()).cloned(),
        since,
        until,
        limit,
    };
    match api.store.incidents(filter).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string(), None),
    }
}

async fn get_incident(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match api.store.incident(id).await {
        Ok(Some(i)) => Json(i).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no incident {id}"), None),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string(), None),
    }
}

async fn get_timeline(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match api.store.incident(id).await {
        Ok(Some(_)) => {}
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no incident {id}"), None),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string(), None),
    }
    match api.store.timeline(id).await {
        Ok(entries) => Json(entries).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string(), None),
    }
}

/// The body of `POST /api/v1/incidents`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostableIncident {
    title: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    opened_at: Option<Timestamp>,
    #[serde(default)]
    acknowledged_at: Option<Timestamp>,
    #[serde(default)]
    mitigated_at: Option<Timestamp>,
    #[serde(default)]
    resolved_at: Option<Timestamp>,
    #[serde(default)]
    deployments: Vec<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    actor: Option<String>,
}

fn opt_time(field: &str, t: Option<Timestamp>) -> Result<Option<i64>, Response> {
    t.map(|t| {
        t.millis()
            .map_err(|e| error(StatusCode::UNPROCESSABLE_ENTITY, e, Some(field)))
    })
    .transpose()
}

fn severity_of(text: Option<String>) -> Result<Option<Severity>, Response> {
    text.map(|s| {
        Severity::parse(&s).ok_or_else(|| {
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{s:?} is not SEV1, SEV2, SEV3 or SEV4"),
                Some("severity"),
            )
        })
    })
    .transpose()
}

async fn report_incident(State(api): State<Api>, body: Bytes) -> Response {
    let handle = match handle(&api) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let p: PostableIncident = match json_body(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let new = (|| {
        Ok::<_, Response>(NewIncident {
            title: p.title,
            service: p.service,
            environment: p.environment,
            severity: severity_of(p.severity)?,
            owner: p.owner,
            hosts: p.hosts,
            opened_at: opt_time("opened_at", p.opened_at)?,
            acknowledged_at: opt_time("acknowledged_at", p.acknowledged_at)?,
            mitigated_at: opt_time("mitigated_at", p.mitigated_at)?,
            resolved_at: opt_time("resolved_at", p.resolved_at)?,
            deployments: p.deployments,
            note: p.note,
        })
    })();
    let new = match new {
        Ok(n) => n,
        Err(r) => return r,
    };
    match handle.report(new, actor_of(p.actor)).await {
        Ok(incident) => (StatusCode::CREATED, Json(incident)).into_response(),
        Err(e) => manager_error(e),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActorBody {
    #[serde(default)]
    actor: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MitigateBody {
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    at: Option<Timestamp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    text: String,
    #[serde(default)]
    actor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    deployment_id: String,
    /// `link` (default) or `unlink`.
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    actor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    actor: Option<String>,
}

async fn run_ops(api: &Api, id: &str, ops: Vec<Op>, actor: String) -> Response {
    let handle = match handle(api) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let id = match parse_id(id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let mut last = None;
    for op in ops {
        match handle.op(id, op, actor.clone()).await {
            Ok(i) => last = Some(i),
            Err(e) => return manager_error(e),
        }
    }
    match last {
        Some(i) => Json(i).into_response(),
        None => match api.store.incident(id).await {
            Ok(Some(i)) => Json(i).into_response(),
            Ok(None) => error(StatusCode::NOT_FOUND, format!("no incident {id}"), None),
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string(), None),
        },
    }
}

async fn ack(State(api): State<Api>, Path(id): Path<String>, body: Bytes) -> Response {
    match json_body::<ActorBody>(&body) {
        Ok(b) => run_ops(&api, &id, vec![Op::Acknowledge], actor_of(b.actor)).await,
        Err(r) => r,
    }
}

async fn resolve(State(api): State<Api>, Path(id): Path<String>, body: Bytes) -> Response {
    match json_body::<ActorBody>(&body) {
        Ok(b) => run_ops(&api, &id, vec![Op::Resolve], actor_of(b.actor)).await,
        Err(r) => r,
    }
}

async fn mitigate(State(api): State<Api>, Path(id): Path<String>, body: Bytes) -> Response {
    let b = match json_body::<MitigateBody>(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let at = match opt_time("at", b.at) {
        Ok(at) => at,
        Err(r) => return r,
    };
    run_ops(&api, &id, vec![Op::Mitigate(at)], actor_of(b.actor)).await
}

async fn note(State(api): State<Api>, Path(id): Path<String>, body: Bytes) -> Response {
    match json_body::<NoteBody>(&body) {
        Ok(b) => run_ops(&api, &id, vec![Op::Note(b.text)], actor_of(b.actor)).await,
        Err(r) => r,
    }
}

async fn link(State(api): State<Api>, Path(id): Path<String>, body: Bytes) -> Response {
    let b = match json_body::<LinkBody>(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let op = match b.action.as_deref().unwrap_or("link") {
        "link" => Op::Link(b.deployment_id),
        "unlink" => Op::Unlink(b.deployment_id),
        other => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{other:?} is not link or unlink"),
                Some("action"),
            );
        }
    };
    run_ops(&api, &id, vec![op], actor_of(b.actor)).await
}

async fn patch_incident(State(api): State<Api>, Path(id): Path<String>, body: Bytes) -> Response {
    let b = match json_body::<PatchBody>(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut ops = Vec::new();
    match severity_of(b.severity) {
        Ok(Some(s)) => ops.push(Op::Severity(s)),
        Ok(None) => {}
        Err(r) => return r,
    }
    if let Some(owner) = b.owner {
        ops.push(Op::Owner(Some(owner).filter(|o| !o.is_empty())));
    }
    if let Some(title) = b.title {
        ops.push(Op::Title(title));
    }
    run_ops(&api, &id, ops, actor_of(b.actor)).await
}

async fn record_deployment(api: &Api, posted: PostableDeployment, source: &str) -> Response {
    let handle = match handle(api) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let deployment = match posted.validate(source) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, e.problem, Some(&e.field)),
    };
    match handle.deployment(deployment).await {
        Ok(outcome) => {
            if outcome.created
                && let Some(verifier) = &api.verifier
            {
                verifier.deployment(outcome.deployment.clone()).await;
            }
            let status = if outcome.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(outcome)).into_response()
        }
        Err(e) => manager_error(e),
    }
}

async fn post_deployment(State(api): State<Api>, body: Bytes) -> Response {
    match json_body::<PostableDeployment>(&body) {
        Ok(p) => record_deployment(&api, p, "api").await,
        Err(r) => r,
    }
}

async fn list_deployments(State(api): State<Api>, RawQuery(raw): RawQuery) -> Response {
    let params = query_params(raw);
    let (since, until) = match (time_param(&params, "since"), time_param(&params, "until")) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let get = |n: &str| params.get(n).filter(|s| !s.is_empty()).cloned();
    match api
        .store
        .deployments(get("service"), get("environment"), since, until, MAX_LIST)
        .await
    {
        Ok(list) => Json(list).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string(), None),
    }
}

async fn get_deployment(State(api): State<Api>, Path(id): Path<String>) -> Response {
    match api.store.deployment(id.clone()).await {
        Ok(Some(d)) => Json(d).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no deployment {id:?}"), None),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string(), None),
    }
}

async fn github_webhook(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    use crate::incident::github;
    let Some(secret) = api.github_secret.clone() else {
        return error(
            StatusCode::NOT_FOUND,
            "the GitHub webhook is not configured (incidents.github_secret_file)",
            None,
        );
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(e) = github::verify_signature(&secret, &body, header("x-hub-signature-256")) {
        metrics::counter!("redline_collector_webhook_rejected_total", "reason" => "signature")
            .increment(1);
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        return error(status, e.to_string(), None);
    }
    match github::parse_delivery(header("x-github-event"), &body) {
        Ok(Some(posted)) => record_deployment(&api, posted, "github").await,
        Ok(None) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"ignored": "not a finished deployment"})),
        )
            .into_response(),
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            error(status, e.to_string(), None)
        }
    }
}

async fn dora(State(api): State<Api>, RawQuery(raw): RawQuery) -> Response {
    let params = query_params(raw);
    let Some(service) = params.get("service").filter(|s| !s.is_empty()).cloned() else {
        return error(StatusCode::BAD_REQUEST, "missing", Some("service"));
    };
    let environment = params.get("environment").cloned().unwrap_or_default();
    let now = super::now_ms();
    let (from, to) = match (time_param(&params, "from"), time_param(&params, "to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let to = to.unwrap_or(now);
    let from = from.unwrap_or(to - 30 * 86_400_000);
    if from >= to {
        return error(StatusCode::BAD_REQUEST, "must be before to", Some("from"));
    }
    match api
        .store
        .dora_events(service.clone(), environment.clone())
        .await
    {
        Ok((deployments, incidents)) => Json(crate::incident::dora::compute(
            &deployments,
            &incidents,
            &service,
            &environment,
            from,
            to,
            now,
        ))
        .into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string(), None),
    }
}

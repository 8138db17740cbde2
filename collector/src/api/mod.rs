//! The HTTP API: Prometheus-shaped metric reads, Jaeger-shaped trace reads, log search, the
//! collector's own `/metrics`, and health. Handlers parse parameters, call `query::Engine` or
//! the store, and render with `dto`, the only serde surface of the API.

pub(crate) mod alertmanager;
pub mod dto;
mod incidents;
mod params;
mod postmortem;
mod verify;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::model::Matcher;
use crate::query::{Engine, QueryError};
use crate::store::{LogQuery, Store, TraceQuery};
use params::Params;

/// State shared by the handlers.
#[derive(Clone)]
pub struct Api {
    pub store: Store,
    pub engine: Engine,
    pub metrics: PrometheusHandle,
    /// Cleared when shutdown begins, so `/readyz` turns away new traffic first.
    pub ready: Arc<AtomicBool>,
    /// Rule groups and alerts as the rule manager last published them.
    pub rules: crate::alert::manager::SharedStatus,
    pub reloader: crate::Reloader,
    /// The notification dispatcher, for Alertmanager's API v2.
    pub dispatcher: crate::alert::dispatcher::DispatcherHandle,
    /// The routing configuration's text, for `GET /api/v2/status`.
    pub notify_config_text: Arc<String>,
    pub started_ms: i64,
    /// The incident manager (changes to incidents and deployments).
    pub incidents: Option<crate::incident::manager::IncidentHandle>,
    /// The secret GitHub signs `deployment_status` webhooks with, when configured.
    pub github_secret: Option<Arc<Vec<u8>>>,
    /// The verifier (rollback approvals and blocks).
    pub verifier: Option<crate::verify::task::VerifierHandle>,
    /// `detect.threshold`: what counts as anomalous in post-mortems' "what moved first".
    pub anomaly_threshold: f64,
}

pub fn router(api: Api) -> Router {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/history", get(alert_history))
        .route("/-/reload", axum::routing::post(reload).put(reload))
        .route("/api/v1/logs", get(logs))
        .route("/api/services", get(services))
        .route("/api/services/{service}/operations", get(operations))
        .route("/api/traces", get(find_traces))
        .route("/api/traces/{id}", get(trace))
        .route("/metrics", get(own_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(alertmanager::router())
        .merge(incidents::router())
        .merge(verify::router())
        .route(
            "/api/v1/incidents/{id}/postmortem",
            get(postmortem::handler),
        )
        .with_state(api)
}

/// The parameters of a Prometheus API request: the query string and, for a POST with a form
/// body, the form's fields too, as Prometheus reads them.
struct PromParams(Params);

impl<S: Send + Sync> axum::extract::FromRequest<S> for PromParams {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Response> {
        let is_form_post = req.method() == Method::POST
            && req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let mut p = Params::from_query(req.uri().query().unwrap_or(""));
        if is_form_post {
            let body = Bytes::from_request(req, state)
                .await
                .map_err(|e| bad_data(format!("cannot read the form body: {e}")))?;
            p.extend_from_form(&body);
        }
        Ok(PromParams(p))
    }
}

fn bad_data(message: impl Into<String>) -> Response {
    dto::error(StatusCode::BAD_REQUEST, "bad_data", message.into())
}

fn query_error(e: QueryError) -> Response {
    let status = match e.error_type() {
        "bad_data" => StatusCode::BAD_REQUEST,
        "execution" => StatusCode::UNPROCESSABLE_ENTITY,
        "timeout" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    dto::error(status, e.error_type(), e.to_string())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The `query` and optional `timeout` parameters both query endpoints take.
fn query_and_timeout(p: &Params) -> Result<(&str, Option<std::time::Duration>), Response> {
    let Some(expr) = p.get("query") else {
        return Err(bad_data("invalid parameter \"query\": missing"));
    };
    let timeout = match p.get("timeout") {
        None | Some("") => None,
        Some(_) => match p.duration("timeout") {
            Ok(ms) => Some(std::time::Duration::from_millis(ms.max(0) as u64)),
            Err(e) => return Err(bad_data(e)),
        },
    };
    Ok((expr, timeout))
}

async fn query(State(api): State<Api>, PromParams(p): PromParams) -> Response {
    let (expr, timeout) = match query_and_timeout(&p) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let time = match p.time("time", now_ms()) {
        Ok(t) => t,
        Err(e) => return bad_data(e),
    };
    match api.engine.instant_with_timeout(expr, time, timeout).await {
        Ok(v) => dto::query_result(&v),
        Err(e) => query_error(e),
    }
}

async fn query_range(State(api): State<Api>, PromParams(p): PromParams) -> Response {
    let (expr, timeout) = match query_and_timeout(&p) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (start, end, step) = match (
        p.required_time("start"),
        p.required_time("end"),
        p.duration("step"),
    ) {
        (Ok(s), Ok(e), Ok(st)) => (s, e, st),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return bad_data(e),
    };
    match api
        .engine
        .range_with_timeout(expr, start, end, step, timeout)
        .await
    {
        Ok(v) => dto::query_result(&v),
        Err(e) => query_error(e),
    }
}

/// Parses every `match[]` selector into matcher lists, on a blocking thread: compiling their
/// regular expressions can take long (see `Engine::parse_off_runtime`).
async fn selectors(p: &Params) -> Result<Vec<Vec<Matcher>>, Response> {
    let texts: Vec<String> = p.all("match[]").map(str::to_owned).collect();
    let parsed = tokio::task::spawn_blocking(move || {
        texts
            .iter()
            .map(|s| params::selector_matchers(s))
            .collect::<Result<Vec<_>, String>>()
    })
    .await;
    match parsed {
        Ok(Ok(sets)) => Ok(sets),
        Ok(Err(e)) => Err(bad_data(e)),
        Err(e) => Err(dto::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("parse task failed: {e}"),
        )),
    }
}

async fn series(State(api): State<Api>, PromParams(p): PromParams) -> Response {
    let sets = match selectors(&p).await {
        Ok(s) if s.is_empty() => return bad_data("no match[] parameter provided"),
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut seen = std::collections::BTreeSet::new();
    for matchers in sets {
        for labels in api.store.series(&matchers) {
            seen.insert(labels);
        }
    }
    dto::success(dto::series(seen.iter().map(|l| l.as_ref())))
}

async fn labels(State(api): State<Api>, PromParams(p): PromParams) -> Response {
    let sets = match selectors(&p).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let names: std::collections::BTreeSet<String> = if sets.is_empty() {
        api.store.label_names(&[]).into_iter().collect()
    } else {
        sets.iter().flat_map(|m| api.store.label_names(m)).collect()
    };
    dto::success(serde_json::json!(names))
}

async fn label_values(
    State(api): State<Api>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::from_query(q.as_deref().unwrap_or(""));
    let sets = match selectors(&p).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let values: std::collections::BTreeSet<String> = if sets.is_empty() {
        api.store.label_values(&name, &[]).into_iter().collect()
    } else {
        sets.iter()
            .flat_map(|m| api.store.label_values(&name, m))
            .collect()
    };
    dto::success(serde_json::json!(values))
}

async fn rules(State(api): State<Api>, RawQuery(q): RawQuery) -> Response {
    let p = Params::from_query(q.as_deref().unwrap_or(""));
    let kind = p.get("type").map(str::to_ascii_lowercase);
    if let Some(k) = &kind
        && k != "alert"
        && k != "record"
    {
        return bad_data(format!(
            "invalid parameter \"type\": {k:?} is not alert or record"
        ));
    }
    let status = api.rules.read().unwrap_or_else(|e| e.into_inner());
    dto::success(dto::rules(&status, kind.as_deref()))
}

async fn alerts(State(api): State<Api>) -> Response {
    let status = api.rules.read().unwrap_or_else(|e| e.into_inner());
    dto::success(dto::alerts(&crate::alert::manager::active_alerts(&status)))
}

/// Resolved alerts with their start and end: `since` (RFC 3339 or Unix seconds, default the
/// last 24 hours) and `limit` (default 100, at most 10000).
async fn alert_history(State(api): State<Api>, RawQuery(q): RawQuery) -> Response {
    let p = Params::from_query(q.as_deref().unwrap_or(""));
    let (since, limit) = match (
        p.time("since", now_ms() - 86_400_000),
        p.limit("limit", 100, 10_000),
    ) {
        (Ok(s), Ok(l)) => (s, l),
        (Err(e), _) | (_, Err(e)) => return bad_data(e),
    };
    match api.store.alert_history(since, limit).await {
        Ok(entries) => dto::success(dto::alert_history(&entries)),
        Err(e) => dto::error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

/// `POST /-/reload`: 200 when everything reloaded, 500 naming the problems otherwise (as
/// Prometheus answers); the body also names changed settings that wait for a restart.
async fn reload(State(api): State<Api>) -> Response {
    match api.reloader.reload().await {
        Ok(outcome) => {
            let status = if outcome.errors.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            (status, outcome.report()).into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

async fn metadata(State(api): State<Api>) -> Response {
    dto::success(dto::metadata(&api.store.metadata()))
}

async fn logs(State(api): State<Api>, RawQuery(q): RawQuery) -> Response {
    let p = Params::from_query(q.as_deref().unwrap_or(""));
    let min_severity = match p.get("severity") {
        None => None,
        Some(s) => match params::severity_number(s) {
            Some(n) => Some(n),
            None => {
                return bad_data(format!(
                    "invalid parameter \"severity\": {s:?} is not a number 1-24 nor one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL"
                ));
            }
        },
    };
    let (start, end, limit) = match (
        p.optional_time("start"),
        p.optional_time("end"),
        p.limit("limit", 100, 10_000),
    ) {
        (Ok(s), Ok(e), Ok(l)) => (s, e, l),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return bad_data(e),
    };
    let query = LogQuery {
        service: p.get("service").map(str::to_owned),
        min_severity,
        start_ns: start.map(|t| t.saturating_mul(1_000_000)),
        end_ns: end.map(|t| t.saturating_mul(1_000_000).saturating_add(999_999)),
        trace_id: p.get("trace_id").map(|s| s.to_ascii_lowercase()),
        contains: p.get("contains").map(str::to_owned),
        limit,
    };
    match api.store.logs(query).await {
        Ok(records) => dto::success(dto::logs(&records)),
        Err(e) => dto::error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

async fn services(State(api): State<Api>) -> Response {
    match api.store.span_services().await {
        Ok(s) => dto::jaeger(serde_json::json!(s)),
        Err(e) => dto::jaeger_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn operations(State(api): State<Api>, Path(service): Path<String>) -> Response {
    match api.store.span_operations(service).await {
        Ok(ops) => {
            let mut names: Vec<String> = ops.into_iter().map(|(n, _)| n).collect();
            names.dedup();
            dto::jaeger(serde_json::json!(names))
        }
        Err(e) => dto::jaeger_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn find_traces(State(api): State<Api>, RawQuery(q): RawQuery) -> Response {
    let p = Params::from_query(q.as_deref().unwrap_or(""));
    let Some(service) = p.get("service") else {
        return dto::jaeger_error(
            StatusCode::BAD_REQUEST,
            "parameter 'service' is required".into(),
        );
    };
    let now_us = now_ms() * 1000;
    let micros = |key: &str, default: i64| -> Result<i64, String> {
        match p.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .map_err(|_| format!("parameter '{key}' must be microseconds since the epoch")),
        }
    };
    let lookback_us = match p.get("lookback") {
        None => 3_600_000_000,
        Some(v) => match params::parse_duration_ms(v) {
            Ok(ms) => ms * 1000,
            Err(e) => {
                return dto::jaeger_error(
                    StatusCode::BAD_REQUEST,
                    format!("parameter 'lookback': {e}"),
                );
            }
        },
    };
    let (end_us, limit) = match (micros("end", now_us), p.limit("limit", 20, 1500)) {
        (Ok(e), Ok(l)) => (e, l),
        (Err(e), _) | (_, Err(e)) => return dto::jaeger_error(StatusCode::BAD_REQUEST, e),
    };
    let start_us = match micros("start", end_us - lookback_us) {
        Ok(s) => s,
        Err(e) => return dto::jaeger_error(StatusCode::BAD_REQUEST, e),
    };
    let query = TraceQuery {
        service: service.to_owned(),
        operation: p
            .get("operation")
            .filter(|o| !o.is_empty())
            .map(str::to_owned),
        start_ns: start_us.saturating_mul(1000),
        end_ns: end_us.saturating_mul(1000),
        limit,
    };
    match api.store.find_traces(query).await {
        Ok(traces) => dto::jaeger(serde_json::Value::Array(
            traces.iter().map(|t| dto::jaeger_trace(t)).collect(),
        )),
        Err(e) => dto::jaeger_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn trace(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let id = id.to_ascii_lowercase();
    if id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return dto::jaeger_error(
            StatusCode::BAD_REQUEST,
            format!("malformed trace id {id:?}"),
        );
    }
    // Jaeger prints ids without leading zeros; we store all 32 digits.
    let id = format!("{id:0>32}");
    match api.store.trace(id).await {
        Ok(spans) if spans.is_empty() => {
            dto::jaeger_error(StatusCode::NOT_FOUND, "trace not found".into())
        }
        Ok(spans) => dto::jaeger(serde_json::json!([dto::jaeger_trace(&spans)])),
        Err(e) => dto::jaeger_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn own_metrics(State(api): State<Api>) -> Response {
    metrics::gauge!("redline_collector_store_disk_bytes").set(api.store.disk_bytes() as f64);
    metrics::gauge!("redline_collector_store_series").set(api.store.series_count() as f64);
    // What `store.max_size` bounds; a failed read leaves the last value.
    if let Ok(used) = api.store.used_bytes().await {
        metrics::gauge!("redline_collector_store_used_bytes").set(used as f64);
    }
    if let Some(max_size) = api.store.max_size() {
        metrics::gauge!("redline_collector_store_size_limit_bytes").set(max_size as f64);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        api.metrics.render(),
    )
        .into_response()
}

async fn readyz(State(api): State<Api>) -> Response {
    if api.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}

//! Alertmanager's API v2, the parts Prometheus servers and `amtool` use: `POST /api/v2/alerts`
//! (so a Prometheus can use Redline as its Alertmanager), `GET /api/v2/alerts`, silences
//! (`POST/GET /api/v2/silences`, `GET/DELETE /api/v2/silence/{id}`), and `GET /api/v2/status`.
//! Handlers validate and convert; the dispatcher task (`alert::dispatcher`) owns the state.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::Api;
use crate::alert::dispatcher::DispatchError;
use crate::alert::matcher::{Matcher, parse_matchers};
use crate::alert::silence::{PostableSilence, format_time};
use crate::notify::{LabelSet, NotifyAlert, fingerprint};

/// Most alerts one `POST /api/v2/alerts` may carry.
pub const MAX_ALERTS_PER_REQUEST: usize = 10_000;
/// Largest body of an Alertmanager API request.
pub const MAX_BODY_BYTES: usize = 4 << 20;

pub fn router() -> Router<Api> {
    Router::new()
        .route("/api/v2/alerts", post(post_alerts).get(get_alerts))
        .route("/api/v2/silences", post(post_silence).get(get_silences))
        .route(
            "/api/v2/silence/{id}",
            get(get_silence).delete(delete_silence),
        )
        .route(
            "/api/v2/silences/{id}",
            get(get_silence).delete(delete_silence),
        )
        .route("/api/v2/status", get(status))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// Errors as go-swagger renders them for Alertmanager: a JSON string with the message for 400,
/// `{code, message}` otherwise.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    if status == StatusCode::BAD_REQUEST {
        (status, Json(message)).into_response()
    } else {
        (
            status,
            Json(serde_json::json!({"code": status.as_u16(), "message": message})),
        )
            .into_response()
    }
}

fn dispatch_error(e: DispatchError) -> Response {
    match e {
        DispatchError::InvalidSilence(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
        DispatchError::SilenceNotFound(_) => error(StatusCode::NOT_FOUND, e.to_string()),
        DispatchError::SilenceExpired(_) => error(StatusCode::BAD_REQUEST, e.to_string()),
        DispatchError::Store(_) | DispatchError::Closed => {
            error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    }
}

/// `postableAlert`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: Option<String>,
    #[serde(default)]
    pub ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: Option<String>,
}

fn parse_time(index: usize, field: &str, value: &Option<String>) -> Result<Option<i64>, String> {
    match value.as_deref() {
        None | Some("") | Some("0001-01-01T00:00:00Z") => Ok(None),
        Some(v) => v
            .parse::<jiff::Timestamp>()
            .map(|t| Some(t.as_millisecond()))
            .map_err(|e| format!("alerts[{index}].{field}: {v:?} is not an RFC 3339 time: {e}")),
    }
}

/// Validates one posted alert as Alertmanager's `Alert.Validate` does and fills in its times:
/// no start means now; no end means "firing until `resolve_timeout` passes without a refresh".
pub(crate) fn convert_alert(
    index: usize,
    alert: PostableAlert,
    now_ms: i64,
    resolve_timeout_ms: i64,
) -> Result<NotifyAlert, String> {
    if alert.labels.is_empty() {
        return Err(format!("alerts[{index}]: at least one label pair required"));
    }
    for (name, value) in &alert.labels {
        if !crate::rules::file::is_valid_label_name(name) {
            return Err(format!(
                "alerts[{index}].labels: invalid label name {name:?}"
            ));
        }
        if value.is_empty() {
            return Err(format!("alerts[{index}].labels.{name}: empty label value"));
        }
    }
    for name in alert.annotations.keys() {
        if !crate::rules::file::is_valid_label_name(name) {
            return Err(format!(
                "alerts[{index}].annotations: invalid annotation name {name:?}"
            ));
        }
    }
    let ends = parse_time(index, "endsAt", &alert.ends_at)?;
    // As Alertmanager: no start means now, or the end when that is already past.
    let starts = parse_time(index, "startsAt", &alert.starts_at)?
        .unwrap_or_else(|| ends.map_or(now_ms, |end| end.min(now_ms)));
    if let Some(end) = ends
        && end < starts
    {
        return Err(format!("alerts[{index}]: endsAt is before startsAt"));
    }
    Ok(NotifyAlert {
        labels: alert.labels,
        annotations: alert.annotations,
        starts_at_ms: starts,
        ends_at_ms: Some(ends.unwrap_or(now_ms + resolve_timeout_ms)),
        generator_url: alert.generator_url.unwrap_or_default(),
    })
}

async fn post_alerts(State(api): State<Api>, body: Bytes) -> Response {
    let alerts: Vec<PostableAlert> = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid alerts body: {e}")),
    };
    if alerts.len() > MAX_ALERTS_PER_REQUEST {
        metrics::counter!("redline_collector_rejected_total", "signal" => "alerts", "reason" => "too_many_alerts")
            .increment(1);
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} alerts in one request, more than the limit of {MAX_ALERTS_PER_REQUEST}",
                alerts.len()
            ),
        );
    }
    let now = api.dispatcher.now_ms();
    let timeout = api.dispatcher.resolve_timeout().as_millis() as i64;
    let mut converted = Vec::with_capacity(alerts.len());
    let mut errors = Vec::new();
    for (i, alert) in alerts.into_iter().enumerate() {
        match convert_alert(i, alert, now, timeout) {
            Ok(a) => converted.push(a),
            Err(e) => errors.push(e),
        }
    }
    // As Alertmanager: the valid alerts are taken even when some are refused.
    let accepted = converted.len();
    if !converted.is_empty()
        && let Err(e) = api.dispatcher.send_alerts(converted).await
    {
        return dispatch_error(e);
    }
    metrics::counter!("redline_collector_received_total", "signal" => "alerts", "protocol" => "alertmanager")
        .increment(accepted as u64);
    if errors.is_empty() {
        StatusCode::OK.into_response()
    } else {
        metrics::counter!("redline_collector_rejected_total", "signal" => "alerts", "reason" => "invalid")
            .increment(errors.len() as u64);
        error(StatusCode::BAD_REQUEST, errors.join("; "))
    }
}

#[derive(Serialize)]
struct ReceiverDto {
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertStatusDto {
    state: &'static str,
    silenced_by: Vec<String>,
    inhibited_by: Vec<String>,
}

/// `gettableAlert`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GettableAlert {
    annotations: LabelSet,
    ends_at: String,
    fingerprint: String,
    receivers: Vec<ReceiverDto>,
    starts_at: String,
    status: AlertStatusDto,
    updated_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: String,
    labels: LabelSet,
}

/// Query parameters of `GET /api/v2/alerts` and `GET /api/v2/silences`: booleans default to
/// true, `filter` may repeat.
struct Filters {
    active: bool,
    silenced: bool,
    inhibited: bool,
    receiver: Option<regex::Regex>,
    matchers: Vec<Matcher>,
}

fn filters(query: Option<String>) -> Result<Filters, String> {
    let mut f = Filters {
        active: true,
        silenced: true,
        inhibited: true,
        receiver: None,
        matchers: Vec::new(),
    };
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let flag = || match v.as_ref() {
            "true" | "" => Ok(true),
            "false" => Ok(false),
            other => Err(format!("{k}: {other:?} is not true or false")),
        };
        match k.as_ref() {
            "active" => f.active = flag()?,
            "silenced" => f.silenced = flag()?,
            "inhibited" => f.inhibited = flag()?,
            "unprocessed" => {
                flag()?;
            }
            "receiver" => {
                f.receiver = Some(
                    crate::alert::matcher::anchored_regex(&v)
                        .map_err(|e| format!("receiver: {e}"))?,
                )
            }
            "filter" => f
                .matchers
                .extend(parse_matchers(&v).map_err(|e| format!("filter {v:?}: {e}"))?),
            _ => {}
        }
    }
    Ok(f)
}

/// `filters` on a blocking thread: its regular expressions (`receiver`, `filter` matchers)
/// come from the request, and a pathological one takes seconds to compile (see
/// `Engine::parse_off_runtime`). A bad filter is a 400.
async fn filters_off_runtime(query: Option<String>) -> Result<Filters, Response> {
    match tokio::task::spawn_blocking(move || filters(query)).await {
        Ok(Ok(f)) => Ok(f),
        Ok(Err(e)) => Err(error(StatusCode::BAD_REQUEST, e)),
        Err(e) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("filter task failed: {e}"),
        )),
    }
}

async fn get_alerts(State(api): State<Api>, RawQuery(query): RawQuery) -> Response {
    let f = match filters_off_runtime(query).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let views = match api.dispatcher.alerts().await {
        Ok(v) => v,
        Err(e) => return dispatch_error(e),
    };
    let mut out = Vec::new();
    for v in views {
        let a = &v.alert;
        // Resolved alerts are not listed, as in Alertmanager.
        if a.resolved_at(v.now_ms) {
            continue;
        }
        let silenced = !v.status.silenced_by.is_empty();
        let inhibited = v.status.inhibited;
        if (silenced && !f.silenced)
            || (inhibited && !f.inhibited)
            || (!silenced && !inhibited && !f.active)
        {
            continue;
        }
        if !f.matchers.iter().all(|m| m.matches(&a.labels)) {
            continue;
        }
        if let Some(re) = &f.receiver
            && !v.status.receivers.iter().any(|r| re.is_match(r))
        {
            continue;
        }
        out.push(GettableAlert {
            annotations: a.annotations.clone(),
            ends_at: format_time(a.ends_at_ms.unwrap_or(v.now_ms)),
            fingerprint: format!("{:016x}", fingerprint(&a.labels)),
            receivers: v
                .status
                .receivers
                .iter()
                .map(|name| ReceiverDto { name: name.clone() })
                .collect(),
            starts_at: format_time(a.starts_at_ms),
            status: AlertStatusDto {
                state: if silenced || inhibited {
                    "suppressed"
                } else {
                    "active"
                },
                silenced_by: v.status.silenced_by.clone(),
                inhibited_by: if inhibited {
                    vec!["inhibit_rule".to_owned()]
                } else {
                    Vec::new()
                },
            },
            updated_at: format_time(v.now_ms),
            generator_url: a.generator_url.clone(),
            labels: a.labels.clone(),
        });
    }
    Json(out).into_response()
}

async fn post_silence(State(api): State<Api>, body: Bytes) -> Response {
    let silence: PostableSilence = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid silence: {e}")),
    };
    match api.dispatcher.put_silence(silence).await {
        Ok(id) => Json(serde_json::json!({ "silenceID": id })).into_response(),
        Err(e) => dispatch_error(e),
    }
}

async fn get_silences(State(api): State<Api>, RawQuery(query): RawQuery) -> Response {
    let f = match filters_off_runtime(query).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    match api.dispatcher.silences().await {
        Ok(list) => {
            // Alertmanager's filter for silences: every filter matcher equals one of the
            // silence's matchers.
            let list: Vec<_> = list
                .into_iter()
                .filter(|s| {
                    f.matchers.iter().all(|fm| {
                        s.matchers
                            .iter()
                            .any(|m| m.name == fm.name && fm.matches_value(&m.value))
                    })
                })
                .collect();
            Json(list).into_response()
        }
        Err(e) => dispatch_error(e),
    }
}

async fn get_silence(State(api): State<Api>, Path(id): Path<String>) -> Response {
    match api.dispatcher.silences().await {
        Ok(list) => match list.into_iter().find(|s| s.id == id) {
            Some(s) => Json(s).into_response(),
            None => error(StatusCode::NOT_FOUND, format!("silence {id} not found")),
        },
        Err(e) => dispatch_error(e),
    }
}

async fn delete_silence(State(api): State<Api>, Path(id): Path<String>) -> Response {
    match api.dispatcher.expire_silence(id).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => dispatch_error(e),
    }
}

async fn status(State(api): State<Api>) -> Response {
    Json(serde_json::json!({
        "cluster": {"status": "disabled", "peers": []},
        "versionInfo": {
            "version": env!("CARGO_PKG_VERSION"),
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "redline",
        },
        "config": {"original": api.notify_config_text.as_str()},
        "uptime": format_time(api.started_ms),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(labels: &[(&str, &str)]) -> PostableAlert {
        PostableAlert {
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            annotations: BTreeMap::new(),
            starts_at: None,
            ends_at: None,
            generator_url: None,
        }
    }

    #[test]
    fn posted_alerts_get_times_and_are_validated() {
        let a = convert_alert(0, alert(&[("alertname", "X")]), 1000, 300_000);
        let a = a.as_ref().map(|a| (a.starts_at_ms, a.ends_at_ms));
        assert_eq!(a, Ok((1000, Some(301_000))));
        let mut b = alert(&[("alertname", "X")]);
        b.starts_at = Some("2026-11-26T10:00:00Z".into());
        b.ends_at = Some("2026-11-26T10:05:00.5Z".into());
        let b = convert_alert(0, b, 0, 1).map(|a| a.ends_at_ms.map(|e| e - a.starts_at_ms));
        assert_eq!(b, Ok(Some(300_500)));
        assert_eq!(
            convert_alert(3, alert(&[]), 0, 1).err().as_deref(),
            Some("alerts[3]: at least one label pair required")
        );
        assert!(
            convert_alert(0, alert(&[("0bad", "x")]), 0, 1)
                .err()
                .is_some_and(|e| e.contains("invalid label name \"0bad\""))
        );
        let mut c = alert(&[("a", "b")]);
        c.starts_at = Some("yesterday".into());
        assert!(
            convert_alert(1, c, 0, 1)
                .err()
                .is_some_and(|e| e.starts_with("alerts[1].startsAt: \"yesterday\""))
        );
        // Only a past end: the alert starts (and resolves) then.
        let mut e = alert(&[("a", "b")]);
        e.ends_at = Some("1970-01-01T00:00:01Z".into());
        let e = convert_alert(0, e, 5000, 1).map(|a| (a.starts_at_ms, a.ends_at_ms));
        assert_eq!(e, Ok((1000, Some(1000))));
        let mut d = alert(&[("a", "b")]);
        d.starts_at = Some("2026-11-26T10:00:00Z".into());
        d.ends_at = Some("2026-11-26T09:00:00Z".into());
        assert!(convert_alert(0, d, 0, 1).is_err());
    }

    /// The filters of `GET /api/v2/alerts` and `/silences`, parsed on a blocking thread: a bad
    /// one is still a 400.
    #[tokio::test]
    async fn filters_off_the_runtime_answer_bad_ones_with_400() {
        let good = filters_off_runtime(Some("filter=%7Bseverity%3D~%22crit.*%22%7D".into())).await;
        assert!(good.is_ok_and(|f| f.matchers.len() == 1));
        for bad in ["filter=%7Ba%3D~%22(%22%7D", "receiver=(", "active=maybe"] {
            let got = filters_off_runtime(Some(bad.into())).await;
            assert!(
                got.as_ref()
                    .is_err_and(|r| r.status() == StatusCode::BAD_REQUEST),
                "{bad}"
            );
        }
    }

    #[test]
    fn filters_parse_like_alertmanager() {
        let f = filters(Some(
            "active=false&filter=alertname%3D%22A%22&filter=%7Bseverity%3D~%22crit.*%22%7D&receiver=ops"
                .into(),
        ))
        .map_err(|e| e.to_string());
        let f = f.as_ref().map(|f| (f.active, f.silenced, f.matchers.len()));
        assert_eq!(f, Ok((false, true, 2)));
        assert!(filters(Some("silenced=maybe".into())).is_err());
        assert!(filters(Some("filter=%3D%3D".into())).is_err());
    }
}

//! Verification and rollbacks over HTTP: `GET /api/v1/deployments/{id}/analysis`,
//! `GET /api/v1/deployments/{id}/timeline`, `GET /api/v1/rollbacks[/{id}]`,
//! `POST /api/v1/rollbacks/{id}/approve`, and the maintenance block
//! (`GET|POST|DELETE /api/v1/rollbacks/block`).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::Api;
use super::incidents::{actor_of, error, json_body};
use crate::incident::time::Timestamp;
use crate::verify::rollback::Block;
use crate::verify::task::VerifyError;

pub fn router() -> Router<Api> {
    Router::new()
        .route("/api/v1/deployments/{id}/analysis", get(analysis))
        .route("/api/v1/deployments/{id}/timeline", get(timeline))
        .route("/api/v1/rollbacks", get(list))
        .route(
            "/api/v1/rollbacks/block",
            get(get_block).post(set_block).delete(lift_block),
        )
        .route("/api/v1/rollbacks/{id}", get(one))
        .route("/api/v1/rollbacks/{id}/approve", post(approve))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, e.to_string(), None)
}

fn verify_error(e: VerifyError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error(status, e.to_string(), None)
}

async fn analysis(State(api): State<Api>, Path(id): Path<String>) -> Response {
    match api.store.deployment(id.clone()).await {
        Ok(Some(_)) => {}
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no deployment {id:?}"), None),
        Err(e) => return unavailable(e),
    }
    let (verification, analyses) = match (
        api.store.verification(id.clone()).await,
        api.store.analyses(id.clone()).await,
    ) {
        (Ok(v), Ok(a)) => (v, a),
        (Err(e), _) | (_, Err(e)) => return unavailable(e),
    };
    let verdict = verification.as_ref().map(|v| v.verdict_name());
    Json(serde_json::json!({
        "deployment_id": id,
        "verified": verification.is_some(),
        "verdict": verdict,
        "indicators": verification.as_ref().map(|v| v.indicators.clone()).unwrap_or_default(),
        "analyses": analyses,
    }))
    .into_response()
}

async fn timeline(State(api): State<Api>, Path(id): Path<String>) -> Response {
    match api.store.deployment(id.clone()).await {
        Ok(Some(_)) => {}
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no deployment {id:?}"), None),
        Err(e) => return unavailable(e),
    }
    match api.store.deployment_timeline(id).await {
        Ok(entries) => Json(entries).into_response(),
        Err(e) => unavailable(e),
    }
}

async fn list(State(api): State<Api>, RawQuery(raw): RawQuery) -> Response {
    let params: std::collections::BTreeMap<String, String> =
        form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let service = params.get("service").filter(|s| !s.is_empty()).cloned();
    match api.store.rollbacks(service, 1000).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => unavailable(e),
    }
}

async fn one(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error(StatusCode::NOT_FOUND, format!("no rollback {id:?}"), None);
    };
    match api.store.rollback(id).await {
        Ok(Some(r)) => Json(r).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no rollback {id}"), None),
        Err(e) => unavailable(e),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActorBody {
    #[serde(default)]
    actor: Option<String>,
}

async fn approve(State(api): State<Api>, Path(id): Path<String>, body: Bytes) -> Response {
    let Some(verifier) = api.verifier.as_ref() else {
        return unavailable("verification is not available on this collector");
    };
    let Ok(id) = id.parse::<i64>() else {
        return error(StatusCode::NOT_FOUND, format!("no rollback {id:?}"), None);
    };
    let b: ActorBody = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match verifier.approve(id, actor_of(b.actor)).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => verify_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockBody {
    until: Timestamp,
    reason: String,
    #[serde(default)]
    actor: Option<String>,
}

async fn get_block(State(api): State<Api>) -> Response {
    match api.store.rollback_block().await {
        Ok(b) => Json(serde_json::json!({"block": b})).into_response(),
        Err(e) => unavailable(e),
    }
}

async fn set_block(State(api): State<Api>, body: Bytes) -> Response {
    let Some(verifier) = api.verifier.as_ref() else {
        return unavailable("verification is not available on this collector");
    };
    let b: BlockBody = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let until = match b.until.millis() {
        Ok(t) => t,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, e, Some("until")),
    };
    if b.reason.trim().is_empty() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "must not be empty",
            Some("reason"),
        );
    }
    let block = Block {
        until,
        reason: b.reason,
        by: actor_of(b.actor),
    };
    match verifier.block(Some(block.clone())).await {
        Ok(()) => Json(serde_json::json!({"block": block})).into_response(),
        Err(e) => verify_error(e),
    }
}

async fn lift_block(State(api): State<Api>) -> Response {
    let Some(verifier) = api.verifier.as_ref() else {
        return unavailable("verification is not available on this collector");
    };
    match verifier.block(None).await {
        Ok(()) => Json(serde_json::json!({"block": null})).into_response(),
        Err(e) => verify_error(e),
    }
}

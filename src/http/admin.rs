//! `POST /admin/invalidate-cache` (shared secret) and `POST /webhooks/github` (signed push
//! events): lesson cache invalidation. Each route answers 404 while its secret is unset.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::body::RequestBody;
use crate::app::AppState;
use crate::content::webhook::{PushEvent, signature_is_valid};
use crate::content::{Invalidated, LessonPath, Source};
use crate::error::ApiError;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/invalidate-cache", post(invalidate_cache))
        .route("/webhooks/github", post(github_webhook))
}

/// Compares digests so that neither the content nor the length of the secret leaks through
/// timing (`ct_eq` on slices of different lengths returns early).
fn secret_matches(expected: &str, given: &[u8]) -> bool {
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(given);
    a.ct_eq(&b).into()
}

async fn invalidate_cache(
    State(state): State<AppState>,
    headers: HeaderMap,
    RequestBody(body): RequestBody,
) -> Result<Json<Invalidated>, ApiError> {
    let Some(secret) = &state.settings.admin_secret else {
        return Err(ApiError::not_found("no such route"));
    };
    let given = headers.get("x-admin-secret").map(|v| v.as_bytes());
    if !given.is_some_and(|g| secret_matches(secret, g)) {
        return Err(ApiError::forbidden("missing or wrong X-Admin-Secret"));
    }
    let done = match parse_paths(&body).map_err(ApiError::bad_request)? {
        Some(paths) => state.content.invalidate(&paths).await,
        None => state.content.invalidate_all().await,
    };
    tracing::info!(
        all = done.all,
        paths = done.paths.len(),
        l1 = done.l1,
        l2 = done.l2,
        "lesson cache invalidated"
    );
    Ok(Json(done))
}

/// No body at all (or `null`) means everything; otherwise a JSON array of lesson paths. A body
/// of whitespace is malformed JSON like any other, not a request to drop the whole cache.
fn parse_paths(body: &[u8]) -> Result<Option<Vec<LessonPath>>, String> {
    if body.is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("body must be a JSON array of lesson paths: {e}"))?;
    let items = match value {
        Value::Null => return Ok(None),
        Value::Array(items) => items,
        _ => {
            return Err("body must be a JSON array of lesson paths".to_owned());
        }
    };
    items
        .iter()
        .map(|item| {
            let raw = item
                .as_str()
                .ok_or_else(|| "every lesson path must be a string".to_owned())?;
            LessonPath::parse(raw).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

async fn github_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    RequestBody(body): RequestBody,
) -> Result<Json<Value>, ApiError> {
    let Some(secret) = &state.settings.content.github_webhook_secret else {
        return Err(ApiError::not_found("no such route"));
    };
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::unauthorized("missing X-Hub-Signature-256"))?;
    if !signature_is_valid(secret, &body, signature) {
        return Err(ApiError::forbidden("X-Hub-Signature-256 does not match"));
    }
    // Every GitHub payload is a JSON object, whatever the event; anything else is refused
    // (schemathesis found a signed empty body answered 200).
    let payload: Map<String, Value> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("payload must be a JSON object: {e}")))?;
    let event = headers
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match event {
        "ping" => Ok(Json(json!({"ok": true, "event": "ping"}))),
        "push" => handle_push(&state, payload).await,
        other => Ok(Json(
            json!({"ok": true, "event": other, "ignored": "not a push event"}),
        )),
    }
}

async fn handle_push(
    state: &AppState,
    payload: Map<String, Value>,
) -> Result<Json<Value>, ApiError> {
    let push: PushEvent = serde_json::from_value(Value::Object(payload))
        .map_err(|e| ApiError::bad_request(format!("push payload: {e}")))?;
    let settings = &state.settings.content;
    let (branch, docs_path) = match state.content.source() {
        Source::GitHub(g) => (g.branch(), g.docs_path()),
        Source::Local(_) => (
            settings.github_branch.as_str(),
            settings.github_docs_path.as_str(),
        ),
    };
    if !push.is_to_branch(branch) {
        return Ok(Json(json!({
            "ok": true,
            "event": "push",
            "ignored": format!("push to {} is not to {branch}", push.git_ref),
        })));
    }
    let paths = push.touched_lessons(docs_path);
    let done = state.content.invalidate(&paths).await;
    tracing::info!(
        paths = done.paths.len(),
        l1 = done.l1,
        l2 = done.l2,
        "push webhook invalidated lessons"
    );
    Ok(Json(
        json!({"ok": true, "event": "push", "invalidated": done}),
    ))
}

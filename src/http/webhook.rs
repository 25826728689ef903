//! `POST /webhooks/github`: signed GitHub push events invalidate exactly the lessons a push
//! touched (the policy is `Content::apply_push`). Answers 404 while `GITHUB_WEBHOOK_SECRET` is
//! unset.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use super::body::RequestBody;
use crate::content::Content;
use crate::content::webhook::{PushEvent, signature_is_valid};
use crate::error::ApiError;
use crate::state::{AppState, Secrets};

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/webhooks/github", post(github_webhook))
}

async fn github_webhook(
    State(secrets): State<Secrets>,
    State(content): State<Content>,
    headers: HeaderMap,
    RequestBody(body): RequestBody,
) -> Result<Json<Value>, ApiError> {
    let Some(secret) = &secrets.github_webhook else {
        return Err(ApiError::not_found("no such route"));
    };
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::unauthorized("missing X-Hub-Signature-256"))?;
    if !signature_is_valid(secret.expose_secret(), &body, signature) {
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
        "push" => {
            let push: PushEvent = serde_json::from_value(Value::Object(payload))
                .map_err(|e| ApiError::bad_request(format!("push payload: {e}")))?;
            let outcome = content.apply_push(&push).await;
            let mut body = json!({"ok": true, "event": "push"});
            if let (Some(out), Ok(Value::Object(fields))) =
                (body.as_object_mut(), serde_json::to_value(&outcome))
            {
                out.extend(fields);
            }
            Ok(Json(body))
        }
        other => Ok(Json(
            json!({"ok": true, "event": other, "ignored": "not a push event"}),
        )),
    }
}

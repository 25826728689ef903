//! `POST /webhooks/github`: signed GitHub push events invalidate exactly the lessons a push
//! touched (the policy is `Content::apply_push`). Answers 404 while `GITHUB_WEBHOOK_SECRET` is
//! unset.

use axum::extract::{Request, State};
use axum::routing::post;
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use super::body;
use crate::content::Content;
use crate::content::webhook::{PushEvent, signature_is_valid};
use crate::error::ApiError;
use crate::state::{AppState, BodyLimits, Secrets};

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/webhooks/github", post(github_webhook))
}

/// Largest delivery read (before the HMAC can be checked, so anyone can make us read it): a
/// push payload lists at most 20 commits and is far smaller; a bigger delivery is 413 and
/// GitHub records it as failed (docs/OPERATIONS.md: invalidate through the admin route then).
pub const WEBHOOK_MAX_BODY_BYTES: usize = 256 * 1024;

/// Everything that needs no body is checked first (route enabled, a well-formed signature
/// header); then at most [`WEBHOOK_MAX_BODY_BYTES`] are read for the HMAC.
async fn github_webhook(
    State(secrets): State<Secrets>,
    State(content): State<Content>,
    State(limits): State<BodyLimits>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let Some(secret) = &secrets.github_webhook else {
        return Err(ApiError::not_found("no such route"));
    };
    let headers = req.headers().clone();
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::unauthorized("missing X-Hub-Signature-256"))?;
    if !is_well_formed(signature.trim()) {
        return Err(ApiError::forbidden("X-Hub-Signature-256 does not match"));
    }
    let limits = BodyLimits {
        max_bytes: limits.max_bytes.min(WEBHOOK_MAX_BODY_BYTES),
        ..limits
    };
    let body = body::read(req, limits).await?;
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

/// `sha256=` and 64 hex digits: anything else cannot match, whatever the body.
fn is_well_formed(signature: &str) -> bool {
    signature
        .strip_prefix("sha256=")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

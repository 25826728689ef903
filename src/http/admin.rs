//! `POST /admin/invalidate-cache` (shared secret): drop lessons from every cache tier. Answers
//! 404 while `ADMIN_SECRET` is unset.

use axum::extract::{Request, State};
use axum::routing::post;
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::body;
use crate::content::{Content, Invalidated, LessonPath};
use crate::error::{ApiError, ErrorBody};
use crate::state::{AppState, BodyLimits, Secrets};

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/invalidate-cache", post(invalidate_cache))
}

/// Compares digests so that neither the content nor the length of the secret leaks through
/// timing (`ct_eq` on slices of different lengths returns early).
fn secret_matches(expected: &str, given: &[u8]) -> bool {
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(given);
    a.ct_eq(&b).into()
}

/// The secret is checked before the body is read: a caller without it costs no buffer.
#[utoipa::path(post, path = "/admin/invalidate-cache", tag = "admin", operation_id = "invalidateCache",
    summary = "Drop cached lessons (all, or the listed paths)",
    params(("X-Admin-Secret" = String, Header)),
    request_body(content = Option<Vec<String>>, content_type = "application/json",
        description = "Lesson paths; no body or `null` means everything."),
    responses(
        (status = 200, description = "OK", body = Invalidated),
        (status = 400, description = "Malformed request: the message names the offending field or parameter.", body = ErrorBody),
        (status = 403, description = "Missing or wrong `X-Admin-Secret`.", body = ErrorBody),
        (status = 404, description = "Admin routes are disabled (`ADMIN_SECRET` unset).", body = ErrorBody),
        (status = 500, description = "Internal error: an opaque message and the request id; details only in the log.", body = ErrorBody)))]
async fn invalidate_cache(
    State(secrets): State<Secrets>,
    State(content): State<Content>,
    State(limits): State<BodyLimits>,
    req: Request,
) -> Result<Json<Invalidated>, ApiError> {
    let Some(secret) = &secrets.admin else {
        return Err(ApiError::not_found("no such route"));
    };
    let given = req.headers().get("x-admin-secret").map(|v| v.as_bytes());
    if !given.is_some_and(|g| secret_matches(secret.expose_secret(), g)) {
        return Err(ApiError::forbidden("missing or wrong X-Admin-Secret"));
    }
    let body = body::read(req, limits).await?;
    let done = match parse_paths(&body).map_err(ApiError::bad_request)? {
        Some(paths) => content.invalidate(&paths).await,
        None => content.invalidate_all().await,
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

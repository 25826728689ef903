//! `POST /webhooks/github`: signed GitHub push events invalidate exactly the lessons a push
//! touched (the policy is `Content::apply_push`). Answers 404 while `GITHUB_WEBHOOK_SECRET` is
//! unset.

use axum::extract::{Request, State};
use axum::routing::post;
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

use super::body;
use crate::content::webhook::{PushEvent, PushOutcome, signature_is_valid};
use crate::content::{Content, Invalidated};
use crate::error::{ApiError, ErrorBody};
use crate::state::{AppState, BodyLimits, Secrets};

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/webhooks/github", post(github_webhook))
}

/// Largest delivery read (before the HMAC can be checked, so anyone can make us read it): a
/// push payload lists at most 20 commits and is far smaller; a bigger delivery is 413 and
/// GitHub records it as failed (docs/OPERATIONS.md: invalidate through the admin route then).
pub const WEBHOOK_MAX_BODY_BYTES: usize = 256 * 1024;

/// What a webhook delivery did: a push to `GITHUB_BRANCH` names what it `invalidated`; another
/// push or event says why it was `ignored`; `ping` has neither.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOutcome {
    /// Always `true`.
    #[schema(schema_with = always_true)]
    ok: bool,
    /// The `X-GitHub-Event` header.
    event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ignored: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invalidated: Option<Invalidated>,
}

/// `const: true`, which a `bool` field cannot derive.
fn always_true() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Boolean)
        .enum_values(Some([true]))
        .build()
}

impl WebhookOutcome {
    fn of(event: &str) -> Self {
        Self {
            ok: true,
            event: event.to_owned(),
            ignored: None,
            invalidated: None,
        }
    }
}

/// A GitHub event payload (a JSON object); for `push`, `ref` and each commit's `added`,
/// `modified` and `removed` files are read.
#[derive(ToSchema)]
#[schema(example = json!({"ref": "refs/heads/main", "commits": [{"added": [], "modified": ["apps/learn-app/docs/01-python-basics/01-values-and-variables/01-variables.md"], "removed": []}]}))]
struct GitHubPayload(#[allow(dead_code)] Map<String, Value>);

/// Everything that needs no body is checked first (route enabled, a well-formed signature
/// header); then at most [`WEBHOOK_MAX_BODY_BYTES`] are read for the HMAC.
#[utoipa::path(post, path = "/webhooks/github", tag = "admin", operation_id = "githubWebhook",
    summary = "GitHub push webhook: invalidates the lessons a push touched",
    params(("X-Hub-Signature-256" = String, Header), ("X-GitHub-Event" = Option<String>, Header, nullable = false)),
    request_body(content = inline(GitHubPayload), content_type = "application/json"),
    responses(
        (status = 200, description = "OK", body = WebhookOutcome),
        (status = 400, description = "The body is not a JSON object, or a `push` payload lacks `ref` or has a malformed commit.", body = ErrorBody),
        (status = 401, description = "Missing `X-Hub-Signature-256`.", body = ErrorBody),
        (status = 403, description = "`X-Hub-Signature-256` does not match.", body = ErrorBody),
        (status = 404, description = "Webhook disabled (no secret configured).", body = ErrorBody),
        (status = 413, description = "Delivery larger than 256 KiB (`WEBHOOK_MAX_BODY_BYTES`), read before the HMAC is checked.", body = ErrorBody),
        (status = 500, description = "Internal error: an opaque message and the request id; details only in the log.", body = ErrorBody)))]
async fn github_webhook(
    State(secrets): State<Secrets>,
    State(content): State<Content>,
    State(limits): State<BodyLimits>,
    req: Request,
) -> Result<Json<WebhookOutcome>, ApiError> {
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
        "ping" => Ok(Json(WebhookOutcome::of("ping"))),
        "push" => {
            let push: PushEvent = serde_json::from_value(Value::Object(payload))
                .map_err(|e| ApiError::bad_request(format!("push payload: {e}")))?;
            let mut body = WebhookOutcome::of("push");
            match content.apply_push(&push).await {
                PushOutcome::Ignored { ignored } => body.ignored = Some(ignored),
                PushOutcome::Invalidated { invalidated } => body.invalidated = Some(invalidated),
            }
            Ok(Json(body))
        }
        other => Ok(Json(WebhookOutcome {
            ignored: Some("not a push event".to_owned()),
            ..WebhookOutcome::of(other)
        })),
    }
}

/// `sha256=` and 64 hex digits: anything else cannot match, whatever the body.
fn is_well_formed(signature: &str) -> bool {
    signature
        .strip_prefix("sha256=")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

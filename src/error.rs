//! The one error type of the HTTP edge, and the mapping of every domain error to it.
//!
//! Owns: the JSON error shape `{"error":{"code","message","request_id"}}`, the mapping from
//! error to status, and the `From`/`IntoResponse` impls that turn the features' own errors
//! (`AuthError`, `Limited`, `ChatKitError`, `ThreadStoreError`, …) into it. Client errors say
//! exactly what was wrong; internal errors are logged once, when answered, with their context,
//! and answered with an opaque 500. Must not leak internal details to clients. Imported by the
//! HTTP edge only: features return their own errors and never see this type.

use axum::Json;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::AuthError;
use crate::chatkit::ChatKitError;
use crate::chatkit::store::ThreadStoreError;
use crate::ratelimit::{Limited, NoPeerAddress};
use crate::telemetry::request_id;

/// An error answered to a client. Boxed: it travels in `Result`s through every handler, and a
/// pointer keeps those small.
#[derive(Debug)]
pub struct ApiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<Value>,
    headers: HeaderMap,
    /// What went wrong inside, for the log (never sent): set by [`ApiError::internal`].
    cause: Option<String>,
}

/// The serialised shape of every error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error, description = "The one error shape of every route.")]
pub struct ErrorBody {
    pub error: ErrorPayload,
}

/// Inner object of [`ErrorBody`].
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(
    description = "`code` is machine-readable (e.g. `bad_request`, `not_found`, `rate_limited`), `message` says what was wrong for a human, `request_id` is the request's `X-Request-ID`, `details` are structured (e.g. the limit of a 429)."
)]
pub struct ErrorPayload {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl ApiError {
    /// Any status with a machine-readable code and a human message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            status,
            code,
            message: message.into(),
            details: None,
            headers: HeaderMap::new(),
            cause: None,
        }))
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401: no or invalid credentials; always carries `WWW-Authenticate: Bearer`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
            .with_header(header::WWW_AUTHENTICATE, "Bearer")
    }

    /// 403: authenticated but not allowed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: the resource does not exist (or belongs to someone else).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 422: well-formed but semantically invalid.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
            message,
        )
    }

    /// 503: a dependency is unavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            message,
        )
    }

    /// 500: an opaque answer; `cause` is logged (once, when the answer is sent).
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut error = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal server error",
        );
        error.0.cause = Some(cause.to_string());
        error
    }

    /// Attaches structured details (e.g. the limit and reset of a 429).
    pub fn with_details(mut self, details: Value) -> Self {
        self.0.details = Some(details);
        self
    }

    /// Adds a response header (e.g. `Retry-After`).
    pub fn with_header(mut self, name: HeaderName, value: impl TryInto<HeaderValue>) -> Self {
        if let Ok(value) = value.try_into() {
            self.0.headers.insert(name, value);
        }
        self
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    pub fn code(&self) -> &'static str {
        self.0.code
    }

    pub fn message(&self) -> &str {
        &self.0.message
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.0.status.as_u16(),
            self.0.code,
            self.0.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let inner = *self.0;
        if let Some(cause) = &inner.cause {
            tracing::error!(error = %cause, "internal error");
        }
        let body = ErrorBody {
            error: ErrorPayload {
                code: inner.code,
                message: inner.message,
                request_id: request_id::current(),
                details: inner.details,
            },
        };
        let mut response = (inner.status, Json(body)).into_response();
        response.headers_mut().extend(inner.headers);
        response
    }
}

/// The error code used for a bare status produced outside our handlers (tower layers, hyper).
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable_entity",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "service_unavailable",
        StatusCode::GATEWAY_TIMEOUT => "timeout",
        s if s.is_server_error() => "internal_error",
        _ => "error",
    }
}

// ---- the features' errors, as answered ----

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unavailable(_) => ApiError::unavailable(e.to_string()),
            AuthError::BadDevUser(_) => ApiError::bad_request(e.to_string()),
            _ => ApiError::unauthorized(e.to_string()),
        }
    }
}

/// The rejection of the `CurrentUser` extractor.
impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

impl From<NoPeerAddress> for ApiError {
    fn from(e: NoPeerAddress) -> Self {
        ApiError::internal(e)
    }
}

/// The rejection of the `ClientIp` extractor.
impl IntoResponse for NoPeerAddress {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

impl From<Limited> for ApiError {
    fn from(l: Limited) -> Self {
        let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", l.to_string())
            .with_details(json!({
                "policy": l.policy.name(),
                "limit": l.limit,
                "window": l.window_secs,
                "reset_seconds": l.retry_after_secs,
                "reset_at": l.reset_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            }))
            .with_header(header::RETRY_AFTER, l.retry_after_secs.to_string());
        error.0.headers.extend(l.headers);
        error
    }
}

impl From<ThreadStoreError> for ApiError {
    fn from(e: ThreadStoreError) -> Self {
        match e {
            ThreadStoreError::NoSuchThread => ApiError::not_found("no such thread"),
            // A database that is down or restarting is not a bug: 503 tells the client to
            // retry (found by the PostgreSQL fault test, which used to get opaque 500s).
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "thread store unavailable");
                ApiError::unavailable("the thread store is unavailable; please try again shortly")
            }
            other => ApiError::internal(format!("thread store: {other}")),
        }
    }
}

impl From<ChatKitError> for ApiError {
    fn from(e: ChatKitError) -> Self {
        match e {
            ChatKitError::BadRequest(m) => ApiError::bad_request(m),
            ChatKitError::Unsupported(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, "unsupported", m)
            }
            ChatKitError::NotFound(m) => ApiError::not_found(m),
            ChatKitError::Busy(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            ChatKitError::Store(e) => e.into(),
            ChatKitError::Internal(m) => ApiError::internal(m),
        }
    }
}

//! The two content routes the study page reads: `GET /content/lessons` (the lesson index) and
//! `GET /content/lesson?lesson_path=…` (one lesson's title and cleaned Markdown).

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::query::{self, QueryParams};
use crate::content::{Content, ContentError, LessonEntry, LessonPath};
use crate::error::{ApiError, ErrorBody};
use crate::ratelimit::{ClientIp, Policy, RateLimiter};
use crate::state::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/content/lessons", get(lessons))
        .route("/content/lesson", get(lesson))
}

/// Body of `GET /content/lessons`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = LessonIndex)]
pub struct LessonIndexOut {
    pub lessons: Vec<LessonEntry>,
}

/// Body of `GET /content/lesson`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = LessonText)]
pub struct LessonOut {
    pub path: String,
    pub title: String,
    pub description: Option<String>,
    /// The cleaned Markdown (frontmatter, MDX imports and JSX blocks removed).
    pub body: String,
}

/// `?lesson_path=` (required).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LessonIn {
    /// Lesson path relative to the docs root, e.g. `01-python-basics/01-variables`; `..`, `.`
    /// and `\` are refused.
    #[param(value_type = String, min_length = 1, max_length = 512)]
    pub lesson_path: LessonPath,
}

impl QueryParams for LessonIn {}

/// Both routes are unauthenticated and may reach the origin: they count against the
/// anonymous per-IP limit, like suggestions.
#[utoipa::path(get, path = "/content/lessons", tag = "content", operation_id = "listLessons",
    summary = "Every lesson of the book with its title",
    responses(
        (status = 200, description = "OK", body = LessonIndexOut),
        (status = 429, description = "Rate limited (the anonymous per-IP policy). `Retry-After` says how many seconds to wait.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."),
                ("RateLimit" = String, description = "draft-ietf-httpapi-ratelimit-headers: remaining and reset, e.g. `\"anon\";r=3;t=12`."),
                ("RateLimit-Policy" = String, description = "The policy, e.g. `\"anon\";q=120;w=60`."))),
        (status = 503, description = "The lesson source is unavailable.", body = ErrorBody),
        (status = 500, description = "Internal error: an opaque message and the request id; details only in the log.", body = ErrorBody)))]
async fn lessons(
    State(content): State<Content>,
    State(limiter): State<RateLimiter>,
    ClientIp(ip): ClientIp,
) -> Result<Response, ApiError> {
    let limit_headers = limiter.check(Policy::Anon, &ip.to_string()).await?;
    let lessons = content.index().await.map_err(unavailable)?;
    Ok((limit_headers, Json(LessonIndexOut { lessons })).into_response())
}

#[utoipa::path(get, path = "/content/lesson", tag = "content", operation_id = "getLesson",
    summary = "One lesson: title, description and cleaned Markdown",
    params(LessonIn),
    responses(
        (status = 200, description = "OK", body = LessonOut),
        (status = 400, description = "Malformed request: the message names the offending field or parameter.", body = ErrorBody),
        (status = 404, description = "No lesson at that path.", body = ErrorBody),
        (status = 429, description = "Rate limited (the anonymous per-IP policy). `Retry-After` says how many seconds to wait.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."),
                ("RateLimit" = String, description = "draft-ietf-httpapi-ratelimit-headers: remaining and reset, e.g. `\"anon\";r=3;t=12`."),
                ("RateLimit-Policy" = String, description = "The policy, e.g. `\"anon\";q=120;w=60`."))),
        (status = 503, description = "The lesson source is unavailable.", body = ErrorBody),
        (status = 500, description = "Internal error: an opaque message and the request id; details only in the log.", body = ErrorBody)))]
async fn lesson(
    State(content): State<Content>,
    State(limiter): State<RateLimiter>,
    ClientIp(ip): ClientIp,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    // The limit first: a malformed query counts against it too.
    let limit_headers = limiter.check(Policy::Anon, &ip.to_string()).await?;
    let LessonIn { lesson_path: path } = query::parse(raw.as_deref().unwrap_or(""))?;
    let lesson = content.lesson(&path).await.map_err(unavailable)?;
    let lesson = lesson.ok_or_else(|| ApiError::not_found(format!("no lesson at `{path}`")))?;
    let body = LessonOut {
        path: path.to_string(),
        title: lesson.title.clone(),
        description: lesson.description.clone(),
        body: lesson.body.clone(),
    };
    Ok((limit_headers, Json(body)).into_response())
}

fn unavailable(error: ContentError) -> ApiError {
    tracing::warn!(error = %error, "lesson origin unavailable");
    ApiError::unavailable("the lesson source is unavailable; try again shortly")
}

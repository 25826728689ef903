//! The two content routes the study page reads: `GET /content/lessons` (the lesson index) and
//! `GET /content/lesson?lesson_path=…` (one lesson's title and cleaned Markdown).

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::query::{self, QueryParams};
use crate::content::{Content, ContentError, LessonEntry, LessonPath};
use crate::error::ApiError;
use crate::ratelimit::{ClientIp, Policy, RateLimiter};
use crate::state::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/content/lessons", get(lessons))
        .route("/content/lesson", get(lesson))
}

/// Body of `GET /content/lessons`.
#[derive(Debug, Serialize)]
pub struct LessonIndexOut {
    pub lessons: Vec<LessonEntry>,
}

/// Body of `GET /content/lesson`.
#[derive(Debug, Serialize)]
pub struct LessonOut {
    pub path: String,
    pub title: String,
    pub description: Option<String>,
    /// The cleaned Markdown (frontmatter, MDX imports and JSX blocks removed).
    pub body: String,
}

/// `?lesson_path=` (required).
#[derive(Debug, Deserialize)]
pub struct LessonIn {
    pub lesson_path: LessonPath,
}

impl QueryParams for LessonIn {}

/// Both routes are unauthenticated and may reach the origin: they count against the
/// anonymous per-IP limit, like suggestions.
async fn lessons(
    State(content): State<Content>,
    State(limiter): State<RateLimiter>,
    ClientIp(ip): ClientIp,
) -> Result<Response, ApiError> {
    let limit_headers = limiter.check(Policy::Anon, &ip.to_string()).await?;
    let lessons = content.index().await.map_err(unavailable)?;
    Ok((limit_headers, Json(LessonIndexOut { lessons })).into_response())
}

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

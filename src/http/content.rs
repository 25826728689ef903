//! The two content routes the study page reads: `GET /content/lessons` (the lesson index) and
//! `GET /content/lesson?lesson_path=…` (one lesson's title and cleaned Markdown).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::query::{Query, QueryParams};
use crate::content::{Content, ContentError, LessonEntry, LessonPath};
use crate::error::ApiError;
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

async fn lessons(State(content): State<Content>) -> Result<Json<LessonIndexOut>, ApiError> {
    let lessons = content.index().await.map_err(unavailable)?;
    Ok(Json(LessonIndexOut { lessons }))
}

async fn lesson(
    State(content): State<Content>,
    Query(LessonIn { lesson_path: path }): Query<LessonIn>,
) -> Result<Json<LessonOut>, ApiError> {
    let lesson = content.lesson(&path).await.map_err(unavailable)?;
    let lesson = lesson.ok_or_else(|| ApiError::not_found(format!("no lesson at `{path}`")))?;
    Ok(Json(LessonOut {
        path: path.to_string(),
        title: lesson.title.clone(),
        description: lesson.description.clone(),
        body: lesson.body.clone(),
    }))
}

fn unavailable(error: ContentError) -> ApiError {
    tracing::warn!(error = %error, "lesson origin unavailable");
    ApiError::unavailable("the lesson source is unavailable; try again shortly")
}

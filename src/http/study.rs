//! The study page (`GET /study`), the documentation UI (`GET /docs`) and the two content routes
//! the page reads: `GET /content/lessons` (the lesson index) and `GET /content/lesson` (one
//! lesson's title and cleaned Markdown).
//!
//! Owns: serving the embedded browser assets under `static/` (compiled into the binary, so the
//! page works offline and needs no CDN) and shaping lessons for the page. Must not know ChatKit:
//! the page itself speaks the protocol to `POST /chatkit`.

use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use serde::Serialize;

use crate::app::AppState;
use crate::content::{Content, ContentError, LessonPath};
use crate::error::ApiError;

/// One embedded file: its name under its folder, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

const STUDY_ASSETS: &[Asset] = &[
    asset(
        "index.html",
        HTML,
        include_str!("../../static/study/index.html"),
    ),
    asset(
        "study.css",
        CSS,
        include_str!("../../static/study/study.css"),
    ),
    asset("study.js", JS, include_str!("../../static/study/study.js")),
    asset(
        "markdown.js",
        JS,
        include_str!("../../static/study/markdown.js"),
    ),
    asset("sse.js", JS, include_str!("../../static/study/sse.js")),
];

const DOCS_ASSETS: &[Asset] = &[
    asset(
        "index.html",
        HTML,
        include_str!("../../static/docs/index.html"),
    ),
    asset("docs.css", CSS, include_str!("../../static/docs/docs.css")),
    asset("docs.js", JS, include_str!("../../static/docs/docs.js")),
];

const fn asset(name: &'static str, content_type: &'static str, body: &'static str) -> Asset {
    Asset {
        name,
        content_type,
        body,
    }
}

/// Everything is same-origin: no inline script, no third-party host, no framing by others.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'";

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/study", get(study_index))
        .route("/study/{file}", get(study_asset))
        .route("/docs", get(docs_index))
        .route("/docs/{file}", get(docs_asset))
        .route("/content/lessons", get(lessons))
        .route("/content/lesson", get(lesson))
}

async fn study_index() -> Response {
    serve(STUDY_ASSETS, "index.html")
}

async fn study_asset(Path(file): Path<String>) -> Response {
    serve(STUDY_ASSETS, &file)
}

async fn docs_index() -> Response {
    serve(DOCS_ASSETS, "index.html")
}

async fn docs_asset(Path(file): Path<String>) -> Response {
    serve(DOCS_ASSETS, &file)
}

fn serve(assets: &[Asset], name: &str) -> Response {
    let Some(asset) = assets.iter().find(|a| a.name == name) else {
        return ApiError::not_found(format!("no such file `{name}`")).into_response();
    };
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // The assets change with the binary only; revalidating keeps an upgrade visible at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// One row of the lesson index.
#[derive(Debug, Serialize)]
pub struct LessonEntryOut {
    pub path: String,
    pub title: String,
}

/// Body of `GET /content/lessons`.
#[derive(Debug, Serialize)]
pub struct LessonIndexOut {
    pub lessons: Vec<LessonEntryOut>,
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

async fn lessons(State(state): State<AppState>) -> Result<Json<LessonIndexOut>, ApiError> {
    let lessons = lesson_index(&state.content).await.map_err(unavailable)?;
    Ok(Json(LessonIndexOut { lessons }))
}

async fn lesson(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<LessonOut>, ApiError> {
    let path = lesson_path_param(query.as_deref()).map_err(ApiError::bad_request)?;
    let lesson = state.content.lesson(&path).await.map_err(unavailable)?;
    let lesson = lesson.ok_or_else(|| ApiError::not_found(format!("no lesson at `{path}`")))?;
    Ok(Json(LessonOut {
        path: path.to_string(),
        title: lesson.title.clone(),
        description: lesson.description.clone(),
        body: lesson.body.clone(),
    }))
}

/// The required `lesson_path` query parameter, validated; the error is the 400's message.
fn lesson_path_param(query: Option<&str>) -> Result<LessonPath, String> {
    let raw = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "lesson_path")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| "query.lesson_path: required".to_owned())?;
    LessonPath::parse(&raw).map_err(|e| format!("query.lesson_path: {e}"))
}

fn unavailable(error: ContentError) -> ApiError {
    tracing::warn!(error = %error, "lesson origin unavailable");
    ApiError::unavailable("the lesson source is unavailable; try again shortly")
}

/// How many lessons are loaded at once to read their titles (each is cached after the first).
const TITLE_CONCURRENCY: usize = 8;

/// Every lesson of the book with its title, sorted by path. The page's only view of the
/// content subsystem's listing, so an API change there is absorbed here.
async fn lesson_index(content: &Content) -> Result<Vec<LessonEntryOut>, ContentError> {
    let paths = content.source().list().await?;
    let mut entries: Vec<LessonEntryOut> = futures::stream::iter(paths)
        .map(|path| async move {
            let title = match content.lesson(&path).await {
                Ok(Some(lesson)) => lesson.title.clone(),
                _ => fallback_title(path.as_str()),
            };
            LessonEntryOut {
                path: path.to_string(),
                title,
            }
        })
        .buffer_unordered(TITLE_CONCURRENCY)
        .collect()
        .await;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

/// The last path segment, for a lesson whose title cannot be read right now.
fn fallback_title(path: &str) -> String {
    path.rsplit('/')
        .next()
        .unwrap_or(path)
        .replace(['-', '_'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lesson_path_parameter_is_required_validated_and_decoded() {
        assert_eq!(
            lesson_path_param(None).err().as_deref(),
            Some("query.lesson_path: required")
        );
        assert_eq!(
            lesson_path_param(Some("lesson_path=")).err().as_deref(),
            Some("query.lesson_path: invalid lesson_path: must not be empty")
        );
        assert!(lesson_path_param(Some("lesson_path=a/../b")).is_err());
        let path = lesson_path_param(Some("x=1&lesson_path=01-part%2F02-lesson"));
        assert_eq!(
            path.map(|p| p.to_string()).ok().as_deref(),
            Some("01-part/02-lesson")
        );
    }

    #[test]
    fn a_lesson_without_a_readable_title_is_named_after_its_last_segment() {
        assert_eq!(fallback_title("01-part/02-for_loops"), "02 for loops");
    }

    #[test]
    fn every_embedded_asset_is_found_by_name_and_unknown_names_are_404() {
        for asset in STUDY_ASSETS {
            assert_eq!(serve(STUDY_ASSETS, asset.name).status(), 200);
        }
        assert_eq!(serve(DOCS_ASSETS, "../Cargo.toml").status(), 404);
    }
}

//! `GET /chatkit/suggestions?lesson_path=…&mode=teach|ask|quiz`: lesson-aware prompt suggestions.
//! Unauthenticated, so counted per client IP against the anonymous rate-limit policy.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use utoipa::IntoParams;

use super::query::{self, QueryParams, empty_as_none};
use crate::content::{Content, LessonPath, Mode, Rendered, Suggestions, rendered};
use crate::error::{ApiError, ErrorBody};
use crate::ratelimit::{ClientIp, Policy, RateLimiter};
use crate::state::AppState;

/// Browsers and CDNs may reuse an answer this long; lessons change rarely.
const CACHE_CONTROL: &str = "public, max-age=300";

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/chatkit/suggestions", get(suggest))
}

/// `?lesson_path=…&mode=…`: an absent `lesson_path` means "no lesson", an absent `mode` teach.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SuggestionsIn {
    /// Lesson path relative to the docs root, e.g. `01-python-basics/01-variables`; `..`, `.`
    /// and `\` are refused. An empty value is the same as none; a blank one is refused.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(value_type = Option<String>, max_length = 512)]
    lesson_path: Option<LessonPath>,
    /// `teach` (default), `ask` or `quiz` (case and surrounding blanks ignored); an empty value
    /// is the same as none.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(inline)]
    mode: Option<Mode>,
}

impl QueryParams for SuggestionsIn {
    const UNPROCESSABLE: &'static [&'static str] = &["mode"];
}

#[utoipa::path(get, path = "/chatkit/suggestions", tag = "content", operation_id = "suggestions",
    summary = "Lesson-aware prompt suggestions for the chat start screen",
    description = "Unauthenticated, counted per client IP against the anonymous rate-limit policy. A missing lesson or an origin outage gives generic suggestions.",
    params(SuggestionsIn, ("If-None-Match" = Option<String>, Header, nullable = false)),
    responses(
        (status = 200, description = "OK", body = Suggestions, headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not modified (`If-None-Match` named the current ETag)."),
        (status = 400, description = "Malformed request: the message names the offending field or parameter.", body = ErrorBody),
        (status = 422, description = "Unknown `mode`.", body = ErrorBody),
        (status = 429, description = "Rate limited. `Retry-After` says how many seconds to wait.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."),
                ("RateLimit" = String, description = "draft-ietf-httpapi-ratelimit-headers: remaining and reset, e.g. `\"chat\";r=3;t=12`."),
                ("RateLimit-Policy" = String, description = "The policy, e.g. `\"chat\";q=20;w=60`."))),
        (status = 500, description = "Internal error: an opaque message and the request id; details only in the log.", body = ErrorBody)))]
async fn suggest(
    State(content): State<Content>,
    State(limiter): State<RateLimiter>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    // The limit first: a malformed query counts against it too.
    let limit_headers = limiter.check(Policy::Anon, &ip.to_string()).await?;
    let input: SuggestionsIn = query::parse(raw.as_deref().unwrap_or(""))?;
    let lesson = match &input.lesson_path {
        Some(path) => content.lesson(path).await,
        None => Ok(None),
    };
    // An origin outage degrades to generic suggestions, never to an error on the start screen;
    // that answer must not be cached.
    let (lesson, cache_control) = match lesson {
        Ok(l) => (l, CACHE_CONTROL),
        Err(_) => (None, "no-store"),
    };
    let body = rendered(lesson.as_deref(), input.mode.unwrap_or(Mode::Teach));
    let mut response = respond(&body, &headers, cache_control);
    response.headers_mut().extend(limit_headers);
    Ok(response)
}

/// 200 with the body, or 304 when `If-None-Match` already names its ETag.
fn respond(body: &Rendered, request: &HeaderMap, cache_control: &'static str) -> Response {
    let etag = body.etag.as_str();
    let matches = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*");
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    if let Ok(v) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, v);
    }
    if matches {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (StatusCode::OK, headers, body.json.clone()).into_response()
}

//! `GET /chatkit/suggestions?lesson_path=…&mode=teach|ask|quiz`: lesson-aware prompt suggestions.
//! Unauthenticated, so counted per client IP against the anonymous rate-limit policy.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::content::{LessonPath, Mode, suggestions};
use crate::error::ApiError;
use crate::ratelimit::{ClientIp, Policy};

/// Browsers and CDNs may reuse an answer this long; lessons change rarely.
const CACHE_CONTROL: &str = "public, max-age=300";

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/chatkit/suggestions", get(suggest))
}

/// The parsed query: an absent `lesson_path` means "no lesson", an absent `mode` means teach.
struct SuggestionsIn {
    path: Option<LessonPath>,
    mode: Mode,
}

/// Why the query was refused: a bad path is 400, an unknown mode 422.
enum QueryError {
    Path(String),
    Mode(String),
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Path(m) => ApiError::bad_request(m),
            QueryError::Mode(m) => ApiError::unprocessable(m),
        }
    }
}

fn parse_query(raw: Option<&str>) -> Result<SuggestionsIn, QueryError> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let first = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    // Only an empty value counts as absent (`allowEmptyValue` in the OpenAPI document): a blank
    // one is checked like any other and refused, as the document says.
    let path = match first("lesson_path").filter(|p| !p.is_empty()) {
        Some(p) => Some(LessonPath::parse(p).map_err(|e| QueryError::Path(e.to_string()))?),
        None => None,
    };
    let mode = match first("mode").filter(|m| !m.is_empty()) {
        Some(m) => Mode::parse(m).ok_or_else(|| {
            QueryError::Mode(format!(
                "unknown mode `{m}`; expected `teach`, `ask` or `quiz`"
            ))
        })?,
        None => Mode::Teach,
    };
    Ok(SuggestionsIn { path, mode })
}

async fn suggest(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let limit_headers = state.limiter.check(Policy::Anon, &ip.to_string()).await?;
    let input = parse_query(query.as_deref())?;
    let lesson = match &input.path {
        Some(path) => state.content.lesson(path).await,
        None => Ok(None),
    };
    // An origin outage degrades to generic suggestions, never to an error on the start screen;
    // that answer must not be cached.
    let (lesson, cache_control) = match lesson {
        Ok(l) => (l, CACHE_CONTROL),
        Err(_) => (None, "no-store"),
    };
    let body = suggestions(lesson.as_deref(), input.mode);
    let json = serde_json::to_vec(&body).map_err(ApiError::internal)?;
    let mut response = respond(json, &headers, cache_control);
    response.headers_mut().extend(limit_headers);
    Ok(response)
}

/// 200 with the body, or 304 when `If-None-Match` already names its ETag.
fn respond(json: Vec<u8>, request: &HeaderMap, cache_control: &'static str) -> Response {
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&json))[..32]);
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
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    if matches {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (StatusCode::OK, headers, json).into_response()
}

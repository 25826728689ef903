//! `GET /openapi.json`: the OpenAPI 3.1 document of every route, embedded from
//! `openapi/openapi.json`.
//!
//! Owns: serving the document. The document is maintained by hand as a checked file; tests
//! (tests/api/http/openapi.rs) compare it with the router's routes, so it cannot drift silently.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

/// The document, exactly as committed.
pub const DOCUMENT: &str = include_str!("../../openapi/openapi.json");

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(document))
}

async fn document() -> Response {
    let mut response = DOCUMENT.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

//! The HTTP surface: one module per group of routes, and the router with its layers.
//!
//! Owns: routes, middleware order, CORS, body and time limits; [`serve`] owns the accept loop. Handlers are thin: they parse
//! input into domain types, call one service function and map the result.

mod admin;
mod body;
mod chatkit;
mod health;
mod openapi;
mod root;
pub(crate) mod serve;
mod study;
mod suggestions;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::app::AppState;
use crate::error::ApiError;
use crate::telemetry::{http as http_mw, request_id};

/// Every route of the service with its middleware.
pub fn router(state: AppState) -> Router {
    let server = &state.settings.server;
    let routes = Router::new()
        .route("/", get(root::index))
        .route("/health", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(root::metrics))
        .merge(chatkit::routes())
        .merge(suggestions::routes())
        .merge(admin::routes())
        .merge(study::routes())
        .merge(openapi::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);

    routes
        .layer(DefaultBodyLimit::max(server.max_body_bytes))
        .layer(RequestBodyLimitLayer::new(server.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            server.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(http_mw::panic_response))
        .layer(from_fn(http_mw::normalize_errors))
        .layer(cors(&state.settings.server.allowed_origins))
        .layer(from_fn_with_state(state.clone(), http_mw::observe))
        .layer(from_fn(request_id::middleware))
        .with_state(state)
}

/// CORS for exactly the configured origins, with credentials. An origin that is not listed gets
/// no CORS headers at all (never `*`, never a reflection).
fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter(|o| !o.contains('*'))
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::ACCEPT_LANGUAGE,
            header::IF_NONE_MATCH,
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("x-user-id"),
            HeaderName::from_static("x-user-name"),
            HeaderName::from_static("x-organization-id"),
        ])
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("ratelimit"),
            HeaderName::from_static("ratelimit-policy"),
            header::RETRY_AFTER,
            header::ETAG,
        ])
        .max_age(Duration::from_secs(600))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

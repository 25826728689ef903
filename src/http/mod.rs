//! The HTTP edge: one module per group of routes, the router with its layers, and the accept
//! loop.
//!
//! Owns: routes, middleware order, CORS, body and time limits, typed query and body
//! extractors, the mapping of every feature's error to the one JSON error shape, and
//! [`serve`]. Handlers are thin: they parse input into domain types, call one feature function
//! and map the result. No feature imports this module.

mod admin;
mod body;
mod chatkit;
mod conn_io;
mod content;
mod errors;
mod health;
pub mod openapi;
pub mod query;
mod root;
pub mod serve;
pub mod settings;
mod static_files;
mod suggestions;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use self::settings::ServerSettings;
use crate::state::AppState;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::{http as observe, request_id};

/// Every route of the service with its middleware.
pub fn router(server: &ServerSettings, state: AppState) -> Router {
    let metrics: Arc<Metrics> = state.metrics.clone();
    let routes = Router::new()
        .route("/", get(root::index))
        .route("/health", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(root::metrics))
        .merge(chatkit::routes())
        .merge(suggestions::routes())
        .merge(admin::routes())
        .merge(webhook::routes())
        .merge(content::routes())
        .merge(static_files::routes())
        .merge(openapi::routes())
        .fallback(errors::not_found)
        .method_not_allowed_fallback(errors::method_not_allowed);

    routes
        .layer(DefaultBodyLimit::max(server.max_body_bytes))
        .layer(RequestBodyLimitLayer::new(server.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            server.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(errors::panic_response))
        .layer(from_fn(errors::normalize_errors))
        .layer(cors(&server.allowed_origins, server.cors_max_age))
        .layer(from_fn(nothing_for_foreign_origins))
        .layer(from_fn_with_state(metrics, observe::observe))
        .layer(from_fn(request_id::middleware))
        .with_state(state)
}

/// CORS for exactly the configured origins, with credentials. An origin that is not listed gets
/// no CORS headers at all (never `*`, never a reflection).
///
/// For a listed origin the preflight allows every header the browser asks for
/// (`Access-Control-Request-Headers` mirrored, as the old service's `allow_headers=["*"]`): the
/// book's panel is ChatKit's web component behind a custom `fetch`, which keeps every header
/// ChatKit itself sets (`chatkit-frame-instance-id`, `chatkit-device-id`, `Accept-Language`, and
/// whatever a later ChatKit release adds) and adds `Authorization`, `X-User-ID`, `X-User-Name`.
/// A fixed list would break the whole panel the day ChatKit adds one; headers grant nothing by
/// themselves (authentication is the bearer token), and the origin stays an exact list.
fn cors(origins: &[String], max_age: Duration) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter(|o| !o.contains('*'))
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("ratelimit"),
            HeaderName::from_static("ratelimit-policy"),
            header::RETRY_AFTER,
            header::ETAG,
        ])
        .max_age(max_age)
}

/// tower-http adds `Access-Control-Allow-Credentials`, `-Methods`, `-Headers` (mirrored) and
/// `-Max-Age` whatever the origin, and leaves out only `Access-Control-Allow-Origin` for one
/// that is not listed. A foreign origin gets no CORS header at all: an answer without
/// `Access-Control-Allow-Origin` loses every other `Access-Control-*` header here.
async fn nothing_for_foreign_origins(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        let cors: Vec<HeaderName> = headers
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in cors {
            headers.remove(name);
        }
    }
    response
}

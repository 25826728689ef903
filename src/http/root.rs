//! `GET /` (name, version, endpoints) and `GET /metrics` (Prometheus text).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::ErrorBody;
use crate::telemetry::metrics::Metrics;

/// Body of `GET /`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceIndex {
    name: &'static str,
    version: &'static str,
    /// Each endpoint by name, e.g. `"chatkit": "POST /chatkit"`.
    endpoints: BTreeMap<&'static str, &'static str>,
}

const ENDPOINTS: [(&str, &str); 10] = [
    ("chatkit", "POST /chatkit"),
    (
        "suggestions",
        "GET /chatkit/suggestions?lesson_path=&mode=teach|ask|quiz",
    ),
    ("health", "GET /health"),
    ("ready", "GET /health/ready"),
    ("metrics", "GET /metrics"),
    ("invalidate_cache", "POST /admin/invalidate-cache"),
    ("github_webhook", "POST /webhooks/github"),
    ("study", "GET /study"),
    ("docs", "GET /docs"),
    ("openapi", "GET /openapi.json"),
];

/// Service identity and the endpoint list.
#[utoipa::path(get, path = "/", tag = "service", operation_id = "index",
    summary = "Service name, version and endpoints",
    responses((status = 200, description = "OK", body = ServiceIndex), (status = 500, description = "Internal error: an opaque message and the request id; details only in the log.", body = ErrorBody)))]
pub async fn index() -> Json<ServiceIndex> {
    Json(ServiceIndex {
        name: "study-mode-api",
        version: crate::VERSION,
        endpoints: ENDPOINTS.into_iter().collect(),
    })
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "service", operation_id = "metrics",
    summary = "Prometheus (OpenMetrics) text exposition",
    responses((status = 200, description = "OpenMetrics text", content((String = "application/openmetrics-text"))), (status = 500, description = "Internal error: an opaque message and the request id; details only in the log.", body = ErrorBody)))]
pub async fn metrics(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
}

//! `GET /` (name, version, endpoints) and `GET /metrics` (Prometheus text).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use std::sync::Arc;

use crate::telemetry::metrics::Metrics;

/// Service identity and the endpoint list.
pub async fn index() -> Json<Value> {
    Json(json!({
        "name": "study-mode-api",
        "version": crate::VERSION,
        "endpoints": {
            "chatkit": "POST /chatkit",
            "suggestions": "GET /chatkit/suggestions?lesson_path=&mode=teach|ask|quiz",
            "health": "GET /health",
            "ready": "GET /health/ready",
            "metrics": "GET /metrics",
            "invalidate_cache": "POST /admin/invalidate-cache",
            "github_webhook": "POST /webhooks/github",
            "study": "GET /study",
            "docs": "GET /docs",
            "openapi": "GET /openapi.json",
        }
    }))
}

/// Prometheus text exposition.
pub async fn metrics(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
}

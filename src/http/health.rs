//! `GET /health` (liveness, no I/O) and `GET /health/ready` (store and cache checked, each
//! with a short timeout; 503 naming what failed).

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::app::AppState;

#[derive(Serialize)]
pub struct Live {
    status: &'static str,
    version: &'static str,
    /// Which tutor answers: `offline` or `{api}:{model} @ {base url}`.
    tutor: String,
}

/// Liveness: answers as long as the process serves requests (no I/O).
pub async fn live(State(state): State<AppState>) -> Json<Live> {
    Json(Live {
        status: "ok",
        version: crate::VERSION,
        tutor: state.chatkit.responder.describe(),
    })
}

#[derive(Serialize)]
pub struct Check {
    status: &'static str,
    backend: &'static str,
    latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
pub struct Ready {
    status: &'static str,
    version: &'static str,
    checks: Checks,
}

#[derive(Serialize)]
pub struct Checks {
    store: Check,
    cache: Check,
}

/// Readiness: 200 when every dependency answers in time, else 503 with the same body.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Ready>) {
    let timeout = state.settings.server.readiness_timeout;
    let (store, cache) = tokio::join!(
        check(state.db.backend(), timeout, async {
            state.db.ping().await.map_err(|e| e.to_string())
        }),
        check(state.cache.backend(), timeout, state.cache.ping()),
    );
    let all_up = store.error.is_none() && cache.error.is_none();
    let status = if all_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Ready {
        status: if all_up { "ready" } else { "not_ready" },
        version: crate::VERSION,
        checks: Checks { store, cache },
    };
    (status, Json(body))
}

async fn check(
    backend: &'static str,
    timeout: Duration,
    probe: impl std::future::Future<Output = Result<(), String>>,
) -> Check {
    let started = Instant::now();
    let error = match tokio::time::timeout(timeout, probe).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(format!("no answer within {} ms", timeout.as_millis())),
    };
    Check {
        status: if error.is_none() { "up" } else { "down" },
        backend,
        latency_ms: (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
        error,
    }
}

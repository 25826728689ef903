//! `GET /health` (liveness, no I/O) and `GET /health/ready` (the dependency checks of
//! `crate::health`; 503 naming what failed).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::chatkit::ChatKit;
use crate::content::Mode;
use crate::health::{Checks, Readiness};

#[derive(Serialize)]
pub struct Live {
    status: &'static str,
    version: &'static str,
    /// Which tutor answers in teach mode: `offline` or `{api}:{model} @ {base url}`.
    tutor: String,
    /// Which tutor answers in each mode.
    tutors: Tutors,
}

#[derive(Serialize)]
pub struct Tutors {
    teach: String,
    ask: String,
    quiz: String,
}

/// Liveness: answers as long as the process serves requests (no I/O).
pub async fn live(State(chatkit): State<ChatKit>) -> Json<Live> {
    Json(Live {
        status: "ok",
        version: crate::VERSION,
        tutor: chatkit.responder.describe(),
        tutors: Tutors {
            teach: chatkit.responder.describe_mode(Mode::Teach),
            ask: chatkit.responder.describe_mode(Mode::Ask),
            quiz: chatkit.responder.describe_mode(Mode::Quiz),
        },
    })
}

#[derive(Serialize)]
pub struct Ready {
    status: &'static str,
    version: &'static str,
    checks: Checks,
}

/// Readiness: 200 when every dependency answers in time, else 503 with the same body.
pub async fn ready(State(readiness): State<Readiness>) -> (StatusCode, Json<Ready>) {
    let checks = readiness.check().await;
    let all_up = checks.all_up();
    let status = if all_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Ready {
        status: if all_up { "ready" } else { "not_ready" },
        version: crate::VERSION,
        checks,
    };
    (status, Json(body))
}

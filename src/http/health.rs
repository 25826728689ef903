//! `GET /health` (liveness, no I/O) and `GET /health/ready` (the dependency checks of
//! `crate::health`; 503 naming what failed).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

use crate::chatkit::ChatKit;
use crate::content::Mode;
use crate::error::ErrorBody;
use crate::health::{Checks, Readiness};

/// Body of `GET /health`.
#[derive(Serialize, ToSchema)]
#[schema(as = Health)]
pub struct Live {
    /// Always `ok`.
    #[schema(schema_with = always_ok)]
    status: &'static str,
    version: &'static str,
    /// Which tutor answers in teach mode: `offline` or `{api}:{model} @ {base url}`.
    tutor: String,
    /// Which tutor answers in each mode.
    tutors: Tutors,
}

/// `const: "ok"`, which a `&str` field cannot derive.
fn always_ok() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["ok"]))
        .build()
}

/// Each mode's tutor.
#[derive(Serialize, ToSchema)]
pub struct Tutors {
    teach: String,
    ask: String,
    quiz: String,
}

/// Liveness: answers as long as the process serves requests (no I/O).
#[utoipa::path(get, path = "/health", tag = "service", operation_id = "health",
    summary = "Liveness: no I/O",
    responses((status = 200, description = "The process serves requests.", body = Live), (status = 500, description = "Internal error: an opaque message and the request id; details only in the log.", body = ErrorBody)))]
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

/// Body of `GET /health/ready`: the overall status plus one entry per dependency.
#[derive(Serialize, ToSchema)]
#[schema(as = Readiness)]
pub struct Ready {
    status: &'static str,
    version: &'static str,
    checks: Checks,
}

/// Readiness: 200 when every dependency answers in time, else 503 with the same body.
#[utoipa::path(get, path = "/health/ready", tag = "service", operation_id = "ready",
    summary = "Readiness: store and cache checked with a short timeout",
    responses(
        (status = 200, description = "Every dependency answered.", body = Ready),
        (status = 503, description = "At least one dependency failed; the body names it.", body = Ready),
        (status = 500, description = "Internal error: an opaque message and the request id; details only in the log.", body = ErrorBody)))]
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

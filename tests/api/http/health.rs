//! `/health`, `/health/ready`, `/`, `/metrics`.

use crate::per_backend;
use crate::support::app::{
    Backend, spawn_echo_app, spawn_echo_app_with, spawn_tutor_app, spawn_tutor_app_with,
};
use serde_json::Value;

per_backend! {
    liveness_answers_ok_with_the_version => liveness;
    readiness_is_200_when_store_and_cache_answer => ready_when_up;
    metrics_count_requests_by_route_and_status => metrics_count;
}

async fn liveness(backend: Backend) {
    let app = spawn_echo_app(backend).await;
    let res = app.get("/health").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

async fn ready_when_up(backend: Backend) {
    let app = spawn_echo_app(backend).await;
    let res = app.get("/health/ready").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["store"]["status"], "up");
    assert_eq!(body["checks"]["cache"]["status"], "up");
    let (store, cache) = match backend {
        Backend::Embedded => ("sqlite", "memory"),
        Backend::Production => ("postgres", "redis"),
    };
    assert_eq!(body["checks"]["store"]["backend"], store);
    assert_eq!(body["checks"]["cache"]["backend"], cache);
}

async fn metrics_count(backend: Backend) {
    let app = spawn_echo_app(backend).await;
    app.get("/health").await;
    app.get("/no/such/route").await;
    let text = app.get("/metrics").await.text().await.expect("text");
    assert!(
        text.contains(
            r#"study_mode_http_requests_total{method="GET",route="/health",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="unmatched",status="404"} 1"#),
        "unknown paths share one label: {text}"
    );
    assert!(text.contains("study_mode_http_request_duration_seconds_bucket"));
    assert!(text.contains("study_mode_http_requests_in_flight"));
}

#[tokio::test]
async fn readiness_is_503_naming_the_cache_when_redis_is_unreachable() {
    // Port 1 on loopback: nothing listens there.
    let app = spawn_echo_app_with(
        Backend::Embedded,
        &[
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("READINESS_TIMEOUT_MS", "500"),
        ],
    )
    .await;
    let res = app.get("/health/ready").await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["cache"]["status"], "down");
    assert!(body["checks"]["cache"]["error"].is_string());
    assert_eq!(body["checks"]["store"]["status"], "up");
    // Liveness does no I/O and stays up.
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn readiness_is_503_naming_the_store_when_the_database_is_gone() {
    let app = spawn_echo_app(Backend::Embedded).await;
    app.db.close().await;
    let res = app.get("/health/ready").await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["checks"]["store"]["status"], "down");
    assert_eq!(body["checks"]["cache"]["status"], "up");
}

#[tokio::test]
async fn root_lists_name_version_and_endpoints() {
    let app = spawn_echo_app(Backend::Embedded).await;
    let body: Value = app.get("/").await.json().await.expect("json");
    assert_eq!(body["name"], "study-mode-api");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["endpoints"].as_object().is_some_and(|e| e.len() >= 3));
}

#[tokio::test]
async fn liveness_says_plainly_which_tutor_is_active() {
    let offline = spawn_tutor_app(Backend::Embedded).await;
    let body: Value = offline.get("/health").await.json().await.expect("json");
    assert_eq!(body["tutor"], "offline");

    let model = spawn_tutor_app_with(
        Backend::Embedded,
        &[
            ("OPENAI_API_KEY", "sk-test"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
            ("STUDY_MODE_MODEL", "gpt-test"),
        ],
    )
    .await;
    let body: Value = model.get("/health").await.json().await.expect("json");
    let tutor = body["tutor"].as_str().expect("tutor is a string");
    assert!(tutor.contains("gpt-test"), "{tutor}");
    assert!(!tutor.contains("sk-test"), "the key never shows: {tutor}");
}

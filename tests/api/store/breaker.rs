//! `study_mode_redis_breaker_open`: 0 while Redis answers, 1 once it cannot be reached (the
//! gauge the `StudyModeRedisBreakerOpen` alert reads).

use crate::support::app::{Backend, spawn_echo_app, spawn_echo_app_with};

const LESSON: &str =
    "/content/lesson?lesson_path=01-python-basics/01-values-and-variables/01-variables";

async fn breaker_line(app: &crate::support::app::TestApp) -> Option<String> {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    text.lines()
        .find(|l| l.starts_with("study_mode_redis_breaker_open "))
        .map(str::to_owned)
}

#[tokio::test]
async fn the_breaker_gauge_is_exported_at_zero_while_redis_answers() {
    let app = spawn_echo_app(Backend::Production).await;
    assert_eq!(app.get(LESSON).await.status(), 200);
    assert_eq!(
        breaker_line(&app).await.as_deref(),
        Some("study_mode_redis_breaker_open 0")
    );
}

#[tokio::test]
async fn the_breaker_gauge_is_one_while_redis_cannot_be_reached() {
    // A port nothing listens on: every connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let app = spawn_echo_app_with(Backend::Embedded, &[("REDIS_URL", url.as_str())]).await;
    assert_eq!(app.get(LESSON).await.status(), 200, "served without Redis");
    assert_eq!(
        breaker_line(&app).await.as_deref(),
        Some("study_mode_redis_breaker_open 1")
    );
}

#[tokio::test]
async fn without_redis_there_is_no_breaker_series() {
    let app = spawn_echo_app(Backend::Embedded).await;
    assert_eq!(breaker_line(&app).await, None);
}

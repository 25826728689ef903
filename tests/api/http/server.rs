//! Process-level behaviour: graceful shutdown.

use std::time::{Duration, Instant};

use crate::support::app::{Backend, spawn_echo_app, spawn_echo_app_with};

#[tokio::test]
async fn shutdown_stops_accepting_and_returns_promptly_when_idle() {
    let app = spawn_echo_app(Backend::Embedded).await;
    let address = app.address.clone();
    let client = app.client.clone();
    let started = Instant::now();
    app.shutdown().await.expect("clean shutdown");
    assert!(started.elapsed() < Duration::from_secs(5));
    let refused = client.get(format!("{address}/health")).send().await;
    assert!(refused.is_err(), "no longer accepting connections");
}

#[tokio::test]
async fn shutdown_ends_within_the_deadline_even_with_an_open_connection() {
    let app = spawn_echo_app_with(Backend::Embedded, &[("SHUTDOWN_TIMEOUT_SECS", "1")]).await;
    // An idle keep-alive connection must not hold the process open.
    let client = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    client
        .get(app.url("/health"))
        .send()
        .await
        .expect("first request");
    let started = Instant::now();
    app.shutdown().await.expect("clean shutdown");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

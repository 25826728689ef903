//! The listener: `REUSE_PORT` lets several processes share one port (how one machine runs
//! several instances behind one address), `LISTEN_BACKLOG` sizes the accept queue.

use study_mode_api::config::Env;
use study_mode_api::settings::Settings;
use study_mode_api::startup::{Application, StartError};

use crate::support::app::{Backend, settings_for, spawn_echo_app_with};

/// A second instance built (not yet serving) on `port` with `extra` settings.
async fn second_instance(port: u16, extra: &[(&str, &str)]) -> Result<Application, StartError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = port.to_string();
    let mut vars = vec![("PORT", port.as_str())];
    vars.extend_from_slice(extra);
    let (settings, _) = settings_for(Backend::Embedded, &dir, &vars);
    Application::build(settings).await
}

#[tokio::test]
async fn with_reuse_port_a_second_instance_shares_the_port_and_serves_when_the_first_stops() {
    let first = spawn_echo_app_with(Backend::Embedded, &[("REUSE_PORT", "true")]).await;
    let port = first.port;
    let second = second_instance(port, &[("REUSE_PORT", "true")])
        .await
        .expect("a second instance binds the same port with REUSE_PORT");
    assert_eq!(second.port(), port);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(second.run_until_stopped(async {
        let _ = stopped.await;
    }));
    first.shutdown().await.expect("first instance stops");
    // Fresh connections (no pool) so each request is a new accept.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    for _ in 0..20 {
        let status = client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .expect("the port still answers")
            .status();
        assert_eq!(status, 200);
    }
    let _ = stop.send(());
    serving.await.expect("task").expect("clean stop");
}

#[tokio::test]
async fn without_reuse_port_a_second_instance_on_a_busy_port_fails_to_start() {
    let first = spawn_echo_app_with(Backend::Embedded, &[]).await;
    match second_instance(first.port, &[]).await {
        Err(StartError::Bind { .. }) => {}
        Err(other) => panic!("expected a bind error, got {other}"),
        Ok(_) => panic!("two instances bound one port without REUSE_PORT"),
    }
}

#[test]
fn the_backlog_defaults_to_1024_and_a_non_number_is_reported_by_name() {
    let defaults = Settings::from_env(&mut Env::from_map([("PORT", "0")])).expect("valid");
    assert_eq!(defaults.server.listen_backlog, 1024);
    assert!(!defaults.server.reuse_port);
    let bad = Settings::from_env(&mut Env::from_map([
        ("LISTEN_BACKLOG", "lots"),
        ("REUSE_PORT", "maybe"),
    ]))
    .expect_err("invalid");
    let names: Vec<_> = bad.0.iter().map(|e| e.variable.as_str()).collect();
    assert!(names.contains(&"LISTEN_BACKLOG"), "{names:?}");
    assert!(names.contains(&"REUSE_PORT"), "{names:?}");
}

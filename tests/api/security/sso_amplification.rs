//! Random opaque tokens must not turn into one SSO userinfo call per request.

use serde_json::json;

use crate::support::app::{Backend, TestApp, spawn_echo_app_with};
use crate::support::sso::{FakeSso, Key};

async fn list_with(app: &TestApp, token: &str) -> u16 {
    app.client
        .post(app.url("/chatkit"))
        .bearer_auth(token)
        .json(&json!({"type": "threads.list", "params": {}}))
        .send()
        .await
        .expect("send")
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_rejected_opaque_token_is_remembered_and_not_asked_about_again() {
    let key = Key::rsa("rsa-1", "rsa.pem");
    let sso = FakeSso::start(&[&key]).await;
    let app = spawn_echo_app_with(
        Backend::Embedded,
        &[("SSO_URL", sso.url.as_str()), ("DEV_MODE", "false")],
    )
    .await;
    for _ in 0..10 {
        assert_eq!(list_with(&app, "random-opaque-token").await, 401);
    }
    assert_eq!(sso.userinfo_hits(), 1, "one userinfo call for one token");
}

#[tokio::test]
async fn with_opaque_tokens_off_no_userinfo_call_is_made() {
    let key = Key::rsa("rsa-1", "rsa.pem");
    let sso = FakeSso::start(&[&key]).await;
    sso.accept_opaque("valid-opaque", json!({"sub": "student"}));
    let app = spawn_echo_app_with(
        Backend::Embedded,
        &[
            ("SSO_URL", sso.url.as_str()),
            ("DEV_MODE", "false"),
            ("ALLOW_OPAQUE_TOKENS", "false"),
        ],
    )
    .await;
    assert_eq!(list_with(&app, "valid-opaque").await, 401);
    assert_eq!(sso.userinfo_hits(), 0);
}

#[tokio::test]
async fn past_its_failure_budget_a_client_ip_is_429_before_any_sso_call() {
    let key = Key::rsa("rsa-1", "rsa.pem");
    let sso = FakeSso::start(&[&key]).await;
    let app = spawn_echo_app_with(
        Backend::Embedded,
        &[
            ("SSO_URL", sso.url.as_str()),
            ("DEV_MODE", "false"),
            ("RATE_LIMIT_AUTH_FAILURES", "3/minute"),
        ],
    )
    .await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(list_with(&app, &format!("random-token-{i}")).await);
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429]);
    assert_eq!(
        sso.userinfo_hits(),
        4,
        "no SSO call once the budget is spent"
    );
}

//! Hostile input against the running server: every answer is a 4xx in the JSON error shape,
//! never a 5xx, a panic or a hang.

use serde_json::Value;

use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};

async fn assert_client_error(res: reqwest::Response, expected: u16) -> Value {
    assert_eq!(res.status().as_u16(), expected);
    let body: Value = res.json().await.expect("JSON error body");
    assert!(body["error"]["code"].is_string(), "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body
}

/// `POST /chatkit` with `body` as a dev-mode user.
async fn post_chatkit(app: &TestApp, body: String) -> reqwest::Response {
    app.client
        .post(app.url("/chatkit"))
        .header("x-user-id", "mallory")
        .body(body)
        .send()
        .await
        .expect("send")
}

#[tokio::test]
async fn deeply_nested_chatkit_json_is_400_not_a_crash() {
    let app = spawn_app(Backend::Embedded).await;
    for depth in [200usize, 20_000] {
        let body = format!(
            r#"{{"type":"threads.list","params":{{"x":{}{}}}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert_client_error(post_chatkit(&app, body).await, 400).await;
    }
    assert_eq!(app.get("/health").await.status(), 200, "still serving");
}

#[tokio::test]
async fn an_oversized_chatkit_body_is_413_before_it_is_parsed() {
    let app = spawn_app_with(Backend::Embedded, &[("MAX_BODY_BYTES", "65536")]).await;
    let text = "a".repeat(200_000);
    let body = format!(
        r#"{{"type":"threads.create","params":{{"input":{{"content":[{{"type":"input_text","text":"{text}"}}],"attachments":[],"inference_options":{{}}}}}}}}"#
    );
    assert_client_error(post_chatkit(&app, body).await, 413).await;
}

#[tokio::test]
async fn lesson_path_traversal_and_injection_are_400_on_every_route_that_takes_one() {
    let app = spawn_app(Backend::Embedded).await;
    let attacks = [
        "../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e/%2e%2e/etc/passwd",
        "/etc/passwd",
        "01-a\\..\\..\\secret",
        "01-a/%00.md",
        "01-a/%0d%0aSet-Cookie:x",
    ];
    for attack in attacks {
        let encoded: String = url::form_urlencoded::byte_serialize(attack.as_bytes()).collect();
        for route in ["/chatkit/suggestions", "/content/lesson"] {
            let res = app.get(&format!("{route}?lesson_path={encoded}")).await;
            let body = assert_client_error(res, 400).await;
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("lesson_path"),
                "{route} {attack}: {message}"
            );
        }
    }
}

#[tokio::test]
async fn malformed_headers_and_tokens_never_reach_a_5xx() {
    let key = crate::auth_sso::Key::rsa("rsa-1", "rsa.pem");
    let sso = crate::auth_sso::FakeSso::start(&[&key]).await;
    let app = spawn_app_with(
        Backend::Embedded,
        &[("DEV_MODE", "false"), ("SSO_URL", sso.url.as_str())],
    )
    .await;
    let huge = "x".repeat(16 * 1024);
    for auth in [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer a.b",
        "Bearer a.b.c.d",
        "Bearer ..",
        huge.as_str(),
    ] {
        let res = app
            .client
            .post(app.url("/chatkit"))
            .header("authorization", auth)
            .body(r#"{"type":"threads.list","params":{}}"#)
            .send()
            .await
            .expect("send");
        assert!(
            res.status().is_client_error(),
            "{}: {}",
            &auth[..auth.len().min(20)],
            res.status()
        );
    }
}

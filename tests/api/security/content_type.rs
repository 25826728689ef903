//! `POST /chatkit` takes JSON only, in every mode: a cross-site form POST (`text/plain`, no
//! preflight) must not act as the dev-mode user or the browser's signed-in one.

use serde_json::json;

use super::client_error;
use crate::support::app::{Backend, spawn_echo_app};

#[tokio::test]
async fn a_chatkit_post_that_is_not_json_is_415_and_acts_as_nobody() {
    let app = spawn_echo_app(Backend::Embedded).await;
    let create = json!({"type": "threads.create", "params": {"input": {
        "content": [{"type": "input_text", "text": "forged"}], "attachments": [],
        "inference_options": {}}}})
    .to_string();
    let post = |content_type: Option<&'static str>| {
        let mut req = app
            .client
            .post(app.url("/chatkit?user_id=victim"))
            .body(create.clone());
        if let Some(t) = content_type {
            req = req.header("content-type", t);
        }
        req.send()
    };
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonx"),
    ] {
        let res = post(content_type).await.expect("send");
        let body = client_error(res, 415).await;
        assert_eq!(
            body["error"]["code"], "unsupported_media_type",
            "{content_type:?}"
        );
    }
    let list = json!({"type": "threads.list", "params": {}}).to_string();
    let threads: serde_json::Value = app
        .client
        .post(app.url("/chatkit?user_id=victim"))
        .header("content-type", "Application/JSON; charset=utf-8")
        .body(list)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(threads["data"], json!([]), "nothing was created: {threads}");
}

#[tokio::test]
async fn a_declared_oversized_body_is_413_in_our_words_and_json_shape() {
    let app =
        crate::support::app::spawn_echo_app_with(Backend::Embedded, &[("MAX_BODY_BYTES", "1024")])
            .await;
    let res = app
        .client
        .post(app.url("/chatkit"))
        .header("x-user-id", "big")
        .header("content-type", "application/json")
        .body("x".repeat(4096))
        .send()
        .await
        .expect("send");
    let body = client_error(res, 413).await;
    assert_eq!(body["error"]["code"], "payload_too_large");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.contains("length limit exceeded"), "{message}");
    assert!(body["error"]["request_id"].is_string(), "{body}");
}

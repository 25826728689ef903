//! Dev mode: an `X-User-ID` that cannot be a user id is refused, not mapped to the shared
//! dev user.

use serde_json::json;

use super::client_error;
use crate::support::app::{Backend, spawn_echo_app};

#[tokio::test]
async fn an_unusable_dev_user_id_is_400_not_the_shared_dev_user() {
    let app = spawn_echo_app(Backend::Embedded).await;
    let list = json!({"type": "threads.list", "params": {}});
    let long = "u".repeat(257);
    let send = |value: reqwest::header::HeaderValue| {
        app.client
            .post(app.url("/chatkit"))
            .header("x-user-id", value)
            .json(&list)
            .send()
    };
    for bad in [long.as_bytes(), "jos\u{e9}".as_bytes(), b"caf\xe9"] {
        let value = reqwest::header::HeaderValue::from_bytes(bad).expect("header value");
        let body = client_error(send(value).await.expect("send"), 400).await;
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("X-User-ID")),
            "{body}"
        );
    }
    let query = app
        .client
        .post(app.url(&format!("/chatkit?user_id={}", "q".repeat(300))))
        .json(&list)
        .send()
        .await
        .expect("send");
    client_error(query, 400).await;
    let fine = reqwest::header::HeaderValue::from_str(&"u".repeat(256)).expect("value");
    assert_eq!(send(fine).await.expect("send").status(), 200);
}

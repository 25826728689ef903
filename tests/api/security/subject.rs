//! `sub` is the store's owner key: an exact string, never trimmed or converted.

use serde_json::json;

use crate::support::app::{Backend, spawn_echo_app_with};
use crate::support::sso::{FakeSso, Key, claims};

#[tokio::test]
async fn a_padded_or_numeric_subject_is_refused_not_taken_for_another_user() {
    let key = Key::rsa("rsa-1", "rsa.pem");
    let sso = FakeSso::start(&[&key]).await;
    let app = spawn_echo_app_with(
        Backend::Embedded,
        &[("SSO_URL", sso.url.as_str()), ("DEV_MODE", "false")],
    )
    .await;
    sso.accept_opaque("numeric-sub-token", json!({"sub": 42}));
    let mut padded = claims("victim");
    padded["sub"] = json!(" victim ");
    let list = json!({"type": "threads.list", "params": {}});
    for token in ["numeric-sub-token".to_owned(), key.sign(&padded)] {
        let res = app
            .client
            .post(app.url("/chatkit"))
            .bearer_auth(&token)
            .json(&list)
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 401, "{}", &token[..token.len().min(20)]);
    }
    let res = app
        .client
        .post(app.url("/chatkit"))
        .bearer_auth(key.sign(&claims("victim")))
        .json(&list)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200, "an exact subject is still accepted");
}

//! Authentication as a ChatKit client meets it on `POST /chatkit`: verified users see only
//! their own threads, and a missing or forged token is refused before any stream.

use serde_json::json;

use crate::support::app::{Backend, TestApp, spawn_echo_app_with, unique};
use crate::support::chatkit_client::{Chat, input};
use crate::support::sso::{FakeSso, Key, claims};
use crate::support::tls::TestCa;

fn rsa() -> Key {
    Key::rsa("rsa-1", "rsa.pem")
}

/// A client that sends `token` as its bearer and a (to be ignored) `X-User-ID`.
fn chat_as(app: &TestApp, token: &str, claimed_user: &str) -> Chat {
    Chat::new(&app.address, claimed_user).with_header("authorization", &format!("Bearer {token}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_users_see_only_their_own_threads_whatever_x_user_id_says() {
    let key = rsa();
    let sso = FakeSso::start(&[&key]).await;
    let app = spawn_echo_app_with(
        Backend::Production,
        &[("SSO_URL", sso.url.as_str()), ("DEV_MODE", "false")],
    )
    .await;
    let (ann, bob) = (unique("ann"), unique("bob"));
    let ann_token = key.sign(&claims(&ann));
    let bob_token = key.sign(&claims(&bob));

    let (thread, _) = chat_as(&app, &ann_token, "someone-else")
        .create("hello")
        .await;
    // Bob claims to be Ann in X-User-ID: ignored outside dev mode.
    let bob_chat = chat_as(&app, &bob_token, &ann);
    let list = bob_chat
        .send(json!({"type": "threads.list", "params": {}}))
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert!(
        !list.text.contains(&thread),
        "bob sees ann's thread: {}",
        list.text
    );
    let get = bob_chat
        .send(json!({"type": "threads.get_by_id", "params": {"thread_id": thread}}))
        .await;
    assert_eq!(get.status, 404, "{}", get.text);

    let ann_list = chat_as(&app, &ann_token, &bob)
        .send(json!({"type": "threads.list", "params": {}}))
        .await;
    assert!(ann_list.text.contains(&thread), "{}", ann_list.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_forged_token_is_401_before_any_stream() {
    let key = rsa();
    let sso = FakeSso::start(&[&key]).await;
    let app = spawn_echo_app_with(
        Backend::Embedded,
        &[("SSO_URL", sso.url.as_str()), ("DEV_MODE", "false")],
    )
    .await;
    let body = json!({"type": "threads.create", "params": {"input": input("hi")}});
    let forged = Key::rsa("rsa-1", "rsa_other.pem").sign(&claims("mallory"));
    for token in [None, Some("garbage"), Some(forged.as_str())] {
        let mut chat = Chat::new(&app.address, "mallory");
        if let Some(t) = token {
            chat = chat.with_header("authorization", &format!("Bearer {t}"));
        }
        let answer = chat.send_raw(&body.to_string()).await;
        assert_eq!(answer.status, 401, "{token:?}: {}", answer.text);
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
        assert_eq!(answer.error_code(), "unauthorized");
        if let Some(t) = token {
            assert!(!answer.text.contains(t), "token echoed: {}", answer.text);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sso_over_https_is_trusted_only_through_extra_ca_file() {
    let (key, ca) = (rsa(), TestCa::new());
    let sso = FakeSso::start_tls(&[&key], &ca).await;
    let token = key.sign(&claims(&unique("ann")));
    let body = json!({"type": "threads.list", "params": {}}).to_string();
    let sso_vars = [("SSO_URL", sso.url.as_str()), ("DEV_MODE", "false")];

    let trusting = [sso_vars.as_slice(), &[("EXTRA_CA_FILE", ca.ca_path())]].concat();
    let app = spawn_echo_app_with(Backend::Embedded, &trusting).await;
    let answer = chat_as(&app, &token, "ann").send_raw(&body).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(sso.jwks_hits(), 1);

    // Without the CA the TLS handshake fails: the SSO is unreachable (503), not a bad token.
    let app = spawn_echo_app_with(Backend::Embedded, &sso_vars).await;
    let answer = chat_as(&app, &token, "ann").send_raw(&body).await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(sso.jwks_hits(), 1, "no request got past the handshake");
}

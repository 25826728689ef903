//! The admin and webhook routes check what needs no body first: a caller without the secret
//! costs no buffered body, and a webhook delivery is read only up to its own smaller cap.

use std::time::{Duration, Instant};

use study_mode_api::content::webhook::sign;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::app::{Backend, spawn_echo_app_with};

const ADMIN: &str = "an-admin-secret-of-at-least-32-bytes!";
const HOOK: &str = "webhook-secret";

#[tokio::test]
async fn a_wrong_admin_secret_is_403_before_the_body_is_read() {
    let app = spawn_echo_app_with(
        Backend::Embedded,
        &[("ADMIN_SECRET", ADMIN), ("BODY_READ_TIMEOUT_SECS", "5")],
    )
    .await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connect");
    // A head announcing 1 MB that never comes: answered at once, not after the body deadline.
    let head = "POST /admin/invalidate-cache HTTP/1.1\r\nHost: localhost\r\n\
                X-Admin-Secret: wrong\r\nContent-Type: application/json\r\n\
                Content-Length: 1000000\r\n\r\n";
    let started = Instant::now();
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
        .await
        .expect("an answer before the body deadline")
        .expect("read");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_webhook_delivery_over_its_own_cap_is_413_even_when_signed() {
    let app = spawn_echo_app_with(Backend::Embedded, &[("GITHUB_WEBHOOK_SECRET", HOOK)]).await;
    let padding = "x".repeat(300 * 1024);
    let body = format!(r#"{{"ref":"refs/heads/main","commits":[],"pad":"{padding}"}}"#);
    let res = app
        .client
        .post(app.url("/webhooks/github"))
        .header("x-github-event", "push")
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sign(HOOK, body.as_bytes()))
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 413);
    let res = app
        .client
        .post(app.url("/webhooks/github"))
        .header("x-github-event", "ping")
        .header("x-hub-signature-256", "sha256=zz")
        .body("{}")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 403, "a malformed signature needs no body");
}

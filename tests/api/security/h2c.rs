//! HTTP/2 with prior knowledge (h2c): a silent connection is closed by the keep-alive ping it
//! never answers, and `HTTP2_CLEARTEXT=false` turns h2c off.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::app::{Backend, TestApp, spawn_echo_app_with};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
const SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// Opens an h2c connection, then stays silent; the bytes received and whether the server
/// closed it within `within`.
async fn silent_h2c(app: &TestApp, within: Duration) -> (Vec<u8>, bool) {
    let mut stream = TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connect");
    stream.write_all(PREFACE).await.expect("preface");
    stream.write_all(SETTINGS).await.expect("settings");
    let mut received = Vec::new();
    let closed = tokio::time::timeout(within, stream.read_to_end(&mut received))
        .await
        .is_ok();
    (received, closed)
}

#[tokio::test]
async fn a_silent_h2c_connection_is_closed_by_its_unanswered_keep_alive_ping() {
    let app = spawn_echo_app_with(
        Backend::Embedded,
        &[
            ("HEADER_READ_TIMEOUT_SECS", "1"),
            ("HTTP2_KEEPALIVE_SECS", "1"),
        ],
    )
    .await;
    let (received, closed) = silent_h2c(&app, Duration::from_secs(8)).await;
    assert!(closed, "still open after 8 s");
    assert!(!received.is_empty(), "the server spoke HTTP/2 first");
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn with_http2_cleartext_off_an_h2c_connection_is_closed_at_once() {
    let app = spawn_echo_app_with(Backend::Embedded, &[("HTTP2_CLEARTEXT", "false")]).await;
    let (received, closed) = silent_h2c(&app, Duration::from_secs(3)).await;
    assert!(closed && received.is_empty(), "{received:?}");
    assert_eq!(
        app.get("/health").await.status(),
        200,
        "HTTP/1.1 still served"
    );
}

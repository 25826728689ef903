//! HTTP/2 with prior knowledge (h2c): a silent connection is closed by the keep-alive ping it
//! never answers, one whose client answers pings but sends no request gets a GOAWAY after
//! `HEADER_READ_TIMEOUT_SECS` (as an idle HTTP/1 keep-alive connection is closed), and
//! `HTTP2_CLEARTEXT=false` turns h2c off.

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

/// A real HTTP/2 client (hyper's, which answers pings) asks once, then sends nothing: the
/// server ends the connection after the idle deadline; a stream still open at the deadline
/// finishes first.
#[tokio::test]
async fn an_h2c_connection_that_answers_pings_but_asks_nothing_is_closed_when_idle() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let app = spawn_echo_app_with(
        Backend::Embedded,
        &[
            ("HEADER_READ_TIMEOUT_SECS", "2"),
            ("HTTP2_KEEPALIVE_SECS", "1"),
        ],
    )
    .await;
    let stream = TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connect");
    let (mut sender, conn) = hyper::client::conn::http2::handshake::<_, _, Empty<bytes::Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .expect("h2c handshake");
    let started = std::time::Instant::now();
    let driver = tokio::spawn(conn);
    let request = hyper::Request::get(format!("http://127.0.0.1:{}/health", app.port))
        .body(Empty::new())
        .expect("request");
    let response = sender
        .send_request(request)
        .await
        .expect("answered over h2c");
    assert_eq!(response.status(), 200);
    let _ = response.into_body().collect().await.expect("body");
    // The client keeps answering the server's pings (every second) meanwhile.
    let ended = tokio::time::timeout(Duration::from_secs(8), driver).await;
    assert!(ended.is_ok(), "still open 8 s after its only request");
    let lasted = started.elapsed();
    assert!(
        lasted >= Duration::from_millis(1900),
        "not closed before the idle deadline ({lasted:?})"
    );
    assert_eq!(app.get("/health").await.status(), 200);
}

//! Issue 17, "also fix": the answers hyper writes by itself, before any of our code runs — 400
//! for a malformed request head, 414 for a URI too long, 431 for headers too large — had empty
//! bodies. They now carry the JSON error shape like every other error.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::app::{Backend, TestApp, spawn_echo_app};

/// Sends `request` raw and reads the whole answer (hyper closes after its own errors).
async fn raw(app: &TestApp, request: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connect");
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    // Generous: a hang fails, a machine busy with other tests does not.
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer));
    // A reset after the answer is fine: what was read before it counts.
    let _ = read.await.expect("the server answers and closes");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn assert_json_error(status: u16, head: &str, body: &str, want: u16, code: &str) {
    assert_eq!(status, want, "{head}\n{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{head}"
    );
    let json: Value = serde_json::from_str(body).expect("a JSON body");
    assert_eq!(json["error"]["code"], code, "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[tokio::test]
async fn hypers_own_400_414_and_431_have_the_json_error_shape() {
    let app = spawn_echo_app(Backend::Embedded).await;
    // A request line that is not HTTP.
    let (status, head, body) = raw(&app, b"GET /health HTTP/1.1 extra\r\nHost: x\r\n\r\n").await;
    assert_json_error(status, &head, &body, 400, "bad_request");
    // A header name with a space in it.
    let (status, head, body) = raw(&app, b"GET /health HTTP/1.1\r\nBad Header: x\r\n\r\n").await;
    assert_json_error(status, &head, &body, 400, "bad_request");
    // Headers past hyper's buffer (~400 KiB).
    let big = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(500 * 1024)
    );
    let (status, head, body) = raw(&app, big.as_bytes()).await;
    assert_json_error(status, &head, &body, 431, "request_header_fields_too_large");
    // A URI longer than hyper takes (65,534 bytes).
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    let (status, head, body) = raw(&app, long.as_bytes()).await;
    assert_json_error(status, &head, &body, 414, "uri_too_long");
    // The server still serves.
    assert_eq!(app.get("/health").await.status(), 200);
}

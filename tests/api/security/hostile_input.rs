//! Hostile input against the running server: every answer is a 4xx in the JSON error shape,
//! never a 5xx, a panic or a hang.

use serde_json::Value;

use crate::support::app::{Backend, TestApp, spawn_echo_app, spawn_echo_app_with};

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
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("send")
}

#[tokio::test]
async fn deeply_nested_chatkit_json_is_400_not_a_crash() {
    let app = spawn_echo_app(Backend::Embedded).await;
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
    let app = spawn_echo_app_with(Backend::Embedded, &[("MAX_BODY_BYTES", "65536")]).await;
    let text = "a".repeat(200_000);
    let body = format!(
        r#"{{"type":"threads.create","params":{{"input":{{"content":[{{"type":"input_text","text":"{text}"}}],"attachments":[],"inference_options":{{}}}}}}}}"#
    );
    assert_client_error(post_chatkit(&app, body).await, 413).await;
}

#[tokio::test]
async fn lesson_path_traversal_and_injection_are_400_on_every_route_that_takes_one() {
    let app = spawn_echo_app(Backend::Embedded).await;
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
    let key = crate::support::sso::Key::rsa("rsa-1", "rsa.pem");
    let sso = crate::support::sso::FakeSso::start(&[&key]).await;
    let app = spawn_echo_app_with(
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

/// Slow clients: a connection that never completes its request must not hold a socket and a
/// task for ever. Raw TCP, because an HTTP client cannot be made to stall on purpose.
mod slow_clients {
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use crate::support::app::{Backend, TestApp, spawn_echo_app_with};

    const LIMITS: &[(&str, &str)] = &[
        ("HEADER_READ_TIMEOUT_SECS", "1"),
        ("BODY_READ_TIMEOUT_SECS", "1"),
    ];

    async fn connect(app: &TestApp) -> TcpStream {
        TcpStream::connect(("127.0.0.1", app.port))
            .await
            .expect("connect")
    }

    /// Reads until the server closes the connection (or 10 s pass, which fails the test):
    /// returns what it sent and how long the connection stayed open.
    async fn read_until_closed(stream: &mut TcpStream, opened: Instant) -> (String, Duration) {
        let mut received = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received));
        match read.await {
            Ok(_) => {}
            Err(_) => panic!("the server kept a stalled connection open for 10 s"),
        }
        (
            String::from_utf8_lossy(&received).into_owned(),
            opened.elapsed(),
        )
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_is_closed_after_the_header_timeout() {
        let app = spawn_echo_app_with(Backend::Embedded, LIMITS).await;
        let opened = Instant::now();
        let mut stream = connect(&app).await;
        let (received, open_for) = read_until_closed(&mut stream, opened).await;
        assert!(received.is_empty(), "{received}");
        assert!(
            open_for >= Duration::from_millis(900),
            "closed early: {open_for:?}"
        );
        assert_eq!(app.get("/health").await.status(), 200, "still serving");
    }

    #[tokio::test]
    async fn a_request_head_that_never_ends_is_cut_off_after_the_header_timeout() {
        let app = spawn_echo_app_with(Backend::Embedded, LIMITS).await;
        let opened = Instant::now();
        let mut stream = connect(&app).await;
        // A slowloris: a valid start, one more header line now and then, never the blank line.
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
            .await
            .expect("write");
        let trickle = async {
            for i in 0..20 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                if stream
                    .write_all(format!("X-Pad-{i}: x\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        };
        trickle.await;
        let (received, _) = read_until_closed(&mut stream, opened).await;
        assert!(!received.contains("200 OK"), "{received}");
        assert_eq!(app.get("/health").await.status(), 200, "still serving");
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
        let app = spawn_echo_app_with(Backend::Embedded, LIMITS).await;
        let opened = Instant::now();
        let mut stream = connect(&app).await;
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("write");
        let (received, open_for) = read_until_closed(&mut stream, opened).await;
        assert!(received.starts_with("HTTP/1.1 200 OK"), "{received}");
        assert!(
            open_for >= Duration::from_millis(900),
            "closed early: {open_for:?}"
        );
    }

    #[tokio::test]
    async fn a_body_that_trickles_in_gets_408_in_the_json_error_shape() {
        for backend in [Backend::Embedded, Backend::Production] {
            let app = spawn_echo_app_with(backend, LIMITS).await;
            let opened = Instant::now();
            let mut stream = connect(&app).await;
            let head = "POST /chatkit HTTP/1.1\r\nHost: localhost\r\nX-User-ID: slow\r\n\
                        Content-Type: application/json\r\nContent-Length: 200\r\n\r\n";
            stream.write_all(head.as_bytes()).await.expect("write");
            // One byte every 300 ms: each chunk arrives well within a second, the whole body
            // never does; the deadline is for the body, not for each chunk.
            for byte in br#"{"type":"threads.list","#.iter() {
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                if opened.elapsed() > Duration::from_secs(3) {
                    break;
                }
            }
            let (received, open_for) = read_until_closed(&mut stream, opened).await;
            assert!(
                received.starts_with("HTTP/1.1 408"),
                "{backend:?}: {received}"
            );
            assert!(
                received.contains(r#""code":"request_timeout""#),
                "{received}"
            );
            assert!(open_for < Duration::from_secs(8), "{open_for:?}");
            assert_eq!(app.get("/health").await.status(), 200, "still serving");
        }
    }

    #[tokio::test]
    async fn a_client_that_keeps_its_requests_coming_is_served_on_one_connection() {
        let app = spawn_echo_app_with(Backend::Embedded, LIMITS).await;
        let mut stream = connect(&app).await;
        // Three requests 600 ms apart: each idle gap is under the 1 s timeout.
        for _ in 0..3 {
            stream
                .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await
                .expect("write");
            let mut buf = vec![0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
                .await
                .expect("a reply")
                .expect("read");
            assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
    }
}

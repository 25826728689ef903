//! Issue 17, item 3: a response nobody reads held its memory for ever (5 slow readers of big
//! `items.list` pages pinned +333 MB). A response that is not a stream must now reach the
//! client within `RESPONSE_SEND_TIMEOUT_SECS`; a client that stops reading is disconnected and
//! the response freed. The same client with the deadline off receives everything (the
//! control: the test can tell the two apart).

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::support::app::{Backend, TestApp, spawn_echo_app_with};
use crate::support::chatkit_client::input;

/// A thread of `n` user messages of `chars` characters each (and their echoed replies).
async fn big_thread(app: &TestApp, user: &str, n: usize, chars: usize) -> String {
    let chat = app.chat(user);
    let text = "x".repeat(chars);
    let (thread, _) = chat.create(&text).await;
    for _ in 1..n {
        let answer = chat
            .send_raw(
                &json!({"type": "threads.add_user_message",
                    "params": {"thread_id": thread, "input": input(&text)}})
                .to_string(),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    thread
}

/// Asks for the thread's items on a socket with a 4 KiB receive buffer, reads the first bytes
/// of the answer and then nothing for `pause`, then reads to the end: the bytes received and
/// the announced length.
async fn stalled_read(app: &TestApp, user: &str, thread: &str, pause: Duration) -> (usize, usize) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut stream = socket
        .connect(([127, 0, 0, 1], app.port).into())
        .await
        .expect("connect");
    let body =
        json!({"type": "items.list", "params": {"thread_id": thread, "limit": 100}}).to_string();
    let request = format!(
        "POST /chatkit HTTP/1.1\r\nHost: localhost\r\nX-User-ID: {user}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    // The pause starts when the answer does (building a big page takes a while).
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
        .await
        .expect("the answer starts within 30 s")
        .expect("read");
    answer.extend_from_slice(&buf[..n]);
    tokio::time::sleep(pause).await;
    let mut announced = usize::MAX;
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("never silent for 10 s");
        match read {
            Ok(0) | Err(_) => break, // closed (or reset) by the server
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
            announced = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .map_or(usize::MAX, |len| end + 4 + len);
            if answer.len() >= announced {
                break;
            }
        }
    }
    (answer.len(), announced)
}

async fn app_with(deadline: &str) -> TestApp {
    spawn_echo_app_with(
        Backend::Embedded,
        &[
            ("RESPONSE_SEND_TIMEOUT_SECS", deadline),
            ("MAX_MESSAGE_CHARS", "2000000"),
            ("MAX_BODY_BYTES", "4194304"),
            ("PAGE_MAX_BYTES", "67108864"),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_off_at_the_send_deadline() {
    let app = app_with("1").await;
    let user = "slow-reader";
    // ~12 MB of items: more than the socket buffers on both sides can hold.
    let thread = big_thread(&app, user, 6, 1_000_000).await;
    let started = Instant::now();
    let (received, announced) = stalled_read(&app, user, &thread, Duration::from_secs(3)).await;
    assert!(
        received < announced,
        "the stalled response was cut off ({received} of {announced} bytes)"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // Other clients are served as before.
    assert_eq!(app.get("/health").await.status(), 200);

    let control = app_with("0").await;
    let thread = big_thread(&control, user, 6, 1_000_000).await;
    let (received, announced) = stalled_read(&control, user, &thread, Duration::from_secs(3)).await;
    assert_eq!(
        received, announced,
        "without a deadline the reader gets it all"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_gets_the_whole_big_page_within_the_deadline() {
    let app = app_with("2").await;
    let user = "fast-reader";
    let thread = big_thread(&app, user, 6, 1_000_000).await;
    let (received, announced) = stalled_read(&app, user, &thread, Duration::ZERO).await;
    assert_eq!(received, announced, "a reading client is never cut off");
}

//! The model API over TLS and HTTP/2: a local fake model with a certificate from a CA made at
//! test time, trusted only through `EXTRA_CA_FILE`; and a server whose
//! `MAX_CONCURRENT_STREAMS` is smaller than the replies in flight.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Version;
use serde_json::{Value, json};

use crate::support::app::{Backend, TestApp, spawn_tutor_app_with, unique};
use crate::support::chatkit_client::{Chat, LiveSse, input, of_type};
use crate::support::model::{Answer, Handler, Step, Upstream, stream_reply, whole_reply};
use crate::support::tls::TestCa;

async fn app_on(upstream: &Upstream, extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("OPENAI_API_KEY", "sk-test"),
        ("OPENAI_BASE_URL", upstream.base_url.as_str()),
        ("MODEL_API", "chat_completions"),
        ("MODEL_FIRST_TOKEN_TIMEOUT_SECS", "10"),
        ("MODEL_IDLE_TIMEOUT_SECS", "10"),
        ("MODEL_MAX_RETRIES", "0"),
    ];
    vars.extend_from_slice(extra);
    spawn_tutor_app_with(Backend::Embedded, &vars).await
}

/// Every streamed call answers `deltas`; a judge call gets an empty JSON object.
fn answering(deltas: &'static [&'static str]) -> Handler {
    Arc::new(move |r| {
        if r.streamed() {
            stream_reply("chat_completions", deltas, 10)
        } else {
            whole_reply("chat_completions", "{}", 10)
        }
    })
}

/// Every streamed call sends its first token at once, then holds the stream for `hold`.
fn first_token_then_hold(hold: Duration) -> Handler {
    Arc::new(move |r| {
        if !r.streamed() {
            return whole_reply("chat_completions", "{}", 10);
        }
        let Answer::Stream(steps) = stream_reply("chat_completions", &["first ", "rest"], 10)
        else {
            unreachable!("a stream")
        };
        // The role frame, the first delta, then the pause before the rest.
        let mut held: Vec<Step> = steps[..4].to_vec();
        held.push(Step::Sleep(hold));
        held.extend_from_slice(&steps[4..]);
        Answer::Stream(held)
    })
}

fn deltas(events: &[Value]) -> String {
    of_type(events, "thread.item.updated")
        .iter()
        .filter(|e| e["update"]["type"] == "assistant_message.content_part.text_delta")
        .map(|e| e["update"]["delta"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn is_text_delta(e: &Value) -> bool {
    e["update"]["type"] == "assistant_message.content_part.text_delta"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_stream_over_http2_from_a_model_trusted_through_extra_ca_file() {
    let ca = TestCa::new();
    let upstream = Upstream::start_h2_tls(&ca, 100, answering(&["Hello ", "over h2"])).await;
    let app = app_on(&upstream, &[("EXTRA_CA_FILE", ca.ca_path())]).await;
    let chat = Chat::new(&app.address, &unique("student"));
    let (_, answer) = chat.create("What is ownership?").await;
    let events = answer.events();
    assert!(of_type(&events, "error").is_empty(), "{}", answer.text);
    assert_eq!(deltas(&events), "Hello over h2");
    let requests = upstream.requests();
    assert!(!requests.is_empty());
    assert!(
        requests.iter().all(|r| r.version == Version::HTTP_2),
        "{:?}",
        requests.iter().map(|r| r.version).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_extra_ca_the_model_call_fails_with_a_clear_error() {
    let ca = TestCa::new();
    let upstream = Upstream::start_h2_tls(&ca, 100, answering(&["never seen"])).await;
    let app = app_on(&upstream, &[]).await;
    let chat = Chat::new(&app.address, &unique("student"));
    let (_, answer) = chat.create("What is ownership?").await;
    let events = answer.events();
    let errors = of_type(&events, "error");
    assert_eq!(errors.len(), 1, "{}", answer.text);
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("cannot reach the model API") && message.contains("certificate"),
        "{message}"
    );
    assert_eq!(deltas(&events), "");
    assert!(
        upstream.requests().is_empty(),
        "no request passed the handshake"
    );
}

/// Starts `n` chats at once on `app`; how long each took to its first text delta.
async fn first_deltas(app: &TestApp, n: usize, within: Duration) -> Vec<Option<Duration>> {
    let started = Instant::now();
    let chats = (0..n).map(|_| {
        let chat = Chat::new(&app.address, &unique("student"));
        async move {
            let body = json!({"type": "threads.create", "params": {"input": input("hello")}});
            let response = chat.request(body.to_string()).send().await.expect("send");
            let mut sse = LiveSse::new(response);
            let first =
                tokio::time::timeout(within, sse.until("thread.item.updated", is_text_delta));
            let took = first.await.ok().map(|_| started.elapsed());
            (took, sse)
        }
    });
    let results = futures::future::join_all(chats).await;
    results.into_iter().map(|(took, _sse)| took).collect()
}

/// One reply first, so the client holds an established HTTP/2 connection when the burst
/// comes (concurrent first connects would each open their own).
async fn warm_up(app: &TestApp) {
    let chat = Chat::new(&app.address, &unique("student"));
    let (_, answer) = chat.create("warm up").await;
    assert!(
        of_type(&answer.events(), "error").is_empty(),
        "{}",
        answer.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_replies_than_the_servers_stream_limit_all_start_on_more_connections() {
    let ca = TestCa::new();
    let hold = Duration::from_secs(3);
    let upstream = Upstream::start_h2_tls(&ca, 2, first_token_then_hold(hold)).await;
    let app = app_on(
        &upstream,
        &[
            ("EXTRA_CA_FILE", ca.ca_path()),
            ("MODEL_STREAMS_PER_CONNECTION", "2"),
        ],
    )
    .await;
    warm_up(&app).await;
    let firsts = first_deltas(&app, 5, Duration::from_secs(2)).await;
    assert!(
        firsts.iter().all(Option::is_some),
        "every reply started while the others were held: {firsts:?}"
    );
    assert!(
        upstream.connections() >= 3,
        "5 streams at 2 per connection: {} connections",
        upstream.connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_one_connection_replies_beyond_the_servers_stream_limit_wait() {
    // The control of the test above: what happens without a second connection.
    let ca = TestCa::new();
    let hold = Duration::from_secs(3);
    let upstream = Upstream::start_h2_tls(&ca, 2, first_token_then_hold(hold)).await;
    let app = app_on(
        &upstream,
        &[
            ("EXTRA_CA_FILE", ca.ca_path()),
            ("MODEL_STREAMS_PER_CONNECTION", "100"),
        ],
    )
    .await;
    warm_up(&app).await;
    let firsts = first_deltas(&app, 4, Duration::from_secs(2)).await;
    let started = firsts.iter().filter(|f| f.is_some()).count();
    assert_eq!(started, 2, "only the server's 2 streams start: {firsts:?}");
    assert_eq!(upstream.connections(), 1);
}

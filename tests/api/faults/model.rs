//! The model upstream fails mid-stream under 50 concurrent chats — an `error` event in its
//! stream, a connection broken off, or a stall past the idle deadline, in turn: every student
//! sees the words so far and then a retryable `error` event (no hang, no 5xx), and every
//! partial reply is stored as seen.

use std::time::Duration;

use serde_json::{Value, json};

use super::load::{Client, Load, done_items, of_type, post_chatkit};
use crate::support::app::{Backend, spawn_tutor_app_with, unique};
use crate::support::chatkit_client::input;
use crate::support::model::{Answer, Step, Upstream};
use crate::support::transcripts::RESPONSES_ERROR_MID_STREAM;

const CLIENTS: usize = 50;
const CHATS_PER_CLIENT: usize = 3;
/// What the upstream says before it fails, in every variant.
const PARTIAL: &str = "Each value has one";
/// Generous bound of one failed turn: the idle deadline (1 s) plus room for a busy machine.
const LATENCY_BOUND: Duration = Duration::from_secs(8);

/// The upstream's answer number `i`: three ways of failing after the first words.
fn failing_answer(i: usize) -> Answer {
    let head = RESPONSES_ERROR_MID_STREAM
        .split_once("event: error\n")
        .expect("the transcript ends with an error event")
        .0;
    match i % 3 {
        0 => Answer::sse(RESPONSES_ERROR_MID_STREAM),
        1 => Answer::Stream(vec![
            Step::Send(head.to_owned().into()),
            Step::Sleep(Duration::from_millis(50)),
            Step::Cut,
        ]),
        _ => Answer::Stream(vec![Step::Send(head.to_owned().into()), Step::Hang]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_upstream_failing_mid_stream_under_50_concurrent_chats_ends_each_with_an_error_and_saves_each_partial_reply()
 {
    let chats = CLIENTS * CHATS_PER_CLIENT;
    let upstream = Upstream::start((0..chats).map(failing_answer).collect()).await;
    let app = spawn_tutor_app_with(
        Backend::Production,
        &[
            ("OPENAI_API_KEY", "sk-test"),
            ("OPENAI_BASE_URL", upstream.base_url.as_str()),
            ("MODEL_API", "responses"),
            ("MODEL_FIRST_TOKEN_TIMEOUT_SECS", "5"),
            ("MODEL_IDLE_TIMEOUT_SECS", "1"),
            ("MODEL_RETRY_BACKOFF_MS", "10"),
            ("RATE_LIMIT_CHAT", "1000000/minute"),
            ("DATABASE_MAX_CONNECTIONS", "10"),
        ],
    )
    .await;
    let base = app.address.clone();
    let load = Load::start(CLIENTS, move |client, _| student(client, base.clone()));
    let report = load.finish().await;

    let turns: Vec<_> = report.samples.iter().filter(|s| s.kind == "turn").collect();
    println!(
        "faults::model: {}; {} failing turns, slowest {:?}; {} upstream requests",
        report.summary(),
        turns.len(),
        turns.iter().map(|s| s.latency).max().unwrap_or_default(),
        upstream.requests().len()
    );
    report.assert_no_server_errors();
    report.assert_no_problems("bad turns");
    assert_eq!(turns.len(), chats);
    assert_eq!(
        upstream.requests().len(),
        chats,
        "a failure after the first token is not retried"
    );
    assert!(
        report.max_latency() < LATENCY_BOUND,
        "a turn took {:?}",
        report.max_latency()
    );
}

/// A few chats, each checked as it streams and then read back from the store.
async fn student(client: Client, base: String) {
    let user = unique("model-load-");
    let headers = [("x-user-id", user.as_str())];
    for _ in 0..CHATS_PER_CLIENT {
        let body =
            json!({"type": "threads.create", "params": {"input": input("Explain ownership")}});
        let thread = client
            .record("turn", async {
                match post_chatkit(&client.http, &base, &headers, &body).await {
                    Err(e) => (0, Err(e)),
                    Ok(a) => (a.status, a.events().and_then(|e| check_failed_turn(&e))),
                }
            })
            .await;
        let Some(thread) = thread else { continue };
        let list = json!({"type": "items.list",
            "params": {"thread_id": thread, "order": "asc", "limit": 20}});
        client
            .record("read back", async {
                match post_chatkit(&client.http, &base, &headers, &list).await {
                    Err(e) => (0, Err(e)),
                    Ok(a) => (a.status, a.json().and_then(|page| check_stored(&page))),
                }
            })
            .await;
    }
}

/// The words so far, the partial reply committed (`thread.item.done`), then a retryable
/// `error` as the last event. Answers the thread id.
fn check_failed_turn(events: &[Value]) -> Result<String, String> {
    let seen: String = of_type(events, "thread.item.updated")
        .iter()
        .filter(|e| e["update"]["type"] == "assistant_message.content_part.text_delta")
        .filter_map(|e| e["update"]["delta"].as_str())
        .collect();
    let done = done_items(events, "assistant_message");
    let last = events.last().cloned().unwrap_or_default();
    let ok = seen == PARTIAL
        && done.len() == 1
        && done[0]["content"][0]["text"] == PARTIAL
        && last["type"] == "error"
        && last["allow_retry"] == true
        && of_type(events, "error").len() == 1;
    if !ok {
        return Err(format!(
            "not a failed turn with its partial reply: {events:?}"
        ));
    }
    events[0]["thread"]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no thread.created first: {events:?}"))
}

/// The stored thread: the student's message and the partial reply, as seen.
fn check_stored(page: &Value) -> Result<(), String> {
    let items = page["data"]
        .as_array()
        .ok_or_else(|| format!("no page: {page}"))?;
    let replies: Vec<&Value> = items
        .iter()
        .filter(|i| i["type"] == "assistant_message")
        .collect();
    match replies.as_slice() {
        [reply] if reply["content"][0]["text"] == PARTIAL => Ok(()),
        _ => Err(format!("the partial reply is not stored as seen: {page}")),
    }
}

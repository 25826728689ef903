//! Streams under stress: client disconnects and server shutdown mid-reply (partial reply and
//! cancellation note saved, responder dropped), durability order, responder failures, the
//! request context handed to the responder, and the stream metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use study_mode_api::chatkit::ids;
use study_mode_api::chatkit::reply::{CANCELLED_BY_SHUTDOWN, CANCELLED_BY_USER};
use study_mode_api::chatkit::request::Order;
use study_mode_api::chatkit::store::{Hidden, PageQuery};
use study_mode_api::chatkit::types::{ItemKind, ThreadItem};
use study_mode_api::turn::{Responder, Role, TurnError, TurnEvent, TurnRequest, TurnStream};

use crate::per_backend;
use crate::support::app::{Backend, spawn_app_with_responder, unique};
use crate::support::chatkit_client::{ChatApp, LiveSse as Live, assert_conforms, input, of_type};

per_backend! {
    a_client_disconnect_saves_the_partial_reply_and_a_cancellation_note_and_drops_the_responder => disconnect;
    shutdown_ends_open_streams_with_a_retryable_error_and_saves_the_partial_reply => shutdown;
    each_item_is_in_the_store_when_its_done_event_arrives => durability;
    a_failing_responder_keeps_the_partial_reply_and_ends_with_its_error => failing;
    the_responder_receives_the_request_context_and_the_last_thirty_items => context;
    a_graceful_stop_ends_open_streams_at_the_deadline_after_their_last_writes => graceful_stop;
    a_disconnect_is_noticed_while_the_responder_is_still_silent => silent_disconnect;
    a_silent_stream_gets_keep_alive_comments_and_its_events_are_unchanged => keepalive;
}

/// Sets its flag when dropped: proves the responder's stream was dropped.
struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Emits `w0 `, `w1 `, … every `delay`, `count` times (forever when `None`).
struct Slow {
    delay: Duration,
    count: Option<usize>,
    dropped: Arc<AtomicBool>,
}

impl Responder for Slow {
    fn respond(&self, _request: TurnRequest) -> TurnStream {
        let state = (
            0usize,
            DropFlag(self.dropped.clone()),
            self.delay,
            self.count,
        );
        Box::pin(futures::stream::unfold(
            state,
            |(i, flag, delay, count)| async move {
                if count.is_some_and(|c| i >= c) {
                    return None;
                }
                tokio::time::sleep(delay).await;
                Some((
                    Ok(TurnEvent::Delta(format!("w{i} "))),
                    (i + 1, flag, delay, count),
                ))
            },
        ))
    }
    fn describe(&self) -> String {
        "slow".into()
    }
}

fn slow(delay_ms: u64, count: Option<usize>) -> (Arc<Slow>, Arc<AtomicBool>) {
    let dropped = Arc::new(AtomicBool::new(false));
    let r = Slow {
        delay: Duration::from_millis(delay_ms),
        count,
        dropped: dropped.clone(),
    };
    (Arc::new(r), dropped)
}

/// Opens `body` as `user` (checked by the oracle first) and reads it live.
async fn open(app: &ChatApp, user: &str, body: Value) -> Live {
    assert_conforms(json!({"cmd": "request", "body": body.to_string(), "valid": true}));
    let resp = app
        .chat(user)
        .request(body.to_string())
        .send()
        .await
        .expect("request");
    Live::new(resp)
}

/// Reads until `n` text deltas have arrived; the thread id.
async fn until_deltas(live: &mut Live, n: usize) -> String {
    let (mut thread, mut seen) = (String::new(), 0);
    while seen < n {
        let e = live.next().await.expect("stream ended early");
        if e["type"] == "thread.created" {
            thread = e["thread"]["id"].as_str().unwrap_or_default().to_owned();
        }
        if e["update"]["type"] == "assistant_message.content_part.text_delta" {
            seen += 1;
        }
    }
    thread
}

fn create(text: &str) -> Value {
    json!({"type": "threads.create", "params": {"input": input(text)}})
}

async fn all_items(app: &ChatApp, owner: &str, thread: &str) -> Vec<ThreadItem> {
    let page = PageQuery::first(100, Order::Asc);
    app.state
        .chatkit
        .store
        .load_items(owner, thread, &page, Hidden::Include)
        .await
        .expect("items")
        .data
}

/// Polls until the thread holds a hidden note (the driver finishes after the client left).
async fn wait_for_note(app: &ChatApp, owner: &str, thread: &str) -> Vec<ThreadItem> {
    for _ in 0..100 {
        let items = all_items(app, owner, thread).await;
        if items
            .iter()
            .any(|i| matches!(i.kind, ItemKind::SdkHiddenContext { .. }))
        {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no cancellation note was saved")
}

fn assistant_text(item: &ThreadItem) -> String {
    match &item.kind {
        ItemKind::AssistantMessage { content } => content.iter().map(|c| c.text.clone()).collect(),
        other => panic!("not an assistant message: {other:?}"),
    }
}

async fn disconnect(backend: Backend) {
    let (responder, dropped) = slow(40, None);
    let app = spawn_app_with_responder(backend, &[], responder).await;
    let user = unique("leaver");
    let mut live = open(&app, &user, create("tell me everything")).await;
    let thread = until_deltas(&mut live, 3).await;
    drop(live); // the client goes away mid-reply
    let items = wait_for_note(&app, &user, &thread).await;
    let kinds: Vec<&str> = items.iter().map(|i| i.kind.type_name()).collect();
    assert_eq!(
        kinds,
        ["user_message", "assistant_message", "sdk_hidden_context"]
    );
    assert!(
        assistant_text(&items[1]).starts_with("w0 w1 w2 "),
        "{}",
        assistant_text(&items[1])
    );
    assert!(
        matches!(&items[2].kind, ItemKind::SdkHiddenContext { content } if content == CANCELLED_BY_USER)
    );
    assert!(
        dropped.load(Ordering::SeqCst),
        "the responder's stream was dropped"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(app.state.chatkit.metrics.active_streams.get(), 0);
    // The note is context for the model only: never shown to the client.
    let visible = app.chat(&user).items(&thread).await;
    assert_eq!(visible.len(), 2);
}

async fn shutdown(backend: Backend) {
    let (responder, dropped) = slow(40, None);
    let app = spawn_app_with_responder(backend, &[], responder).await;
    let user = unique("student");
    let mut live = open(&app, &user, create("long answer please")).await;
    let thread = until_deltas(&mut live, 2).await;
    app.state.shutdown.cancel();
    let mut last = Value::Null;
    while let Some(e) = live.next().await {
        last = e;
    }
    assert_eq!(last["type"], "error");
    assert_eq!(last["allow_retry"], true);
    let body = String::from_utf8(live.raw.clone()).expect("utf-8");
    assert_conforms(json!({"cmd": "response", "request_type": "threads.create", "body": body}));
    let items = wait_for_note(&app, &user, &thread).await;
    assert!(assistant_text(&items[1]).starts_with("w0 w1 "));
    assert!(
        matches!(&items[2].kind, ItemKind::SdkHiddenContext { content } if content == CANCELLED_BY_SHUTDOWN)
    );
    assert!(dropped.load(Ordering::SeqCst));
}

async fn durability(backend: Backend) {
    let (responder, _) = slow(100, Some(4));
    let app = spawn_app_with_responder(backend, &[], responder).await;
    let user = unique("student");
    let store = app.state.chatkit.store.clone();
    let mut live = open(&app, &user, create("remember me")).await;
    let mut thread = String::new();
    let mut checked = 0;
    while let Some(e) = live.next().await {
        if e["type"] == "thread.created" {
            thread = e["thread"]["id"].as_str().unwrap_or_default().to_owned();
            assert!(
                store
                    .load_thread(&user, &thread)
                    .await
                    .expect("load")
                    .is_some()
            );
        }
        if e["type"] == "thread.item.done" {
            let id = e["item"]["id"].as_str().unwrap_or_default();
            let stored = store.load_item(&user, &thread, id).await.expect("load");
            let stored = serde_json::to_value(stored.expect("committed before its done event"))
                .expect("json");
            assert_eq!(stored, e["item"]);
            checked += 1;
        }
    }
    assert_eq!(checked, 2);
}

/// Streams one delta, then fails (or fails at once).
struct Failing {
    after_delta: bool,
}

impl Responder for Failing {
    fn respond(&self, _request: TurnRequest) -> TurnStream {
        let mut events = Vec::new();
        if self.after_delta {
            events.push(Ok(TurnEvent::Delta("Half an ans".into())));
        }
        events.push(Err(TurnError {
            message: "The model is unavailable.".into(),
            allow_retry: true,
        }));
        Box::pin(futures::stream::iter(events))
    }
    fn describe(&self) -> String {
        "failing".into()
    }
}

async fn failing(backend: Backend) {
    let app = spawn_app_with_responder(backend, &[], Arc::new(Failing { after_delta: true })).await;
    let c = app.chat(&unique("student"));
    let (thread, answer) = c.create("question").await;
    let events = answer.events();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(types[types.len() - 2..], ["thread.item.done", "error"]);
    let error = events.last().expect("error");
    assert_eq!(
        (error["message"].as_str(), error["allow_retry"].as_bool()),
        (Some("The model is unavailable."), Some(true))
    );
    let items = c.items(&thread).await;
    assert_eq!(
        items[1]["content"][0]["text"], "Half an ans",
        "the partial reply is kept"
    );

    let app =
        spawn_app_with_responder(backend, &[], Arc::new(Failing { after_delta: false })).await;
    let c = app.chat(&unique("student"));
    let (thread, answer) = c.create("question").await;
    let types = answer.types();
    assert_eq!(
        types,
        [
            "thread.created",
            "thread.item.done",
            "stream_options",
            "error"
        ]
    );
    assert_eq!(
        c.items(&thread).await.len(),
        1,
        "no empty assistant item is stored"
    );
}

/// Records every request and answers with a title and one delta.
#[derive(Default)]
struct Capture {
    seen: Mutex<Vec<TurnRequest>>,
}

impl Responder for Capture {
    fn respond(&self, request: TurnRequest) -> TurnStream {
        self.seen.lock().expect("lock").push(request);
        Box::pin(futures::stream::iter([
            Ok(TurnEvent::Title("T".into())),
            Ok(TurnEvent::Delta("ok".into())),
        ]))
    }
    fn describe(&self) -> String {
        "capture".into()
    }
}

async fn context(backend: Backend) {
    let capture = Arc::new(Capture::default());
    let app = spawn_app_with_responder(backend, &[], capture.clone()).await;
    let user = unique("student");
    let c = app
        .chat(&user)
        .with_query("lesson_path=01-Part/02-lesson&mode=ask&user_name=Query%20Name&selected_text=a%20phrase")
        .with_header("x-user-name", "Header Name")
        .with_header("x-organization-id", "org-9");
    let mut with_model = input("hello there");
    with_model["inference_options"] = json!({"model": "teach"});
    let answer = c
        .send(json!({"type": "threads.create", "params": {"input": with_model}}))
        .await;
    let thread = answer.events()[0]["thread"]["id"]
        .as_str()
        .expect("thread")
        .to_owned();
    let first = capture.seen.lock().expect("lock")[0].clone();
    assert_eq!(first.user_id, user);
    assert_eq!(first.user_name.as_deref(), Some("Header Name"));
    assert_eq!(
        first.lesson.as_ref().map(|l| l.as_str()),
        Some("01-Part/02-lesson")
    );
    assert_eq!(first.mode.name(), "teach", "inference_options.model wins");
    assert_eq!(first.selected_text.as_deref(), Some("a phrase"));
    assert_eq!(first.message.as_deref(), Some("hello there"));
    assert!(first.history.is_empty() && first.needs_title);
    let stored = app
        .state
        .chatkit
        .store
        .load_thread(&user, &thread)
        .await
        .expect("load")
        .expect("thread");
    assert_eq!(stored.organization_id.as_deref(), Some("org-9"));
    assert_eq!(stored.title.as_deref(), Some("T"));

    // 40 more items, the newest a hidden note: the responder sees the last 30, oldest first.
    for n in 0..40 {
        let kind = if n == 39 {
            ItemKind::SdkHiddenContext {
                content: "note".into(),
            }
        } else {
            ItemKind::AssistantMessage {
                content: vec![study_mode_api::chatkit::types::AssistantContent::text(
                    format!("old {n}"),
                )],
            }
        };
        let item = ThreadItem {
            id: format!("msg_old{n:02}"),
            thread_id: thread.clone(),
            created_at: ids::now(),
            kind,
        };
        app.state
            .chatkit
            .store
            .save_item(&user, &item)
            .await
            .expect("save");
    }
    let c = app.chat(&user).with_query("mode=ask");
    let answer = c.say(&thread, "next").await;
    assert_eq!(
        of_type(&answer.events(), "thread.updated").len(),
        0,
        "the title is already set"
    );
    let second = capture.seen.lock().expect("lock")[1].clone();
    assert_eq!(second.mode.name(), "ask");
    assert!(!second.needs_title);
    assert_eq!(second.history.len(), 30);
    assert_eq!(second.history[0].text, "old 10");
    assert_eq!(second.history[29].role, Role::Hidden);
    assert_eq!(second.user_name, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_streams_events_and_store_operations() {
    let app = crate::support::app::spawn_echo_app(Backend::Embedded).await;
    let c = crate::support::chatkit_client::Chat::new(&app.address, &unique("student"));
    c.create("count me").await;
    let text = app.get("/metrics").await.text().await.expect("metrics");
    for expected in [
        "study_mode_chatkit_events_sent_total{event=\"thread.created\"} 1",
        "study_mode_chatkit_active_streams 0",
        "study_mode_chatkit_stream_duration_seconds_count 1",
        // The thread and its first message are one write; the reply with its title another.
        "study_mode_store_operation_duration_seconds_count{backend=\"sqlite\",operation=\"save_thread_with_item\"} 1",
        "study_mode_store_operation_duration_seconds_count{backend=\"sqlite\",operation=\"save_reply\"} 1",
    ] {
        assert!(text.contains(expected), "missing {expected}:\n{text}");
    }
    for unexpected in ["operation=\"save_thread\"", "operation=\"save_item\""] {
        assert!(!text.contains(unexpected), "a turn is two writes:\n{text}");
    }
}

async fn graceful_stop(backend: Backend) {
    let (responder, dropped) = slow(40, None);
    let mut app =
        spawn_app_with_responder(backend, &[("SHUTDOWN_TIMEOUT_SECS", "1")], responder).await;
    let user = unique("student");
    let mut live = open(&app, &user, create("keep talking")).await;
    let thread = until_deltas(&mut live, 2).await;
    let stopped = app.begin_shutdown();
    let mut last = Value::Null;
    while let Some(e) = live.next().await {
        last = e;
    }
    assert_eq!(
        (last["type"].as_str(), last["allow_retry"].as_bool()),
        (Some("error"), Some(true))
    );
    tokio::time::timeout(Duration::from_secs(4), stopped)
        .await
        .expect("the server stops within the deadline")
        .expect("server task")
        .expect("server result");
    assert!(dropped.load(Ordering::SeqCst));
    // The pool is closed now: look with a fresh one.
    let db = study_mode_api::db::Database::connect(&app.settings.database)
        .await
        .expect("reopen");
    let metrics = study_mode_api::db::StoreMetrics::register(&mut Default::default());
    let store = study_mode_api::chatkit::ThreadStore::new(&db, &metrics);
    let page = PageQuery::first(10, Order::Asc);
    let items = store
        .load_items(&user, &thread, &page, Hidden::Include)
        .await
        .expect("items")
        .data;
    let kinds: Vec<&str> = items.iter().map(|i| i.kind.type_name()).collect();
    assert_eq!(
        kinds,
        ["user_message", "assistant_message", "sdk_hidden_context"]
    );
    db.close().await;
}

async fn silent_disconnect(backend: Backend) {
    // The first delta would come after 3 s; the client leaves before it.
    let (responder, dropped) = slow(3000, None);
    let app = spawn_app_with_responder(backend, &[], responder).await;
    let user = unique("leaver");
    let mut live = open(&app, &user, create("slow model")).await;
    let mut thread = String::new();
    while let Some(e) = live.next().await {
        if e["type"] == "thread.created" {
            thread = e["thread"]["id"].as_str().unwrap_or_default().to_owned();
        }
        if e["type"] == "stream_options" {
            break;
        }
    }
    drop(live);
    let started = std::time::Instant::now();
    let items = wait_for_note(&app, &user, &thread).await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "noticed only after {:?}",
        started.elapsed()
    );
    assert_eq!(
        items.len(),
        2,
        "no partial reply: the responder said nothing yet"
    );
    assert!(dropped.load(Ordering::SeqCst));
}

async fn keepalive(backend: Backend) {
    // The first delta comes after 2.6 s; with a 1 s keep-alive, two comments come before it.
    let (responder, _) = slow(2600, Some(2));
    let app = spawn_app_with_responder(backend, &[("SSE_KEEPALIVE_SECS", "1")], responder).await;
    let mut live = open(&app, &unique("patient"), create("slow model")).await;
    let mut events = Vec::new();
    while let Some(e) = live.next().await {
        events.push(e);
    }
    let raw = String::from_utf8(live.raw.clone()).expect("utf-8");
    let comments = raw.matches(": keep-alive\n\n").count();
    assert!(
        (2..=6).contains(&comments),
        "{comments} keep-alives in {raw}"
    );
    let first_delta = raw.find("text_delta").expect("a delta");
    assert!(raw.find(": keep-alive").expect("a comment") < first_delta);
    // The whole body, comments included, is a valid ChatKit stream; the events end as usual.
    assert_conforms(json!({"cmd": "response", "request_type": "threads.create", "body": raw}));
    let deltas = of_type(&events, "thread.item.updated")
        .iter()
        .filter(|e| e["update"]["type"] == "assistant_message.content_part.text_delta")
        .count();
    assert_eq!(deltas, 2);
    let last = events.last().expect("events");
    assert_eq!(last["type"], "thread.item.done");
    assert_eq!(last["item"]["type"], "assistant_message");
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Measurement for docs/BENCHMARKS.md (run with `--ignored --nocapture`): RSS growth of the
/// test process per open stream. The clients are raw sockets in the same process, so this is
/// an upper bound of the server's cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, run explicitly"]
async fn measure_memory_per_open_stream() {
    const STREAMS: usize = 500;
    let (responder, _) = slow(600_000, None);
    let app = spawn_app_with_responder(Backend::Embedded, &[], responder).await;
    let port = app.address.rsplit(':').next().expect("port").to_owned();
    let warm = open_raw_streams(&port, 20).await; // allocator, pools, first-use costs
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib();
    let streams = open_raw_streams(&port, STREAMS).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib();
    assert_eq!(
        app.state.chatkit.metrics.active_streams.get(),
        (STREAMS + warm.len()) as i64
    );
    println!(
        "open streams: {STREAMS}; RSS {before} KiB -> {after} KiB; {:.1} KiB per stream",
        (after.saturating_sub(before)) as f64 / STREAMS as f64
    );
    drop(streams);
}

/// Opens `n` `threads.create` streams on raw sockets and reads each until its 200 head.
async fn open_raw_streams(port: &str, n: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = create("hold this stream open").to_string();
    let mut sockets = Vec::new();
    for i in 0..n {
        let request = format!(
            "POST /chatkit HTTP/1.1\r\nHost: x\r\nX-User-ID: m{i}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut s = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
            .await
            .expect("connect");
        s.write_all(request.as_bytes()).await.expect("write");
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.expect("read");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        sockets.push(s);
    }
    sockets
}

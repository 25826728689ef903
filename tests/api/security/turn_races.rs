//! Issue 17, items 12 and 18: turns of one thread racing each other, and a delete racing a
//! reply, on one instance and across two instances on one PostgreSQL.
//!
//! Item 12: `threads.retry_after_item` racing `add_user_message` deleted acknowledged messages
//! the retry never saw and left replies without their message. Turns of a thread now take
//! turns (an advisory lock on PostgreSQL): the retry waits for the reply in progress, then
//! removes, and announces, exactly what was there. Item 18: `threads.delete` during a reply let
//! the model stream to the end and then sent a retryable error; the reply now stops at the
//! delete, also on another instance, with an error that is not retryable.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use study_mode_api::turn::{Responder, TurnEvent, TurnRequest, TurnStream};

use super::client_error;
use crate::support::app::{Backend, TestApp, spawn_app_with_responder, unique};
use crate::support::chatkit_client::{Chat, LiveSse, input, of_type};

/// Answers `re: <message>` in `words` deltas, `delay` apart; counts deltas it produced and
/// notes when a stream of it was dropped.
struct Paced {
    words: usize,
    delay: Duration,
    produced: Arc<AtomicUsize>,
    dropped: Arc<AtomicBool>,
}

struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Responder for Paced {
    fn respond(&self, request: TurnRequest) -> TurnStream {
        let message = request.message.unwrap_or_default();
        let state = (
            0usize,
            self.words,
            self.delay,
            message,
            self.produced.clone(),
            DropFlag(self.dropped.clone()),
        );
        Box::pin(futures::stream::unfold(
            state,
            |(i, words, delay, message, produced, flag)| async move {
                if i >= words {
                    return None;
                }
                tokio::time::sleep(delay).await;
                produced.fetch_add(1, Ordering::SeqCst);
                let delta = if i == 0 {
                    format!("re: {message} ")
                } else {
                    ". ".to_owned()
                };
                Some((
                    Ok(TurnEvent::Delta(delta)),
                    (i + 1, words, delay, message, produced, flag),
                ))
            },
        ))
    }
    fn describe(&self) -> String {
        "paced".into()
    }
}

struct Model {
    responder: Arc<Paced>,
}

impl Model {
    fn new(words: usize, delay_ms: u64) -> Self {
        Self {
            responder: Arc::new(Paced {
                words,
                delay: Duration::from_millis(delay_ms),
                produced: Arc::new(AtomicUsize::new(0)),
                dropped: Arc::new(AtomicBool::new(false)),
            }),
        }
    }

    async fn app(&self, backend: Backend, extra: &[(&str, &str)]) -> TestApp {
        spawn_app_with_responder(backend, extra, self.responder.clone()).await
    }
}

/// Sends `body` and reads the answer live.
async fn open(chat: &Chat, body: Value) -> LiveSse {
    LiveSse::new(chat.request(body.to_string()).send().await.expect("send"))
}

fn message(thread: &str, text: &str) -> Value {
    json!({"type": "threads.add_user_message",
        "params": {"thread_id": thread, "input": input(text)}})
}

fn item_type(item: &Value) -> &str {
    item["type"].as_str().unwrap_or_default()
}

fn reply_text(item: &Value) -> String {
    item["content"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<String>()
        })
        .unwrap_or_default()
}

/// Rounds of: a message whose reply is in progress on `a`, and a retry of the first message
/// sent to `b` meanwhile. The retry must wait for that reply, then remove (and announce) the
/// message and its reply; nothing it did not announce may vanish, and no reply may outlive its
/// message.
async fn retry_races_a_message(a: &TestApp, b: &TestApp) {
    let owner = unique("racer");
    let on_a = Chat::new(&a.address, &owner);
    let on_b = Chat::new(&b.address, &owner);
    let (thread, _) = on_a.create("first").await;
    let first = on_a.items(&thread).await[0].clone();
    assert_eq!(item_type(&first), "user_message");
    for round in 0..3 {
        let text = format!("second {round}");
        let mut pending = open(&on_a, message(&thread, &text)).await;
        // Acknowledged: the message is stored and its reply has begun.
        let acked = pending
            .until("thread.item.done", |e| {
                item_type(&e["item"]) == "user_message"
            })
            .await;
        let acked_id = acked["item"]["id"].as_str().expect("id").to_owned();
        pending.until("thread.item.updated", |_| true).await;
        let retried_at = Instant::now();
        let retry_body = json!({"type": "threads.retry_after_item",
            "params": {"thread_id": thread, "item_id": first["id"]}});
        // The reply in progress is read meanwhile (an unread stream would stall it).
        let (retry, pending_events) = tokio::join!(on_b.send(retry_body), pending.rest());
        assert_eq!(retry.status, 200, "{}", retry.text);
        assert!(
            of_type(&pending_events, "error").is_empty(),
            "round {round}: the reply in progress completes: {pending_events:?}"
        );
        let reply_done = of_type(&pending_events, "thread.item.done")
            .into_iter()
            .find(|e| item_type(&e["item"]) == "assistant_message")
            .expect("the reply in progress was saved");
        let reply_id = reply_done["item"]["id"].as_str().expect("id").to_owned();
        let events = retry.events();
        let removed: Vec<String> = of_type(&events, "thread.item.removed")
            .iter()
            .map(|e| e["item_id"].as_str().unwrap_or_default().to_owned())
            .collect();
        // The retry waited for the reply in progress, so it saw both the acknowledged message
        // and its reply, removed them and said so.
        assert!(
            removed.contains(&acked_id) && removed.contains(&reply_id),
            "round {round}: the retry announces removing {acked_id} and {reply_id}: {removed:?}"
        );
        assert!(
            retried_at.elapsed() >= Duration::from_millis(200),
            "round {round}: the retry waited for the reply in progress"
        );
        let items = on_a.items(&thread).await;
        let kinds: Vec<&str> = items.iter().map(item_type).collect();
        assert_eq!(
            kinds,
            ["user_message", "assistant_message"],
            "round {round}: the first message and its new reply, nothing orphaned: {items:?}"
        );
        assert!(
            reply_text(&items[1]).starts_with("re: first"),
            "round {round}: {items:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_racing_a_message_on_one_instance_waits_its_turn() {
    let model = Model::new(12, 40);
    let app = model.app(Backend::Embedded, &[]).await;
    retry_races_a_message(&app, &app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_racing_a_message_on_another_instance_waits_its_turn() {
    let model = Model::new(12, 40);
    let a = model.app(Backend::Production, &[]).await;
    let b = model.app(Backend::Production, &[]).await;
    retry_races_a_message(&a, &b).await;
}

/// A turn that cannot get its thread within `TURN_WAIT_SECS` gets 409 in the error shape;
/// the reply in progress is untouched.
async fn a_turn_held_too_long_is_refused(a: &TestApp, b: &TestApp) {
    let owner = unique("waiter");
    let on_a = Chat::new(&a.address, &owner);
    let on_b = Chat::new(&b.address, &owner);
    let (thread, _) = on_a.create("hello").await;
    let mut pending = open(&on_a, message(&thread, "long one")).await;
    pending.until("thread.item.updated", |_| true).await;
    let started = Instant::now();
    let refuse = async {
        let refused = on_b
            .request(message(&thread, "too soon").to_string())
            .send()
            .await
            .expect("send");
        (started.elapsed(), client_error(refused, 409).await)
    };
    let ((waited, body), events) = tokio::join!(refuse, pending.rest());
    assert_eq!(body["error"]["code"], "conflict", "{body}");
    assert!(
        waited >= Duration::from_millis(900),
        "refused only after the wait ({waited:?})"
    );
    assert!(of_type(&events, "error").is_empty(), "{events:?}");
    let texts: Vec<String> = on_a
        .items(&thread)
        .await
        .iter()
        .filter(|i| item_type(i) == "user_message")
        .map(|i| {
            i["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        texts,
        ["hello", "long one"],
        "the refused message was not stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_that_waits_too_long_gets_409_on_one_instance() {
    let model = Model::new(30, 100);
    let app = model
        .app(Backend::Embedded, &[("TURN_WAIT_SECS", "1")])
        .await;
    a_turn_held_too_long_is_refused(&app, &app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_that_waits_too_long_gets_409_across_instances() {
    let model = Model::new(30, 100);
    let a = model.app(Backend::Production, &[]).await;
    let b = model
        .app(Backend::Production, &[("TURN_WAIT_SECS", "1")])
        .await;
    a_turn_held_too_long_is_refused(&a, &b).await;
}

/// `threads.delete` (sent to `b`) while a long reply streams on `a`: the reply stops within a
/// moment with a non-retryable error, the model stream is dropped, and nothing of the thread
/// comes back.
async fn a_delete_stops_the_reply(model: &Model, a: &TestApp, b: &TestApp) {
    let owner = unique("deleter");
    let on_a = Chat::new(&a.address, &owner);
    let on_b = Chat::new(&b.address, &owner);
    let (thread, _) = on_a.create("hello").await;
    let before = model.responder.produced.load(Ordering::SeqCst);
    model.responder.dropped.store(false, Ordering::SeqCst);
    let mut pending = open(&on_a, message(&thread, "a long answer please")).await;
    pending
        .until("thread.item.updated", |e| {
            e["update"]["type"] == "assistant_message.content_part.text_delta"
        })
        .await;
    let deleted = on_b
        .send(json!({"type": "threads.delete", "params": {"thread_id": thread}}))
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let at = Instant::now();
    let events = pending.rest().await;
    assert!(
        at.elapsed() < Duration::from_secs(3),
        "the reply stopped at the delete, not at its end ({:?})",
        at.elapsed()
    );
    let errors = of_type(&events, "error");
    assert_eq!(errors.len(), 1, "{events:?}");
    assert_eq!(errors[0]["allow_retry"], false, "{errors:?}");
    assert!(
        model.responder.dropped.load(Ordering::SeqCst),
        "the model stream was dropped"
    );
    let produced = model.responder.produced.load(Ordering::SeqCst) - before;
    assert!(
        produced < model.responder.words / 2,
        "the model was stopped early ({produced} of {} words)",
        model.responder.words
    );
    let gone = on_a
        .send(json!({"type": "threads.get_by_id", "params": {"thread_id": thread}}))
        .await;
    assert_eq!(gone.status, 404, "no partial reply brought the thread back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_on_the_same_instance_stops_the_reply() {
    let model = Model::new(100, 50);
    let app = model.app(Backend::Embedded, &[]).await;
    a_delete_stops_the_reply(&model, &app, &app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_on_another_instance_stops_the_reply() {
    let model = Model::new(100, 50);
    let a = model.app(Backend::Production, &[]).await;
    let b = model.app(Backend::Production, &[]).await;
    a_delete_stops_the_reply(&model, &a, &b).await;
}

/// Two instances' turn locks under a storm of short turns on a few threads: the lock task
/// gives back and takes locks in one statement, and still no two turns of one thread ever
/// overlap, on one instance or across both, and every turn gets its thread.
#[tokio::test]
async fn turn_locks_under_load_never_let_two_turns_of_a_thread_overlap() {
    use study_mode_api::chatkit::ThreadLocks;
    use study_mode_api::db::Database;
    let instance = || async {
        let pool = sqlx::PgPool::connect(crate::support::app::test_database_url())
            .await
            .expect("pool");
        let shutdown = tokio_util::sync::CancellationToken::new();
        (
            ThreadLocks::new(
                &Database::Postgres(pool),
                Duration::from_secs(30),
                shutdown.clone(),
            ),
            shutdown,
        )
    };
    let (a, stop_a) = instance().await;
    let (b, stop_b) = instance().await;
    let threads: Vec<String> = (0..8).map(|n| unique(&format!("storm-{n}"))).collect();
    let busy: Arc<Vec<AtomicBool>> = Arc::new((0..8).map(|_| AtomicBool::new(false)).collect());
    let overlaps = Arc::new(AtomicUsize::new(0));
    let turns = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for worker in 0..64 {
        let locks = if worker % 2 == 0 {
            a.clone()
        } else {
            b.clone()
        };
        let (threads, busy) = (threads.clone(), busy.clone());
        let (overlaps, turns) = (overlaps.clone(), turns.clone());
        tasks.push(tokio::spawn(async move {
            for round in 0..10 {
                let n = (worker * 7 + round * 3) % threads.len();
                let guard = locks
                    .acquire(&threads[n])
                    .await
                    .expect("every turn gets its thread");
                if busy[n].swap(true, Ordering::SeqCst) {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                busy[n].store(false, Ordering::SeqCst);
                drop(guard);
                turns.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for task in tasks {
        task.await.expect("worker");
    }
    assert_eq!(turns.load(Ordering::SeqCst), 640);
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "two turns of one thread overlapped"
    );
    stop_a.cancel();
    stop_b.cancel();
}

//! What reaches the paid model is bounded: a message's length, a title's, and the characters
//! of history a turn carries.

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde_json::json;
use study_mode_api::turn::{Responder, TurnError, TurnRequest, TurnStream};

use crate::support::app::{Backend, spawn_app_with_responder, spawn_echo_app, unique};
use crate::support::chatkit_client::input;
use crate::support::echo::EchoResponder;

#[tokio::test]
async fn an_over_long_message_or_title_is_400_naming_its_field() {
    let app = spawn_echo_app(Backend::Embedded).await;
    let c = app.chat(&unique("long"));
    let long = "a".repeat(32_001);
    let res = c
        .send_raw(&json!({"type": "threads.create", "params": {"input": input(&long)}}).to_string())
        .await;
    assert_eq!(res.status, 400, "{}", &res.text[..res.text.len().min(200)]);
    assert!(res.text.contains("params.input.content"), "{}", res.text);
    let (thread_id, _) = c.create(&"a".repeat(32_000)).await;
    let rename = json!({"type": "threads.update",
        "params": {"thread_id": thread_id, "title": "t".repeat(201)}});
    let res = c.send_raw(&rename.to_string()).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.text.contains("params.title"), "{}", res.text);
}

/// The echo responder that also records how many characters of history each turn got.
#[derive(Clone, Default)]
struct HistoryMeter(Arc<Mutex<Vec<usize>>>);

impl Responder for HistoryMeter {
    fn respond(&self, request: TurnRequest) -> TurnStream {
        let chars = request.history.iter().map(|t| t.text.chars().count()).sum();
        self.0.lock().expect("lock").push(chars);
        let events = EchoResponder::events(&request).into_iter();
        futures::stream::iter(events.map(Ok::<_, TurnError>)).boxed()
    }
    fn describe(&self) -> String {
        "history-meter".into()
    }
}

#[tokio::test]
async fn the_history_a_turn_carries_stays_within_history_chars() {
    let meter = HistoryMeter::default();
    let app = spawn_app_with_responder(
        Backend::Embedded,
        &[("HISTORY_CHARS", "24000")],
        Arc::new(meter.clone()),
    )
    .await;
    let c = app.chat(&unique("history"));
    let big = "b".repeat(30_000);
    let (thread_id, _) = c.create(&big).await;
    for _ in 0..3 {
        assert_eq!(c.say(&thread_id, &big).await.status, 200);
    }
    let seen = meter.0.lock().expect("lock").clone();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|&chars| chars <= 24_000), "{seen:?}");
    assert_eq!(
        seen[3], 24_000,
        "the budget is used, newest first: {seen:?}"
    );
}

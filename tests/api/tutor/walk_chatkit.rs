//! The teach walk through `POST /chatkit` on the real server (offline tutor, the sample book):
//! every state of the walk in one scripted transcript, the walk's state kept in the thread
//! store (surviving a restart on both stores, shared by two instances on one PostgreSQL),
//! `progress_update` events and answer buttons (a widget whose `threads.custom_action` is
//! judged like a typed answer), every request and event checked by the conformance oracle.

use serde_json::{Value, json};

use crate::per_backend;
use crate::support::app::{Backend, TestApp, spawn_tutor_app_with, unique};
use crate::support::chatkit_client::{Answer, Chat, of_type};
use study_mode_api::tutor::walk::{TutorState, WalkState};

const LESSON: &str = "01-python-basics/02-control-flow/02-loops";
const BOOK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sample-book");

async fn app(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![("CONTENT_DIR", BOOK)];
    vars.extend_from_slice(extra);
    spawn_tutor_app_with(backend, &vars).await
}

pub fn reply_text(events: &[Value]) -> String {
    of_type(events, "thread.item.updated")
        .iter()
        .filter(|e| e["update"]["type"] == "assistant_message.content_part.text_delta")
        .map(|e| e["update"]["delta"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The walk saved in the thread row (what the next turn is handed).
async fn walk(app: &TestApp, owner: &str, thread: &str) -> WalkState {
    let record = app
        .state
        .chatkit
        .store
        .load_thread(owner, thread)
        .await
        .expect("store")
        .expect("thread");
    TutorState::load(record.metadata.get("tutor"))
        .walk
        .expect("walk saved in the thread's metadata")
}

fn key(w: &WalkState) -> String {
    w.check.clone().and_then(|c| c.key).expect("offline key")
}

fn widget(events: &[Value]) -> Option<Value> {
    of_type(events, "thread.item.done")
        .into_iter()
        .map(|e| e["item"].clone())
        .find(|i| i["type"] == "widget")
}

fn start(chat: &Chat) -> impl std::future::Future<Output = (String, Answer)> + '_ {
    chat.create("__START_TEACHING__")
}

per_backend! {
    a_scripted_walk_goes_through_every_state => every_state;
    the_walk_survives_a_restart_in_the_middle => restart;
    answer_buttons_are_judged_like_typed_answers => buttons;
}

async fn every_state(backend: Backend) {
    let app = app(backend, &[]).await;
    let owner = unique("student");
    let chat =
        Chat::new(&app.address, &owner).with_query(&format!("lesson_path={LESSON}&user_name=Ada"));
    // Start.
    let (thread, a) = start(&chat).await;
    let events = a.events();
    let text = reply_text(&events);
    let w = walk(&app, &owner, &thread).await;
    assert!(
        text.contains(&format!("**Section 1 of {}: Introduction**", w.total)),
        "{text}"
    );
    let progress = of_type(&events, "progress_update");
    assert_eq!(
        progress[0]["text"],
        format!("Section 1 of {}: Introduction", w.total)
    );
    assert!(widget(&events).is_some(), "answer buttons: {}", a.text);
    // The key is never on the wire nor in a stored item.
    let k = key(&w);
    // (The offline check's key is one of its options, shown as a choice: the verdict is hidden.)
    // Free question mid-walk: answered, the place kept.
    let free = chat.say(&thread, "what does break do?").await;
    assert!(
        reply_text(&free.events()).contains("leaves the loop"),
        "{}",
        free.text
    );
    assert_eq!(walk(&app, &owner, &thread).await.current, 0);
    // "ok what next?" is not a skip.
    chat.say(&thread, "ok what next?").await;
    assert_eq!(walk(&app, &owner, &thread).await.current, 0);
    // Wrong, hint, wrong, wrong: revealed after the third and moved on.
    let wrong = chat.say(&thread, "no idea at all").await;
    assert!(reply_text(&wrong.events()).starts_with("**Not quite.**"));
    let hint = chat.say(&thread, "Hint").await;
    assert!(reply_text(&hint.events()).starts_with("**Hint:**"));
    chat.say(&thread, "still no idea").await;
    let third = chat.say(&thread, "nope").await;
    let t = reply_text(&third.events());
    assert!(t.contains("That was the last try") && t.contains(&k), "{t}");
    assert!(t.contains("Section 2 of"), "{t}");
    // Correct.
    let w = walk(&app, &owner, &thread).await;
    assert_eq!((w.current, w.attempts), (1, 0));
    let right = chat.say(&thread, &key(&w)).await;
    let t = reply_text(&right.events());
    assert!(
        t.starts_with("**Correct!**") && t.contains("Section 3 of"),
        "{t}"
    );
    // Skip the rest; the last one completes the walk with a summary.
    let total = w.total;
    let mut last = String::new();
    for _ in 2..total {
        last = reply_text(&chat.say(&thread, "skip").await.events());
    }
    assert!(last.contains("Lesson complete"), "{last}");
    assert!(
        last.contains(&format!("You answered 1 of {total} checks right")),
        "{last}"
    );
    let w = walk(&app, &owner, &thread).await;
    assert!(w.complete);
    // After the walk: free questions still answered.
    let after = chat.say(&thread, "what is an accumulator?").await;
    assert!(
        reply_text(&after.events()).contains("accumulator"),
        "{}",
        after.text
    );
    // Nothing the client can read holds the saved state.
    let items = chat.items(&thread).await;
    let got = chat
        .send(json!({"type": "threads.get_by_id", "params": {"thread_id": thread}}))
        .await;
    assert_eq!(got.json()["metadata"], json!({}), "state never sent");
    assert!(items.iter().all(|i| !i.to_string().contains("\"walk\"")));
}

async fn restart(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let db = format!("sqlite:{}", dir.path().join("kept.db").display());
    let extra: Vec<(&str, &str)> = match backend {
        Backend::Embedded => vec![("DATABASE_URL", db.as_str())],
        Backend::Production => vec![],
    };
    let owner = unique("student");
    let first = app(backend, &extra).await;
    let chat = Chat::new(&first.address, &owner).with_query(&format!("lesson_path={LESSON}"));
    let (thread, _) = start(&chat).await;
    let w = walk(&first, &owner, &thread).await;
    chat.say(&thread, &key(&w)).await;
    chat.say(&thread, "wrong answer").await;
    let before = walk(&first, &owner, &thread).await;
    assert_eq!((before.current, before.attempts), (1, 1));
    first.shutdown().await.expect("clean shutdown");

    let second = app(backend, &extra).await;
    let chat = Chat::new(&second.address, &owner).with_query(&format!("lesson_path={LESSON}"));
    let after = walk(&second, &owner, &thread).await;
    assert_eq!(after, before, "the walk survived the restart");
    let reply = chat.say(&thread, &key(&after)).await;
    let t = reply_text(&reply.events());
    assert!(
        t.starts_with("**Correct!**") && t.contains("Section 3 of"),
        "{t}"
    );
}

async fn buttons(backend: Backend) {
    let app = app(backend, &[]).await;
    let owner = unique("student");
    let chat = Chat::new(&app.address, &owner).with_query(&format!("lesson_path={LESSON}"));
    let (thread, a) = start(&chat).await;
    let widget = widget(&a.events()).expect("a widget under the check");
    let buttons = widget["widget"]["children"][0]["children"]
        .as_array()
        .expect("buttons")
        .clone();
    let w = walk(&app, &owner, &thread).await;
    let check = w.check.clone().expect("check");
    assert_eq!(buttons.len(), check.options.len());
    let right = check
        .options
        .iter()
        .position(|o| Some(o) == check.key.as_ref())
        .expect("key is an option");
    let press = |i: usize| {
        json!({"type": "threads.custom_action", "params": {"thread_id": thread,
            "item_id": widget["id"], "action": buttons[i]["onClickAction"].clone()}})
    };
    // A wrong button first.
    let wrong = chat.send(press((right + 1) % buttons.len())).await;
    assert_eq!(wrong.status, 200, "{}", wrong.text);
    let events = wrong.events();
    let said = of_type(&events, "thread.item.done")
        .into_iter()
        .find(|e| e["item"]["type"] == "user_message")
        .expect("the pressed answer is the student's message");
    assert!(
        said["item"]["content"][0]["text"]
            .as_str()
            .unwrap_or("")
            .contains(')')
    );
    assert!(
        reply_text(&events).starts_with("**Not quite.**"),
        "{}",
        wrong.text
    );
    // Then the right one (typed answers work as well: the other tests type them).
    let ok = chat.send(press(right)).await;
    assert!(
        reply_text(&ok.events()).starts_with("**Correct!**"),
        "{}",
        ok.text
    );
    assert_eq!(walk(&app, &owner, &thread).await.current, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgresql_share_the_walk() {
    let a = app(Backend::Production, &[]).await;
    let b = app(Backend::Production, &[]).await;
    let owner = unique("student");
    let on_a = Chat::new(&a.address, &owner).with_query(&format!("lesson_path={LESSON}"));
    let on_b = Chat::new(&b.address, &owner).with_query(&format!("lesson_path={LESSON}"));
    let (thread, _) = start(&on_a).await;
    for n in 0..3 {
        let (chat, app) = if n % 2 == 0 { (&on_b, &b) } else { (&on_a, &a) };
        let w = walk(app, &owner, &thread).await;
        assert_eq!(w.current, n, "each instance sees the other's progress");
        let reply = chat.say(&thread, &key(&w)).await;
        assert!(
            reply_text(&reply.events()).starts_with("**Correct!**"),
            "{}",
            reply.text
        );
    }
    assert_eq!(walk(&a, &owner, &thread).await.current, 3);
}

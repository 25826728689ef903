//! What the book's real panel sends (docs/PROTOCOL.md, "The book's panel"): its start triggers,
//! its titles, `application/json; charset=utf-8` bodies, the current page's `lesson_path` on a
//! thread reopened from history, and its CORS preflight with ChatKit's own headers.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use study_mode_api::turn::{Responder, TurnEvent, TurnRequest, TurnStream};

use crate::per_backend;
use crate::support::app::{
    Backend, TestApp, spawn_app_with_responder, spawn_echo_app_with, spawn_tutor_app_with, unique,
};
use crate::support::chatkit_client::{Chat, input, of_type};

const LOOPS: &str = "01-python-basics/02-control-flow/02-loops";
const CONDITIONS: &str = "01-python-basics/02-control-flow/01-conditions";

per_backend! {
    every_start_trigger_of_the_panel_starts_the_tutor_and_is_never_stored_nor_shown => triggers;
    a_thread_opened_with_a_message_is_titled_by_its_words_and_a_rename_sticks => titles;
    a_reopened_thread_keeps_the_lesson_it_was_started_on => keeps_lesson;
}

async fn tutor_app(backend: Backend) -> TestApp {
    let book = concat!(env!("CARGO_MANIFEST_DIR"), "/sample-book");
    spawn_tutor_app_with(
        backend,
        &[("CONTENT_DIR", book), ("RATE_LIMIT_CHAT", "1000/minute")],
    )
    .await
}

/// The panel's Teach open: a new thread whose only text is the trigger, model `teach`.
fn teach(text: &str) -> Value {
    let mut body = input(text);
    body["inference_options"] = json!({"model": "teach"});
    json!({"type": "threads.create", "params": {"input": body}})
}

fn user_messages_done(events: &[Value]) -> usize {
    of_type(events, "thread.item.done")
        .iter()
        .filter(|e| e["item"]["type"] == "user_message")
        .count()
}

async fn triggers(backend: Backend) {
    let app = tutor_app(backend).await;
    let chat = Chat::new(&app.address, &unique("student"))
        .with_query(&format!("lesson_path={LOOPS}&user_name=Ada"));
    for trigger in [
        "\u{200B}",
        "",
        " \u{FEFF}\u{00A0}\t\n",
        "👋",
        "Teach me",
        "Teach me!",
        "\u{200B}__START_TEACHING__",
    ] {
        let answer = chat.send(teach(trigger)).await;
        assert_eq!(answer.status, 200, "{trigger:?}: {}", answer.text);
        let events = answer.events();
        assert_eq!(user_messages_done(&events), 0, "{trigger:?} was shown");
        let thread = events[0]["thread"]["id"]
            .as_str()
            .expect("thread")
            .to_owned();
        let items = chat.items(&thread).await;
        assert!(
            items.iter().all(|i| i["type"] != "user_message"),
            "{trigger:?} was stored: {items:?}"
        );
        assert_eq!(
            items
                .iter()
                .filter(|i| i["type"] == "assistant_message")
                .count(),
            1,
            "{trigger:?} started the tutor"
        );
        let got = chat
            .send(json!({"type": "threads.get_by_id", "params": {"thread_id": thread}}))
            .await;
        assert_eq!(
            got.json()["title"],
            "📚 Repeating Work with Loops",
            "{trigger:?}"
        );

        // A trigger sent into an existing thread is not stored either.
        let again = chat.say(&thread, trigger).await;
        assert_eq!(user_messages_done(&again.events()), 0, "{trigger:?} shown");
        assert!(
            chat.items(&thread)
                .await
                .iter()
                .all(|i| i["type"] != "user_message"),
            "{trigger:?} stored on add_user_message"
        );
    }
    // Look-alikes are messages.
    let answer = chat.send(teach("Teach me more")).await;
    assert_eq!(user_messages_done(&answer.events()), 1);
}

async fn titles(backend: Backend) {
    let app = tutor_app(backend).await;
    let chat =
        Chat::new(&app.address, &unique("student")).with_query(&format!("lesson_path={LOOPS}"));
    let mut titles = Vec::new();
    for text in [
        "How does range(n) work in a for loop exactly?",
        "What is the difference between while and for?",
    ] {
        let (thread, answer) = chat.create(text).await;
        let updated = of_type(&answer.events(), "thread.updated");
        titles.push(updated.last().expect("titled")["thread"]["title"].clone());
        if titles.len() == 1 {
            // Renamed by the student: the next turn does not retitle it.
            let renamed = chat
                .send(json!({"type": "threads.update", "params": {"thread_id": thread, "title": "My loops"}}))
                .await;
            assert_eq!(renamed.status, 200, "{}", renamed.text);
            let next = chat.say(&thread, "and with a step?").await;
            assert!(of_type(&next.events(), "thread.updated").is_empty());
            let got = chat
                .send(json!({"type": "threads.get_by_id", "params": {"thread_id": thread}}))
                .await;
            assert_eq!(got.json()["title"], "My loops");
        }
    }
    assert_eq!(
        titles,
        [
            json!("How does range(n) work in a"),
            json!("What is the difference between while")
        ],
        "two threads of one lesson are told apart"
    );
    let (_, answer) = chat
        .create("Pneumonoultramicroscopicsilicovolcanoconiosis pneumonoultramicroscopic words")
        .await;
    let updated = of_type(&answer.events(), "thread.updated");
    let title = updated.last().expect("titled")["thread"]["title"]
        .as_str()
        .expect("title")
        .to_owned();
    assert_eq!(title.chars().count(), 50, "{title}");
    assert!(title.ends_with('…'), "{title}");
}

/// Records the lesson of every turn.
#[derive(Default)]
struct Lessons(Mutex<Vec<Option<String>>>);

impl Responder for Lessons {
    fn respond(&self, request: TurnRequest) -> TurnStream {
        let lesson = request.lesson.as_ref().map(|l| l.as_str().to_owned());
        self.0.lock().expect("lock").push(lesson);
        Box::pin(futures::stream::iter([Ok(TurnEvent::Delta("ok".into()))]))
    }
    fn describe(&self) -> String {
        "lessons".into()
    }
}

async fn keeps_lesson(backend: Backend) {
    let lessons = Arc::new(Lessons::default());
    let app = spawn_app_with_responder(backend, &[], lessons.clone()).await;
    let user = unique("student");
    let on_loops = app.chat(&user).with_query(&format!("lesson_path={LOOPS}"));
    let (thread, _) = on_loops.create("\u{200B}").await;
    // Reopened from the history pane on another page: the panel sends that page's path.
    let on_conditions = app
        .chat(&user)
        .with_query(&format!("lesson_path={CONDITIONS}"));
    let answer = on_conditions.say(&thread, "go on").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let (other, _) = on_conditions.create("a new one").await;
    assert_ne!(other, thread);
    assert_eq!(
        *lessons.0.lock().expect("lock"),
        [
            Some(LOOPS.to_owned()),
            Some(LOOPS.to_owned()),
            Some(CONDITIONS.to_owned())
        ]
    );
}

#[tokio::test]
async fn a_json_body_with_a_charset_parameter_is_accepted() {
    let app = spawn_echo_app_with(Backend::Embedded, &[]).await;
    let res = app
        .client
        .post(app.url("/chatkit"))
        .header("content-type", "application/json; charset=utf-8")
        .header("x-user-id", "charset-student")
        .body(json!({"type": "threads.list", "params": {}}).to_string())
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["data"], json!([]));
}

/// The panel's preflight: ChatKit's own headers plus the book's, from an allowed origin.
const PANEL_HEADERS: &str = "authorization,chatkit-device-id,chatkit-frame-instance-id,\
content-type,x-user-id,x-user-name,accept-language,x-chatkit-future-header";

#[tokio::test]
async fn the_panels_preflight_is_answered_with_every_header_it_asks_for_and_a_day_of_max_age() {
    let app = spawn_echo_app_with(
        Backend::Embedded,
        &[("ALLOWED_ORIGINS", "https://book.example.com")],
    )
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                app.url("/chatkit?user_id=u&lesson_path=a/b"),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", PANEL_HEADERS)
            .send()
    };
    let ok = preflight("https://book.example.com").await.expect("send");
    assert!(ok.status().is_success(), "{}", ok.status());
    let h = ok.headers();
    assert_eq!(h["access-control-allow-origin"], "https://book.example.com");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["access-control-max-age"], "86400");
    let allowed = h["access-control-allow-headers"].to_str().expect("ascii");
    for header in PANEL_HEADERS.split(',') {
        assert!(
            allowed
                .split(',')
                .any(|a| a.trim().eq_ignore_ascii_case(header)),
            "{header} not allowed: {allowed}"
        );
    }
    let methods = h["access-control-allow-methods"].to_str().expect("ascii");
    assert!(methods.contains("POST"), "{methods}");

    // A foreign origin gets no CORS header at all, mirrored headers included.
    let foreign = preflight("https://evil.example.com").await.expect("send");
    let cors: Vec<_> = foreign
        .headers()
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "{cors:?}");
}

#[tokio::test]
async fn cors_max_age_is_a_setting() {
    let app = spawn_echo_app_with(
        Backend::Embedded,
        &[
            ("ALLOWED_ORIGINS", "https://book.example.com"),
            ("CORS_MAX_AGE_SECS", "60"),
        ],
    )
    .await;
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/chatkit"))
        .header("origin", "https://book.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "chatkit-device-id")
        .send()
        .await
        .expect("send");
    assert_eq!(res.headers()["access-control-max-age"], "60");
    assert_eq!(
        res.headers()["access-control-allow-headers"],
        "chatkit-device-id"
    );
}

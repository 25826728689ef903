//! The tutor as a student meets it: `POST /chatkit` on an app built exactly as `serve` builds
//! it (offline tutor, the bundled sample book), end to end through content, tutor and store.

use serde_json::{Value, json};

use crate::per_backend;
use crate::support::app::{Backend, TestApp, spawn_tutor_app_with, unique};
use crate::support::chatkit_client::{Chat, input, of_type};

const LESSON: &str = "01-python-basics/02-control-flow/02-loops";

async fn app(backend: Backend) -> TestApp {
    let book = concat!(env!("CARGO_MANIFEST_DIR"), "/sample-book");
    spawn_tutor_app_with(backend, &[("CONTENT_DIR", book)]).await
}

fn reply_text(events: &[Value]) -> String {
    of_type(events, "thread.item.updated")
        .iter()
        .filter(|e| e["update"]["type"] == "assistant_message.content_part.text_delta")
        .map(|e| e["update"]["delta"].as_str().unwrap_or_default().to_owned())
        .collect()
}

per_backend! {
    a_start_trigger_greets_with_the_lesson_and_titles_the_thread => start_trigger;
    ask_mode_answers_from_the_lesson_and_the_reply_is_stored => ask_mode;
    an_unknown_mode_is_an_error_event_naming_the_valid_ones => unknown_mode;
}

async fn start_trigger(backend: Backend) {
    let app = app(backend).await;
    let chat = Chat::new(&app.address, &unique("student"))
        .with_query(&format!("lesson_path={LESSON}&user_name=Ada"));
    let (thread, answer) = chat.create("__START_TEACHING__").await;
    let events = answer.events();
    let text = reply_text(&events);
    assert!(
        text.contains("Repeating Work with Loops"),
        "greeting names the lesson: {text}"
    );
    assert!(
        text.contains("Ada"),
        "greeting uses the student's name: {text}"
    );
    // The trigger itself is not kept; the reply is.
    let items = chat.items(&thread).await;
    assert!(
        items.iter().all(|i| i["type"] != "user_message"),
        "{items:?}"
    );
    assert_eq!(
        items
            .iter()
            .filter(|i| i["type"] == "assistant_message")
            .count(),
        1
    );
    let updated = of_type(&events, "thread.updated");
    assert_eq!(
        updated.last().expect("thread.updated")["thread"]["title"],
        "📚 Repeating Work with Loops"
    );
    let got = chat
        .send(json!({"type": "threads.get_by_id", "params": {"thread_id": thread}}))
        .await;
    assert_eq!(
        got.json()["title"],
        "📚 Repeating Work with Loops",
        "title persisted"
    );
}

async fn ask_mode(backend: Backend) {
    let app = app(backend).await;
    let chat =
        Chat::new(&app.address, &unique("student")).with_query(&format!("lesson_path={LESSON}"));
    let body = json!({"type": "threads.create", "params": {"input": {
        "content": [{"type": "input_text", "text": "What does range(n) produce?"}],
        "attachments": [], "inference_options": {"model": "ask"}}}});
    let answer = chat.send(body).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let events = answer.events();
    let text = reply_text(&events);
    assert!(
        text.contains("range(n)"),
        "the relevant lesson sentence: {text}"
    );
    assert!(
        !text.trim_end().ends_with('?'),
        "ask mode asks no follow-up: {text}"
    );
    let thread = events[0]["thread"]["id"]
        .as_str()
        .expect("thread id")
        .to_owned();
    let items = chat.items(&thread).await;
    let stored = items
        .iter()
        .find(|i| i["type"] == "assistant_message")
        .expect("reply stored");
    assert_eq!(
        stored["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .trim(),
        text.trim()
    );
}

async fn unknown_mode(backend: Backend) {
    let app = app(backend).await;
    let chat = Chat::new(&app.address, &unique("student"))
        .with_query(&format!("lesson_path={LESSON}&mode=review"));
    let answer = chat
        .send(json!({"type": "threads.create", "params": {"input": input("hello")}}))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let errors = of_type(&answer.events(), "error");
    let message = errors.first().expect("an error event")["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for mode in ["teach", "ask", "quiz"] {
        assert!(message.contains(mode), "{message}");
    }
}

#[tokio::test]
async fn suggestions_are_limited_per_client_ip() {
    let book = concat!(env!("CARGO_MANIFEST_DIR"), "/sample-book");
    let app = spawn_tutor_app_with(
        Backend::Production,
        &[("CONTENT_DIR", book), ("RATE_LIMIT_ANON", "3/minute")],
    )
    .await;
    let path = format!("/chatkit/suggestions?lesson_path={LESSON}");
    for _ in 0..3 {
        let ok = app.get(&path).await;
        assert_eq!(ok.status(), 200);
        assert!(ok.headers().contains_key("ratelimit"));
    }
    let refused = app.get(&path).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");
}

/// `HISTORY_ITEMS` has one owner, the tutor, and the ChatKit server loads exactly as many past
/// items as the tutor asks for: with 40, a model request carries 40 past turns (before the fix,
/// a constant of 30 in the ChatKit server silently capped it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_items_above_thirty_reach_the_model() {
    use crate::support::model::{Answer, Upstream};
    use crate::support::transcripts::CHAT_PLAIN;
    let turns = 22;
    let upstream = Upstream::start((0..=turns).map(|_| Answer::sse(CHAT_PLAIN)).collect()).await;
    let app = spawn_tutor_app_with(
        Backend::Embedded,
        &[
            ("OPENAI_API_KEY", "sk-test"),
            ("OPENAI_BASE_URL", upstream.base_url.as_str()),
            ("MODEL_API", "chat_completions"),
            ("HISTORY_ITEMS", "40"),
            ("RATE_LIMIT_CHAT", "1000/minute"),
        ],
    )
    .await;
    let chat = Chat::new(&app.address, &unique("student"));
    let (thread, first) = chat.create("turn 0").await;
    assert_eq!(of_type(&first.events(), "error").len(), 0, "{}", first.text);
    for i in 1..=turns {
        let answer = chat.say(&thread, &format!("turn {i}")).await;
        assert_eq!(
            of_type(&answer.events(), "error").len(),
            0,
            "{}",
            answer.text
        );
    }
    // The last request: the system prompt, 40 past items (the thread had 44), the new message.
    let requests = upstream.requests();
    let last = &requests.last().expect("model called").body["messages"];
    let messages = last.as_array().expect("messages");
    assert_eq!(messages.len(), 1 + 40 + 1, "{last}");
    assert_eq!(messages[41]["content"], format!("turn {turns}"));
}

//! The tutor against a fake model server speaking both OpenAI wire formats, and the offline
//! tutor through the `Responder` contract.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use prometheus_client::registry::Registry;
use serde_json::json;
use study_mode_api::config::Env;
use study_mode_api::content::{Content, Lesson, LessonPath, Mode, Section};
use study_mode_api::outbound::Outbound;
use study_mode_api::settings::Settings;
use study_mode_api::turn::{
    Responder, Role, Turn, TurnError, TurnEvent, TurnRequest, TurnStream, Usage,
};
use study_mode_api::tutor::{Tutor, TutorSettings};

use crate::support::model::{Answer, Step, Upstream};
use crate::support::transcripts::*;

type Events = Vec<Result<TurnEvent, TurnError>>;

fn lesson() -> Arc<Lesson> {
    let sections = vec![
        Section {
            heading: "Owners".into(),
            level: 2,
            text: "**Ownership** is a set of rules that govern memory. Each value has one owner."
                .into(),
        },
        Section {
            heading: "Moves".into(),
            level: 2,
            text: "Assigning a value to another variable moves it.".into(),
        },
    ];
    Arc::new(Lesson {
        path: "01-Part/02-ownership".into(),
        title: "Ownership in Rust".into(),
        sidebar_label: None,
        description: None,
        body: String::new(),
        sections,
        suggestions: Default::default(),
    })
}

pub(super) fn request(message: Option<&str>) -> TurnRequest {
    TurnRequest {
        user_id: "u1".into(),
        user_name: Some("Ada".into()),
        lesson: Some(LessonPath::parse("01-Part/02-ownership").expect("path")),
        // The model client's mechanics are tested on ask replies (one streamed call each);
        // the teach walk's calls are tested in `walk_model`.
        mode: Mode::Ask,
        message: message.map(Into::into),
        history: vec![
            Turn {
                role: Role::User,
                text: "What is ownership?".into(),
            },
            Turn {
                role: Role::Assistant,
                text: "It is a set of rules. What do you think a rule is?".into(),
            },
        ],
        needs_title: false,
        ..TurnRequest::default()
    }
}

async fn content() -> Content {
    let settings = Settings::from_env(&mut Env::from_map([("PORT", "0")])).expect("settings");
    let mut registry = Registry::default();
    Content::new(&settings.content, &Outbound::default(), None, &mut registry).await
}

/// A model tutor on the sample book pointed at `upstream`.
pub(super) async fn model_tutor_on_book(upstream: &Upstream, api: &str) -> (Tutor, Registry) {
    model_tutor(upstream, api, &[]).await
}

/// A model tutor pointed at `upstream`, with short timeouts; `extra` variables win.
pub(super) async fn model_tutor(
    upstream: &Upstream,
    api: &str,
    extra: &[(&str, &str)],
) -> (Tutor, Registry) {
    let mut vars = vec![
        ("OPENAI_API_KEY", "sk-test"),
        ("OPENAI_BASE_URL", upstream.base_url.as_str()),
        ("MODEL_API", api),
        ("STUDY_MODE_MODEL", "gpt-4.1-mini"),
        ("MODEL_FIRST_TOKEN_TIMEOUT_SECS", "2"),
        ("MODEL_IDLE_TIMEOUT_SECS", "2"),
        ("MODEL_RETRY_BACKOFF_MS", "10"),
    ];
    vars.extend_from_slice(extra);
    let mut env = Env::from_map(vars.iter().map(|(k, v)| (*k, *v)));
    let settings = TutorSettings::from_env(&mut env);
    env.finish().expect("valid tutor settings");
    let mut registry = Registry::with_prefix("study_mode");
    let tutor = Tutor::new(
        &settings,
        content().await,
        &Outbound::default(),
        &mut registry,
    );
    (tutor, registry)
}

async fn collect(stream: TurnStream) -> Events {
    tokio::time::timeout(Duration::from_secs(15), stream.collect::<Events>())
        .await
        .expect("the reply stream ended")
}

fn text(events: &Events) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Ok(TurnEvent::Delta(d)) => Some(d.as_str()),
            _ => None,
        })
        .collect()
}

fn metrics(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("encode");
    out
}

#[tokio::test]
async fn responses_api_deltas_and_usage_become_turn_events() {
    let upstream = Upstream::start(vec![Answer::sse(RESPONSES_PLAIN)]).await;
    let (tutor, registry) = model_tutor(&upstream, "responses", &[]).await;
    let events = collect(tutor.respond_with_lesson(request(Some("a rule?")), Some(lesson()))).await;
    assert_eq!(
        events,
        vec![
            Ok(TurnEvent::Delta("Hi Ada! ".into())),
            Ok(TurnEvent::Delta("**Ownership** means one owner — ".into())),
            Ok(TurnEvent::Delta("what happens on a move? 🤔".into())),
            Ok(TurnEvent::Usage(Usage {
                input_tokens: 412,
                output_tokens: 19,
                ..Usage::default()
            })),
        ]
    );
    let m = metrics(&registry);
    assert!(
        m.contains(r#"study_mode_tutor_tokens_total{kind="input"} 412"#),
        "{m}"
    );
    assert!(
        m.contains(r#"study_mode_tutor_tokens_total{kind="output"} 19"#),
        "{m}"
    );
    assert!(
        m.contains(r#"tutor_replies_total{tutor="responses",mode="ask",outcome="ok"} 1"#),
        "{m}"
    );
    assert!(
        m.contains("study_mode_tutor_time_to_first_token_seconds_count 1"),
        "{m}"
    );
}

#[tokio::test]
async fn the_responses_request_carries_model_instructions_history_and_the_key() {
    let upstream = Upstream::start(vec![Answer::sse(RESPONSES_PLAIN)]).await;
    let (tutor, _) = model_tutor(&upstream, "responses", &[]).await;
    collect(tutor.respond_with_lesson(request(Some("a rule?")), Some(lesson()))).await;
    let requests = upstream.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.path, "/v1/responses");
    assert_eq!(r.headers["authorization"], "Bearer sk-test");
    assert_eq!(r.body["model"], "gpt-4.1-mini");
    assert_eq!(r.body["stream"], true);
    let instructions = r.body["instructions"].as_str().expect("instructions");
    assert!(
        instructions.contains("Lesson title: Ownership in Rust"),
        "{instructions}"
    );
    assert!(
        instructions.contains("like a precise reference"),
        "ask prompt: {instructions}"
    );
    assert!(instructions.contains("The student's name is Ada"));
    assert_eq!(
        r.body["input"],
        json!([
            {"role": "user", "content": "What is ownership?"},
            {"role": "assistant", "content": "It is a set of rules. What do you think a rule is?"},
            {"role": "user", "content": "a rule?"},
        ])
    );
}

#[tokio::test]
async fn a_new_content_part_upstream_starts_a_new_part() {
    let upstream = Upstream::start(vec![Answer::sse(RESPONSES_TWO_PARTS)]).await;
    let (tutor, _) = model_tutor(&upstream, "responses", &[]).await;
    let events = collect(tutor.respond_with_lesson(request(Some("x")), None)).await;
    assert_eq!(
        events,
        vec![
            Ok(TurnEvent::Delta("First part.".into())),
            Ok(TurnEvent::NewPart),
            Ok(TurnEvent::Delta("Second ".into())),
            Ok(TurnEvent::Delta("part.".into())),
            Ok(TurnEvent::Usage(Usage {
                input_tokens: 10,
                output_tokens: 5,
                ..Usage::default()
            })),
        ]
    );
}

#[tokio::test]
async fn chat_completions_deltas_usage_and_done_become_turn_events() {
    let upstream = Upstream::start(vec![Answer::sse(CHAT_PLAIN)]).await;
    let (tutor, _) = model_tutor(&upstream, "chat_completions", &[]).await;
    let mut req = request(Some("and a move?"));
    req.mode = Mode::Ask;
    let events = collect(tutor.respond_with_lesson(req, Some(lesson()))).await;
    assert_eq!(text(&events), "A move transfers ownership — déjà vu 🦀.");
    assert_eq!(
        events.last(),
        Some(&Ok(TurnEvent::Usage(Usage {
            input_tokens: 388,
            output_tokens: 12,
            ..Usage::default()
        })))
    );
    let r = &upstream.requests()[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.headers["authorization"], "Bearer sk-test");
    assert_eq!(r.body["stream"], true);
    assert_eq!(r.body["stream_options"], json!({"include_usage": true}));
    let messages = r.body["messages"].as_array().expect("messages");
    assert_eq!(messages[0]["role"], "system");
    let system = messages[0]["content"].as_str().expect("system prompt");
    assert!(system.contains("Lesson title: Ownership in Rust"));
    assert!(
        system.contains("one to three sentences"),
        "ask prompt: {system}"
    );
    assert_eq!(messages.len(), 4);
    assert_eq!(
        messages[3],
        json!({"role": "user", "content": "and a move?"})
    );
}

#[tokio::test]
async fn streams_cut_into_tiny_chunks_through_utf8_and_crlf_parse_the_same() {
    for size in [1, 3, 7] {
        let upstream = Upstream::start(vec![
            Answer::chunked(&chat_crlf_with_comments(), size),
            Answer::chunked(RESPONSES_PLAIN, size * 5),
        ])
        .await;
        let (chat, _) = model_tutor(&upstream, "chat_completions", &[]).await;
        let events = collect(chat.respond_with_lesson(request(Some("x")), None)).await;
        assert_eq!(
            text(&events),
            "A move transfers ownership — déjà vu 🦀.",
            "size {size}"
        );
        assert!(events.iter().all(Result::is_ok), "size {size}: {events:?}");
        let (responses, _) = model_tutor(&upstream, "responses", &[]).await;
        let events = collect(responses.respond_with_lesson(request(Some("x")), None)).await;
        assert_eq!(
            text(&events),
            "Hi Ada! **Ownership** means one owner — what happens on a move? 🤔"
        );
    }
}

#[tokio::test]
async fn an_error_mid_stream_follows_the_partial_text_in_both_apis() {
    let upstream = Upstream::start(vec![
        Answer::sse(RESPONSES_ERROR_MID_STREAM),
        Answer::sse(CHAT_ERROR_MID_STREAM),
    ])
    .await;
    let (responses, registry) = model_tutor(&upstream, "responses", &[]).await;
    let events = collect(responses.respond_with_lesson(request(Some("x")), None)).await;
    assert_eq!(text(&events), "Each value has one");
    let error = events
        .last()
        .expect("events")
        .clone()
        .expect_err("an error");
    assert!(
        error.message.contains("The server had an error"),
        "{error:?}"
    );
    assert!(error.allow_retry);
    assert!(metrics(&registry).contains(r#"outcome="stream_error"} 1"#));

    let (chat, _) = model_tutor(&upstream, "chat_completions", &[]).await;
    let events = collect(chat.respond_with_lesson(request(Some("x")), None)).await;
    assert_eq!(events[0], Ok(TurnEvent::Delta("Borrowing ".into())));
    let error = events[1].clone().expect_err("an error");
    assert!(
        error.message.contains("upstream model overloaded"),
        "{error:?}"
    );
    assert_eq!(events.len(), 2);
}

#[tokio::test]
async fn a_429_before_the_first_token_is_retried_and_then_succeeds() {
    let upstream = Upstream::start(vec![
        Answer::Status {
            code: 429,
            body: RATE_LIMITED.into(),
            retry_after: Some("0"),
        },
        Answer::status(503, r#"{"error":{"message":"overloaded"}}"#),
        Answer::sse(CHAT_PLAIN),
    ])
    .await;
    let (tutor, registry) = model_tutor(&upstream, "chat_completions", &[]).await;
    let events = collect(tutor.respond_with_lesson(request(Some("x")), None)).await;
    assert_eq!(text(&events), "A move transfers ownership — déjà vu 🦀.");
    assert_eq!(upstream.requests().len(), 3);
    assert!(metrics(&registry).contains("study_mode_tutor_upstream_retries_total 2"));
}

#[tokio::test]
async fn a_429_that_outlasts_the_retries_is_a_retryable_error_with_the_upstream_message() {
    let upstream = Upstream::start(vec![
        Answer::status(429, RATE_LIMITED),
        Answer::status(429, RATE_LIMITED),
        Answer::status(429, RATE_LIMITED),
    ])
    .await;
    let (tutor, _) = model_tutor(&upstream, "responses", &[("MODEL_MAX_RETRIES", "1")]).await;
    let events = collect(tutor.respond_with_lesson(request(Some("x")), None)).await;
    assert_eq!(upstream.requests().len(), 2, "one try and one retry");
    assert_eq!(events.len(), 1);
    let error = events[0].clone().expect_err("an error");
    assert!(error.allow_retry);
    assert!(error.message.contains("HTTP 429"), "{error:?}");
    assert!(error.message.contains("Rate limit reached"), "{error:?}");
}

#[tokio::test]
async fn a_rejected_key_is_not_retried_and_says_why() {
    let upstream = Upstream::start(vec![Answer::status(401, BAD_KEY)]).await;
    let (tutor, registry) = model_tutor(&upstream, "responses", &[]).await;
    let events = collect(tutor.respond_with_lesson(request(Some("x")), None)).await;
    assert_eq!(upstream.requests().len(), 1);
    let error = events[0].clone().expect_err("an error");
    assert!(!error.allow_retry);
    assert!(error.message.contains("HTTP 401"), "{error:?}");
    assert!(
        error.message.contains("Incorrect API key provided"),
        "{error:?}"
    );
    assert!(metrics(&registry).contains(r#"outcome="upstream_rejected"} 1"#));
}

#[tokio::test]
async fn a_stall_after_the_first_tokens_ends_with_an_idle_timeout_error() {
    let upstream = Upstream::start(vec![Answer::Stream(vec![
        Step::Send(CHAT_TWO_CHUNKS.into()),
        Step::Hang,
    ])])
    .await;
    let (tutor, _) = model_tutor(
        &upstream,
        "chat_completions",
        &[("MODEL_IDLE_TIMEOUT_SECS", "0.3")],
    )
    .await;
    let started = Instant::now();
    let events = collect(tutor.respond_with_lesson(request(Some("x")), None)).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(events[0], Ok(TurnEvent::Delta("Partial".into())));
    let error = events[1].clone().expect_err("an error");
    assert!(
        error
            .message
            .contains("did not send more of its reply within 0.3 s"),
        "{error:?}"
    );
    assert!(error.allow_retry);
    assert!(
        upstream.saw_early_close(Duration::from_secs(2)).await,
        "the stalled request was not closed"
    );
}

#[tokio::test]
async fn an_upstream_that_never_starts_answering_hits_the_first_token_timeout() {
    let upstream = Upstream::start(vec![Answer::Stream(vec![
        Step::Send(": keep-alive\n\n".into()),
        Step::Hang,
    ])])
    .await;
    let (tutor, _) = model_tutor(
        &upstream,
        "responses",
        &[("MODEL_FIRST_TOKEN_TIMEOUT_SECS", "0.3")],
    )
    .await;
    let events = collect(tutor.respond_with_lesson(request(Some("x")), None)).await;
    let error = events[0].clone().expect_err("an error");
    assert!(
        error
            .message
            .contains("did not start answering within 0.3 s"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_body_that_ends_without_completion_is_an_error() {
    let upstream = Upstream::start(vec![Answer::sse(CHAT_TWO_CHUNKS)]).await;
    let (tutor, _) = model_tutor(&upstream, "chat_completions", &[]).await;
    let events = collect(tutor.respond_with_lesson(request(Some("x")), None)).await;
    assert_eq!(text(&events), "Partial");
    let error = events
        .last()
        .expect("events")
        .clone()
        .expect_err("an error");
    assert!(
        error.message.contains("ended before it was complete"),
        "{error:?}"
    );
}

#[tokio::test]
async fn dropping_the_reply_stream_closes_the_upstream_request() {
    let upstream = Upstream::start(vec![Answer::Stream(vec![
        Step::Send(CHAT_TWO_CHUNKS.into()),
        Step::Hang,
    ])])
    .await;
    let (tutor, registry) = model_tutor(&upstream, "chat_completions", &[]).await;
    let mut stream = tutor.respond_with_lesson(request(Some("x")), None);
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
    assert_eq!(
        first.ok().flatten(),
        Some(Ok(TurnEvent::Delta("Partial".into())))
    );
    assert!(!upstream.saw_early_close(Duration::from_millis(100)).await);
    drop(stream);
    assert!(
        upstream.saw_early_close(Duration::from_secs(3)).await,
        "the fake upstream still has the connection open"
    );
    assert!(metrics(&registry).contains(r#"outcome="cancelled"} 1"#));
}

#[tokio::test]
async fn a_start_trigger_starts_the_walk_with_the_model_and_titles_the_thread() {
    let upstream = Upstream::start(vec![Answer::sse(RESPONSES_PLAIN)]).await;
    let (tutor, _) = model_tutor(&upstream, "responses", &[]).await;
    let req = TurnRequest {
        user_name: Some("Ada".into()),
        mode: Mode::Ask,
        needs_title: true,
        ..TurnRequest::default()
    };
    let events = collect(tutor.respond_with_lesson(req, Some(lesson()))).await;
    assert_eq!(
        events[0],
        Ok(TurnEvent::Title("📚 Ownership in Rust".into()))
    );
    let body = &upstream.requests()[0].body;
    let instructions = body["instructions"].as_str().expect("instructions");
    assert!(
        instructions.contains("Teach the current section"),
        "a trigger starts the walk: {instructions}"
    );
    assert!(
        instructions.contains("lesson \"Ownership in Rust\""),
        "{instructions}"
    );
    let reply = text(&events);
    assert!(
        reply.starts_with("Hi Ada! Let's walk through **Ownership in Rust**"),
        "the service greets: {reply}"
    );
    assert_eq!(body["input"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["input"][0]["role"], "user");
}

/// A mode is typed before it reaches the tutor: an unknown one cannot be asked of it, and the
/// turn that named it is refused with a non-retryable error without a model call.
#[tokio::test]
async fn an_unknown_mode_is_refused_without_calling_the_model() {
    let e = Mode::parse("review").expect_err("unknown");
    assert!(e.to_string().contains("teach, ask, quiz"), "{e}");
    let upstream = Upstream::start(vec![]).await;
    let app = crate::support::app::spawn_tutor_app_with(
        crate::support::app::Backend::Embedded,
        &[
            ("OPENAI_API_KEY", "sk-test"),
            ("OPENAI_BASE_URL", upstream.base_url.as_str()),
        ],
    )
    .await;
    let answer = app
        .chat("student")
        .with_query("mode=review")
        .send(json!({"type": "threads.create", "params": {"input": crate::support::chatkit_client::input("x")}}))
        .await;
    let events = answer.events();
    let error = crate::support::chatkit_client::of_type(&events, "error")
        .first()
        .cloned()
        .expect("an error event");
    assert_eq!(error["allow_retry"], false, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("teach, ask, quiz"),
        "{error}"
    );
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn the_tutor_describes_itself_for_health() {
    let upstream = Upstream::start(vec![]).await;
    let (model, _) = model_tutor(&upstream, "chat_completions", &[]).await;
    assert_eq!(
        model.describe(),
        format!(
            "openai-chat-completions:gpt-4.1-mini @ {}",
            upstream.base_url
        )
    );
    let offline = Tutor::new(
        &TutorSettings::default(),
        content().await,
        &Outbound::default(),
        &mut Registry::default(),
    );
    assert_eq!(offline.describe(), "offline");
}

#[tokio::test]
async fn the_offline_tutor_streams_a_lesson_reply_in_small_deltas() {
    let tutor = Tutor::new(
        &TutorSettings::default(),
        content().await,
        &Outbound::default(),
        &mut Registry::default(),
    );
    let mut req = request(None);
    req.history.clear();
    req.needs_title = true;
    let events = collect(tutor.respond_with_lesson(req, Some(lesson()))).await;
    assert_eq!(
        events[0],
        Ok(TurnEvent::Title("📚 Ownership in Rust".into()))
    );
    let deltas = events
        .iter()
        .filter(|e| matches!(e, Ok(TurnEvent::Delta(_))))
        .count();
    assert!(deltas > 5, "{events:?}");
    let reply = text(&events);
    assert!(
        reply.starts_with("Hi Ada! Let's walk through **Ownership in Rust**"),
        "{reply}"
    );
}

#[tokio::test]
async fn the_offline_tutor_answers_without_a_lesson_through_the_responder() {
    let tutor = Tutor::new(
        &TutorSettings::default(),
        content().await,
        &Outbound::default(),
        &mut Registry::default(),
    );
    let mut req = request(Some("what is a move?"));
    req.lesson = None;
    req.needs_title = true;
    let events = collect(tutor.respond(req)).await;
    assert_eq!(events[0], Ok(TurnEvent::Title("What is ownership?".into())));
    assert!(
        text(&events).contains("can't see this lesson's text"),
        "{events:?}"
    );
}

/// CHAT_PLAIN with a pause before each event after the first.
fn slow_chat(pause: Duration) -> Answer {
    let steps = CHAT_PLAIN
        .split_inclusive("\n\n")
        .flat_map(|event| [Step::Send(event.to_owned().into()), Step::Sleep(pause)])
        .collect();
    Answer::Stream(steps)
}

#[tokio::test]
async fn slow_but_steady_tokens_within_the_idle_timeout_complete() {
    let upstream = Upstream::start(vec![slow_chat(Duration::from_millis(150))]).await;
    let (tutor, _) = model_tutor(
        &upstream,
        "chat_completions",
        &[("MODEL_IDLE_TIMEOUT_SECS", "0.5")],
    )
    .await;
    let events = collect(tutor.respond_with_lesson(request(Some("x")), None)).await;
    assert!(events.iter().all(Result::is_ok), "{events:?}");
    assert_eq!(text(&events), "A move transfers ownership — déjà vu 🦀.");
}

#[tokio::test]
async fn a_reply_longer_than_the_total_timeout_is_cut_with_an_error() {
    let upstream = Upstream::start(vec![slow_chat(Duration::from_millis(150))]).await;
    let (tutor, registry) = model_tutor(
        &upstream,
        "chat_completions",
        &[("MODEL_TOTAL_TIMEOUT_SECS", "0.4")],
    )
    .await;
    let events = collect(tutor.respond_with_lesson(request(Some("x")), None)).await;
    let error = events
        .last()
        .expect("events")
        .clone()
        .expect_err("an error");
    assert!(
        error
            .message
            .contains("did not finish its reply within 0.4 s"),
        "{error:?}"
    );
    assert!(!text(&events).is_empty(), "partial text comes first");
    assert!(metrics(&registry).contains(r#"outcome="timeout_total"} 1"#));
}

#[tokio::test]
async fn a_stream_that_fails_before_its_first_token_is_retried() {
    let failed = concat!(
        "event: response.failed\n",
        r#"data: {"type":"response.failed","sequence_number":2,"response":{"id":"resp_1","status":"failed","error":{"code":"server_error","message":"The model produced invalid content."},"usage":null}}"#,
        "\n\n",
    );
    let upstream = Upstream::start(vec![Answer::sse(failed), Answer::sse(RESPONSES_PLAIN)]).await;
    let (tutor, _) = model_tutor(&upstream, "responses", &[]).await;
    let events = collect(tutor.respond_with_lesson(request(Some("x")), None)).await;
    assert_eq!(upstream.requests().len(), 2);
    assert!(events.iter().all(Result::is_ok), "{events:?}");
    assert!(text(&events).starts_with("Hi Ada!"));
}

#[tokio::test]
async fn a_server_that_ignores_stream_true_still_gets_its_reply_shown() {
    let whole = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1755430200,"model":"llama3.2","choices":[{"index":0,"message":{"role":"assistant","content":"Ownership means one owner."},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25}}"#;
    let upstream = Upstream::start(vec![Answer::status(200, whole)]).await;
    let (tutor, _) = model_tutor(&upstream, "chat_completions", &[]).await;
    let events = collect(tutor.respond_with_lesson(request(Some("x")), None)).await;
    assert_eq!(
        events,
        vec![
            Ok(TurnEvent::Delta("Ownership means one owner.".into())),
            Ok(TurnEvent::Usage(Usage {
                input_tokens: 20,
                output_tokens: 5,
                ..Usage::default()
            })),
        ]
    );
}

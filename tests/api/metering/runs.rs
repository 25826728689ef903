//! Metered runs: check → model → deduct with the model's usage (both model APIs, both
//! backends), a walk turn as two metered calls, cancellations before and after the first
//! token, a failing model, and the unmetered offline tutor.

use std::time::Duration;

use serde_json::json;

use super::{LOOPS, app_on, model, outbox_drained, reply_text, student};
use crate::per_backend;
use crate::support::app::{Backend, metric, spawn_tutor_app_with};
use crate::support::chatkit_client::{input, of_type};
use crate::support::metering::{MeteringApi, is_uuid};
use crate::support::model::{Answer, Step, Upstream};

per_backend! {
    a_metered_run_checks_then_deducts_the_models_usage_on_both_model_apis => metered_run;
}

async fn metered_run(backend: Backend) {
    for api in ["responses", "chat_completions"] {
        let metering = MeteringApi::start().await;
        let upstream = Upstream::start_with(vec![], model(api)).await;
        let app = app_on(&upstream, api, &metering, backend, &[]).await;
        let (chat, user, token) = student(&app, &format!("lesson_path={LOOPS}&mode=ask"));
        let (thread, answer) = chat.create("What does a while loop do?").await;
        let events = answer.events();
        assert_eq!(
            reply_text(&events),
            "A direct answer.",
            "{api}: {}",
            answer.text
        );
        assert!(of_type(&events, "error").is_empty());

        assert_eq!(
            metering.wait_for("deduct", 1, Duration::from_secs(5)).await,
            1,
            "{api}"
        );
        assert!(
            metering.violations().is_empty(),
            "{:?}",
            metering.violations()
        );
        let checks = metering.calls("check");
        assert_eq!(checks.len(), 1, "{api}: one model call, one check");
        let check = &checks[0];
        assert_eq!(check.header("x-user-id").as_deref(), Some(user.as_str()));
        assert_eq!(
            check.header("authorization"),
            Some(format!("Bearer {token}")),
            "the student's own bearer is forwarded"
        );
        let request_id = check.body["request_id"]
            .as_str()
            .expect("request_id")
            .to_owned();
        assert!(is_uuid(&request_id), "{request_id}");
        assert_eq!(check.body["model"], "gpt-4.1-mini");
        assert_eq!(check.body["context"]["lesson_path"], LOOPS);
        // An honest estimate: the prompt the model was sent (chars / 4) plus the output cap
        // (`MAX_OUTPUT_TOKENS`, 2,000 by default), not the default constant.
        let prompt = upstream.requests()[0].prompt_tokens();
        let estimate = check.body["estimated_tokens"].as_u64().expect("estimate");
        assert!(
            estimate > prompt + 1_900 && estimate < prompt + 2_100 && estimate != 5_000,
            "{api}: estimate {estimate} for a prompt of {prompt} tokens"
        );

        let deduct = &metering.calls("deduct")[0];
        assert_eq!(
            deduct.header("authorization"),
            Some(format!("Bearer {token}"))
        );
        let b = &deduct.body;
        assert_eq!(b["request_id"], request_id.as_str());
        assert_eq!(b["reservation_id"], format!("res_{request_id}"));
        assert_eq!(b["thread_id"], thread.as_str());
        assert_eq!(
            b["input_tokens"], prompt,
            "{api}: the model's reported input tokens"
        );
        assert_eq!(b["output_tokens"], 4, "{api}: \"A direct answer.\" / 4");
        assert_eq!(b["usage_details"]["requests"], 1);
        assert_eq!(b["usage_details"]["total_tokens"], prompt + 4);
        assert_eq!(b["usage_details"]["cached_tokens"], 0);
        assert_eq!(b["usage_details"].get("estimated"), None);
        assert!(metering.calls("release").is_empty());
        assert!(outbox_drained(&app, &metering, Duration::from_secs(5)).await);
        let charged = i64::try_from(prompt + 4).expect("small");
        assert_eq!(metering.balance(&user), 20_000 - charged);
        assert_eq!(
            metric(
                &app,
                "study_mode_metering_deducts_total{outcome=\"finalized\"}"
            )
            .await,
            1.0
        );
        assert_eq!(
            metric(&app, "study_mode_metering_credits_deducted_total").await,
            charged as f64
        );
        assert_eq!(
            metric(
                &app,
                "study_mode_metering_checks_total{outcome=\"allowed\"}"
            )
            .await,
            1.0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walk_turn_that_judges_then_teaches_is_two_metered_calls() {
    let metering = MeteringApi::start().await;
    let upstream = Upstream::start_with(vec![], model("responses")).await;
    let app = app_on(&upstream, "responses", &metering, Backend::Embedded, &[]).await;
    let (chat, _, _) = student(&app, &format!("lesson_path={LOOPS}"));
    let (thread, first) = chat.create("__START_TEACHING__").await;
    assert!(
        reply_text(&first.events()).contains("Which loop never ends?"),
        "{}",
        first.text
    );
    let right = chat.say(&thread, "the right one").await;
    let text = reply_text(&right.events());
    assert!(text.starts_with("**Correct!**"), "{text}");
    assert_eq!(
        metering.wait_for("deduct", 3, Duration::from_secs(5)).await,
        3
    );
    assert_eq!(upstream.requests().len(), 3, "teach, then judge and teach");
    let checks = metering.calls("check");
    assert_eq!(checks.len(), 3, "one check per model call");
    let ids: std::collections::HashSet<String> = checks
        .iter()
        .map(|c| c.body["request_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ids.len(), 3, "each call its own request_id");
    let deducted = metering.deducted();
    assert_eq!(deducted, ids, "each call deducted under its own id");
    assert!(
        metering.violations().is_empty(),
        "{:?}",
        metering.violations()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_model_releases_the_reservation() {
    let metering = MeteringApi::start().await;
    let rejected = r#"{"error":{"message":"bad request","type":"invalid_request_error"}}"#;
    let upstream = Upstream::start(vec![Answer::status(400, rejected)]).await;
    let app = app_on(&upstream, "responses", &metering, Backend::Production, &[]).await;
    let (chat, _, _) = student(&app, "mode=ask");
    let (_, answer) = chat.create("hello").await;
    assert_eq!(
        of_type(&answer.events(), "error").len(),
        1,
        "{}",
        answer.text
    );
    assert_eq!(
        metering
            .wait_for("release", 1, Duration::from_secs(5))
            .await,
        1
    );
    let check = &metering.calls("check")[0];
    let release = &metering.calls("release")[0];
    assert_eq!(release.body["request_id"], check.body["request_id"]);
    assert_eq!(
        release.body["reservation_id"],
        format!(
            "res_{}",
            check.body["request_id"].as_str().unwrap_or_default()
        )
    );
    assert!(
        metering.calls("deduct").is_empty(),
        "nothing used, nothing deducted"
    );
    assert!(
        metering.violations().is_empty(),
        "{:?}",
        metering.violations()
    );
    assert!(outbox_drained(&app, &metering, Duration::from_secs(5)).await);
    assert_eq!(
        metric(&app, "study_mode_metering_releases_total").await,
        1.0
    );
}

/// Sends a turn and drops it once `ready` says so (reading the stream meanwhile).
async fn cancel_when(
    chat: &crate::support::chatkit_client::Chat,
    ready: impl Fn(&str) -> bool,
    upstream: &Upstream,
) {
    let body = json!({"type": "threads.create", "params": {"input": input("Explain loops")}});
    let mut response = chat.request(body.to_string()).send().await.expect("send");
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !ready(&seen) || upstream.requests().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ready: {seen}"
        );
        if let Ok(chunk) = tokio::time::timeout(Duration::from_millis(100), response.chunk()).await
        {
            let chunk = chunk.expect("read").expect("stream open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    drop(response);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cancelled_before_the_first_token_is_released() {
    let metering = MeteringApi::start().await;
    let upstream = Upstream::start(vec![Answer::Stream(vec![Step::Hang])]).await;
    let app = app_on(&upstream, "responses", &metering, Backend::Embedded, &[]).await;
    let (chat, _, _) = student(&app, "mode=ask");
    cancel_when(&chat, |seen| seen.contains("thread.created"), &upstream).await;
    assert!(upstream.saw_early_close(Duration::from_secs(5)).await);
    assert_eq!(
        metering
            .wait_for("release", 1, Duration::from_secs(5))
            .await,
        1
    );
    assert_eq!(
        metering.calls("release")[0].body["request_id"],
        metering.calls("check")[0].body["request_id"]
    );
    assert!(metering.calls("deduct").is_empty());
    assert!(
        metering.violations().is_empty(),
        "{:?}",
        metering.violations()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cancelled_after_tokens_deducts_an_estimate_marked_estimated() {
    let head = concat!(
        "event: response.output_text.delta\n",
        r#"data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Loops repeat a block of code "}"#,
        "\n\n",
    );
    let metering = MeteringApi::start().await;
    let upstream = Upstream::start(vec![Answer::Stream(vec![
        Step::Send(head.into()),
        Step::Hang,
    ])])
    .await;
    let app = app_on(&upstream, "responses", &metering, Backend::Production, &[]).await;
    let (chat, _, _) = student(&app, "mode=ask");
    cancel_when(&chat, |seen| seen.contains("Loops repeat"), &upstream).await;
    assert_eq!(
        metering.wait_for("deduct", 1, Duration::from_secs(5)).await,
        1
    );
    let check = &metering.calls("check")[0];
    let deduct = &metering.calls("deduct")[0];
    let b = &deduct.body;
    assert_eq!(b["request_id"], check.body["request_id"]);
    assert_eq!(b["usage_details"]["estimated"], true);
    // The prompt as sent, and the streamed text: 29 characters, 8 tokens rounded up.
    let prompt_chars = upstream.requests()[0].text().chars().count() as u64;
    let input = b["input_tokens"].as_u64().expect("input");
    assert!(
        input.abs_diff(prompt_chars / 4) <= 2,
        "input {input} vs {prompt_chars} characters sent"
    );
    assert_eq!(b["output_tokens"], 8);
    assert!(metering.calls("release").is_empty());
    assert!(
        metering.violations().is_empty(),
        "{:?}",
        metering.violations()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_tutor_is_not_metered() {
    let metering = MeteringApi::start().await;
    let app = spawn_tutor_app_with(
        Backend::Embedded,
        &[
            ("CONTENT_DIR", super::BOOK),
            ("METERING_ENABLED", "true"),
            ("METERING_API_URL", metering.url.as_str()),
        ],
    )
    .await;
    let (chat, _, _) = student(&app, &format!("lesson_path={LOOPS}&mode=ask"));
    let (_, answer) = chat.create("What is a loop?").await;
    assert!(!reply_text(&answer.events()).is_empty(), "{}", answer.text);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        metering.seen().is_empty(),
        "no model, no metering: {:?}",
        metering.seen()
    );
}

/// `answer` with the usage's cached and reasoning tokens set (the fake reports 0 for both).
fn with_cached_and_reasoning(answer: Answer, cached: u64, reasoning: u64) -> Answer {
    let Answer::Stream(steps) = answer else {
        panic!("a streamed answer");
    };
    let steps = steps
        .into_iter()
        .map(|s| match s {
            Step::Send(b) => {
                let t = String::from_utf8_lossy(&b)
                    .replace(
                        "\"cached_tokens\":0",
                        &format!("\"cached_tokens\":{cached}"),
                    )
                    .replace(
                        "\"reasoning_tokens\":0",
                        &format!("\"reasoning_tokens\":{reasoning}"),
                    );
                Step::Send(t.into())
            }
            other => other,
        })
        .collect();
    Answer::Stream(steps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deduct_carries_cached_and_reasoning_tokens_from_both_model_apis() {
    for api in ["responses", "chat_completions"] {
        let metering = MeteringApi::start().await;
        let reply = crate::support::model::stream_reply(api, &["Cached ", "answer."], 40);
        let upstream = Upstream::start(vec![with_cached_and_reasoning(reply, 32, 3)]).await;
        let app = app_on(&upstream, api, &metering, Backend::Embedded, &[]).await;
        let (chat, _, _) = student(&app, "mode=ask");
        let (_, answer) = chat.create("hello").await;
        assert_eq!(
            reply_text(&answer.events()),
            "Cached answer.",
            "{}",
            answer.text
        );
        assert_eq!(
            metering.wait_for("deduct", 1, Duration::from_secs(5)).await,
            1
        );
        let b = &metering.calls("deduct")[0].body;
        assert_eq!(b["input_tokens"], 40, "{api}");
        assert_eq!(b["output_tokens"], 3, "{api}");
        assert_eq!(b["usage_details"]["cached_tokens"], 32, "{api}: {b}");
        assert_eq!(b["usage_details"]["reasoning_tokens"], 3, "{api}: {b}");
        assert_eq!(b["usage_details"]["total_tokens"], 43, "{api}");
        assert!(
            metering.violations().is_empty(),
            "{:?}",
            metering.violations()
        );
    }
}

/// Median and 90th percentile, in milliseconds.
fn median_p90(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], ms[ms.len() * 9 / 10])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run explicitly (cargo test --test api metering_overhead -- --ignored --nocapture)"]
async fn metering_overhead_per_turn() {
    const TURNS: usize = 40;
    let metering = MeteringApi::start().await;
    let upstream = Upstream::start_with(vec![], model("responses")).await;
    for backend in [Backend::Embedded, Backend::Production] {
        let unlimited = ("RATE_LIMIT_CHAT", "100000/minute");
        let metered = app_on(&upstream, "responses", &metering, backend, &[unlimited]).await;
        let plain = app_on(
            &upstream,
            "responses",
            &metering,
            backend,
            &[unlimited, ("METERING_ENABLED", "false")],
        )
        .await;
        for (name, app) in [("unmetered", &plain), ("metered", &metered)] {
            let (chat, _, _) = student(app, "mode=ask");
            let mut times = Vec::with_capacity(TURNS);
            for i in 0..TURNS {
                let started = std::time::Instant::now();
                // Raw: the conformance oracle's time would be in both columns.
                let body = json!({"type": "threads.create",
                    "params": {"input": input(&format!("question {i}"))}});
                let answer = chat.send_raw(&body.to_string()).await;
                assert_eq!(reply_text(&answer.events()), "A direct answer.");
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            let (median, p90) = median_p90(times);
            println!(
                "{backend:?} {name}: turn median {median:.1} ms, p90 {p90:.1} ms ({TURNS} turns)"
            );
        }
        assert!(outbox_drained(&metered, &metering, Duration::from_secs(10)).await);
    }
    assert!(
        metering.violations().is_empty(),
        "{:?}",
        metering.violations()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_judge_releases_its_reservation_and_teaches_nothing_more() {
    let metering = MeteringApi::start().await;
    let teach = model("chat_completions");
    let handler: crate::support::model::Handler = std::sync::Arc::new(move |r| {
        if r.streamed() {
            teach(r)
        } else {
            Answer::status(400, r#"{"error":{"message":"no judging today"}}"#)
        }
    });
    let upstream = Upstream::start_with(vec![], handler).await;
    let app = app_on(
        &upstream,
        "chat_completions",
        &metering,
        Backend::Embedded,
        &[],
    )
    .await;
    let (chat, _, _) = student(&app, &format!("lesson_path={LOOPS}"));
    let (thread, _) = chat.create("__START_TEACHING__").await;
    let answer = chat.say(&thread, "the right one").await;
    assert_eq!(
        of_type(&answer.events(), "error").len(),
        1,
        "{}",
        answer.text
    );
    assert_eq!(
        metering
            .wait_for("release", 1, Duration::from_secs(5))
            .await,
        1
    );
    let checks = metering.calls("check");
    assert_eq!(
        checks.len(),
        2,
        "the start's teaching and the judge; nothing after it"
    );
    assert_eq!(
        metering.calls("release")[0].body["request_id"],
        checks[1].body["request_id"]
    );
    assert_eq!(
        metering.wait_for("deduct", 1, Duration::from_secs(5)).await,
        1
    );
    assert_eq!(
        metering.calls("deduct")[0].body["request_id"],
        checks[0].body["request_id"]
    );
    assert!(
        metering.violations().is_empty(),
        "{:?}",
        metering.violations()
    );
}

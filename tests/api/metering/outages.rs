//! The metering API down (failing open and closed), slow (the breaker), losing a deduct's
//! answer (delivered twice, charged once), and the outbox across a restart.

use std::time::{Duration, Instant};

use super::{app_on, model, outbox, outbox_drained, reply_text, stored_replies, student};
use crate::per_backend;
use crate::support::app::{Backend, metric};
use crate::support::chatkit_client::of_type;
use crate::support::metering::{CheckMode, MeteringApi, SettleMode};
use crate::support::model::Upstream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_api_down_a_run_fails_open_and_is_deducted_once_it_is_back() {
    let metering = MeteringApi::start().await;
    let upstream = Upstream::start_with(vec![], model("chat_completions")).await;
    let app = app_on(
        &upstream,
        "chat_completions",
        &metering,
        Backend::Production,
        &[],
    )
    .await;
    metering.go_away();
    let (chat, _, _) = student(&app, "mode=ask");
    let (_, answer) = chat.create("What is a loop?").await;
    assert_eq!(
        reply_text(&answer.events()),
        "A direct answer.",
        "{}",
        answer.text
    );
    assert_eq!(
        metric(&app, "study_mode_metering_fail_open_total").await,
        1.0
    );
    let rows = outbox(&app, &metering).await;
    assert_eq!(rows.len(), 1, "the deduct waits in the outbox: {rows:?}");
    assert_eq!(rows[0].1, "deduct");
    // The worker tries at once and fails; the row stays for the retry.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&app, "study_mode_metering_deduct_failures_total").await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "no delivery attempt while the API was down"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(outbox(&app, &metering).await.len(), 1);
    metering.come_back().await;
    assert_eq!(
        metering
            .wait_for("deduct", 1, Duration::from_secs(10))
            .await,
        1
    );
    let deduct = &metering.calls("deduct")[0];
    let request_id = deduct.body["request_id"].as_str().expect("id").to_owned();
    assert_eq!(rows[0].0, request_id);
    assert_eq!(
        deduct.body["reservation_id"],
        format!("failopen_{request_id}")
    );
    assert!(
        metering.calls("check").is_empty(),
        "the check never reached it"
    );
    assert!(
        metering.violations().is_empty(),
        "{:?}",
        metering.violations()
    );
    assert!(outbox_drained(&app, &metering, Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_api_down_and_failing_closed_the_student_is_told_and_no_model_is_called() {
    let metering = MeteringApi::start().await;
    let upstream = Upstream::start_with(vec![], model("responses")).await;
    let app = app_on(
        &upstream,
        "responses",
        &metering,
        Backend::Embedded,
        &[("METERING_FAIL_OPEN", "false")],
    )
    .await;
    metering.set_check(CheckMode::Fail(503));
    let (chat, _, _) = student(&app, "mode=ask");
    let (thread, answer) = chat.create("What is a loop?").await;
    assert_eq!(answer.status, 200);
    let events = answer.events();
    assert!(of_type(&events, "error").is_empty(), "{}", answer.text);
    let text = reply_text(&events);
    assert!(
        text.contains("can't check your credits right now"),
        "{text}"
    );
    assert_eq!(stored_replies(&chat.items(&thread).await), vec![text]);
    assert!(upstream.requests().is_empty());
    assert_eq!(
        metric(&app, "study_mode_metering_fail_open_total").await,
        0.0
    );
    assert_eq!(
        metric(
            &app,
            "study_mode_metering_refusals_total{code=\"UNAVAILABLE\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_api_costs_its_timeout_once_then_the_breaker_answers_at_once() {
    let metering = MeteringApi::start().await;
    metering.set_check(CheckMode::Slow(Duration::from_secs(5)));
    let upstream = Upstream::start_with(vec![], model("responses")).await;
    let app = app_on(
        &upstream,
        "responses",
        &metering,
        Backend::Embedded,
        &[("METERING_TIMEOUT_SECS", "0.5")],
    )
    .await;
    let (chat, _, _) = student(&app, "mode=ask");
    let started = Instant::now();
    let (_, first) = chat.create("What is a loop?").await;
    let first_took = started.elapsed();
    assert_eq!(reply_text(&first.events()), "A direct answer.");
    assert!(
        first_took >= Duration::from_millis(500) && first_took < Duration::from_secs(3),
        "bounded by the timeout: {first_took:?}"
    );
    let started = Instant::now();
    let (_, second) = chat.create("And a for loop?").await;
    let second_took = started.elapsed();
    assert_eq!(reply_text(&second.events()), "A direct answer.");
    assert!(
        second_took < Duration::from_millis(450),
        "the breaker does not wait again: {second_took:?}"
    );
    assert_eq!(
        metering.calls("check").len(),
        1,
        "no second check while the breaker is open"
    );
    assert_eq!(
        metric(
            &app,
            "study_mode_metering_checks_total{outcome=\"breaker_open\"}"
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(&app, "study_mode_metering_fail_open_total").await,
        2.0
    );
    // Both fail-open runs are still deducted.
    assert_eq!(
        metering.wait_for("deduct", 2, Duration::from_secs(5)).await,
        2
    );
    assert!(
        metering.violations().is_empty(),
        "{:?}",
        metering.violations()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deduct_whose_answer_is_lost_is_delivered_again_and_charged_once() {
    let metering = MeteringApi::start().await;
    metering.set_settle(SettleMode::LoseAnswerOnce);
    let upstream = Upstream::start_with(vec![], model("responses")).await;
    let app = app_on(&upstream, "responses", &metering, Backend::Production, &[]).await;
    let (chat, user, _) = student(&app, "mode=ask");
    chat.create("What is a loop?").await;
    assert_eq!(
        metering
            .wait_for("deduct", 2, Duration::from_secs(10))
            .await,
        2
    );
    let deducts = metering.calls("deduct");
    assert_eq!(
        deducts[0].body, deducts[1].body,
        "the same deduct, delivered twice"
    );
    assert_eq!(metering.deducted().len(), 1);
    let charged = deducts[0].body["usage_details"]["total_tokens"]
        .as_i64()
        .expect("total");
    assert_eq!(metering.balance(&user), 20_000 - charged, "charged once");
    assert!(outbox_drained(&app, &metering, Duration::from_secs(5)).await);
    assert_eq!(
        metric(
            &app,
            "study_mode_metering_deducts_total{outcome=\"already_processed\"}"
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(&app, "study_mode_metering_deduct_failures_total").await,
        1.0
    );
    assert_eq!(
        metric(&app, "study_mode_metering_credits_deducted_total").await,
        0.0,
        "the lost answer's credits were never reported to us, the repeat's are 0"
    );
}

per_backend! {
    a_deduct_in_the_outbox_is_delivered_by_the_next_instance => outbox_survives_a_restart;
}

async fn outbox_survives_a_restart(backend: Backend) {
    let metering = MeteringApi::start().await;
    metering.set_settle(SettleMode::Fail(503));
    let upstream = Upstream::start_with(vec![], model("responses")).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = format!("sqlite:{}", dir.path().join("shared.db").display());
    let mut extra = vec![];
    if backend == Backend::Embedded {
        extra.push(("DATABASE_URL", sqlite.as_str()));
    }
    let first = app_on(&upstream, "responses", &metering, backend, &extra).await;
    let (chat, _, _) = student(&first, "mode=ask");
    chat.create("What is a loop?").await;
    assert_eq!(
        metering.wait_for("deduct", 1, Duration::from_secs(5)).await,
        1
    );
    assert_eq!(outbox(&first, &metering).await.len(), 1);
    // The first instance dies with its deduct unacknowledged.
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    metering.set_settle(SettleMode::Normal);
    let tried = metering.calls("deduct").len();
    let second = app_on(&upstream, "responses", &metering, backend, &extra).await;
    assert_eq!(
        metering
            .wait_for("deduct", tried + 1, Duration::from_secs(5))
            .await,
        tried + 1
    );
    assert_eq!(
        metering.deducted().len(),
        1,
        "delivered by the new instance"
    );
    assert!(outbox_drained(&second, &metering, Duration::from_secs(5)).await);
    assert!(
        metering.violations().is_empty(),
        "{:?}",
        metering.violations()
    );
}

per_backend! {
    a_deduct_the_api_refuses_for_good_is_kept_as_dead_and_not_retried => refused_for_good;
}

async fn refused_for_good(backend: Backend) {
    let metering = MeteringApi::start().await;
    metering.set_settle(SettleMode::Fail(400));
    let upstream = Upstream::start_with(vec![], model("responses")).await;
    let app = app_on(&upstream, "responses", &metering, backend, &[]).await;
    let (chat, _, _) = student(&app, "mode=ask");
    chat.create("What is a loop?").await;
    assert_eq!(
        metering.wait_for("deduct", 1, Duration::from_secs(5)).await,
        1
    );
    // Past the first retry's backoff (1 s) and a poll: still one attempt.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(metering.calls("deduct").len(), 1, "a 400 is not retried");
    let rows = outbox(&app, &metering).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, "dead", "kept for the operator");
    assert_eq!(
        metric(&app, "study_mode_metering_deduct_failures_total").await,
        1.0
    );
    assert_eq!(
        metric(&app, "study_mode_metering_outbox_pending").await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unexpected_4xx_fails_that_call_open_without_opening_the_breaker() {
    let metering = MeteringApi::start().await;
    metering.set_check(CheckMode::Fail(401));
    let upstream = Upstream::start_with(vec![], model("responses")).await;
    let app = app_on(&upstream, "responses", &metering, Backend::Embedded, &[]).await;
    let (chat, _, _) = student(&app, "mode=ask");
    let (_, answer) = chat.create("What is a loop?").await;
    assert_eq!(reply_text(&answer.events()), "A direct answer.");
    assert_eq!(
        metric(&app, "study_mode_metering_fail_open_total").await,
        1.0
    );
    metering.set_check(CheckMode::Normal);
    let (_, answer) = chat.create("And a for loop?").await;
    assert_eq!(reply_text(&answer.events()), "A direct answer.");
    assert_eq!(
        metering.calls("check").len(),
        2,
        "the API answered the first time: the next call is checked, not failed open"
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

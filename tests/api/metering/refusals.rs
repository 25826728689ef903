//! Refused checks: out of credits, expired, suspended, a token of another user — each an
//! ordinary stored assistant message, no model call, no error event — and a request id
//! conflict retried once with a new id.

use std::time::Duration;

use super::{LOOPS, app_on, model, reply_text, stored_replies, student};
use crate::support::app::{Backend, metric};
use crate::support::chatkit_client::of_type;
use crate::support::metering::{CheckMode, MeteringApi};
use crate::support::model::Upstream;

/// A refused first turn: the text the student saw (also what was stored).
async fn refused_turn(metering: &MeteringApi, backend: Backend, balance: Option<i64>) -> String {
    let upstream = Upstream::start_with(vec![], model("responses")).await;
    let app = app_on(&upstream, "responses", metering, backend, &[]).await;
    let (chat, user, _) = student(&app, &format!("lesson_path={LOOPS}"));
    if let Some(b) = balance {
        metering.set_balance(&user, b);
    }
    let (thread, answer) = chat.create("__START_TEACHING__").await;
    assert_eq!(answer.status, 200);
    let events = answer.events();
    assert!(
        of_type(&events, "error").is_empty(),
        "no error event: {}",
        answer.text
    );
    let text = reply_text(&events);
    assert_eq!(
        stored_replies(&chat.items(&thread).await),
        vec![text.clone()],
        "stored like any reply"
    );
    assert!(upstream.requests().is_empty(), "the model is not called");
    assert!(
        metering.violations().is_empty(),
        "{:?}",
        metering.violations()
    );
    // Nothing reserved, nothing to settle.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(metering.calls("deduct").is_empty() && metering.calls("release").is_empty());
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_credits_is_an_ordinary_message_with_balance_and_need_in_dollars() {
    let metering = MeteringApi::start().await;
    let text = refused_turn(&metering, Backend::Production, Some(300)).await;
    let required = metering.calls("check")[0].body["estimated_tokens"]
        .as_u64()
        .expect("estimate");
    assert!(text.contains("used your free credits"), "{text}");
    assert!(text.contains("balance is $0.03"), "{text}");
    let need = format!("needs ${:.2}", required as f64 / 10_000.0);
    assert!(text.contains(&need), "{text} (wanted {need})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_account_is_told_its_credits_expired() {
    let metering = MeteringApi::start().await;
    metering.set_check(CheckMode::Refuse {
        status: 402,
        code: "INSUFFICIENT_BALANCE",
        expired: true,
    });
    let text = refused_turn(&metering, Backend::Embedded, None).await;
    assert!(text.contains("credits have expired"), "{text}");
    assert!(text.contains("balance is $2.00"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_and_mismatched_accounts_are_told_the_account_is_suspended() {
    for code in ["ACCOUNT_SUSPENDED", "USER_MISMATCH"] {
        let metering = MeteringApi::start().await;
        metering.set_check(CheckMode::Refuse {
            status: 403,
            code,
            expired: false,
        });
        let text = refused_turn(&metering, Backend::Embedded, None).await;
        assert!(text.contains("account is suspended"), "{code}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_conflict_is_retried_once_with_a_new_id() {
    let metering = MeteringApi::start().await;
    metering.set_check(CheckMode::Conflict(1));
    let upstream = Upstream::start_with(vec![], model("responses")).await;
    let app = app_on(&upstream, "responses", &metering, Backend::Embedded, &[]).await;
    let (chat, _, _) = student(&app, "mode=ask");
    let (_, answer) = chat.create("What is a loop?").await;
    assert_eq!(reply_text(&answer.events()), "A direct answer.");
    let checks = metering.calls("check");
    assert_eq!(checks.len(), 2);
    assert_ne!(checks[0].body["request_id"], checks[1].body["request_id"]);
    assert_eq!(
        metering.wait_for("deduct", 1, Duration::from_secs(5)).await,
        1
    );
    assert_eq!(
        metering.calls("deduct")[0].body["request_id"],
        checks[1].body["request_id"]
    );

    // Two conflicts in a row: treated as the API failing (open by default), not retried again.
    metering.set_check(CheckMode::Conflict(2));
    let (_, answer) = chat.create("And a for loop?").await;
    assert_eq!(reply_text(&answer.events()), "A direct answer.");
    assert_eq!(metering.calls("check").len(), 4);
    assert_eq!(
        metric(&app, "study_mode_metering_fail_open_total").await,
        1.0
    );
    assert!(
        metering.violations().is_empty(),
        "{:?}",
        metering.violations()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_walk_turn_calls_no_model_and_leaves_the_walk_where_it_was() {
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
    let (chat, _, _) = student(&app, &format!("lesson_path={LOOPS}"));
    let (thread, first) = chat.create("__START_TEACHING__").await;
    assert!(
        reply_text(&first.events()).contains("Section 1 of 6"),
        "{}",
        first.text
    );
    assert_eq!(upstream.requests().len(), 1);

    metering.set_check(CheckMode::Refuse {
        status: 402,
        code: "INSUFFICIENT_BALANCE",
        expired: false,
    });
    let refused = chat.say(&thread, "the right one").await;
    let text = reply_text(&refused.events());
    assert!(text.starts_with("You've used your free credits."), "{text}");
    assert!(!text.contains("Correct"), "not judged: {text}");
    assert!(of_type(&refused.events(), "error").is_empty());
    assert_eq!(upstream.requests().len(), 1, "no judge, no teaching");

    metering.set_check(CheckMode::Normal);
    let judged = chat.say(&thread, "the right one").await;
    let text = reply_text(&judged.events());
    assert!(
        text.starts_with("**Correct!**"),
        "the same check, judged now: {text}"
    );
    assert!(text.contains("Section 2 of 6"), "{text}");
    assert!(
        metering.violations().is_empty(),
        "{:?}",
        metering.violations()
    );
}

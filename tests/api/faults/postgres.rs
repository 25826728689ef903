//! PostgreSQL stopped (fast shutdown) and started again on the same port and data folder while
//! clients chat: readiness names the store while it is down, every request during the outage
//! gets a clear, prompt error (503 JSON, or an `error` event once a stream has started), the
//! service recovers without a restart, and every message the server acknowledged is stored.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::load::{
    Answer, Client, Load, Report, done_items, get, of_type, post_chatkit, time_until,
};
use crate::support::app::{Backend, spawn_echo_app_with, unique};
use crate::support::chatkit_client::input;
use crate::support::services::OwnPostgres;

const CLIENTS: usize = 16;
const MESSAGES_PER_THREAD: usize = 4;
const OUTAGE: Duration = Duration::from_secs(3);
const RECOVERY_LIMIT: Duration = Duration::from_secs(15);
/// Slowest acceptable answer, outage included (the pool waits 1 s for a connection).
const LATENCY_BOUND: Duration = Duration::from_secs(5);

/// A user message whose `thread.item.done` the server sent: it must be in the store.
#[derive(Debug, Clone)]
struct Ack {
    user: String,
    thread: String,
    item: String,
    text: String,
}

/// What the clients learnt, shared between them.
#[derive(Default)]
struct Ledger {
    acks: Vec<Ack>,
    /// When each clear "unavailable" turn was sent and when its answer ended (from the start
    /// of the load).
    refusals: Vec<(Duration, Duration)>,
}

/// How one turn went, when it went in one of the acceptable ways.
enum Turn {
    /// Stored and answered; the thread, and the user message when one was acknowledged.
    Done(String, Option<Ack>),
    /// A clear refusal: 503 `service_unavailable`, or a stream that ended with a retryable
    /// `error` event. May still carry the thread and an acknowledged message.
    Refused(Option<String>, Option<Ack>),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_chat_load_loses_no_acknowledged_message_and_recovers_without_restart()
 {
    let pg = OwnPostgres::start().await;
    let app = spawn_echo_app_with(
        Backend::Production,
        &[
            ("DATABASE_URL", &pg.url()),
            ("DATABASE_MAX_CONNECTIONS", "10"),
            // Fail fast while the database is down instead of holding requests for 30 s.
            ("DATABASE_ACQUIRE_TIMEOUT_SECS", "1"),
            ("RATE_LIMIT_CHAT", "1000000/minute"),
        ],
    )
    .await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let (base, shared) = (app.address.clone(), ledger.clone());
    let load = Load::start(CLIENTS, move |client, _| {
        chat_client(client, base.clone(), shared.clone())
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let stopping_at = load.elapsed();
    pg.stop_fast().await;
    let stopped_at = load.elapsed();
    tokio::time::sleep(OUTAGE / 3).await;
    let ready = get(&app.client, &app.url("/health/ready"))
        .await
        .expect("readiness answers");
    let body = ready.json().expect("readiness body");
    assert_eq!(
        ready.status, 503,
        "readiness while PostgreSQL is down: {body}"
    );
    assert_eq!(body["checks"]["store"]["status"], "down", "{body}");
    assert_eq!(body["checks"]["store"]["backend"], "postgres", "{body}");
    tokio::time::sleep(OUTAGE * 2 / 3).await;

    pg.resume().await;
    let resumed_at = load.elapsed();
    let recovery = time_until(RECOVERY_LIMIT, || async {
        app.get("/health/ready").await.status() == 200
    })
    .await
    .expect("readiness is 200 again without restarting the service");
    let ready_at = resumed_at + recovery;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = load.finish().await;

    let ledger = std::mem::take(&mut *ledger.lock().expect("lock"));
    println!(
        "faults::postgres: {}; outage {:?} (stop took {:?}); {} refusals; readiness 200 {recovery:?} \
         after the restart; {} acknowledged messages",
        report.summary(),
        resumed_at - stopped_at,
        stopped_at - stopping_at,
        ledger.refusals.len(),
        ledger.acks.len(),
    );
    assert_clear_and_prompt(&report);
    assert!(
        ledger
            .refusals
            .iter()
            .all(|(_, ended)| *ended >= stopping_at),
        "refusals before the fault ({stopping_at:?}): {:?}",
        ledger.refusals
    );
    assert!(
        !ledger.refusals.is_empty(),
        "the outage was felt by the clients"
    );
    let settled = ready_at + Duration::from_millis(500);
    let late: Vec<_> = ledger
        .refusals
        .iter()
        .filter(|(sent, _)| *sent >= settled)
        .collect();
    assert!(
        late.is_empty(),
        "turns sent after recovery (readiness 200 at {ready_at:?}) were refused at {late:?}"
    );
    let after = report.sent_between(settled, settled + Duration::from_secs(60));
    assert!(
        after.len() >= CLIENTS,
        "the load went on after recovery: {}",
        after.len()
    );
    assert_all_stored(&app.client, &app.address, &ledger.acks).await;
}

/// No 500, no hang, no malformed answer: every failure was a clear refusal, promptly.
fn assert_clear_and_prompt(report: &Report) {
    report.assert_no_problems("unclear answers");
    assert!(
        report.max_latency() < LATENCY_BOUND,
        "an answer took {:?}",
        report.max_latency()
    );
}

/// Reads every thread back through the API and finds every acknowledged message in it.
async fn assert_all_stored(http: &reqwest::Client, base: &str, acks: &[Ack]) {
    let mut threads: Vec<(&str, &str)> = acks
        .iter()
        .map(|a| (a.user.as_str(), a.thread.as_str()))
        .collect();
    threads.sort_unstable();
    threads.dedup();
    let mut stored = std::collections::HashMap::new();
    for (user, thread) in &threads {
        let body = json!({"type": "items.list",
            "params": {"thread_id": thread, "order": "asc", "limit": 100}});
        let answer = post_chatkit(http, base, &[("x-user-id", user)], &body)
            .await
            .expect("items.list");
        let page = answer.json().expect("items page");
        assert_eq!(answer.status, 200, "{page}");
        for item in page["data"].as_array().expect("data") {
            let text = item["content"][0]["text"].as_str().unwrap_or_default();
            stored.insert(
                item["id"].as_str().unwrap_or_default().to_owned(),
                text.to_owned(),
            );
        }
    }
    let lost: Vec<&Ack> = acks
        .iter()
        .filter(|a| stored.get(&a.item) != Some(&a.text))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages are not stored: {:?}",
        lost.len(),
        acks.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(
        acks.len() >= CLIENTS,
        "too few turns to mean anything: {}",
        acks.len()
    );
}

/// One user chatting: a thread, a few messages in it, a new thread, and so on.
async fn chat_client(client: Client, base: String, ledger: Arc<Mutex<Ledger>>) {
    let user = unique("pg-load-");
    let mut thread: Option<String> = None;
    let mut sent_in_thread = 0;
    let mut n = 0;
    while client.running() {
        n += 1;
        let text = format!("{user} message {n}");
        let body = match &thread {
            None => json!({"type": "threads.create", "params": {"input": input(&text)}}),
            Some(id) => json!({"type": "threads.add_user_message",
                "params": {"thread_id": id, "input": input(&text)}}),
        };
        let sent = client.elapsed();
        let turn = client
            .record("chat", async {
                match post_chatkit(&client.http, &base, &[("x-user-id", &user)], &body).await {
                    Err(e) => (0, Err(e)),
                    Ok(a) => (a.status, judge(&a, &user, &text)),
                }
            })
            .await;
        let (new_thread, ack, refused) = match turn {
            Some(Turn::Done(t, ack)) => (Some(t), ack, false),
            Some(Turn::Refused(t, ack)) => (t, ack, true),
            None => (None, None, false),
        };
        let mut ledger = ledger.lock().expect("lock");
        ledger.acks.extend(ack);
        if refused {
            ledger.refusals.push((sent, client.elapsed()));
        }
        drop(ledger);
        if thread.is_none() {
            thread = new_thread;
        }
        sent_in_thread += 1;
        if sent_in_thread == MESSAGES_PER_THREAD {
            (thread, sent_in_thread) = (None, 0);
        }
    }
}

/// Sorts an answer into a success, a clear refusal, or a problem (the `Err`).
fn judge(answer: &Answer, user: &str, text: &str) -> Result<Turn, String> {
    if answer.status != 200 {
        let code = answer.error_code()?;
        return match (answer.status, code.as_str()) {
            (503, "service_unavailable") => Ok(Turn::Refused(None, None)),
            _ => Err(format!("{} {}", answer.status, answer.text)),
        };
    }
    let events = answer.events()?;
    let thread = of_type(&events, "thread.created")
        .first()
        .and_then(|e| e["thread"]["id"].as_str())
        .or_else(|| {
            done_items(&events, "user_message")
                .first()
                .and_then(|i| i["thread_id"].as_str())
        })
        .map(str::to_owned);
    let ack = done_items(&events, "user_message").first().map(|item| Ack {
        user: user.to_owned(),
        thread: item["thread_id"].as_str().unwrap_or_default().to_owned(),
        item: item["id"].as_str().unwrap_or_default().to_owned(),
        text: item["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    });
    if ack.as_ref().is_some_and(|a| a.text != text) {
        return Err(format!("acknowledged another text: {ack:?}"));
    }
    let errors = of_type(&events, "error");
    match errors.as_slice() {
        [] if ack.is_some() && !done_items(&events, "assistant_message").is_empty() => {
            Ok(Turn::Done(thread.unwrap_or_default(), ack))
        }
        [e] if events.last() == Some(*e) && e["allow_retry"] == true => {
            Ok(Turn::Refused(thread, ack))
        }
        _ => Err(format!("unclear stream: {events:?}")),
    }
}

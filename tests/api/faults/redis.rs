//! Redis killed (SIGKILL) and restarted on the same port while clients load cached suggestions
//! and chat: no 5xx at any time, no request waiting for the dead Redis, and the cache and the
//! limiter use the new Redis within seconds.

use std::time::Duration;

use serde_json::{Value, json};

use super::load::{Client, Load, Report, done_items, get, of_type, post_chatkit, time_until};
use crate::support::app::{Backend, TestApp, metric, spawn_echo_app_with, unique};
use crate::support::chatkit_client::input;
use crate::support::services::{OwnRedis, free_port};

const LESSON: &str = "02-working-with-data/01-collections/01-lists";
const CHAT_LIMIT: usize = 3;
const CLIENTS: usize = 24;
const OUTAGE: Duration = Duration::from_secs(3);
const RECOVERY_LIMIT: Duration = Duration::from_secs(10);
/// Generous bounds of the latency during the outage (Redis operations have a 1 s deadline).
const OUTAGE_MEDIAN_BOUND: Duration = Duration::from_millis(500);
const OUTAGE_WORST_BOUND: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_under_load_gives_no_5xx_and_the_cache_and_limiter_recover() {
    let port = free_port();
    let mut redis = OwnRedis::start(port).await;
    let app = spawn_echo_app_with(
        Backend::Production,
        &[
            ("REDIS_URL", &redis.url()),
            ("RATE_LIMIT_CHAT", &format!("{CHAT_LIMIT}/minute")),
            ("RATE_LIMIT_ANON", "1000000/minute"),
            // In-process copies expire every second, so the cache keeps reading and writing
            // Redis under load instead of answering from memory.
            ("CONTENT_CACHE_TTL", "1"),
        ],
    )
    .await;
    let prefix = app
        .redis_prefix
        .clone()
        .expect("production app has a prefix");
    // The app serves the sample book compiled into the binary (no CONTENT_DIR).
    let last_good_key = format!(
        "{prefix}content-last-good:v1:embedded@{}:{LESSON}",
        env!("CARGO_PKG_VERSION")
    );
    let anon_key = format!("{prefix}ratelimit:anon:127.0.0.1");
    let written_keys = [last_good_key.as_str(), anon_key.as_str()];

    let base = app.address.clone();
    let load = Load::start(CLIENTS, move |client, i| {
        let base = base.clone();
        async move {
            if i % 2 == 0 {
                suggestions_client(client, base).await
            } else {
                chat_client(client, base).await
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        keys_exist(&redis, &written_keys).await,
        "before the fault the cache and the limiter write to this Redis"
    );

    redis.kill().await;
    let killed_at = load.elapsed();
    tokio::time::sleep(OUTAGE / 3).await;
    let ready = get(&app.client, &app.url("/health/ready"))
        .await
        .expect("readiness answers");
    let body = ready.json().expect("readiness body");
    assert_eq!(ready.status, 503, "readiness while Redis is down: {body}");
    assert_eq!(body["checks"]["cache"]["status"], "down", "{body}");
    assert_eq!(body["checks"]["store"]["status"], "up", "{body}");
    tokio::time::sleep(OUTAGE * 2 / 3).await;

    let redis = OwnRedis::start(port).await;
    let restarted_at = load.elapsed();
    let cache_recovery = time_until(RECOVERY_LIMIT, || keys_exist(&redis, &written_keys)).await;
    let limiter_recovery = time_until(RECOVERY_LIMIT, || limiter_enforces(&app)).await;
    let ready_recovery = time_until(RECOVERY_LIMIT, || async {
        app.get("/health/ready").await.status() == 200
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = load.finish().await;

    let during = report.sent_between(killed_at, restarted_at);
    println!(
        "faults::redis: {}; outage {:?}: {} requests, latency p50/p99/max {:?}; after restart: \
         cache writes {cache_recovery:?}, limiter {limiter_recovery:?}, readiness {ready_recovery:?}",
        report.summary(),
        restarted_at - killed_at,
        during.len(),
        Report::latencies(&during),
    );
    // Every request of the run, before, during and after the outage, got a good answer.
    report.assert_no_server_errors();
    report.assert_no_problems("unexpected answers");
    let cache_recovery = cache_recovery.expect("cache writes reach the restarted Redis");
    let limiter_recovery = limiter_recovery.expect("the limiter enforces limits again");
    assert!(ready_recovery.is_some(), "readiness is 200 again");
    assert!(
        cache_recovery < Duration::from_secs(5) && limiter_recovery < Duration::from_secs(5),
        "recovery within seconds: cache {cache_recovery:?}, limiter {limiter_recovery:?}"
    );
    assert!(
        during.len() >= CLIENTS,
        "the load went on during the outage: {} requests",
        during.len()
    );
    // Requests do not wait for the dead Redis: the pool fails fast while it is down (a
    // median of ~1.1 s and a worst of ~5 s before it did), and nothing waits past the 1 s
    // operation deadline by much.
    let (median, _, worst) = Report::latencies(&during);
    assert!(
        median < OUTAGE_MEDIAN_BOUND && worst < OUTAGE_WORST_BOUND,
        "latency during the outage: median {median:?}, worst {worst:?}"
    );
    assert_fault_was_felt(&app).await;
}

/// The outage was real: cache operations failed and the limiter admitted without counting.
async fn assert_fault_was_felt(app: &TestApp) {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    let cache_errors: f64 = text
        .lines()
        .filter(|l| l.starts_with("study_mode_cache_operations_total{"))
        .filter(|l| l.contains(r#"backend="redis""#) && l.contains(r#"outcome="error""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let failed_open = metric(
        app,
        r#"study_mode_ratelimit_decisions_total{policy="anon",outcome="failed_open"}"#,
    )
    .await;
    assert!(
        cache_errors > 0.0 && failed_open > 0.0,
        "cache errors {cache_errors}, limiter failed open {failed_open}"
    );
}

/// Suggestions for one lesson, again and again: always 200 with suggestions.
async fn suggestions_client(client: Client, base: String) {
    let url = format!("{base}/chatkit/suggestions?lesson_path={LESSON}&mode=teach");
    while client.running() {
        client
            .record("suggestions", async {
                match get(&client.http, &url).await {
                    Err(e) => (0, Err(e)),
                    Ok(a) if a.status != 200 => (a.status, Err(a.text)),
                    Ok(a) => (a.status, check_suggestions(&a.text)),
                }
            })
            .await;
    }
}

fn check_suggestions(text: &str) -> Result<(), String> {
    let body: Value = serde_json::from_str(text).map_err(|e| format!("{e}: {text}"))?;
    let lesson = &body["lesson"];
    let suggestions = body["suggestions"].as_array().map_or(0, Vec::len);
    if lesson["path"] == LESSON && lesson["title"] == "Lists" && suggestions >= 3 {
        Ok(())
    } else {
        Err(format!("not this lesson's suggestions: {body}"))
    }
}

/// A new user's first chat turn, again and again: a complete stream with a stored reply.
async fn chat_client(client: Client, base: String) {
    while client.running() {
        let user = unique("redis-load-");
        let body = json!({"type": "threads.create", "params": {"input": input("What is a list?")}});
        client
            .record("chat", async {
                match post_chatkit(&client.http, &base, &[("x-user-id", &user)], &body).await {
                    Err(e) => (0, Err(e)),
                    Ok(a) => (a.status, a.events().and_then(|e| check_turn(&e))),
                }
            })
            .await;
    }
}

fn check_turn(events: &[Value]) -> Result<(), String> {
    let errors = of_type(events, "error");
    if !errors.is_empty() {
        return Err(format!("error events: {errors:?}"));
    }
    if done_items(events, "user_message").len() == 1
        && done_items(events, "assistant_message").len() == 1
    {
        Ok(())
    } else {
        Err(format!("incomplete turn: {events:?}"))
    }
}

/// A fresh user gets exactly `CHAT_LIMIT` turns, then 429: the limiter counts in Redis again
/// (while Redis fails it admits everything).
async fn limiter_enforces(app: &TestApp) -> bool {
    let user = unique("redis-probe-");
    let body = json!({"type": "threads.create", "params": {"input": input("hi")}});
    let mut statuses = Vec::new();
    for _ in 0..=CHAT_LIMIT {
        match post_chatkit(&app.client, &app.address, &[("x-user-id", &user)], &body).await {
            Ok(a) => statuses.push(a.status),
            Err(_) => return false,
        }
    }
    statuses[..CHAT_LIMIT].iter().all(|s| *s == 200) && statuses[CHAT_LIMIT] == 429
}

async fn keys_exist(redis: &OwnRedis, keys: &[&str]) -> bool {
    let Ok(client) = ::redis::Client::open(redis.url()) else {
        return false;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    let found: Result<usize, _> = ::redis::cmd("EXISTS")
        .arg(keys)
        .query_async(&mut conn)
        .await;
    found.is_ok_and(|n| n == keys.len())
}

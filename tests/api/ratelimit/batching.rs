//! The Redis limiter's batches: concurrent checks of one process go to Redis together, one
//! script call per batch, and every check still gets the answer it would get alone — exact
//! across instances, per subject within a mixed batch, failing open on its own when its key is
//! unusable and all together when the call times out.
//!
//! Tests that need Redis held still (so that checks pile up into one batch, or a call times
//! out) run a busy Lua script on a throwaway `redis-server`, never on the shared one.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use study_mode_api::ratelimit::{Policy, RateLimiter};

use crate::support::app::{Backend, TestApp, metric, spawn_echo_app_with, unique};
use crate::support::services::{OwnRedis, free_port};

const BATCHES: &str = "study_mode_ratelimit_redis_batch_checks_count";
const BATCHED_CHECKS: &str = "study_mode_ratelimit_redis_batch_checks_sum";

/// `r` of the first item of a `RateLimit` header (`"chat";r=3;t=12`).
fn remaining(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get("ratelimit")?.to_str().ok()?;
    let r = value.split(';').find_map(|p| p.strip_prefix("r="))?;
    r.split(',').next()?.trim().parse().ok()
}

/// Fires `n` checks of `key` at once, spread over `limiters`: the `remaining` of each admitted
/// one (`None`: admitted without a state, i.e. failed open), and the number refused.
async fn burst(
    limiters: &[RateLimiter],
    policy: Policy,
    key: &str,
    n: usize,
) -> (Vec<Option<u64>>, usize) {
    let checks = (0..n).map(|i| {
        let limiter = limiters[i % limiters.len()].clone();
        let key = key.to_owned();
        tokio::spawn(async move { limiter.check(policy, &key).await })
    });
    let mut admitted = Vec::new();
    let mut refused = 0;
    for r in futures::future::join_all(checks).await {
        match r.expect("check task") {
            Ok(headers) => admitted.push(remaining(&headers)),
            Err(_) => refused += 1,
        }
    }
    (admitted, refused)
}

async fn two_instances(limit: &str) -> [TestApp; 2] {
    let prefix = format!("{}:", unique("sm_batch:"));
    let vars = [
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("RATE_LIMIT_CHAT", limit),
    ];
    [
        spawn_echo_app_with(Backend::Production, &vars).await,
        spawn_echo_app_with(Backend::Production, &vars).await,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_batching_1000_concurrent_checks_of_one_subject_admit_exactly_the_limit() {
    let apps = two_instances("137/minute").await;
    let limiters = [apps[0].state.limiter.clone(), apps[1].state.limiter.clone()];
    for round in 0..5 {
        let user = unique("batch-user");
        let (admitted, refused) = burst(&limiters, Policy::Chat, &user, 1000).await;
        assert_eq!(admitted.len(), 137, "round {round}");
        assert_eq!(refused, 863, "round {round}");
        // Each admission was counted once, atomically: the remaining counts of all admitted
        // checks, over both instances, are 136, 135, …, 0, each exactly once.
        let seen: BTreeSet<u64> = admitted.iter().map(|r| r.expect("state")).collect();
        assert_eq!(seen, (0..137).collect(), "round {round}");
    }
    for app in &apps {
        let (calls, checks) = (
            metric(app, BATCHES).await,
            metric(app, BATCHED_CHECKS).await,
        );
        assert_eq!(checks, 2500.0, "every check of this instance went to Redis");
        assert!(
            calls < checks,
            "checks were batched: {checks} in {calls} calls"
        );
    }
    let metrics = apps[0].get("/metrics").await.text().await.expect("metrics");
    assert!(!metrics.contains(r#"outcome="failed_open""#), "{metrics}");
}

/// Holds `redis` busy (one Lua script looping on `TIME`) for `hold`, from a task of its own;
/// returns once the script runs.
async fn hold_redis(redis: &OwnRedis, hold: Duration) -> tokio::task::JoinHandle<()> {
    let client = redis::Client::open(redis.url()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("own redis");
    let busy = redis::Script::new(
        r"local t = redis.call('TIME')
        local start = t[1] * 1000000 + t[2]
        repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start >= tonumber(ARGV[1])
        return 1",
    );
    busy.load_async(&mut conn).await.expect("load");
    let micros = hold.as_micros() as u64;
    let handle = tokio::spawn(async move {
        let _: i64 = busy
            .arg(micros)
            .invoke_async(&mut conn)
            .await
            .expect("busy");
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    handle
}

async fn spawn_on(redis: &OwnRedis, vars: &[(&str, &str)]) -> TestApp {
    let url = redis.url();
    let mut all = vec![("REDIS_URL", url.as_str())];
    all.extend_from_slice(vars);
    spawn_echo_app_with(Backend::Production, &all).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_subjects_in_one_batch_each_get_their_own_answer_and_a_broken_key_fails_open_alone() {
    let redis = OwnRedis::start(free_port()).await;
    let app = spawn_on(
        &redis,
        &[
            ("RATE_LIMIT_CHAT", "3/minute"),
            ("RATE_LIMIT_ANON", "2/10s,5/hour"),
        ],
    )
    .await;
    let limiter = Arc::new(app.state.limiter.clone());
    let (a, b, ip, broken) = (unique("a"), unique("b"), unique("ip"), unique("broken"));
    // a has spent 2 of its 3 before the batch.
    for _ in 0..2 {
        limiter.check(Policy::Chat, &a).await.expect("admitted");
    }
    let client = redis::Client::open(redis.url()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let broken_key = format!(
        "{}ratelimit:chat:{broken}",
        app.redis_prefix.clone().expect("prefix")
    );
    let _: () = redis::cmd("SET")
        .arg(&broken_key)
        .arg("not a sorted set")
        .query_async(&mut conn)
        .await
        .expect("set");
    let calls_before = metric(&app, BATCHES).await;

    // Redis held: the first checks go in flight and wait (two calls at most are in flight),
    // every later one queues for one batch.
    let held = hold_redis(&redis, Duration::from_millis(400)).await;
    let mut openers = Vec::new();
    for _ in 0..2 {
        let (l, key) = (limiter.clone(), unique("opener"));
        openers.push(tokio::spawn(
            async move { l.check(Policy::Chat, &key).await },
        ));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let subjects = [
        (Policy::Chat, a.clone(), 5),
        (Policy::Chat, b.clone(), 5),
        (Policy::Anon, ip.clone(), 5),
        (Policy::Chat, broken.clone(), 2),
    ];
    let mut checks = Vec::new();
    for _ in 0..5 {
        for (policy, key, n) in &subjects {
            if checks.iter().filter(|(k, _)| k == key).count() < *n {
                let (l, k, p) = (limiter.clone(), key.clone(), *policy);
                checks.push((
                    key.clone(),
                    tokio::spawn(async move { l.check(p, &k).await }),
                ));
            }
        }
    }
    let mut answers: std::collections::HashMap<String, Vec<Result<HeaderMap, ()>>> =
        Default::default();
    for (key, task) in checks {
        let answer = task.await.expect("task").map_err(|_| ());
        answers.entry(key).or_default().push(answer);
    }
    for opener in openers {
        assert!(opener.await.expect("task").is_ok());
    }
    held.await.expect("busy script");

    let admitted_remaining = |key: &str| -> BTreeSet<Option<u64>> {
        answers[key]
            .iter()
            .filter_map(|r| r.as_ref().ok().map(remaining))
            .collect()
    };
    let refused = |key: &str| answers[key].iter().filter(|r| r.is_err()).count();
    assert_eq!(
        admitted_remaining(&a),
        BTreeSet::from([Some(0)]),
        "a had 1 left"
    );
    assert_eq!(refused(&a), 4);
    assert_eq!(
        admitted_remaining(&b),
        BTreeSet::from([Some(0), Some(1), Some(2)])
    );
    assert_eq!(refused(&b), 2);
    assert_eq!(admitted_remaining(&ip), BTreeSet::from([Some(0), Some(1)]));
    assert_eq!(refused(&ip), 3, "the 10 s window of 2 refuses the rest");
    // The broken key: admitted without a state (fail open), and only it.
    assert_eq!(admitted_remaining(&broken), BTreeSet::from([None]));
    assert_eq!(refused(&broken), 0);
    let failed_open = metric(
        &app,
        r#"study_mode_ratelimit_decisions_total{policy="chat",outcome="failed_open"}"#,
    )
    .await;
    assert_eq!(failed_open, 2.0);
    assert_eq!(
        metric(&app, BATCHES).await - calls_before,
        3.0,
        "each opener alone, then the 17 queued checks in one call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_that_times_out_fails_open_within_the_deadline_then_limiting_resumes() {
    let redis = OwnRedis::start(free_port()).await;
    let app = spawn_on(&redis, &[("RATE_LIMIT_CHAT", "2/minute")]).await;
    let limiter = app.state.limiter.clone();
    limiter
        .check(Policy::Chat, &unique("warm"))
        .await
        .expect("admitted");

    let held = hold_redis(&redis, Duration::from_millis(2500)).await;
    let started = Instant::now();
    let user = unique("u");
    let (admitted, refused) = burst(std::slice::from_ref(&limiter), Policy::Chat, &user, 50).await;
    let waited = started.elapsed();
    assert_eq!((admitted.len(), refused), (50, 0), "every check fails open");
    assert!(admitted.iter().all(Option::is_none), "no state is claimed");
    assert!(
        waited < Duration::from_millis(1600),
        "bounded by the check deadline: {waited:?}"
    );
    assert_eq!(
        metric(
            &app,
            r#"study_mode_ratelimit_decisions_total{policy="chat",outcome="failed_open"}"#
        )
        .await,
        50.0
    );
    held.await.expect("busy script");

    let fresh = unique("after");
    let recovered = async {
        loop {
            if let Ok(h) = limiter.check(Policy::Chat, &fresh).await
                && h.contains_key("ratelimit")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), recovered)
        .await
        .expect("limiting resumes");
    let (admitted, refused) = burst(std::slice::from_ref(&limiter), Policy::Chat, &fresh, 10).await;
    assert_eq!((admitted.len(), refused), (1, 9), "one was admitted above");
}

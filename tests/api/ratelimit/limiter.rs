//! Rate limiting against real Redis (shared by several app instances, flushed scripts, a Redis
//! killed and restarted mid-test) and the in-process limiter; header formats; the client IP.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::Value;
use study_mode_api::error::ApiError;
use study_mode_api::ratelimit::{ClientIp, Policy, RateLimiter};

use crate::per_backend;
use crate::support::app::{Backend, TestApp, spawn_echo_app_with, test_redis_url, unique};
use crate::support::services::{OwnRedis, free_port};

per_backend! {
    exactly_the_limit_is_admitted_and_the_rest_get_429 => exact_limit;
    the_window_slides_so_there_is_no_double_burst_at_an_edge => no_double_burst;
    a_multi_window_policy_admits_only_what_every_window_allows => multi_window;
    headers_follow_the_ietf_draft_and_429_says_when_to_retry => header_formats;
}

async fn admitted(limiter: &RateLimiter, policy: Policy, key: &str, n: usize) -> usize {
    let results = futures::future::join_all((0..n).map(|_| limiter.check(policy, key))).await;
    for r in &results {
        if let Err(e) = r {
            assert_eq!(
                ApiError::from(e.clone()).status(),
                StatusCode::TOO_MANY_REQUESTS,
                "{e}"
            );
        }
    }
    results.iter().filter(|r| r.is_ok()).count()
}

async fn exact_limit(backend: Backend) {
    let app = spawn_echo_app_with(backend, &[("RATE_LIMIT_CHAT", "7/minute")]).await;
    let user = unique("u");
    assert_eq!(
        admitted(&app.state.limiter, Policy::Chat, &user, 30).await,
        7
    );
    assert_eq!(
        admitted(&app.state.limiter, Policy::Chat, &unique("other"), 3).await,
        3,
        "limits are per key"
    );
}

async fn no_double_burst(backend: Backend) {
    let app = spawn_echo_app_with(backend, &[("RATE_LIMIT_ANON", "5/2s")]).await;
    let limiter = &app.state.limiter;
    let ip = unique("ip");
    assert_eq!(admitted(limiter, Policy::Anon, &ip, 10).await, 5);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // A fixed window (or a fresh second) would admit again here; a sliding one does not.
    assert_eq!(admitted(limiter, Policy::Anon, &ip, 10).await, 0);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(admitted(limiter, Policy::Anon, &ip, 10).await, 5);
}

async fn multi_window(backend: Backend) {
    let app = spawn_echo_app_with(backend, &[("RATE_LIMIT_CHAT", "3/1s,5/minute")]).await;
    let limiter = &app.state.limiter;
    let user = unique("u");
    assert_eq!(admitted(limiter, Policy::Chat, &user, 10).await, 3);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // The 7 refused requests were counted in no window: 2 remain in the minute.
    assert_eq!(admitted(limiter, Policy::Chat, &user, 10).await, 2);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let err = limiter
        .check(Policy::Chat, &user)
        .await
        .expect_err("minute window full");
    let body = body_of(err).await.1;
    assert_eq!(body["error"]["details"]["window"], 60);
    assert_eq!(body["error"]["details"]["limit"], 5);
}

async fn body_of(err: impl Into<ApiError>) -> (StatusCode, Value, HeaderMap) {
    let response = err.into().into_response();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).expect("json"),
        headers,
    )
}

async fn header_formats(backend: Backend) {
    let app = spawn_echo_app_with(
        backend,
        &[
            ("RATE_LIMIT_CHAT", "2/minute"),
            ("RATE_LIMIT_ANON", "1/10s,3/hour"),
        ],
    )
    .await;
    let limiter = &app.state.limiter;
    let user = unique("u");
    let headers = limiter.check(Policy::Chat, &user).await.expect("admitted");
    assert_eq!(headers["ratelimit-policy"], r#""chat";q=2;w=60"#);
    assert_eq!(headers["ratelimit"], r#""chat";r=1;t=60"#);
    limiter.check(Policy::Chat, &user).await.expect("admitted");
    let (status, body, headers) = body_of(
        limiter
            .check(Policy::Chat, &user)
            .await
            .expect_err("limited"),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((58..=60).contains(&retry), "{retry}");
    assert_eq!(
        headers["ratelimit"],
        format!(r#""chat";r=0;t={retry}"#).as_str()
    );
    assert_eq!(body["error"]["code"], "rate_limited");
    let details = &body["error"]["details"];
    assert_eq!(
        (details["limit"].as_u64(), details["window"].as_u64()),
        (Some(2), Some(60))
    );
    assert_eq!(details["reset_seconds"].as_u64(), Some(retry));
    assert!(
        details["reset_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z')),
        "{details}"
    );

    let anon = limiter
        .check(Policy::Anon, &unique("ip"))
        .await
        .expect("admitted");
    assert_eq!(
        anon["ratelimit-policy"],
        r#""anon-10s";q=1;w=10, "anon-3600s";q=3;w=3600"#
    );
    assert_eq!(
        anon["ratelimit"],
        r#""anon-10s";r=0;t=10, "anon-3600s";r=2;t=3600"#
    );
}

async fn three_instances(limit: &str) -> Vec<TestApp> {
    let prefix = format!("{}:", unique("sm_shared:"));
    let vars = [
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("RATE_LIMIT_CHAT", limit),
    ];
    vec![
        spawn_echo_app_with(Backend::Production, &vars).await,
        spawn_echo_app_with(Backend::Production, &vars).await,
        spawn_echo_app_with(Backend::Production, &vars).await,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_sharing_redis_admit_exactly_the_limit_of_200_concurrent_requests_every_time()
 {
    let apps = three_instances("20/minute").await;
    for round in 0..20 {
        let user = unique("burst-user");
        let checks = (0..200).map(|i| {
            let limiter = apps[i % 3].state.limiter.clone();
            let user = user.clone();
            tokio::spawn(async move { limiter.check(Policy::Chat, &user).await.is_ok() })
        });
        let results = futures::future::join_all(checks).await;
        let admitted = results
            .into_iter()
            .filter(|r| matches!(r, Ok(true)))
            .count();
        assert_eq!(admitted, 20, "round {round}");
    }
}

#[tokio::test]
async fn the_script_is_reloaded_after_script_flush() {
    let app = spawn_echo_app_with(Backend::Production, &[("RATE_LIMIT_CHAT", "3/minute")]).await;
    let user = unique("u");
    assert!(app.state.limiter.check(Policy::Chat, &user).await.is_ok());
    let client = redis::Client::open(test_redis_url()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .expect("flush");
    let headers = app
        .state
        .limiter
        .check(Policy::Chat, &user)
        .await
        .expect("admitted");
    assert_eq!(
        headers["ratelimit"], r#""chat";r=1;t=60"#,
        "counted by the reloaded script"
    );
    let key = format!(
        "{}ratelimit:chat:{user}",
        app.redis_prefix.clone().expect("prefix")
    );
    let (count, ttl): (u64, i64) = redis::pipe()
        .cmd("ZCARD")
        .arg(&key)
        .cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("key");
    assert_eq!(count, 2);
    assert!(ttl > 0 && ttl <= 60_000, "{ttl}");
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        !metrics.contains(r#"outcome="failed_open""#),
        "NOSCRIPT must not fail open: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_dies_requests_are_admitted_and_counted_then_limiting_resumes_when_it_returns() {
    let port = free_port();
    let mut redis = OwnRedis::start(port).await;
    let url = redis.url();
    let app = spawn_echo_app_with(
        Backend::Production,
        &[("REDIS_URL", &url), ("RATE_LIMIT_CHAT", "2/minute")],
    )
    .await;
    let limiter = &app.state.limiter;
    let user = unique("u");
    assert_eq!(admitted(limiter, Policy::Chat, &user, 5).await, 2);

    redis.kill().await;
    for _ in 0..5 {
        let headers = limiter.check(Policy::Chat, &user).await.expect("fail open");
        assert!(headers.contains_key("ratelimit-policy"));
        assert!(
            !headers.contains_key("ratelimit"),
            "no state is claimed when Redis is down"
        );
    }
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics.contains(
            r#"study_mode_ratelimit_decisions_total{policy="chat",outcome="failed_open"} 5"#
        ),
        "{metrics}"
    );

    let _redis = OwnRedis::start(port).await;
    let recovered = async {
        loop {
            if let Ok(h) = limiter.check(Policy::Chat, &user).await
                && h.contains_key("ratelimit")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(15), recovered)
        .await
        .expect("limiting resumes");
    // The restarted Redis is empty: one admitted above, one more, then 429.
    assert!(limiter.check(Policy::Chat, &user).await.is_ok());
    assert!(limiter.check(Policy::Chat, &user).await.is_err());
}

#[tokio::test]
async fn the_client_ip_is_the_peer_unless_it_is_a_trusted_proxy() {
    for (trusted, expected) in [
        ("", "127.0.0.1"),
        ("127.0.0.0/8, 10.0.0.0/8", "198.51.100.7"),
    ] {
        let app = spawn_echo_app_with(Backend::Embedded, &[("TRUSTED_PROXIES", trusted)]).await;
        let router = axum::Router::new()
            .route(
                "/ip",
                axum::routing::get(|ClientIp(ip): ClientIp| async move { ip.to_string() }),
            )
            .with_state(app.state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/ip", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        let ip = reqwest::Client::new()
            .get(&url)
            .header("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.3")
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("text");
        assert_eq!(ip, expected, "TRUSTED_PROXIES={trusted:?}");
    }
}

#[tokio::test]
async fn an_invalid_policy_or_proxy_list_is_a_configuration_error_naming_the_variable() {
    let mut env = study_mode_api::config::Env::from_map([
        ("RATE_LIMIT_CHAT", "20/fortnight"),
        ("RATE_LIMIT_ANON", "0/minute"),
        ("TRUSTED_PROXIES", "10.0.0.0/99"),
        ("JWT_LEEWAY_SECS", "600"),
    ]);
    let errors = study_mode_api::settings::Settings::from_env(&mut env).expect_err("invalid");
    let names: Vec<&str> = errors.0.iter().map(|e| e.variable.as_str()).collect();
    for v in [
        "RATE_LIMIT_CHAT",
        "RATE_LIMIT_ANON",
        "TRUSTED_PROXIES",
        "JWT_LEEWAY_SECS",
    ] {
        assert!(names.contains(&v), "{v} not reported: {errors}");
    }
}

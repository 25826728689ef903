//! The Redis cache against a real Redis. (The embedded mode has no shared cache: lessons are
//! cached by the loader's in-process tier, tested in `content/lessons.rs`.)

use std::time::Duration;

use bytes::Bytes;
use study_mode_api::redis::RedisCache;

use crate::support::app::{Backend, TestApp, spawn_echo_app, spawn_echo_app_with, unique};

/// The app's Redis cache (production backend).
fn redis_cache(app: &TestApp) -> &RedisCache {
    app.cache
        .as_ref()
        .expect("the production backend has a Redis cache")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_value_is_read_back_until_it_expires() {
    set_get_expire(Backend::Production).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_exactly_the_named_keys() {
    delete_keys(Backend::Production).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_prefix_removes_every_key_under_the_prefix_and_no_other() {
    delete_prefix(Backend::Production).await
}

#[tokio::test]
async fn the_embedded_mode_has_no_shared_cache() {
    let app = spawn_echo_app(Backend::Embedded).await;
    assert!(app.cache.is_none());
}

async fn set_get_expire(backend: Backend) {
    let app = spawn_echo_app(backend).await;
    let cache = redis_cache(&app);
    let key = unique("k");
    assert_eq!(cache.get(&key).await, None);
    cache
        .set(
            &key,
            Bytes::from_static(b"lesson"),
            Duration::from_millis(300),
        )
        .await;
    assert_eq!(cache.get(&key).await.as_deref(), Some(&b"lesson"[..]));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(cache.get(&key).await, None, "expired values are gone");
}

async fn delete_keys(backend: Backend) {
    let app = spawn_echo_app(backend).await;
    let cache = redis_cache(&app);
    let (a, b) = (unique("a"), unique("b"));
    for k in [&a, &b] {
        cache
            .set(k, Bytes::from_static(b"v"), Duration::from_secs(60))
            .await;
    }
    assert_eq!(cache.delete(std::slice::from_ref(&a)).await, 1);
    assert_eq!(cache.get(&a).await, None);
    assert!(cache.get(&b).await.is_some());
}

async fn delete_prefix(backend: Backend) {
    let app = spawn_echo_app(backend).await;
    let cache = redis_cache(&app);
    let prefix = unique("lesson:");
    for i in 0..5 {
        cache
            .set(
                &format!("{prefix}:{i}"),
                Bytes::from_static(b"v"),
                Duration::from_secs(60),
            )
            .await;
    }
    let other = unique("other:");
    cache
        .set(&other, Bytes::from_static(b"v"), Duration::from_secs(60))
        .await;
    assert_eq!(cache.delete_prefix(&prefix).await, 5);
    assert_eq!(cache.get(&format!("{prefix}:0")).await, None);
    assert!(cache.get(&other).await.is_some());
}

#[tokio::test]
async fn redis_keys_live_under_the_configured_prefix() {
    let app = spawn_echo_app(Backend::Production).await;
    let prefix = app
        .redis_prefix
        .clone()
        .expect("production app has a prefix");
    redis_cache(&app)
        .set("probe", Bytes::from_static(b"1"), Duration::from_secs(30))
        .await;
    let client = redis::Client::open(crate::support::app::test_redis_url()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let raw: Option<Vec<u8>> = redis::cmd("GET")
        .arg(format!("{prefix}probe"))
        .query_async(&mut conn)
        .await
        .expect("GET");
    assert_eq!(raw.as_deref(), Some(&b"1"[..]));
}

#[tokio::test]
async fn a_redis_failure_is_a_miss_and_is_counted_never_an_error() {
    let app = spawn_echo_app_with(Backend::Embedded, &[("REDIS_URL", "redis://127.0.0.1:1")]).await;
    let cache = redis_cache(&app);
    cache
        .set("k", Bytes::from_static(b"v"), Duration::from_secs(5))
        .await;
    assert_eq!(cache.get("k").await, None);
    assert_eq!(cache.delete(&["k".to_owned()]).await, 0);
    let text = app.get("/metrics").await.text().await.expect("text");
    assert!(
        text.contains(
            r#"study_mode_cache_operations_total{backend="redis",operation="get",outcome="error"}"#
        ),
        "{text}"
    );
    // Requests keep working.
    assert_eq!(app.get("/health").await.status(), 200);
}

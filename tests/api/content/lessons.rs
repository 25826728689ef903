//! Lesson loading through the real loader, against a fake GitHub or the sample book, once per
//! backend (in-process cache only, and Redis as the shared second tier).

use std::sync::Arc;
use std::time::Duration;

use study_mode_api::content::LessonPath;

use crate::per_backend;
use crate::support::app::{Backend, metric, spawn_echo_app, spawn_echo_app_with};
use crate::support::github::{FakeGitHub, LESSON, TOKEN};

fn path(p: &str) -> LessonPath {
    LessonPath::parse(p).expect("valid path")
}

per_backend! {
    extensions_are_tried_in_order_md_mdx_index_readme => extension_order;
    a_path_with_an_extension_is_fetched_as_is => explicit_extension;
    every_origin_request_carries_the_token => token_header;
    two_hundred_concurrent_first_requests_cause_one_fetch_chain => single_flight;
    a_missing_lesson_is_remembered_only_for_the_negative_ttl => negative_ttl;
    the_last_good_copy_is_served_when_the_origin_fails => stale_on_failure;
    an_origin_failure_without_any_copy_is_an_error => failure_without_copy;
    the_sample_book_is_served_from_the_local_folder => local_sample_book;
}

async fn extension_order(backend: Backend) {
    let fake = FakeGitHub::start(&[
        ("01-a/02-b/index.md", LESSON),
        ("01-a/03-c/README.md", LESSON),
    ])
    .await;
    let app = fake.spawn_echo_app(backend, &[]).await;
    let lesson = app
        .state
        .content
        .lesson(&path("01-a/02-b"))
        .await
        .expect("ok");
    assert_eq!(lesson.expect("found").title, "Loops");
    let order: Vec<String> = fake.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(
        order,
        ["01-a/02-b.md", "01-a/02-b.mdx", "01-a/02-b/index.md"]
    );
    let readme = app
        .state
        .content
        .lesson(&path("01-a/03-c"))
        .await
        .expect("ok");
    assert!(readme.is_some(), "README.md is the last candidate");
    assert_eq!(fake.raw_requests(), 7);
}

async fn explicit_extension(backend: Backend) {
    let fake = FakeGitHub::start(&[("01-a/02-b.mdx", LESSON)]).await;
    let app = fake.spawn_echo_app(backend, &[]).await;
    let lesson = app
        .state
        .content
        .lesson(&path("docs/01-a/02-b.mdx"))
        .await
        .expect("ok");
    assert!(lesson.is_some());
    let order: Vec<String> = fake.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(order, ["01-a/02-b.mdx"]);
}

async fn token_header(backend: Backend) {
    let fake = FakeGitHub::start(&[]).await;
    let app = fake.spawn_echo_app(backend, &[]).await;
    let lesson = app
        .state
        .content
        .lesson(&path("01-a/nothing"))
        .await
        .expect("ok");
    assert!(lesson.is_none());
    let seen = fake.seen();
    assert_eq!(seen.len(), 4);
    for s in seen {
        assert_eq!(
            s.authorization.as_deref(),
            Some(format!("token {TOKEN}").as_str())
        );
    }
}

async fn single_flight(backend: Backend) {
    let fake = FakeGitHub::start(&[("01-a/02-loops.md", LESSON)]).await;
    fake.set_delay(Duration::from_millis(300));
    // 200 requests from one client IP: lift the anonymous per-IP limit out of the way.
    let app = Arc::new(
        fake.spawn_echo_app(backend, &[("RATE_LIMIT_ANON", "100000/minute")])
            .await,
    );
    let url = app.url("/chatkit/suggestions?lesson_path=01-a/02-loops");
    let requests = (0..200).map(|_| {
        let client = app.client.clone();
        let url = url.clone();
        tokio::spawn(async move {
            client
                .get(url)
                .send()
                .await
                .expect("request")
                .json::<serde_json::Value>()
                .await
        })
    });
    for r in futures::future::join_all(requests).await {
        let body = r.expect("task").expect("json");
        assert_eq!(body["lesson"]["title"], "Loops");
    }
    assert_eq!(
        fake.raw_requests(),
        1,
        "exactly one origin request for one lesson"
    );
    let waiters = metric(&app, "study_mode_content_singleflight_waiters_total").await;
    assert!(
        waiters >= 1.0,
        "some requests waited for the shared load ({waiters})"
    );
    let fetches = metric(&app, "study_mode_content_origin_fetches_total").await;
    assert_eq!(fetches, 1.0);
}

async fn negative_ttl(backend: Backend) {
    let fake = FakeGitHub::start(&[]).await;
    let app = fake
        .spawn_echo_app(backend, &[("CONTENT_NEGATIVE_TTL", "1")])
        .await;
    let p = path("01-a/later");
    assert!(app.state.content.lesson(&p).await.expect("ok").is_none());
    assert_eq!(fake.raw_requests(), 4);
    fake.put("01-a/later.md", LESSON);
    assert!(
        app.state.content.lesson(&p).await.expect("ok").is_none(),
        "still remembered as missing"
    );
    assert_eq!(fake.raw_requests(), 4, "no origin request while remembered");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let found = app.state.content.lesson(&p).await.expect("ok");
    assert_eq!(found.expect("found after the negative TTL").title, "Loops");
    assert_eq!(fake.raw_requests(), 5);
}

async fn stale_on_failure(backend: Backend) {
    let fake = FakeGitHub::start(&[("01-a/02-b.md", LESSON)]).await;
    let app = fake
        .spawn_echo_app(backend, &[("CONTENT_CACHE_TTL", "1")])
        .await;
    let p = path("01-a/02-b");
    assert!(app.state.content.lesson(&p).await.expect("ok").is_some());
    fake.set_failing(true);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let stale = app
        .state
        .content
        .lesson(&p)
        .await
        .expect("the last good copy is served");
    assert_eq!(stale.expect("found").title, "Loops");
    assert_eq!(fake.raw_requests(), 2, "the origin was tried again");
    assert_eq!(
        metric(&app, "study_mode_content_stale_serves_total").await,
        1.0
    );
    let errors = metric(
        &app,
        "study_mode_content_origin_fetches_total{source=\"github\",outcome=\"error\"}",
    )
    .await;
    assert_eq!(errors, 1.0);
}

async fn failure_without_copy(backend: Backend) {
    let fake = FakeGitHub::start(&[("01-a/02-b.md", LESSON)]).await;
    fake.set_failing(true);
    let app = fake.spawn_echo_app(backend, &[]).await;
    let result = app.state.content.lesson(&path("01-a/02-b")).await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(fake.raw_requests(), 1, "a 500 stops the extension chain");
    // The failure is not cached: once the origin is back, the lesson loads.
    fake.set_failing(false);
    assert!(
        app.state
            .content
            .lesson(&path("01-a/02-b"))
            .await
            .expect("ok")
            .is_some()
    );
}

async fn local_sample_book(backend: Backend) {
    let app = spawn_echo_app(backend).await;
    let content = &app.state.content;
    let mdx = content
        .lesson(&path(
            "01-python-basics/01-values-and-variables/02-numbers-and-strings",
        ))
        .await
        .expect("ok")
        .expect("the .mdx lesson is found");
    assert_eq!(mdx.title, "Numbers and Strings");
    for gone in [
        "import ",
        "export const",
        "<TypeExplorer",
        "<Callout",
        "<Tabs>",
        "sidebar_position",
    ] {
        assert!(!mdx.body.contains(gone), "{gone} left in the body");
    }
    assert!(
        mdx.body.contains("age = int(\"17\") + 1"),
        "children of components are kept"
    );
    let index = content
        .lesson(&path("01-python-basics/02-control-flow"))
        .await
        .expect("ok");
    assert_eq!(index.expect("index.md").title, "Control Flow");
    let loops = content
        .lesson(&path("01-python-basics/02-control-flow/02-loops"))
        .await
        .expect("ok");
    let loops = loops.expect("found");
    assert_eq!(
        loops.title, "Repeating Work with Loops",
        "first H1 when frontmatter has no title"
    );
    let headings: Vec<&str> = loops.sections.iter().map(|s| s.heading.as_str()).collect();
    assert!(headings.contains(&"while loops"), "{headings:?}");
    assert!(
        content
            .lesson(&path("01-python-basics/99-nope"))
            .await
            .expect("ok")
            .is_none()
    );
}

#[tokio::test]
async fn with_redis_down_lessons_are_still_served_from_origin_and_memory() {
    let fake = FakeGitHub::start(&[("01-a/02-b.md", LESSON)]).await;
    let app = spawn_echo_app_with(
        Backend::Embedded,
        &fake.settings(&[("REDIS_URL", "redis://127.0.0.1:1")]),
    )
    .await;
    let p = path("01-a/02-b");
    for _ in 0..3 {
        let lesson = app
            .state
            .content
            .lesson(&p)
            .await
            .expect("no error with Redis down");
        assert_eq!(lesson.expect("found").title, "Loops");
    }
    assert_eq!(fake.raw_requests(), 1, "the in-process tier still caches");
    let resp = app.get("/chatkit/suggestions?lesson_path=01-a/02-b").await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_second_instance_reads_the_lesson_from_redis_without_fetching() {
    let fake = FakeGitHub::start(&[("01-a/02-b.md", LESSON)]).await;
    let first = fake.spawn_echo_app(Backend::Production, &[]).await;
    let prefix = first.redis_prefix.clone().expect("prefix");
    assert!(
        first
            .state
            .content
            .lesson(&path("01-a/02-b"))
            .await
            .expect("ok")
            .is_some()
    );
    let second = fake
        .spawn_echo_app(
            Backend::Production,
            &[("REDIS_KEY_PREFIX", prefix.as_str())],
        )
        .await;
    assert!(
        second
            .state
            .content
            .lesson(&path("01-a/02-b"))
            .await
            .expect("ok")
            .is_some()
    );
    assert_eq!(fake.raw_requests(), 1, "the second instance hit L2");
    let l2_hits = metric(
        &second,
        "study_mode_content_cache_lookups_total{tier=\"l2\",outcome=\"hit\"}",
    )
    .await;
    assert_eq!(l2_hits, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_timeout_serves_the_last_good_copy() {
    let fake = FakeGitHub::start(&[("01-a/02-b.md", LESSON)]).await;
    let app = fake
        .spawn_echo_app(
            Backend::Embedded,
            &[
                ("CONTENT_CACHE_TTL", "1"),
                ("CONTENT_FETCH_TIMEOUT_SECS", "1"),
            ],
        )
        .await;
    let p = path("01-a/02-b");
    assert!(app.state.content.lesson(&p).await.expect("ok").is_some());
    fake.set_delay(Duration::from_millis(2500));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let started = std::time::Instant::now();
    let stale = app.state.content.lesson(&p).await.expect("served stale");
    assert!(stale.is_some());
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "the fetch deadline applied"
    );
    assert_eq!(
        metric(&app, "study_mode_content_stale_serves_total").await,
        1.0
    );
}

#[tokio::test]
async fn a_symlink_inside_the_local_book_cannot_lead_outside_it() {
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("secret.md"), "# Secret\n").expect("write");
    let book = tempfile::tempdir().expect("tempdir");
    std::fs::write(book.path().join("real.md"), "# Real\n").expect("write");
    std::os::unix::fs::symlink(outside.path(), book.path().join("link")).expect("symlink");
    let dir = book.path().to_str().expect("utf-8").to_owned();
    let app = spawn_echo_app_with(Backend::Embedded, &[("CONTENT_DIR", dir.as_str())]).await;
    let real = app.state.content.lesson(&path("real")).await.expect("ok");
    assert_eq!(real.expect("found").title, "Real");
    let secret = app
        .state
        .content
        .lesson(&path("link/secret"))
        .await
        .expect("ok");
    assert!(secret.is_none(), "a file outside the root is never read");
}

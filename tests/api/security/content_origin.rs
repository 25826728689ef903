//! The unauthenticated content routes cannot spend the GitHub quota: the lesson listing is
//! cached (until a push), and `/content/*` counts against the anonymous per-IP limit.

use study_mode_api::content::webhook::sign;

use crate::support::app::Backend;
use crate::support::github::{FakeGitHub, LESSON};

const HOOK: &str = "webhook-secret";

fn tree_calls(fake: &FakeGitHub) -> usize {
    fake.seen()
        .iter()
        .filter(|s| s.path.starts_with("/repos/"))
        .count()
}

#[tokio::test]
async fn the_lesson_listing_is_fetched_once_until_a_push_invalidates_it() {
    let fake = FakeGitHub::start(&[("01-a/02-b.md", LESSON)]).await;
    let app = fake
        .spawn_echo_app(Backend::Embedded, &[("GITHUB_WEBHOOK_SECRET", HOOK)])
        .await;
    for _ in 0..5 {
        assert_eq!(app.get("/content/lessons").await.status(), 200);
    }
    assert_eq!(tree_calls(&fake), 1, "{:?}", fake.seen());
    fake.put("01-a/03-c.md", LESSON);
    let push = r#"{"ref":"refs/heads/main","commits":[{"added":["docs/01-a/03-c.md"],"removed":[],"modified":[]}]}"#;
    let res = app
        .client
        .post(app.url("/webhooks/github"))
        .header("x-github-event", "push")
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sign(HOOK, push.as_bytes()))
        .body(push)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    let index: serde_json::Value = app
        .get("/content/lessons")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(tree_calls(&fake), 2);
    assert_eq!(
        index["lessons"].as_array().map(Vec::len),
        Some(2),
        "{index}"
    );
}

#[tokio::test]
async fn content_routes_count_against_the_anonymous_per_ip_limit() {
    let fake = FakeGitHub::start(&[("01-a/02-b.md", LESSON)]).await;
    let app = fake
        .spawn_echo_app(Backend::Embedded, &[("RATE_LIMIT_ANON", "3/minute")])
        .await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let res = app
            .get(&format!("/content/lesson?lesson_path=01-a/unseen-{i}"))
            .await;
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [404, 404, 404, 429]);
    assert_eq!(app.get("/content/lessons").await.status(), 429);
    assert!(
        fake.raw_requests() <= 12,
        "the refused requests fetched nothing"
    );
}

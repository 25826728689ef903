//! Lesson paths that would change the origin URL built from them (`#`, `?`, `@`).

use super::client_error;
use crate::support::app::Backend;
use crate::support::github::{FakeGitHub, LESSON};

#[tokio::test]
async fn fragment_query_and_userinfo_marks_in_lesson_path_are_400_and_never_fetched() {
    let fake = FakeGitHub::start(&[("01-a/02-b.md", LESSON), ("notes/secret.txt", "secret")]).await;
    let app = fake.spawn_echo_app(Backend::Embedded, &[]).await;
    for attack in [
        "notes/secret.txt#",
        "..#",
        "01-a/02-b#v1",
        "01-a/02-b?v=1",
        "01-a/02-b%23v2",
        "01-a/02-b%3Fv=2",
        "01-a@evil/02-b",
    ] {
        let encoded: String = url::form_urlencoded::byte_serialize(attack.as_bytes()).collect();
        let res = app
            .get(&format!("/content/lesson?lesson_path={encoded}"))
            .await;
        let body = client_error(res, 400).await;
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("lesson_path"), "{attack}: {message}");
    }
    assert_eq!(fake.raw_requests(), 0, "{:?}", fake.seen());
    let res = app.get("/content/lesson?lesson_path=01-a/02-b").await;
    assert_eq!(res.status(), 200, "an ordinary lesson is still served");
}

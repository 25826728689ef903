//! `GET /study` (the embedded study page and its assets), `GET /content/lessons` and
//! `GET /content/lesson`.

use serde_json::Value;

use crate::support::app::{Backend, TestApp, spawn_echo_app};

/// The `src`/`href` of every same-origin asset an HTML page references.
fn referenced_assets(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for chunk in html.split(attr).skip(1) {
            let url = &chunk[..chunk.find('"').unwrap_or(0)];
            if url.starts_with("/study/") {
                out.push(url.to_owned());
            }
        }
    }
    out
}

#[tokio::test]
async fn the_study_page_and_every_asset_it_references_come_from_the_binary() {
    let app = spawn_echo_app(Backend::Embedded).await;
    let page = app.get("/study").await;
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let csp = headers["content-security-policy"].to_str().expect("ascii");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let html = page.text().await.expect("text");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page loads something from another origin"
    );
    let assets = referenced_assets(&html);
    assert!(assets.len() >= 2, "{assets:?}");
    for asset in assets {
        let res = app.get(&asset).await;
        assert_eq!(res.status(), 200, "{asset}");
        let ctype = res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let expected = if asset.ends_with(".js") {
            "text/javascript"
        } else {
            "text/css"
        };
        assert!(ctype.starts_with(expected), "{asset}: {ctype}");
    }
}

#[tokio::test]
async fn the_modules_the_page_imports_are_served_too() {
    let app = spawn_echo_app(Backend::Embedded).await;
    let main = app.get("/study/study.js").await.text().await.expect("text");
    for chunk in main.split("from \"./").skip(1) {
        let file = &chunk[..chunk.find('"').expect("quote")];
        let res = app.get(&format!("/study/{file}")).await;
        assert_eq!(
            res.status(),
            200,
            "study.js imports {file}, which is not served"
        );
    }
}

#[tokio::test]
async fn an_unknown_study_asset_is_a_json_404() {
    let app = spawn_echo_app(Backend::Embedded).await;
    let res = app.get("/study/nope.js").await;
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"]["code"], "not_found");
}

async fn lesson_index(app: &TestApp) -> Vec<Value> {
    let res = app.get("/content/lessons").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    body["lessons"].as_array().expect("lessons").clone()
}

#[tokio::test]
async fn the_lesson_index_lists_every_sample_lesson_with_a_title_sorted_by_path() {
    let app = spawn_echo_app(Backend::Embedded).await;
    let lessons = lesson_index(&app).await;
    assert!(lessons.len() >= 2, "{lessons:?}");
    let paths: Vec<&str> = lessons
        .iter()
        .map(|l| l["path"].as_str().expect("path"))
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    for lesson in &lessons {
        assert!(
            !lesson["title"].as_str().expect("title").is_empty(),
            "{lesson}"
        );
    }
}

#[tokio::test]
async fn a_listed_lesson_is_returned_with_its_title_and_cleaned_body() {
    let app = spawn_echo_app(Backend::Embedded).await;
    let first = lesson_index(&app).await.remove(0);
    let path = first["path"].as_str().expect("path");
    let res = app
        .get(&format!("/content/lesson?lesson_path={path}"))
        .await;
    assert_eq!(res.status(), 200);
    let lesson: Value = res.json().await.expect("json");
    assert_eq!(lesson["path"], path);
    assert_eq!(lesson["title"], first["title"]);
    let body = lesson["body"].as_str().expect("body");
    assert!(body.len() > 50, "{body}");
    assert!(
        !body.trim_start().starts_with("---"),
        "the frontmatter was not removed"
    );
}

#[tokio::test]
async fn a_bad_missing_or_unknown_lesson_path_is_a_clear_client_error() {
    let app = spawn_echo_app(Backend::Embedded).await;
    for (query, status, needle) in [
        ("", 400, "lesson_path"),
        ("?lesson_path=../etc/passwd", 400, "lesson_path"),
        // The message starts with the parameter's path, as every 400 does (schemathesis saw
        // `query.invalid lesson_path: …`).
        (
            "?lesson_path=",
            400,
            "query.lesson_path: invalid lesson_path: must not be empty",
        ),
        ("?lesson_path=no-such/lesson", 404, "no-such/lesson"),
    ] {
        let res = app.get(&format!("/content/lesson{query}")).await;
        assert_eq!(res.status(), status, "{query}");
        let body: Value = res.json().await.expect("json");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains(needle), "{query}: {message}");
    }
}

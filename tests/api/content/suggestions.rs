//! `GET /chatkit/suggestions` against the sample book, once per backend.

use reqwest::StatusCode;
use serde_json::Value;

use crate::per_backend;
use crate::support::app::{Backend, spawn_echo_app};

const LISTS: &str = "02-working-with-data/01-collections/01-lists";

per_backend! {
    teach_suggestions_come_from_the_lesson_title_and_headings => teach;
    ask_suggestions_are_short_lookups_about_the_lesson => ask;
    a_missing_lesson_gets_generic_suggestions_and_a_null_lesson => missing;
    a_bad_path_is_400_and_an_unknown_mode_is_422 => bad_input;
    answers_carry_an_etag_and_if_none_match_gets_304 => etag;
}

async fn get_json(app: &crate::support::app::TestApp, query: &str) -> Value {
    let resp = app.get(&format!("/chatkit/suggestions?{query}")).await;
    assert_eq!(resp.status(), StatusCode::OK, "{query}");
    resp.json().await.expect("json")
}

fn strings(v: &Value) -> Vec<String> {
    v["suggestions"]
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_owned())
        .collect()
}

async fn teach(backend: Backend) {
    let app = spawn_echo_app(backend).await;
    let body = get_json(&app, &format!("lesson_path={LISTS}&mode=teach")).await;
    assert_eq!(body["lesson"]["path"], LISTS);
    assert_eq!(body["lesson"]["title"], "Lists");
    let s = strings(&body);
    assert!((3..=4).contains(&s.len()), "{s:?}");
    assert!(s[0].contains("Lists"), "{s:?}");
    assert!(s.iter().any(|x| x.contains("Indexing")), "{s:?}");
    // No mode means teach.
    let default = get_json(&app, &format!("lesson_path=docs/{LISTS}")).await;
    assert_eq!(strings(&default), s);
}

async fn ask(backend: Backend) {
    let app = spawn_echo_app(backend).await;
    let body = get_json(&app, &format!("lesson_path={LISTS}&mode=ask")).await;
    let s = strings(&body);
    assert!((3..=4).contains(&s.len()), "{s:?}");
    assert!(s[0].starts_with("Summarise \"Lists\""), "{s:?}");
    assert!(s.iter().any(|x| x == "What is Indexing?"), "{s:?}");
    let teach = get_json(&app, &format!("lesson_path={LISTS}&mode=teach")).await;
    assert_ne!(strings(&teach), s);
}

async fn missing(backend: Backend) {
    let app = spawn_echo_app(backend).await;
    for query in [
        "lesson_path=01-python-basics/99-missing&mode=teach",
        "mode=ask",
        "",
        // An empty value is the same as none (`allowEmptyValue` in the OpenAPI document).
        "lesson_path=&mode=",
    ] {
        let body = get_json(&app, query).await;
        assert!(body["lesson"].is_null(), "{query}: {body}");
        assert_eq!(strings(&body).len(), 3, "{query}");
    }
}

async fn bad_input(backend: Backend) {
    let app = spawn_echo_app(backend).await;
    for query in [
        "lesson_path=../etc/passwd",
        "lesson_path=%252e%252e/x",
        "lesson_path=/etc/passwd",
        "lesson_path=a%5Cb",
    ] {
        let resp = app.get(&format!("/chatkit/suggestions?{query}")).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"]["code"], "bad_request");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("lesson_path")
        );
    }
    // A blank value is not an empty one: it is checked, so a blank path or one longer than
    // 512 bytes is refused whatever it holds (schemathesis found 600 blanks answered 200).
    let long = "a".repeat(600);
    let blanks = "%20".repeat(600);
    for query in [
        format!("lesson_path={long}"),
        format!("lesson_path={blanks}"),
        "lesson_path=%20".to_owned(),
    ] {
        let resp = app.get(&format!("/chatkit/suggestions?{query}")).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{query}");
    }
    let resp = app.get("/chatkit/suggestions?mode=%20").await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let resp = app
        .get(&format!(
            "/chatkit/suggestions?lesson_path={LISTS}&mode=review"
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = resp.json().await.expect("json");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("review") && message.contains("quiz"),
        "{message}"
    );
    let quiz = app
        .get(&format!(
            "/chatkit/suggestions?lesson_path={LISTS}&mode=quiz"
        ))
        .await;
    assert_eq!(
        quiz.status(),
        StatusCode::OK,
        "quiz is the tutor's third mode"
    );
}

async fn etag(backend: Backend) {
    let app = spawn_echo_app(backend).await;
    let url = app.url(&format!("/chatkit/suggestions?lesson_path={LISTS}"));
    let first = app.client.get(&url).send().await.expect("request");
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers()["etag"].to_str().expect("ascii").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert!(
        first.headers()["cache-control"]
            .to_str()
            .expect("ascii")
            .contains("max-age")
    );
    let again = app
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("request");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["etag"].to_str().expect("ascii"), etag);
    assert!(again.bytes().await.expect("body").is_empty());
    let stale = app
        .client
        .get(&url)
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .expect("request");
    assert_eq!(stale.status(), StatusCode::OK);
    let ask = app
        .client
        .get(format!("{url}&mode=ask"))
        .send()
        .await
        .expect("request");
    assert_ne!(
        ask.headers()["etag"].to_str().expect("ascii"),
        etag,
        "a different body has a different ETag"
    );
}

//! A page of `items.list` is bounded in bytes (`PAGE_MAX_BYTES`), and `has_more` / `after` still
//! walk every item exactly once.

use serde_json::json;

use crate::per_backend;
use crate::support::app::{Backend, spawn_echo_app_with, unique};

per_backend! {
    pages_of_big_items_are_cut_by_bytes_and_the_cursor_still_reaches_every_item => page_bytes;
}

async fn page_bytes(backend: Backend) {
    let app = spawn_echo_app_with(backend, &[("PAGE_MAX_BYTES", "6000")]).await;
    let c = app.chat(&unique("pages"));
    let big = "x".repeat(2_000);
    let (thread_id, _) = c.create(&big).await;
    for _ in 0..3 {
        assert_eq!(c.say(&thread_id, &big).await.status, 200);
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = json!({"thread_id": thread_id, "order": "asc", "limit": 100});
        if let Some(a) = &after {
            params["after"] = json!(a);
        }
        let page = c
            .send(json!({"type": "items.list", "params": params}))
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert!(
            page.text.len() < 6_000 + 2_500,
            "a page of {} bytes",
            page.text.len()
        );
        let body = page.json();
        let ids: Vec<String> = body["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|i| i["id"].as_str().expect("id").to_owned())
            .collect();
        assert!(!ids.is_empty(), "every page carries at least one item");
        seen.extend(ids);
        pages += 1;
        if body["has_more"] != true {
            break;
        }
        after = body["after"].as_str().map(str::to_owned);
        assert_eq!(after.as_deref(), seen.last().map(String::as_str));
    }
    assert!(pages > 1, "the byte bound cut the page");
    let all = c.items(&thread_id).await.len();
    let mut unique_ids = seen.clone();
    unique_ids.dedup();
    assert_eq!(unique_ids.len(), seen.len(), "no item twice");
    assert_eq!(
        seen.len(),
        8,
        "every item once ({all} listed without a cursor)"
    );
}

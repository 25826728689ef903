//! U+0000, which PostgreSQL refuses in text and JSONB, refused alike on both backends before
//! anything is written.

use serde_json::{Value, json};

use super::{client_error, post_chatkit_as};
use crate::support::app::{Backend, spawn_echo_app, unique};

crate::per_backend! {
    a_nul_in_any_field_is_400_naming_it_and_writes_nothing => nul_refused;
}

async fn nul_refused(backend: Backend) {
    let app = spawn_echo_app(backend).await;
    let user = unique("nul");
    let message = |text: &str| {
        json!({"content": [{"type": "input_text", "text": text}], "attachments": [],
               "inference_options": {}})
    };
    let attacks = [
        (
            json!({"type": "threads.create", "params": {"input": message("hi\u{0}there")}}),
            "params.input.content[0].text",
        ),
        (
            json!({"type": "threads.update", "params": {"thread_id": "thr_x", "title": "t\u{0}"}}),
            "params.title",
        ),
        (
            json!({"type": "threads.get_by_id", "params": {"thread_id": "thr\u{0}"}}),
            "params.thread_id",
        ),
        (
            json!({"type": "threads.list", "params": {"after": "\u{0}"}}),
            "params.after",
        ),
        (
            json!({"type": "items.feedback", "params": {"thread_id": "thr_x",
                   "item_ids": ["a", "b\u{0}"], "kind": "positive"}}),
            "params.item_ids[1]",
        ),
    ];
    for (body, field) in attacks {
        let res = post_chatkit_as(&app, &user, &body).await;
        let error = client_error(res, 400).await;
        let text = error["error"]["message"].as_str().unwrap_or_default();
        assert!(
            text.starts_with(&format!("{field}:")),
            "{backend:?}: {text}"
        );
    }
    let list = json!({"type": "threads.list", "params": {}});
    let threads: Value = post_chatkit_as(&app, &user, &list)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        threads["data"],
        json!([]),
        "no thread left behind: {threads}"
    );
}

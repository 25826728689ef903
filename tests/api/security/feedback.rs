//! `items.feedback` naming many items: deduplicated, capped, checked in one query.

use serde_json::json;

use crate::support::app::{Backend, metric, spawn_echo_app, unique};
use crate::support::chatkit_client::of_type;

crate::per_backend! {
    feedback_naming_one_item_thousands_of_times_costs_one_query => feedback_amplification;
}

async fn feedback_amplification(backend: Backend) {
    let app = spawn_echo_app(backend).await;
    let c = app.chat(&unique("fb"));
    let (thread_id, answer) = c.create("rate me").await;
    let reply_id = of_type(&answer.events(), "thread.item.done")[1]["item"]["id"]
        .as_str()
        .expect("reply id")
        .to_owned();
    let same = vec![reply_id.clone(); 20_000];
    let res = c
        .send_raw(
            &json!({"type": "items.feedback",
                    "params": {"thread_id": thread_id, "item_ids": same, "kind": "positive"}})
            .to_string(),
        )
        .await;
    assert_eq!((res.status, res.text.as_str()), (200, "{}"));
    let ops = "study_mode_store_operation_duration_seconds_count";
    let backend_name = match backend {
        Backend::Embedded => "sqlite",
        Backend::Production => "postgres",
    };
    let count = |op: &str| format!(r#"{ops}{{backend="{backend_name}",operation="{op}"}}"#);
    assert_eq!(metric(&app, &count("visible_item_ids")).await, 1.0);
    assert_eq!(metric(&app, &count("load_item")).await, 0.0);
    let distinct: Vec<String> = (0..101).map(|i| format!("msg_{i}")).collect();
    let res = c
        .send_raw(
            &json!({"type": "items.feedback",
                    "params": {"thread_id": thread_id, "item_ids": distinct, "kind": "negative"}})
            .to_string(),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.text.contains("params.item_ids"), "{}", res.text);
}

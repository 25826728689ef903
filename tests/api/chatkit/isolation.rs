//! Per-user isolation: for every request type, another user's thread or item behaves exactly
//! like a missing one, and nothing of the owner's changes.

use serde_json::{Value, json};

use crate::per_backend;
use crate::support::app::{Backend, spawn_echo_app, unique};
use crate::support::chatkit_client::{Answer, Chat, input, of_type};

per_backend! {
    another_users_thread_or_item_behaves_like_a_missing_one_for_every_request_type => isolation;
}

fn req(kind: &str, params: Value) -> Value {
    json!({"type": kind, "params": params})
}

/// Every request that names a thread or item, aimed at `thread` / `item`.
fn targeted(thread: &str, item: &str) -> Vec<Value> {
    let action = json!({"type": "tutor.next"});
    vec![
        req("threads.get_by_id", json!({"thread_id": thread})),
        req(
            "threads.update",
            json!({"thread_id": thread, "title": "stolen"}),
        ),
        req("items.list", json!({"thread_id": thread})),
        req(
            "items.feedback",
            json!({"thread_id": thread, "item_ids": [item], "kind": "negative"}),
        ),
        req(
            "threads.sync_custom_action",
            json!({"thread_id": thread, "item_id": item, "action": action}),
        ),
        req(
            "threads.add_user_message",
            json!({"thread_id": thread, "input": input("hijack")}),
        ),
        req(
            "threads.add_client_tool_output",
            json!({"thread_id": thread, "result": {}}),
        ),
        req(
            "threads.add_structured_input",
            json!({"thread_id": thread, "item_id": item, "input": {}}),
        ),
        req(
            "threads.retry_after_item",
            json!({"thread_id": thread, "item_id": item}),
        ),
        req(
            "threads.custom_action",
            json!({"thread_id": thread, "item_id": item, "action": action}),
        ),
        req("threads.delete", json!({"thread_id": thread})),
    ]
}

/// Status, error code and the message with ids blanked: what a client can observe.
fn observable(a: &Answer) -> (u16, String, String) {
    let message = if a.status == 200 {
        a.text.clone()
    } else {
        a.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let blank = message
        .split('"')
        .enumerate()
        .map(|(i, part)| if i % 2 == 1 { "…" } else { part })
        .collect::<Vec<_>>()
        .join("\"");
    (
        a.status,
        if a.status == 200 {
            String::new()
        } else {
            a.error_code()
        },
        blank,
    )
}

async fn isolation(backend: Backend) {
    let app = spawn_echo_app(backend).await;
    let alice = Chat::new(&app.address, &unique("alice"));
    let bob = Chat::new(&app.address, &unique("bob"));
    let (thread, answer) = alice.create("my private notes").await;
    let item = of_type(&answer.events(), "thread.item.done")[0]["item"]["id"]
        .as_str()
        .expect("item")
        .to_owned();
    let before = alice.items(&thread).await;

    for (foreign, missing) in targeted(&thread, &item)
        .into_iter()
        .zip(targeted("thr_ffffffffffffffff", "msg_ffffffffffffffff"))
    {
        let a = bob.send(foreign.clone()).await;
        let b = bob.send(missing).await;
        assert_eq!(observable(&a), observable(&b), "{foreign}");
        assert_eq!(a.status, 404, "{foreign}: {}", a.text);
    }
    // Bob's own thread whose item id is Alice's: the item is missing for him too.
    let (own, _) = bob.create("mine").await;
    for (foreign, missing) in targeted(&own, &item)
        .into_iter()
        .zip(targeted(&own, "msg_ffffffffffffffff"))
    {
        let kind = foreign["type"].as_str().unwrap_or_default().to_owned();
        if [
            "threads.delete",
            "threads.update",
            "threads.add_user_message",
            "items.list",
            "threads.get_by_id",
        ]
        .contains(&kind.as_str())
        {
            continue; // these do not name an item
        }
        let a = bob.send(foreign.clone()).await;
        let b = bob.send(missing).await;
        assert_eq!(observable(&a), observable(&b), "{foreign}");
    }
    let listed = bob.send(req("threads.list", json!({}))).await.json();
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|t| t["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, [own.as_str()], "bob lists only his own thread");
    for body in [
        req(
            "attachments.delete",
            json!({"attachment_id": "atc_of_alice"}),
        ),
        req(
            "attachments.create",
            json!({"name": "a", "size": 1, "mime_type": "text/plain"}),
        ),
        req(
            "input.transcribe",
            json!({"audio_base64": "", "mime_type": "audio/mp4"}),
        ),
    ] {
        assert_eq!(bob.send(body).await.status, 400);
    }

    assert_eq!(
        alice.items(&thread).await,
        before,
        "alice's items are untouched"
    );
    let mine = alice
        .send(req("threads.get_by_id", json!({"thread_id": thread})))
        .await
        .json();
    assert_eq!(mine["title"], "my private notes");
}

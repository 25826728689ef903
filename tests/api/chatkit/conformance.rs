//! Differential conformance: the scripted conversation in `tests/conformance/scenario.json`
//! runs through our server and through the reference `chatkit.server.ChatKitServer` (with a
//! `respond` that emits what `EchoResponder` emits); event sequences and bodies must match once
//! ids and timestamps are normalised. Excluded, as documented in docs/PROTOCOL.md: our extra
//! `thread.item.removed` events on retry. Also checks that the oracle itself catches faults.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::per_backend;
use crate::support::app::{Backend, spawn_echo_app, unique};
use crate::support::chatkit_client::{Chat, assert_conforms, oracle_problems};

per_backend! {
    the_scripted_conversation_matches_the_reference_server_event_for_event => differential;
}

fn scenario() -> Vec<Value> {
    let path = format!(
        "{}/tests/conformance/scenario.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("scenario JSON")
}

/// Replaces `"$name"` strings with learnt ids (same rules as `oracle.py`).
fn substitute(value: &Value, symbols: &HashMap<String, String>) -> Value {
    match value {
        Value::String(s) if s.starts_with('$') => {
            json!(
                symbols
                    .get(&s[1..])
                    .unwrap_or_else(|| panic!("unknown symbol {s}"))
            )
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), substitute(v, symbols)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| substitute(v, symbols)).collect()),
        other => other.clone(),
    }
}

fn learn(symbols: &mut HashMap<String, String>, answer: &Value) {
    for e in answer.as_array().into_iter().flatten() {
        if e["type"] == "thread.created" && !symbols.contains_key("thread") {
            symbols.insert(
                "thread".into(),
                e["thread"]["id"].as_str().unwrap_or_default().into(),
            );
        }
        if e["type"] == "thread.item.done" && e["item"]["type"] == "user_message" {
            let n = symbols.keys().filter(|k| k.starts_with("user")).count();
            symbols.insert(
                format!("user{n}"),
                e["item"]["id"].as_str().unwrap_or_default().into(),
            );
        }
    }
    if let Some(after) = answer.get("after").and_then(Value::as_str) {
        symbols.insert("after".into(), after.into());
    }
}

async fn differential(backend: Backend) {
    let app = spawn_echo_app(backend).await;
    let chat = Chat::new(&app.address, &unique("differential"));
    let steps = scenario();
    let mut symbols = HashMap::new();
    let mut ours = Vec::new();
    for step in &steps {
        let body = substitute(&step["request"], &symbols);
        let answer = chat.send(body).await;
        assert_eq!(answer.status, 200, "step {}: {}", step["name"], answer.text);
        let value = if answer.header("content-type") == Some("text/event-stream") {
            Value::Array(answer.events())
        } else {
            answer.json()
        };
        learn(&mut symbols, &value);
        ours.push(value);
    }
    assert_conforms(json!({"cmd": "differential", "scenario": steps, "ours": ours}));
}

#[test]
fn the_oracle_rejects_extra_fields_missing_defaults_and_bad_framing() {
    let good = r#"data: {"type":"stream_options","stream_options":{"allow_cancel":true}}"#;
    assert!(oracle_problems(&json!({"cmd": "response", "request_type": "threads.create", "body": format!("{good}\n\n")})).is_empty());
    let faults = [
        r#"data: {"type":"stream_options","stream_options":{"allow_cancel":true},"extra":1}"#.to_owned() + "\n\n",
        r#"data: {"type":"thread.item.updated","item_id":"m","update":{"type":"assistant_message.content_part.added","content_index":0,"content":{"text":"","type":"output_text"}}}"#.to_owned() + "\n\n",
        format!("event: message\n{good}\n\n"),
        format!("{good}\n"),
        r#"data: {"type": "stream_options", "stream_options": {"allow_cancel": true}}"#.to_owned() + "\n\n",
    ];
    for body in faults {
        let problems = oracle_problems(
            &json!({"cmd": "response", "request_type": "threads.create", "body": body}),
        );
        assert!(!problems.is_empty(), "the oracle accepted {body:?}");
    }
    let thread = r#"{"id":"thr_1","created_at":"2026-01-01T00:00:00Z","status":{"type":"active"},"metadata":{},"items":{"data":[],"has_more":false},"tittle":"x"}"#;
    assert!(
        !oracle_problems(
            &json!({"cmd": "response", "request_type": "threads.get_by_id", "body": thread})
        )
        .is_empty()
    );
}

//! The widgets this server builds: answer buttons under a tutor's check question.
//!
//! A `Card` holding a column of `Button`s; each button's `onClickAction` is a server-handled
//! action of type [`ANSWER_ACTION`] whose payload carries the answer. The JSON is written
//! with every default the reference fills in (`handler`, `loadingBehavior`, `streaming`), so
//! it round-trips through `openai-chatkit`'s `WidgetRoot` unchanged.

use serde_json::{Value, json};

use crate::turn::{ANSWER_ACTION, Choice};

/// The answer buttons for `choices`.
pub fn answer_buttons(choices: &[Choice]) -> Value {
    let buttons: Vec<Value> = choices
        .iter()
        .map(|c| {
            json!({
                "type": "Button",
                "label": c.label,
                "style": "secondary",
                "block": true,
                "onClickAction": {
                    "type": ANSWER_ACTION,
                    "payload": {"answer": c.value},
                    "handler": "server",
                    "loadingBehavior": "auto",
                    "streaming": true,
                },
            })
        })
        .collect();
    json!({
        "type": "Card",
        "size": "sm",
        "children": [{"type": "Col", "gap": 2, "children": buttons}],
    })
}

/// The answer an answer-button action carries, if `kind`/`payload` are one.
pub fn answer_of(kind: &str, payload: &Value) -> Option<String> {
    if kind != ANSWER_ACTION {
        return None;
    }
    let answer = payload["answer"].as_str()?.trim();
    (!answer.is_empty() && answer.chars().count() <= 2000).then(|| answer.to_owned())
}

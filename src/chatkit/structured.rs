//! Applying a `threads.add_structured_input` submission to a pending `structured_input` item,
//! as the reference's `_apply_structured_input_submission`: a skipped submission, or a
//! missing, skipped or empty answer, becomes `{"values":[],"skipped":true}`; a single-choice
//! question keeps only its first value; the item takes the submission's status.

use serde_json::{Value, json};

use super::request::{StructuredSubmission, SubmissionStatus};
use super::types::{ItemKind, ThreadItem};

/// The updated item, or `None` when `item` is not a pending structured input.
pub fn apply(item: &ThreadItem, submission: &StructuredSubmission) -> Option<ThreadItem> {
    let ItemKind::StructuredInput { status, inputs } = &item.kind else {
        return None;
    };
    if status != "pending" {
        return None;
    }
    let inputs = inputs.iter().map(|q| answer(q, submission)).collect();
    let mut updated = item.clone();
    updated.kind = ItemKind::StructuredInput {
        status: submission.status.as_str().to_owned(),
        inputs,
    };
    Some(updated)
}

fn answer(question: &Value, submission: &StructuredSubmission) -> Value {
    let mut question = question.clone();
    let id = question
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let given = submission.answers.get(id).filter(|a| {
        submission.status != SubmissionStatus::Skipped && !a.skipped && !a.values.is_empty()
    });
    let answer = match given {
        None => json!({"values": [], "skipped": true}),
        Some(a) => {
            let single = question.get("type").and_then(Value::as_str) == Some("multiple_choice")
                && !question
                    .get("multiple")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
            let values: Vec<&String> = if single {
                a.values.iter().take(1).collect()
            } else {
                a.values.iter().collect()
            };
            json!({"values": values, "skipped": false})
        }
    };
    if let Value::Object(map) = &mut question {
        map.insert("answer".into(), answer);
    }
    question
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chatkit::request::AnswerSubmission;

    fn item() -> ThreadItem {
        serde_json::from_value(json!({"id":"si_1","thread_id":"thr_1","created_at":"2026-01-01T00:00:00Z",
            "type":"structured_input","status":"pending","inputs":[
              {"id":"q1","question":"Pick","type":"multiple_choice","options":[{"value":"a"},{"value":"b"}],"multiple":false},
              {"id":"q2","question":"Why?","type":"freeform"}]}))
        .expect("item")
    }

    #[test]
    fn single_choice_keeps_the_first_value_and_missing_answers_are_skipped() {
        let mut answers = std::collections::BTreeMap::new();
        answers.insert(
            "q1".to_owned(),
            AnswerSubmission {
                values: vec!["b".into(), "a".into()],
                skipped: false,
            },
        );
        let sub = StructuredSubmission {
            status: SubmissionStatus::Answered,
            answers,
        };
        let updated = apply(&item(), &sub).expect("pending");
        let ItemKind::StructuredInput { status, inputs } = updated.kind else {
            panic!()
        };
        assert_eq!(status, "answered");
        assert_eq!(inputs[0]["answer"], json!({"values":["b"],"skipped":false}));
        assert_eq!(inputs[1]["answer"], json!({"values":[],"skipped":true}));
        let done = apply(
            &ThreadItem {
                kind: ItemKind::StructuredInput {
                    status: "answered".into(),
                    inputs: vec![],
                },
                ..item()
            },
            &sub,
        );
        assert!(done.is_none());
    }
}

//! The two OpenAI wire formats: request bodies and stream-event decoding for the Responses
//! API (`POST /responses`) and the Chat Completions API (`POST /chat/completions`).

use serde_json::{Value, json};

use super::sse::SseEvent;
use crate::turn::Role;
use crate::tutor::context::Context;
use crate::tutor::prompts;
use crate::tutor::settings::ModelApi;

/// What one upstream event means for the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireEvent {
    Delta(String),
    /// A new content part begins.
    NewPart,
    Usage {
        input: u64,
        output: u64,
    },
    /// The reply is complete.
    Done,
    /// The upstream reported a failure inside the stream.
    Error {
        message: String,
        retryable: bool,
    },
}

/// The request body for `api`.
pub fn request_body(api: ModelApi, model: &str, ctx: &Context) -> Value {
    let instructions = prompts::instructions(ctx);
    let messages = conversation(ctx);
    match api {
        ModelApi::Responses => json!({
            "model": model,
            "instructions": instructions,
            "input": messages,
            "stream": true,
            "store": false,
        }),
        ModelApi::ChatCompletions => {
            let mut all = vec![json!({"role": "system", "content": instructions})];
            all.extend(messages);
            json!({
                "model": model,
                "messages": all,
                "stream": true,
                "stream_options": {"include_usage": true},
            })
        }
    }
}

/// History then the new message, as `{role, content}` messages (both APIs accept this form).
fn conversation(ctx: &Context) -> Vec<Value> {
    let mut out: Vec<Value> = ctx
        .history
        .iter()
        .filter(|t| !t.text.trim().is_empty())
        .map(|t| {
            let role = match t.role {
                Role::User => "user",
                Role::Assistant => "assistant",
                Role::Hidden => "system",
            };
            json!({"role": role, "content": t.text})
        })
        .collect();
    match &ctx.message {
        Some(m) => out.push(json!({"role": "user", "content": m})),
        None if ctx.start || out.is_empty() => {
            out.push(json!({"role": "user", "content": prompts::START_MESSAGE}))
        }
        None if out.last().is_some_and(|m| m["role"] != "user") => {
            out.push(json!({"role": "user", "content": prompts::CONTINUE_MESSAGE}))
        }
        None => {}
    }
    out
}

/// Decoder state of one reply.
#[derive(Debug, Default)]
pub struct Decoder {
    parts: u32,
    /// Chat Completions: a `finish_reason` was seen (some servers omit `[DONE]`).
    pub finished: bool,
}

impl Decoder {
    /// The meaning of one SSE event.
    pub fn decode(&mut self, api: ModelApi, event: &SseEvent) -> Vec<WireEvent> {
        match api {
            ModelApi::Responses => self.responses(event),
            ModelApi::ChatCompletions => self.chat(event),
        }
    }

    fn responses(&mut self, event: &SseEvent) -> Vec<WireEvent> {
        let Ok(v) = serde_json::from_str::<Value>(&event.data) else {
            return vec![malformed(&event.data)];
        };
        let kind = v["type"].as_str().or(event.event.as_deref()).unwrap_or("");
        match kind {
            "response.output_text.delta" | "response.refusal.delta" => text(&v["delta"]),
            "response.content_part.added" => {
                self.parts += 1;
                if self.parts > 1 {
                    vec![WireEvent::NewPart]
                } else {
                    vec![]
                }
            }
            "response.completed" => with_usage(&v["response"]["usage"], WireEvent::Done),
            "response.incomplete" => {
                let reason = v["response"]["incomplete_details"]["reason"]
                    .as_str()
                    .unwrap_or("unknown");
                let error = WireEvent::Error {
                    message: format!("the model stopped before finishing its reply ({reason})"),
                    retryable: false,
                };
                with_usage(&v["response"]["usage"], error)
            }
            "response.failed" => vec![upstream_error(&v["response"]["error"])],
            "error" => vec![upstream_error(&v)],
            _ => vec![],
        }
    }

    fn chat(&mut self, event: &SseEvent) -> Vec<WireEvent> {
        if event.data.trim() == "[DONE]" {
            return vec![WireEvent::Done];
        }
        let Ok(v) = serde_json::from_str::<Value>(&event.data) else {
            return vec![malformed(&event.data)];
        };
        if v.get("error").is_some_and(|e| !e.is_null()) {
            return vec![upstream_error(&v)];
        }
        let choice = &v["choices"][0];
        if choice["finish_reason"].is_string() {
            self.finished = true;
        }
        let mut out = text(&choice["delta"]["content"]);
        if let Some(usage) = usage(&v["usage"]) {
            out.push(usage);
        }
        out
    }
}

/// The events of a whole (non-streamed) reply: a server that ignored `stream: true` answers
/// with the final JSON document of either API.
pub fn decode_whole(api: ModelApi, body: &[u8]) -> Vec<WireEvent> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return vec![malformed(&String::from_utf8_lossy(body))];
    };
    if v["error"].is_object() || v["error"].is_string() {
        return vec![upstream_error(&v)];
    }
    let parts: Vec<String> = match api {
        ModelApi::Responses => v["output"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|item| item["content"].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c["text"].as_str().map(str::to_owned))
            .collect(),
        ModelApi::ChatCompletions => v["choices"][0]["message"]["content"]
            .as_str()
            .map(str::to_owned)
            .into_iter()
            .collect(),
    };
    let mut out = Vec::new();
    for (i, part) in parts.into_iter().filter(|p| !p.is_empty()).enumerate() {
        if i > 0 {
            out.push(WireEvent::NewPart);
        }
        out.push(WireEvent::Delta(part));
    }
    out.extend(usage(&v["usage"]));
    out.push(WireEvent::Done);
    out
}

fn text(v: &Value) -> Vec<WireEvent> {
    match v.as_str() {
        Some(s) if !s.is_empty() => vec![WireEvent::Delta(s.to_owned())],
        _ => vec![],
    }
}

/// Usage of either API: `input_tokens`/`output_tokens` or `prompt_tokens`/`completion_tokens`.
fn usage(v: &Value) -> Option<WireEvent> {
    let input = v["input_tokens"].as_u64().or(v["prompt_tokens"].as_u64())?;
    let output = v["output_tokens"]
        .as_u64()
        .or(v["completion_tokens"].as_u64())?;
    Some(WireEvent::Usage { input, output })
}

fn with_usage(v: &Value, then: WireEvent) -> Vec<WireEvent> {
    usage(v).into_iter().chain([then]).collect()
}

/// An error object: `{"message","code"}` or `{"error":{"message","code"}}`.
fn upstream_error(v: &Value) -> WireEvent {
    let e = if v["error"].is_object() {
        &v["error"]
    } else {
        v
    };
    let message = e["message"]
        .as_str()
        .or(v["error"].as_str())
        .unwrap_or("unknown error");
    let code = e["code"].as_str().or(e["type"].as_str()).unwrap_or("");
    let retryable = !matches!(
        code,
        "invalid_request_error" | "invalid_prompt" | "context_length_exceeded" | "content_filter"
    );
    WireEvent::Error {
        message: format!(
            "the model failed mid-reply: {}",
            crate::tutor::text::truncate_chars(message, 300)
        ),
        retryable,
    }
}

fn malformed(data: &str) -> WireEvent {
    WireEvent::Error {
        message: format!(
            "the model sent an unreadable event: {}",
            crate::tutor::text::truncate_chars(data, 80)
        ),
        retryable: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(Into::into),
            data: data.into(),
        }
    }

    fn context(message: Option<&str>, history: &[(Role, &str)]) -> Context {
        let request = crate::turn::TurnRequest {
            message: message.map(Into::into),
            history: history
                .iter()
                .map(|(role, text)| crate::turn::Turn {
                    role: *role,
                    text: (*text).into(),
                })
                .collect(),
            ..Default::default()
        };
        let settings = crate::tutor::settings::TutorSettings::default();
        Context::build(request, crate::content::Mode::Ask, None, &settings)
    }

    #[test]
    fn the_conversation_always_ends_with_a_user_turn() {
        let body = |ctx: &Context| request_body(ModelApi::Responses, "m", ctx)["input"].clone();
        let start = body(&context(None, &[]));
        assert_eq!(
            start,
            json!([{"role": "user", "content": prompts::START_MESSAGE}])
        );
        let resumed = body(&context(None, &[(Role::User, "q"), (Role::Assistant, "a")]));
        assert_eq!(
            resumed[2],
            json!({"role": "user", "content": prompts::CONTINUE_MESSAGE})
        );
        let hidden = body(&context(
            Some("next"),
            &[(Role::Hidden, "the user cancelled")],
        ));
        assert_eq!(hidden[0]["role"], "system");
        assert_eq!(hidden[1], json!({"role": "user", "content": "next"}));
    }

    #[test]
    fn chat_completions_put_the_instructions_first_as_a_system_message() {
        let body = request_body(
            ModelApi::ChatCompletions,
            "llama3",
            &context(Some("q"), &[]),
        );
        assert_eq!(body["model"], "llama3");
        assert_eq!(body["messages"][0]["role"], "system");
        assert!(
            body["messages"][0]["content"]
                .as_str()
                .is_some_and(|c| c.contains("one to three"))
        );
        assert_eq!(body["messages"][1], json!({"role": "user", "content": "q"}));
        assert!(body.get("instructions").is_none());
    }

    #[test]
    fn responses_events_become_deltas_parts_usage_and_done() {
        let mut d = Decoder::default();
        let api = ModelApi::Responses;
        let part =
            r#"{"type":"response.content_part.added","part":{"type":"output_text","text":""}}"#;
        assert_eq!(d.decode(api, &sse(None, part)), vec![]);
        let delta = r#"{"type":"response.output_text.delta","delta":"Hi"}"#;
        assert_eq!(
            d.decode(api, &sse(None, delta)),
            vec![WireEvent::Delta("Hi".into())]
        );
        assert_eq!(d.decode(api, &sse(None, part)), vec![WireEvent::NewPart]);
        let done = r#"{"type":"response.completed","response":{"usage":{"input_tokens":5,"output_tokens":7}}}"#;
        assert_eq!(
            d.decode(api, &sse(None, done)),
            vec![
                WireEvent::Usage {
                    input: 5,
                    output: 7
                },
                WireEvent::Done
            ]
        );
    }

    #[test]
    fn responses_failures_carry_the_upstream_message() {
        let mut d = Decoder::default();
        let failed = r#"{"type":"response.failed","response":{"error":{"code":"server_error","message":"boom"}}}"#;
        let got = d.decode(ModelApi::Responses, &sse(None, failed));
        assert_eq!(
            got,
            vec![WireEvent::Error {
                message: "the model failed mid-reply: boom".into(),
                retryable: true
            }]
        );
        let err = r#"{"type":"error","code":"invalid_prompt","message":"bad"}"#;
        let got = d.decode(ModelApi::Responses, &sse(Some("error"), err));
        assert!(matches!(
            &got[0],
            WireEvent::Error {
                retryable: false,
                ..
            }
        ));
    }

    #[test]
    fn chat_chunks_become_deltas_usage_and_done() {
        let mut d = Decoder::default();
        let api = ModelApi::ChatCompletions;
        let first = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        assert_eq!(d.decode(api, &sse(None, first)), vec![]);
        let text = r#"{"choices":[{"index":0,"delta":{"content":"Hé"},"finish_reason":null}]}"#;
        assert_eq!(
            d.decode(api, &sse(None, text)),
            vec![WireEvent::Delta("Hé".into())]
        );
        let stop = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
        assert_eq!(d.decode(api, &sse(None, stop)), vec![]);
        assert!(d.finished);
        let usage =
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
        assert_eq!(
            d.decode(api, &sse(None, usage)),
            vec![WireEvent::Usage {
                input: 3,
                output: 4
            }]
        );
        assert_eq!(d.decode(api, &sse(None, "[DONE]")), vec![WireEvent::Done]);
    }

    #[test]
    fn whole_json_replies_of_both_apis_are_decoded() {
        let chat = br#"{"id":"chatcmpl-1","object":"chat.completion","model":"llama3.2","choices":[{"index":0,"message":{"role":"assistant","content":"Whole reply."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#;
        assert_eq!(
            decode_whole(ModelApi::ChatCompletions, chat),
            vec![
                WireEvent::Delta("Whole reply.".into()),
                WireEvent::Usage {
                    input: 9,
                    output: 3
                },
                WireEvent::Done
            ]
        );
        let responses = br#"{"id":"resp_1","object":"response","status":"completed","output":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"One."},{"type":"output_text","text":"Two."}]}],"usage":{"input_tokens":4,"output_tokens":2}}"#;
        assert_eq!(
            decode_whole(ModelApi::Responses, responses),
            vec![
                WireEvent::Delta("One.".into()),
                WireEvent::NewPart,
                WireEvent::Delta("Two.".into()),
                WireEvent::Usage {
                    input: 4,
                    output: 2
                },
                WireEvent::Done
            ]
        );
        assert!(matches!(
            &decode_whole(ModelApi::ChatCompletions, br#"{"error":"model 'x' not found"}"#)[0],
            WireEvent::Error { message, .. } if message.contains("model 'x' not found")
        ));
    }

    #[test]
    fn chat_error_objects_and_garbage_are_errors() {
        let mut d = Decoder::default();
        let api = ModelApi::ChatCompletions;
        let err = r#"{"error":{"message":"overloaded","type":"server_error"}}"#;
        assert!(
            matches!(&d.decode(api, &sse(None, err))[0], WireEvent::Error { retryable: true, message } if message.contains("overloaded"))
        );
        assert!(matches!(
            &d.decode(api, &sse(None, "not json"))[0],
            WireEvent::Error { .. }
        ));
    }
}

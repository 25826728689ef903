//! The two OpenAI wire formats: request bodies and stream-event decoding for the Responses
//! API (`POST /responses`) and the Chat Completions API (`POST /chat/completions`).

use serde_json::{Value, json};

use super::sse::SseEvent;
use crate::turn::{Role, Usage};
use crate::tutor::context::Context;
use crate::tutor::prompts;
use crate::tutor::settings::{ModelApi, ModelSettings};

/// One model request's text: system instructions and the conversation, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompt {
    pub instructions: String,
    /// `(role, content)`: `user`, `assistant` or `system`.
    pub messages: Vec<(&'static str, String)>,
}

impl Prompt {
    /// Characters of the whole prompt (what the benchmarks count besides tokens).
    pub fn chars(&self) -> usize {
        self.instructions.chars().count()
            + self
                .messages
                .iter()
                .map(|(_, c)| c.chars().count())
                .sum::<usize>()
    }
}

/// How the answer is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Streamed text for the student.
    Stream,
    /// One JSON object for the service, not streamed.
    Json,
}

/// What one upstream event means for the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireEvent {
    Delta(String),
    /// A new content part begins.
    NewPart,
    Usage(Usage),
    /// The reply is complete.
    Done,
    /// The upstream reported a failure inside the stream.
    Error {
        message: String,
        retryable: bool,
    },
}

/// The request body of `prompt` for the model of `settings`, streamed or as one JSON object;
/// both shapes carry the mode's output cap (the judge has no smaller one of its own).
pub fn request_body(settings: &ModelSettings, prompt: &Prompt, shape: Shape) -> Value {
    let messages: Vec<Value> = prompt
        .messages
        .iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    let stream = shape == Shape::Stream;
    let effort = settings.reasoning_effort.map(|e| e.name());
    let mut body = match settings.api {
        ModelApi::Responses => {
            let mut b = json!({
                "model": settings.model,
                "instructions": prompt.instructions,
                "input": messages,
                "stream": stream,
                "store": false,
                "max_output_tokens": settings.max_output_tokens,
            });
            if let Some(effort) = effort {
                b["reasoning"] = json!({"effort": effort});
            }
            if shape == Shape::Json {
                b["text"] = json!({"format": {"type": "json_object"}});
            }
            b
        }
        ModelApi::ChatCompletions => {
            let mut all = vec![json!({"role": "system", "content": prompt.instructions})];
            all.extend(messages);
            let mut b = json!({
                "model": settings.model,
                "messages": all,
                "stream": stream,
                "max_completion_tokens": settings.max_output_tokens,
            });
            if stream {
                b["stream_options"] = json!({"include_usage": true});
            }
            if let Some(effort) = effort {
                b["reasoning_effort"] = json!(effort);
            }
            if shape == Shape::Json {
                b["response_format"] = json!({"type": "json_object"});
            }
            b
        }
    };
    if body["stream"] == json!(false) {
        body.as_object_mut().map(|o| o.remove("stream_options"));
    }
    body
}

/// The prompt of a free reply for `ctx`: the mode's instructions and the conversation.
pub fn prompt_of(ctx: &Context) -> Prompt {
    Prompt {
        instructions: prompts::instructions(ctx),
        messages: conversation(ctx),
    }
}

/// History then the new message, as `(role, content)` messages (both APIs accept this form).
pub fn conversation(ctx: &Context) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = ctx
        .history
        .iter()
        .filter(|t| !t.text.trim().is_empty())
        .map(|t| {
            let role = match t.role {
                Role::User => "user",
                Role::Assistant => "assistant",
                Role::Hidden => "system",
            };
            (role, t.text.clone())
        })
        .collect();
    match &ctx.message {
        Some(m) => out.push(("user", m.clone())),
        None if ctx.start || out.is_empty() => out.push(("user", prompts::START_MESSAGE.into())),
        None if out.last().is_some_and(|m| m.0 != "user") => {
            out.push(("user", prompts::CONTINUE_MESSAGE.into()))
        }
        None => {}
    }
    out
}

/// The text of a whole (non-streamed) reply of either API, and its usage.
pub fn whole_text(api: ModelApi, body: &[u8]) -> Result<(String, Option<Usage>), String> {
    let mut text = String::new();
    let mut usage = None;
    for event in decode_whole(api, body) {
        match event {
            WireEvent::Delta(d) => text.push_str(&d),
            WireEvent::Usage(u) => usage = Some(u),
            WireEvent::Error { message, .. } => return Err(message),
            WireEvent::NewPart | WireEvent::Done => {}
        }
    }
    Ok((text, usage))
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

/// Usage of either API: `input_tokens`/`output_tokens` (+ `input_tokens_details.cached_tokens`,
/// `output_tokens_details.reasoning_tokens`) or `prompt_tokens`/`completion_tokens` (+
/// `prompt_tokens_details`, `completion_tokens_details`).
fn usage(v: &Value) -> Option<WireEvent> {
    let input = v["input_tokens"].as_u64().or(v["prompt_tokens"].as_u64())?;
    let output = v["output_tokens"]
        .as_u64()
        .or(v["completion_tokens"].as_u64())?;
    let cached = v["input_tokens_details"]["cached_tokens"]
        .as_u64()
        .or(v["prompt_tokens_details"]["cached_tokens"].as_u64())
        .unwrap_or(0);
    let reasoning = v["output_tokens_details"]["reasoning_tokens"]
        .as_u64()
        .or(v["completion_tokens_details"]["reasoning_tokens"].as_u64())
        .unwrap_or(0);
    Some(WireEvent::Usage(Usage {
        input_tokens: input,
        output_tokens: output,
        cached_tokens: cached,
        reasoning_tokens: reasoning,
    }))
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
    use crate::tutor::settings::ReasoningEffort;

    fn sse(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(Into::into),
            data: data.into(),
        }
    }

    fn settings(api: ModelApi, effort: Option<ReasoningEffort>) -> ModelSettings {
        let mut s = crate::tutor::settings::TutorSettings::default().model;
        s.api = api;
        s.reasoning_effort = effort;
        s
    }

    #[test]
    fn reasoning_effort_and_json_answers_use_each_apis_own_fields() {
        let prompt = Prompt {
            instructions: "i".into(),
            messages: vec![("user", "q".into())],
        };
        let r = request_body(
            &settings(ModelApi::Responses, Some(ReasoningEffort::Minimal)),
            &prompt,
            Shape::Json,
        );
        assert_eq!(r["reasoning"], json!({"effort": "minimal"}));
        assert_eq!(r["stream"], json!(false));
        assert_eq!(r["text"]["format"]["type"], "json_object");
        let c = request_body(
            &settings(ModelApi::ChatCompletions, Some(ReasoningEffort::High)),
            &prompt,
            Shape::Json,
        );
        assert_eq!(c["reasoning_effort"], "high");
        assert_eq!(c["response_format"]["type"], "json_object");
        assert!(c.get("stream_options").is_none());
        let unset = request_body(&settings(ModelApi::Responses, None), &prompt, Shape::Stream);
        assert!(unset.get("reasoning").is_none(), "unset effort is not sent");
        let unset = request_body(
            &settings(ModelApi::ChatCompletions, None),
            &prompt,
            Shape::Stream,
        );
        assert!(unset.get("reasoning_effort").is_none());
    }

    #[test]
    fn the_output_cap_is_sent_in_each_apis_own_field() {
        let prompt = Prompt::default();
        for shape in [Shape::Stream, Shape::Json] {
            let mut s = settings(ModelApi::Responses, None);
            s.max_output_tokens = 700;
            let r = request_body(&s, &prompt, shape);
            assert_eq!(r["max_output_tokens"], 700);
            assert!(r.get("max_completion_tokens").is_none());
            s.api = ModelApi::ChatCompletions;
            let c = request_body(&s, &prompt, shape);
            assert_eq!(c["max_completion_tokens"], 700);
            assert!(c.get("max_output_tokens").is_none());
        }
    }

    #[test]
    fn cached_and_reasoning_tokens_are_read_from_both_apis() {
        let r = usage(&json!({"input_tokens": 10, "output_tokens": 5,
            "input_tokens_details": {"cached_tokens": 4}, "output_tokens_details": {"reasoning_tokens": 2}}));
        let c = usage(&json!({"prompt_tokens": 10, "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 2}}));
        let want = WireEvent::Usage(Usage {
            input_tokens: 10,
            output_tokens: 5,
            cached_tokens: 4,
            reasoning_tokens: 2,
        });
        assert_eq!(r, Some(want.clone()));
        assert_eq!(c, Some(want));
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
        let settings = settings(ModelApi::Responses, None);
        let body = |ctx: &Context| {
            request_body(&settings, &prompt_of(ctx), Shape::Stream)["input"].clone()
        };
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
        let mut s = settings(ModelApi::ChatCompletions, None);
        s.model = "llama3".into();
        let body = request_body(&s, &prompt_of(&context(Some("q"), &[])), Shape::Stream);
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
                WireEvent::Usage(Usage {
                    input_tokens: 5,
                    output_tokens: 7,
                    ..Usage::default()
                }),
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
            vec![WireEvent::Usage(Usage {
                input_tokens: 3,
                output_tokens: 4,
                ..Usage::default()
            })]
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
                WireEvent::Usage(Usage {
                    input_tokens: 9,
                    output_tokens: 3,
                    ..Usage::default()
                }),
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
                WireEvent::Usage(Usage {
                    input_tokens: 4,
                    output_tokens: 2,
                    ..Usage::default()
                }),
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

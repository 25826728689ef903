//! A fake model server: a real local axum server that answers each request with the next
//! scripted answer (a status with a JSON body, or an SSE body written step by step, possibly
//! stalling or breaking off) — or, once the script is used up, with what a handler decides
//! from the request ([`Upstream::start_with`]) — records every request, and notices when a
//! client drops a stream before its end.
//!
//! [`stream_reply`] and [`whole_reply`] write answers in the real wire formats of both APIs
//! (Responses: `event:`/`data:` lines ending in `response.completed` with usage; Chat
//! Completions: `data:` chunks, a usage chunk, `data: [DONE]`; non-streamed: the final
//! `response` / `chat.completion` object), so the service's own parsers read them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, Version};
use axum::response::Response;

/// The clock shared by the fake server and benchmarks.
pub fn epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

/// One step of a streamed body.
#[derive(Debug, Clone)]
pub enum Step {
    Send(Bytes),
    Sleep(Duration),
    /// Let the server flush what it has (the next piece goes out as its own write).
    Yield,
    /// Send nothing more, ever (a stalled upstream).
    Hang,
    /// The connection breaks: the body ends with an I/O error, so the server aborts the
    /// response without its terminating chunk (an upstream that died mid-stream).
    Cut,
    /// A Chat Completions chunk whose content is the time of sending: microseconds since
    /// [`epoch`] (benchmarks measure the client's overhead with it).
    Stamp,
}

/// The answer to one request.
#[derive(Debug, Clone)]
pub enum Answer {
    Status {
        code: u16,
        body: String,
        retry_after: Option<&'static str>,
    },
    Stream(Vec<Step>),
}

impl Answer {
    /// The transcript sent whole.
    pub fn sse(transcript: &str) -> Self {
        Answer::Stream(vec![Step::Send(Bytes::from(transcript.to_owned()))])
    }

    /// The transcript cut every `size` bytes (through UTF-8 characters and `\r\n` pairs),
    /// each piece written separately.
    pub fn chunked(transcript: &str, size: usize) -> Self {
        let bytes = transcript.as_bytes();
        let steps = bytes
            .chunks(size)
            .flat_map(|c| [Step::Send(Bytes::copy_from_slice(c)), Step::Yield])
            .collect();
        Answer::Stream(steps)
    }

    pub fn status(code: u16, body: &str) -> Self {
        Answer::Status {
            code,
            body: body.to_owned(),
            retry_after: None,
        }
    }
}

/// A request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    /// HTTP/1.1 or HTTP/2.
    pub version: Version,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
}

/// Decides the answer to a request once the scripted answers are used up.
pub type Handler = Arc<dyn Fn(&Recorded) -> Answer + Send + Sync>;

#[derive(Default)]
struct Shared {
    answers: Mutex<VecDeque<Answer>>,
    requests: Mutex<Vec<Recorded>>,
    dropped_early: AtomicBool,
    handler: Mutex<Option<Handler>>,
}

impl Recorded {
    /// True for a streamed request (`"stream": true`).
    pub fn streamed(&self) -> bool {
        self.body["stream"] == serde_json::Value::Bool(true)
    }

    /// Every text of the request: instructions and messages, in order.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if let Some(i) = self.body["instructions"].as_str() {
            out.push_str(i);
            out.push('\n');
        }
        let messages = self.body["input"]
            .as_array()
            .or(self.body["messages"].as_array())
            .cloned()
            .unwrap_or_default();
        for m in messages {
            out.push_str(m["content"].as_str().unwrap_or_default());
            out.push('\n');
        }
        out
    }

    /// The system instructions (Responses `instructions`, Chat's first system message).
    pub fn instructions(&self) -> String {
        self.body["instructions"]
            .as_str()
            .or(self.body["messages"][0]["content"].as_str())
            .unwrap_or_default()
            .to_owned()
    }

    /// The last user message.
    pub fn last_user(&self) -> String {
        let messages = self.body["input"]
            .as_array()
            .or(self.body["messages"].as_array())
            .cloned()
            .unwrap_or_default();
        messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_owned()
    }

    /// The fake's token count of the request: characters / 4 (OpenAI's rule of thumb for
    /// English), at least 1.
    pub fn prompt_tokens(&self) -> u64 {
        (self.text().chars().count() as u64 / 4).max(1)
    }
}

/// `deltas` as a streamed reply of `api` with usage (`input` prompt tokens, one output token
/// per 4 characters), in that API's wire format.
pub fn stream_reply(api: &str, deltas: &[&str], input: u64) -> Answer {
    let output = (deltas.concat().chars().count() as u64 / 4).max(1);
    let mut out = String::new();
    if api == "responses" {
        let ev = |out: &mut String, v: serde_json::Value| {
            out.push_str(&format!(
                "event: {}\ndata: {v}\n\n",
                v["type"].as_str().unwrap_or("")
            ));
        };
        ev(
            &mut out,
            serde_json::json!({"type": "response.created", "sequence_number": 0, "response": {"id": "resp_fake", "object": "response", "status": "in_progress", "output": []}}),
        );
        ev(
            &mut out,
            serde_json::json!({"type": "response.content_part.added", "sequence_number": 1, "item_id": "msg_fake", "output_index": 0, "content_index": 0, "part": {"type": "output_text", "annotations": [], "text": ""}}),
        );
        for (i, d) in deltas.iter().enumerate() {
            ev(
                &mut out,
                serde_json::json!({"type": "response.output_text.delta", "sequence_number": i + 2, "item_id": "msg_fake", "output_index": 0, "content_index": 0, "delta": d}),
            );
        }
        ev(
            &mut out,
            serde_json::json!({"type": "response.completed", "sequence_number": deltas.len() + 2, "response": {"id": "resp_fake", "object": "response", "status": "completed", "output": [], "usage": {"input_tokens": input, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": input + output}}}),
        );
    } else {
        let chunk = |delta: serde_json::Value, finish: serde_json::Value| serde_json::json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1755430200, "model": "fake", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        out.push_str(&format!(
            "data: {}\n\n",
            chunk(
                serde_json::json!({"role": "assistant", "content": ""}),
                serde_json::Value::Null
            )
        ));
        for d in deltas {
            out.push_str(&format!(
                "data: {}\n\n",
                chunk(serde_json::json!({"content": d}), serde_json::Value::Null)
            ));
        }
        out.push_str(&format!(
            "data: {}\n\n",
            chunk(serde_json::json!({}), serde_json::json!("stop"))
        ));
        out.push_str(&format!("data: {}\n\n", serde_json::json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1755430200, "model": "fake", "choices": [], "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output, "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}})));
        out.push_str("data: [DONE]\n\n");
    }
    // Each event written separately, so deltas reach the client one by one.
    Answer::Stream(
        out.split_inclusive("\n\n")
            .flat_map(|e| [Step::Send(Bytes::from(e.to_owned())), Step::Yield])
            .collect(),
    )
}

/// `text` as a whole (non-streamed) reply of `api`, with usage.
pub fn whole_reply(api: &str, text: &str, input: u64) -> Answer {
    let output = (text.chars().count() as u64 / 4).max(1);
    let body = if api == "responses" {
        serde_json::json!({"id": "resp_fake", "object": "response", "status": "completed",
            "output": [{"type": "message", "id": "msg_fake", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "annotations": [], "text": text}]}],
            "usage": {"input_tokens": input, "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": input + output}})
    } else {
        serde_json::json!({"id": "chatcmpl-fake", "object": "chat.completion", "created": 1755430200, "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output}})
    };
    Answer::status(200, &body.to_string())
}

/// A running fake model server.
pub struct Upstream {
    /// e.g. `http://127.0.0.1:PORT/v1`
    pub base_url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
    /// Connections accepted (TLS fakes only).
    connections: Option<Arc<AtomicUsize>>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub async fn start(answers: Vec<Answer>) -> Self {
        let shared = Arc::new(Shared::default());
        shared.answers.lock().expect("lock").extend(answers);
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake upstream");
        });
        Self {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            shared,
            task,
            connections: None,
        }
    }

    /// The same fake over TLS with `ca`'s certificate, speaking only HTTP/2 (ALPN `h2`) and
    /// allowing `max_streams` concurrent streams per connection (`SETTINGS_MAX_CONCURRENT_STREAMS`).
    /// Answers come from `handler`.
    pub async fn start_h2_tls(ca: &super::tls::TestCa, max_streams: u32, handler: Handler) -> Self {
        let shared = Arc::new(Shared::default());
        *shared.handler.lock().expect("lock") = Some(handler);
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(shared.clone());
        let server = super::tls::serve_h2(app, ca, max_streams).await;
        Self {
            base_url: format!("{}/v1", server.origin),
            shared,
            task: server.task,
            connections: Some(server.connections),
        }
    }

    /// TCP connections accepted so far (TLS fakes only).
    pub fn connections(&self) -> usize {
        self.connections
            .as_ref()
            .map_or(0, |c| c.load(Ordering::SeqCst))
    }

    /// A server that answers from `answers` first, then from `handler`.
    pub async fn start_with(answers: Vec<Answer>, handler: Handler) -> Self {
        let upstream = Self::start(answers).await;
        *upstream.shared.handler.lock().expect("lock") = Some(handler);
        upstream
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().expect("lock").clone()
    }

    /// True once a streamed body was dropped before its last step (the client went away).
    pub async fn saw_early_close(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if self.shared.dropped_early.load(Ordering::SeqCst) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        path: uri.path().to_owned(),
        version,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    };
    shared.requests.lock().expect("lock").push(recorded.clone());
    let scripted = shared.answers.lock().expect("lock").pop_front();
    let handler = shared.handler.lock().expect("lock").clone();
    let next = scripted.or_else(|| handler.map(|h| h(&recorded)));
    match next {
        None => status(
            500,
            r#"{"error":{"message":"no scripted answer left"}}"#,
            None,
        ),
        Some(Answer::Status {
            code,
            body,
            retry_after,
        }) => status(code, &body, retry_after),
        Some(Answer::Stream(steps)) => stream(steps, shared),
    }
}

fn status(code: u16, body: &str, retry_after: Option<&str>) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(code).expect("status"))
        .header("content-type", "application/json");
    if let Some(r) = retry_after {
        builder = builder.header("retry-after", r);
    }
    builder.body(Body::from(body.to_owned())).expect("response")
}

/// Notes, when dropped before the last step, that the client closed the stream.
struct Guard {
    shared: Arc<Shared>,
    done: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.done {
            self.shared.dropped_early.store(true, Ordering::SeqCst);
        }
    }
}

fn stream(steps: Vec<Step>, shared: Arc<Shared>) -> Response {
    let state = (
        VecDeque::from(steps),
        Guard {
            shared,
            done: false,
        },
    );
    let body = futures::stream::unfold(state, |(mut steps, mut guard)| async move {
        loop {
            match steps.pop_front() {
                None => {
                    guard.done = true;
                    drop(guard);
                    return None;
                }
                Some(Step::Send(bytes)) => {
                    return Some((Ok::<_, std::io::Error>(bytes), (steps, guard)));
                }
                Some(Step::Sleep(d)) => tokio::time::sleep(d).await,
                Some(Step::Yield) => tokio::task::yield_now().await,
                Some(Step::Hang) => std::future::pending::<()>().await,
                Some(Step::Cut) => {
                    let cut = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut");
                    return Some((Err(cut), (steps, guard)));
                }
                Some(Step::Stamp) => {
                    let micros = epoch().elapsed().as_micros();
                    let chunk = format!(
                        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{micros}\"}},\"finish_reason\":null}}]}}\n\n"
                    );
                    return Some((Ok(Bytes::from(chunk)), (steps, guard)));
                }
            }
        }
    });
    Response::builder()
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(body))
        .expect("response")
}

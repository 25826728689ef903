//! A fake model server: a real local axum server that answers each request with the next
//! scripted answer (a status with a JSON body, or an SSE body written step by step, possibly
//! stalling or breaking off), records every request, and notices when a client drops a stream
//! before its end.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
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
    pub headers: HeaderMap,
    pub body: serde_json::Value,
}

#[derive(Default)]
struct Shared {
    answers: Mutex<VecDeque<Answer>>,
    requests: Mutex<Vec<Recorded>>,
    dropped_early: AtomicBool,
}

/// A running fake model server.
pub struct Upstream {
    /// e.g. `http://127.0.0.1:PORT/v1`
    pub base_url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
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
        }
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
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.requests.lock().expect("lock").push(Recorded {
        path: uri.path().to_owned(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    });
    let next = shared.answers.lock().expect("lock").pop_front();
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

//! Test client for `POST /chatkit` and the conformance oracle every chatkit test goes through.
//!
//! [`Chat::send`] checks each request with the reference package (`TypeAdapter(ChatKitReq)`),
//! posts it, and checks every 200 body or SSE stream (`ThreadStreamEvent`, `Thread`, `Page`,
//! round trip) — so every request the chatkit tests send and every body and event the server
//! returns is validated against openai-chatkit 1.6.5. The oracle is
//! `tests/conformance/oracle.py` in the virtualenv built by `scripts/test.d/10-oracle.sh`; a
//! missing virtualenv fails the test loudly.

#![allow(dead_code)] // shared by the chatkit test modules

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};

use crate::support::app::TestApp;

// ------------------------------------------------------------------ oracle

struct Oracle {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// The virtualenv holding openai-chatkit 1.6.5.
pub fn oracle_python() -> std::path::PathBuf {
    let venv = std::env::var("STUDY_MODE_ORACLE_VENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/study-mode-oracle-venv",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    std::path::Path::new(&venv).join("bin/python")
}

fn oracle() -> &'static Mutex<Oracle> {
    static ORACLE: OnceLock<Mutex<Oracle>> = OnceLock::new();
    ORACLE.get_or_init(|| {
        let python = oracle_python();
        assert!(
            python.exists(),
            "the ChatKit conformance oracle is missing: {} does not exist. \
             Run scripts/test.d/10-oracle.sh (scripts/test does) to build it.",
            python.display()
        );
        let script = format!("{}/tests/conformance/oracle.py", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(&python)
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the oracle {}: {e}", python.display()));
        let stdin = child.stdin.take().expect("oracle stdin");
        let stdout = BufReader::new(child.stdout.take().expect("oracle stdout"));
        Mutex::new(Oracle {
            _child: child,
            stdin,
            stdout,
        })
    })
}

/// Sends one command to the oracle; its list of problems (empty = conforming).
pub fn oracle_problems(command: &Value) -> Vec<String> {
    let mut o = oracle().lock().unwrap_or_else(|e| e.into_inner());
    writeln!(o.stdin, "{command}").expect("write to the oracle");
    o.stdin.flush().expect("flush the oracle");
    let mut line = String::new();
    o.stdout.read_line(&mut line).expect("read from the oracle");
    assert!(!line.is_empty(), "the oracle exited (see its stderr above)");
    let answer: Value = serde_json::from_str(&line).expect("oracle answers JSON");
    answer["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Panics with the oracle's problems unless `command` conforms.
pub fn assert_conforms(command: Value) {
    let problems = oracle_problems(&command);
    assert!(
        problems.is_empty(),
        "not conforming to openai-chatkit 1.6.5:\n{}",
        problems.join("\n")
    );
}

// ------------------------------------------------------------------ client

/// One `POST /chatkit` answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The SSE events, parsed.
    pub fn events(&self) -> Vec<Value> {
        parse_sse(&self.text)
    }

    /// The `type` of each event.
    pub fn types(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The error code of a JSON error body.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Splits an SSE body into its JSON events (asserting the `data: …\n\n` framing).
pub fn parse_sse(text: &str) -> Vec<Value> {
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "stream does not end with a blank line: {text:?}"
    );
    text.split("\n\n")
        .filter(|f| !f.is_empty())
        // A comment (`: keep-alive` on a silent stream) is legal SSE and carries no event.
        .filter(|f| !f.lines().all(|l| l.starts_with(':')))
        .map(|f| {
            let json = f
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data frame: {f:?}"));
            serde_json::from_str(json).expect("event JSON")
        })
        .collect()
}

/// A ChatKit client acting as one user.
#[derive(Clone)]
pub struct Chat {
    pub base: String,
    pub user: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub client: reqwest::Client,
}

impl Chat {
    pub fn new(base: &str, user: &str) -> Self {
        Self {
            base: base.to_owned(),
            user: user.to_owned(),
            query: String::new(),
            headers: Vec::new(),
            client: reqwest::Client::new(),
        }
    }

    /// Adds a query string (e.g. `lesson_path=…&mode=ask`).
    pub fn with_query(mut self, query: &str) -> Self {
        self.query = query.to_owned();
        self
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn request(&self, body: String) -> reqwest::RequestBuilder {
        let url = if self.query.is_empty() {
            format!("{}/chatkit", self.base)
        } else {
            format!("{}/chatkit?{}", self.base, self.query)
        };
        let mut req = self
            .client
            .post(url)
            .header("x-user-id", &self.user)
            .body(body);
        req = req.header("content-type", "application/json");
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        req
    }

    /// Sends a raw body without any oracle check (malformed-request tests).
    pub async fn send_raw(&self, body: &str) -> Answer {
        let resp = self
            .request(body.to_owned())
            .send()
            .await
            .expect("request failed");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        Answer {
            status,
            headers,
            text,
        }
    }

    /// Sends a protocol-valid request; checks it and (when 200) the answer with the oracle.
    pub async fn send(&self, body: Value) -> Answer {
        let raw = body.to_string();
        assert_conforms(json!({"cmd": "request", "body": raw, "valid": true}));
        let answer = self.send_raw(&raw).await;
        if answer.status == 200 {
            let kind = body["type"].as_str().unwrap_or_default();
            assert_conforms(json!({"cmd": "response", "request_type": kind, "body": answer.text}));
        }
        answer
    }

    /// `threads.create` with `text`; the new thread's id and the answer.
    pub async fn create(&self, text: &str) -> (String, Answer) {
        let answer = self
            .send(json!({"type": "threads.create", "params": {"input": input(text)}}))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        let events = answer.events();
        let id = events[0]["thread"]["id"]
            .as_str()
            .expect("thread.created first")
            .to_owned();
        (id, answer)
    }

    /// `threads.add_user_message`.
    pub async fn say(&self, thread_id: &str, text: &str) -> Answer {
        self.send(json!({"type": "threads.add_user_message",
            "params": {"thread_id": thread_id, "input": input(text)}}))
            .await
    }

    /// `items.list` of every visible item, oldest first.
    pub async fn items(&self, thread_id: &str) -> Vec<Value> {
        let a = self
            .send(json!({"type": "items.list", "params": {"thread_id": thread_id, "order": "asc", "limit": 100}}))
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.json()["data"].as_array().expect("data").clone()
    }
}

/// A `UserMessageInput` with one text part.
pub fn input(text: &str) -> Value {
    json!({"content": [{"type": "input_text", "text": text}], "attachments": [], "inference_options": {}})
}

/// A streaming answer read event by event while it is still running.
pub struct LiveSse {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: Vec<u8>,
    /// Every byte received so far.
    pub raw: Vec<u8>,
    /// Every event read so far.
    pub events: Vec<Value>,
}

impl LiveSse {
    /// The reader of a `200` answer.
    pub fn new(response: reqwest::Response) -> Self {
        use futures::StreamExt;
        assert_eq!(response.status(), 200);
        Self {
            body: response.bytes_stream().boxed(),
            buffer: Vec::new(),
            raw: Vec::new(),
            events: Vec::new(),
        }
    }

    /// The next event (keep-alive comments skipped), or `None` at the end of the stream.
    /// Panics when the stream stays silent for 20 s.
    pub async fn next(&mut self) -> Option<Value> {
        use futures::StreamExt;
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let frame: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8(frame).expect("utf-8 frame");
                if let Some(event) = parse_sse(&text).pop() {
                    self.events.push(event.clone());
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(20), self.body.next())
                .await
                .expect("the stream went silent for 20 s");
            match chunk {
                Some(Ok(bytes)) => {
                    self.raw.extend_from_slice(&bytes);
                    self.buffer.extend_from_slice(&bytes);
                }
                _ => return None,
            }
        }
    }

    /// Reads until an event of `kind` for which `pick` holds.
    pub async fn until(&mut self, kind: &str, pick: impl Fn(&Value) -> bool) -> Value {
        while let Some(event) = self.next().await {
            if event["type"] == kind && pick(&event) {
                return event;
            }
        }
        panic!("the stream ended before a {kind}: {:?}", self.events);
    }

    /// Every event, the rest read to the end.
    pub async fn rest(mut self) -> Vec<Value> {
        while self.next().await.is_some() {}
        self.events
    }
}

/// The events of `answer` whose `type` is `kind`.
pub fn of_type(events: &[Value], kind: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["type"] == kind)
        .cloned()
        .collect()
}

// ------------------------------------------------------------------ apps with a responder

/// A running server whose replies come from a responder chosen by the test.
pub type ChatApp = TestApp;

impl TestApp {
    /// A ChatKit client acting as `user`.
    pub fn chat(&self, user: &str) -> Chat {
        Chat::new(&self.address, user)
    }
}

//! The load of the fault tests: N closed-loop clients, each issuing requests back to back through
//! the real HTTP server until told to stop, recording for every request when it started, how
//! long it took, its status and whether its answer was what the client expected. Plus the small
//! HTTP helpers those clients share (`POST /chatkit` answers, lenient SSE parsing, JSON errors).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest any single request may take before it counts as a hang.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(20);
/// Pause between two requests of one client, so the load leaves the 2 CI cores some air.
const THINK_TIME: Duration = Duration::from_millis(5);

/// One request as a client saw it.
#[derive(Debug, Clone)]
pub struct Sample {
    pub kind: &'static str,
    /// When it was sent, from the start of the load.
    pub at: Duration,
    pub latency: Duration,
    /// HTTP status; 0 when no answer came (connection error or [`REQUEST_DEADLINE`]).
    pub status: u16,
    /// What was wrong with the answer, by the client's own check (`None` = as expected).
    pub problem: Option<String>,
}

/// The handle a client uses to know when to stop and to record what it did.
#[derive(Clone)]
pub struct Client {
    started: Instant,
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    pub http: reqwest::Client,
}

impl Client {
    /// Time since the load started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// False once the load is being stopped.
    pub fn running(&self) -> bool {
        !self.stop.load(Ordering::SeqCst)
    }

    /// Runs one request (within [`REQUEST_DEADLINE`]) and records it. The request answers its
    /// status and either what it read (as expected) or what was wrong; the value is returned
    /// when the answer was as expected.
    pub async fn record<T>(
        &self,
        kind: &'static str,
        request: impl Future<Output = (u16, Result<T, String>)>,
    ) -> Option<T> {
        let sent = Instant::now();
        let (status, checked) = match tokio::time::timeout(REQUEST_DEADLINE, request).await {
            Ok(answer) => answer,
            Err(_) => (0, Err(format!("no answer within {REQUEST_DEADLINE:?}"))),
        };
        let (value, problem) = match checked {
            Ok(v) => (Some(v), None),
            Err(p) => (None, Some(p)),
        };
        self.samples.lock().expect("lock").push(Sample {
            kind,
            at: sent - self.started,
            latency: sent.elapsed(),
            status,
            problem,
        });
        tokio::time::sleep(THINK_TIME).await;
        value
    }
}

/// Running clients.
pub struct Load {
    started: Instant,
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts `clients` clients; client `i` runs `client(handle, i)`, which loops while
    /// [`Client::running`].
    pub fn start<F, Fut>(clients: usize, client: F) -> Self
    where
        F: Fn(Client, usize) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..clients)
            .map(|i| {
                let handle = Client {
                    started,
                    stop: stop.clone(),
                    samples: samples.clone(),
                    http: reqwest::Client::new(),
                };
                tokio::spawn(client(handle, i))
            })
            .collect();
        Self {
            started,
            stop,
            samples,
            tasks,
        }
    }

    /// Time since the load started (to mark when a fault was injected).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops the clients (each finishes its current request) and answers what they saw.
    pub async fn finish(self) -> Report {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            tokio::time::timeout(REQUEST_DEADLINE + Duration::from_secs(5), task)
                .await
                .expect("a client did not stop: a request hung past its deadline")
                .expect("a load client panicked");
        }
        let mut samples = std::mem::take(&mut *self.samples.lock().expect("lock"));
        samples.sort_by_key(|s| s.at);
        Report { samples }
    }
}

/// Everything the clients saw.
#[derive(Debug)]
pub struct Report {
    pub samples: Vec<Sample>,
}

impl Report {
    /// Requests answered 5xx or not at all.
    pub fn server_errors(&self) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.status == 0 || s.status >= 500)
            .collect()
    }

    /// Requests whose answer was not what the client expected.
    pub fn problems(&self) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.problem.is_some())
            .collect()
    }

    /// Requests sent in `[from, to)` (times from the start of the load).
    pub fn sent_between(&self, from: Duration, to: Duration) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.at >= from && s.at < to)
            .collect()
    }

    pub fn max_latency(&self) -> Duration {
        self.samples
            .iter()
            .map(|s| s.latency)
            .max()
            .unwrap_or_default()
    }

    /// Latency percentiles `(p50, p99, max)` of `samples`.
    pub fn latencies(samples: &[&Sample]) -> (Duration, Duration, Duration) {
        let mut l: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
        l.sort_unstable();
        let at = |p: f64| {
            l.get(((l.len().saturating_sub(1)) as f64 * p).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        (at(0.5), at(0.99), at(1.0))
    }

    /// `n requests (kind: count…), statuses {…}, max latency …` for the test output.
    pub fn summary(&self) -> String {
        let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
        let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
        for s in &self.samples {
            *statuses.entry(s.status).or_default() += 1;
            *kinds.entry(s.kind).or_default() += 1;
        }
        format!(
            "{} requests {kinds:?}, statuses {statuses:?}, max latency {:?}",
            self.samples.len(),
            self.max_latency()
        )
    }

    /// Fails the test when a request was answered 5xx or not at all.
    pub fn assert_no_server_errors(&self) {
        let errors = self.server_errors();
        assert!(
            errors.is_empty(),
            "{} requests got a 5xx or no answer:\n{}",
            errors.len(),
            Self::show(&errors)
        );
    }

    /// Fails the test when an answer was not what the client expected; `what` names them.
    pub fn assert_no_problems(&self, what: &str) {
        let problems = self.problems();
        assert!(
            problems.is_empty(),
            "{} {what}:\n{}",
            problems.len(),
            Self::show(&problems)
        );
    }

    /// The first few `samples`, for assertion messages.
    pub fn show(samples: &[&Sample]) -> String {
        samples
            .iter()
            .take(5)
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

// ------------------------------------------------------------------ HTTP helpers

/// One answer, read whole.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub text: String,
}

impl Answer {
    /// Reads `response` to its end; a body cut off is an error.
    pub async fn read(response: reqwest::Response) -> Result<Self, String> {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response
            .text()
            .await
            .map_err(|e| format!("body of a {status} cut off: {e}"))?;
        Ok(Self {
            status,
            content_type,
            text,
        })
    }

    /// The SSE events of a 200 stream; an error when the answer is not a complete stream.
    pub fn events(&self) -> Result<Vec<Value>, String> {
        if self.status != 200 || !self.content_type.starts_with("text/event-stream") {
            return Err(format!("not a stream: {} {}", self.status, self.text));
        }
        if !self.text.ends_with("\n\n") {
            return Err(format!("stream ends mid-frame: {:?}", self.text));
        }
        self.text
            .split("\n\n")
            .filter(|f| !f.is_empty())
            .map(|f| {
                let json = f
                    .strip_prefix("data: ")
                    .ok_or_else(|| format!("not a data frame: {f:?}"))?;
                serde_json::from_str(json).map_err(|e| format!("event is not JSON ({e}): {f}"))
            })
            .collect()
    }

    /// The JSON body.
    pub fn json(&self) -> Result<Value, String> {
        serde_json::from_str(&self.text)
            .map_err(|e| format!("{} body is not JSON ({e}): {}", self.status, self.text))
    }

    /// The `error.code` of an error answer, checking the service's one error shape.
    pub fn error_code(&self) -> Result<String, String> {
        let body = self.json()?;
        let error = &body["error"];
        match (error["code"].as_str(), error["message"].as_str()) {
            (Some(code), Some(message)) if !message.is_empty() => Ok(code.to_owned()),
            _ => Err(format!("not the error shape: {} {body}", self.status)),
        }
    }
}

/// `POST /chatkit` with `body` and `headers`, read whole.
pub async fn post_chatkit(
    http: &reqwest::Client,
    base: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Result<Answer, String> {
    let mut request = http
        .post(format!("{base}/chatkit"))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.map_err(|e| format!("send: {e}"))?;
    Answer::read(response).await
}

/// `GET url`, read whole.
pub async fn get(http: &reqwest::Client, url: &str) -> Result<Answer, String> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("send: {e}"))?;
    Answer::read(response).await
}

/// The events of `kind`.
pub fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// The items of `thread.item.done` events whose item is of `item_type`.
pub fn done_items<'a>(events: &'a [Value], item_type: &str) -> Vec<&'a Value> {
    of_type(events, "thread.item.done")
        .into_iter()
        .map(|e| &e["item"])
        .filter(|i| i["type"] == item_type)
        .collect()
}

/// Polls `check` every 100 ms until it answers true; the time it took, or `None` after `limit`.
pub async fn time_until<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

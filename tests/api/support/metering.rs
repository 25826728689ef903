//! A stand-in of the book's token-metering API (../shared/real-client.md §4): a real local
//! axum server that validates every request body against the §4 shapes (a violation is
//! answered 422 and recorded, so a test can assert there were none), keeps balances,
//! reservations and processed deducts (idempotent on `request_id`), and can be told to refuse
//! checks, fail, be slow, lose a deduct's answer, go away and come back on the same port.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Every new user's balance: $2.
pub const START_BALANCE: i64 = 20_000;

/// How checks are answered.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckMode {
    Normal,
    /// A refusal: `status`, `error_code`, and whether the account is expired.
    Refuse {
        status: u16,
        code: &'static str,
        expired: bool,
    },
    /// `REQUEST_ID_CONFLICT` for the next `n` checks, then normal.
    Conflict(u32),
    /// Answers with this status (e.g. 503) and no usable body.
    Fail(u16),
    /// Waits this long before answering normally.
    Slow(Duration),
}

/// How deducts and releases are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleMode {
    Normal,
    /// Fails with this status without processing.
    Fail(u16),
    /// Processes the deduct, then answers 500 (the answer is lost): the next delivery of the
    /// same deduct must be answered `already_processed` and charge nothing.
    LoseAnswerOnce,
}

/// A request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub call: String,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

#[derive(Debug)]
struct Books {
    check: CheckMode,
    settle: SettleMode,
    seen: Vec<Seen>,
    violations: Vec<String>,
    balances: HashMap<String, i64>,
    /// request_id → (user, reserved credits).
    reservations: HashMap<String, (String, i64)>,
    deducted: HashSet<String>,
    released: HashSet<String>,
    /// Credits charged per deduct request_id.
    charged: HashMap<String, i64>,
}

/// A running stand-in.
pub struct MeteringApi {
    pub url: String,
    port: u16,
    books: Arc<Mutex<Books>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for MeteringApi {
    fn drop(&mut self) {
        if let Some(t) = self.task.lock().expect("lock").take() {
            t.abort();
        }
    }
}

impl MeteringApi {
    pub async fn start() -> Self {
        let books = Arc::new(Mutex::new(Books {
            check: CheckMode::Normal,
            settle: SettleMode::Normal,
            seen: Vec::new(),
            violations: Vec::new(),
            balances: HashMap::new(),
            reservations: HashMap::new(),
            deducted: HashSet::new(),
            released: HashSet::new(),
            charged: HashMap::new(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let api = Self {
            url: format!("http://127.0.0.1:{port}"),
            port,
            books,
            task: Mutex::new(None),
        };
        api.serve(listener);
        api
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(self.books.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        *self.task.lock().expect("lock") = Some(task);
    }

    /// Stops listening: connections are refused until [`Self::come_back`]. (Every answer
    /// closes its connection, so no pooled connection outlives this.)
    pub fn go_away(&self) {
        if let Some(t) = self.task.lock().expect("lock").take() {
            t.abort();
        }
    }

    /// Listens again on the same port, with the same books.
    pub async fn come_back(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("rebind the metering port");
        self.serve(listener);
    }

    pub fn set_check(&self, mode: CheckMode) {
        self.books.lock().expect("lock").check = mode;
    }

    pub fn set_settle(&self, mode: SettleMode) {
        self.books.lock().expect("lock").settle = mode;
    }

    pub fn set_balance(&self, user: &str, credits: i64) {
        self.books
            .lock()
            .expect("lock")
            .balances
            .insert(user.to_owned(), credits);
    }

    pub fn balance(&self, user: &str) -> i64 {
        *self
            .books
            .lock()
            .expect("lock")
            .balances
            .get(user)
            .unwrap_or(&START_BALANCE)
    }

    /// Every request seen, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.books.lock().expect("lock").seen.clone()
    }

    /// The requests of one call (`check`, `deduct`, `release`).
    pub fn calls(&self, call: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.call == call).collect()
    }

    /// Every body that did not match §4.
    pub fn violations(&self) -> Vec<String> {
        self.books.lock().expect("lock").violations.clone()
    }

    /// Deducts processed (each request id once).
    pub fn deducted(&self) -> HashSet<String> {
        self.books.lock().expect("lock").deducted.clone()
    }

    pub fn released(&self) -> HashSet<String> {
        self.books.lock().expect("lock").released.clone()
    }

    /// Waits until `call` was seen `n` times (or the deadline passes); the count seen.
    pub async fn wait_for(&self, call: &str, n: usize, within: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let count = self.calls(call).len();
            if count >= n || tokio::time::Instant::now() >= deadline {
                return count;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn closing(status: StatusCode, body: Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    r.headers_mut()
        .insert("connection", "close".parse().expect("header"));
    r
}

async fn handle(
    State(books): State<Arc<Mutex<Books>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = uri
        .path()
        .strip_prefix("/api/v1/metering/")
        .unwrap_or("unknown")
        .to_owned();
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let slow = {
        let mut b = books.lock().expect("lock");
        b.seen.push(Seen {
            call: call.clone(),
            headers: headers.clone(),
            body: value.clone(),
        });
        match (&b.check, call.as_str()) {
            (CheckMode::Slow(d), "check") => Some(*d),
            _ => None,
        }
    };
    if let Some(d) = slow {
        tokio::time::sleep(d).await;
    }
    let mut b = books.lock().expect("lock");
    let problems = validate(&call, &value, &headers);
    if !problems.is_empty() {
        let text = format!("{call}: {} in {value}", problems.join("; "));
        b.violations.push(text.clone());
        return closing(StatusCode::UNPROCESSABLE_ENTITY, json!({"detail": text}));
    }
    let (status, body) = match call.as_str() {
        "check" => check(&mut b, &value),
        "deduct" => deduct(&mut b, &value),
        "release" => release(&mut b, &value),
        _ => (404, json!({"detail": "not found"})),
    };
    closing(StatusCode::from_u16(status).expect("status"), body)
}

fn refusal(status: u16, code: &str, balance: i64, required: i64, expired: bool) -> (u16, Value) {
    (
        status,
        json!({"detail": {"allowed": false, "error_code": code, "message": format!("{code} (stand-in)"),
            "balance": balance, "available_balance": balance, "required": required, "is_expired": expired}}),
    )
}

fn check(b: &mut Books, v: &Value) -> (u16, Value) {
    let user = v["user_id"].as_str().unwrap_or_default().to_owned();
    let request_id = v["request_id"].as_str().unwrap_or_default().to_owned();
    let required = v["estimated_tokens"].as_i64().unwrap_or(0);
    let balance = *b.balances.entry(user.clone()).or_insert(START_BALANCE);
    match b.check.clone() {
        CheckMode::Refuse {
            status,
            code,
            expired,
        } => return refusal(status, code, balance, required, expired),
        CheckMode::Conflict(n) if n > 0 => {
            b.check = CheckMode::Conflict(n - 1);
            return refusal(409, "REQUEST_ID_CONFLICT", balance, required, false);
        }
        CheckMode::Fail(status) => return (status, json!({"detail": "metering is failing"})),
        _ => {}
    }
    if b.reservations.contains_key(&request_id) {
        return refusal(409, "REQUEST_ID_CONFLICT", balance, required, false);
    }
    if balance < required {
        return refusal(402, "INSUFFICIENT_BALANCE", balance, required, false);
    }
    b.reservations.insert(request_id.clone(), (user, required));
    (
        200,
        json!({"allowed": true, "reservation_id": format!("res_{request_id}"),
            "reserved_credits": required, "expires_at": "2026-12-03T12:00:00Z"}),
    )
}

fn deduct(b: &mut Books, v: &Value) -> (u16, Value) {
    if let SettleMode::Fail(status) = b.settle {
        return (status, json!({"detail": "metering is failing"}));
    }
    let user = v["user_id"].as_str().unwrap_or_default().to_owned();
    let request_id = v["request_id"].as_str().unwrap_or_default().to_owned();
    let reservation = v["reservation_id"].as_str().unwrap_or_default();
    let total = v["input_tokens"].as_i64().unwrap_or(0) + v["output_tokens"].as_i64().unwrap_or(0);
    if let Some(rid) = reservation.strip_prefix("res_") {
        match b.reservations.get(rid) {
            Some((owner, _)) if *owner == user && rid == request_id => {}
            _ => return (404, json!({"detail": "unknown reservation"})),
        }
    }
    let balance = *b.balances.entry(user.clone()).or_insert(START_BALANCE);
    if b.deducted.contains(&request_id) {
        return (
            200,
            json!({"status": "already_processed", "transaction_id": format!("tx_{request_id}"),
                "total_tokens": total, "credits_deducted": 0, "balance_after": balance}),
        );
    }
    // One credit per token in the stand-in.
    b.deducted.insert(request_id.clone());
    b.charged.insert(request_id.clone(), total);
    b.balances.insert(user, balance - total);
    if b.settle == SettleMode::LoseAnswerOnce {
        b.settle = SettleMode::Normal;
        return (500, json!({"detail": "the answer was lost"}));
    }
    (
        200,
        json!({"status": "finalized", "transaction_id": format!("tx_{request_id}"),
            "total_tokens": total, "credits_deducted": total, "balance_after": balance - total}),
    )
}

fn release(b: &mut Books, v: &Value) -> (u16, Value) {
    if let SettleMode::Fail(status) = b.settle {
        return (status, json!({"detail": "metering is failing"}));
    }
    let request_id = v["request_id"].as_str().unwrap_or_default().to_owned();
    let reserved = b.reservations.get(&request_id).map_or(0, |(_, r)| *r);
    b.released.insert(request_id);
    (
        200,
        json!({"status": "released", "reserved_credits": reserved}),
    )
}

/// A lowercase hyphenated UUID.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

fn reservation_ok(s: &str) -> bool {
    let rest = s
        .strip_prefix("res_")
        .or_else(|| s.strip_prefix("failopen_"));
    rest.is_some_and(|r| {
        !r.is_empty()
            && r.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c) || c == '-')
    })
}

/// What is wrong with a body of `call` (empty: it matches §4).
fn validate(call: &str, v: &Value, headers: &HeaderMap) -> Vec<String> {
    let mut p = Vec::new();
    let Some(obj) = v.as_object() else {
        return vec!["the body is not a JSON object".into()];
    };
    let (required, optional): (&[&str], &[&str]) = match call {
        "check" => (
            &["user_id", "request_id", "estimated_tokens", "model"],
            &["context"],
        ),
        "deduct" => (
            &[
                "user_id",
                "request_id",
                "reservation_id",
                "input_tokens",
                "output_tokens",
                "model",
            ],
            &["thread_id", "usage_details", "context"],
        ),
        "release" => (&["user_id", "request_id", "reservation_id"], &[]),
        other => return vec![format!("unknown call {other}")],
    };
    for k in required {
        if !obj.contains_key(*k) {
            p.push(format!("missing `{k}`"));
        }
    }
    for k in obj.keys() {
        if !required.contains(&k.as_str()) && !optional.contains(&k.as_str()) {
            p.push(format!("unknown field `{k}`"));
        }
    }
    let user = v["user_id"].as_str().unwrap_or_default();
    if user.is_empty() {
        p.push("`user_id` is not a non-empty string".into());
    }
    let header_user = headers
        .get("x-user-id")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if header_user != user {
        p.push(format!("X-User-ID `{header_user}` is not user_id `{user}`"));
    }
    if !v["request_id"].as_str().is_some_and(is_uuid) {
        p.push("`request_id` is not a lowercase hyphenated UUID".into());
    }
    if obj.contains_key("model") && v["model"].as_str().is_none_or(str::is_empty) {
        p.push("`model` is not a non-empty string".into());
    }
    if obj.contains_key("reservation_id")
        && !v["reservation_id"].as_str().is_some_and(reservation_ok)
    {
        p.push("`reservation_id` does not match ^(res_|failopen_)[a-f0-9-]+$".into());
    }
    if call == "check" && v["estimated_tokens"].as_u64().is_none_or(|n| n < 1) {
        p.push("`estimated_tokens` is not an integer ≥ 1".into());
    }
    if let Some(ctx) = obj.get("context") {
        let ok = ctx.as_object().is_some_and(|c| {
            c.iter()
                .all(|(k, val)| k == "lesson_path" && val.is_string())
        });
        if !ok {
            p.push("`context` is not {\"lesson_path\": string}".into());
        }
    }
    if call == "deduct" {
        for k in ["input_tokens", "output_tokens"] {
            if v[k].as_u64().is_none() {
                p.push(format!("`{k}` is not a non-negative integer"));
            }
        }
        if obj.contains_key("thread_id") && !v["thread_id"].is_string() {
            p.push("`thread_id` is not a string".into());
        }
        if let Some(d) = obj.get("usage_details") {
            p.extend(usage_details(d, v));
        }
    }
    p
}

fn usage_details(d: &Value, v: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let Some(o) = d.as_object() else {
        return vec!["`usage_details` is not an object".into()];
    };
    for (k, val) in o {
        match k.as_str() {
            "requests" | "total_tokens" | "cached_tokens" | "reasoning_tokens" => {
                if val.as_u64().is_none() {
                    p.push(format!("`usage_details.{k}` is not a non-negative integer"));
                }
            }
            "estimated" if val.is_boolean() => {}
            other => p.push(format!("unknown field `usage_details.{other}`")),
        }
    }
    let total = v["input_tokens"].as_u64().unwrap_or(0) + v["output_tokens"].as_u64().unwrap_or(0);
    if d["total_tokens"].as_u64().is_some_and(|t| t != total) {
        p.push("`usage_details.total_tokens` is not input + output".into());
    }
    p
}

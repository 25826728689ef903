//! Credit metering: every model call of a tutor run is paid for in the book's credits, against
//! its token-metering API (../shared/real-client.md §4).
//!
//! Owns: the per-call protocol — `check` before the model is called ([`Metering::admit`]: a
//! fresh request id, the student's id and bearer, an estimate), then exactly one `deduct` (the
//! model's usage) or `release` (nothing was used) through a [`Ticket`] —; refusals as messages
//! for the student ([`messages`]); failing open or closed when the API is down, with a breaker
//! so a dead API costs its timeout once, not on every turn; the durable outbox of deducts and
//! releases and the worker that delivers it ([`outbox`]); `METERING_*` ([`settings`]); the
//! `metering_*` series. Must not know prompts, ChatKit or HTTP routes: the tutor wraps its two
//! model calls with it, and the composition root runs the worker.

mod client;
pub mod messages;
mod metrics;
mod outbox;
mod settings;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use prometheus_client::registry::Registry;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::messages::Refusal;
pub use self::metrics::MeteringMetrics;
pub use self::settings::{MeteringSettings, SETTINGS};

use self::client::{CheckAnswer, Client, Detail, SendError};
use self::outbox::{Outbox, Row};
use crate::db::Database;
use crate::turn::Usage;

/// How long the breaker, once open, lets checks fail at once before one goes through again.
const PROBE_INTERVAL: Duration = Duration::from_secs(10);
/// How often the worker looks for due rows when nothing woke it.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Rows taken per pass, and delivered at once.
const BATCH: i64 = 32;
const CONCURRENT_DELIVERIES: usize = 8;

/// Who a run is for and what it is about.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The student (`X-User-ID`, `user_id`).
    pub user_id: String,
    /// Their own bearer, forwarded (`Authorization`); `None` in dev mode without a token.
    pub bearer: Option<SecretString>,
    pub thread_id: Option<String>,
    pub lesson_path: Option<String>,
}

/// One model call about to be made.
#[derive(Debug, Clone)]
pub struct Call {
    pub model: String,
    /// The prompt's measured tokens (instructions, lesson context, history, message); 0 when
    /// it cannot be measured (then `METERING_DEFAULT_ESTIMATE` is reserved).
    pub prompt_tokens: u64,
    /// Tokens the call may write.
    pub output_budget: u64,
    /// Longest the call may take (its model's total timeout): after it, a run that never
    /// settled (a crash) is settled from the outbox.
    pub horizon: Duration,
}

/// Credit metering of one process. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Metering {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: MeteringSettings,
    client: Client,
    outbox: Outbox,
    breaker: Breaker,
    metrics: MeteringMetrics,
    wake: Notify,
    /// Settlements started by dropped tickets (a cancelled reply), awaited at shutdown.
    tasks: TaskTracker,
}

impl Metering {
    /// Metering on `db`'s outbox when `METERING_ENABLED` (with a URL), else `None`.
    pub fn new(
        settings: &MeteringSettings,
        db: &Database,
        registry: &mut Registry,
    ) -> Option<Self> {
        let url = settings.api_url.as_deref().filter(|_| settings.enabled)?;
        let metering = Self {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                client: Client::new(url, settings.timeout),
                outbox: Outbox::new(db.clone(), url),
                breaker: Breaker::default(),
                metrics: MeteringMetrics::register(registry),
                wake: Notify::new(),
                tasks: TaskTracker::new(),
            }),
        };
        tracing::info!(
            api = %url,
            fail_open = settings.fail_open,
            timeout_secs = settings.timeout.as_secs_f64(),
            "metering on"
        );
        Some(metering)
    }

    /// The tokens to reserve for `call`.
    pub fn estimate(&self, call: &Call) -> u64 {
        if call.prompt_tokens == 0 {
            return self.inner.settings.default_estimate;
        }
        (call.prompt_tokens + call.output_budget).max(1)
    }

    /// Checks `call` for `caller`: a [`Ticket`] to settle once the call is over, or why the
    /// model must not be called.
    pub async fn admit(&self, caller: &Caller, call: &Call) -> Result<Ticket, Refusal> {
        let inner = &self.inner;
        if !inner.breaker.admit() {
            inner.metrics.check("breaker_open");
            return self.unavailable(caller, call, "breaker open").await;
        }
        let mut request_id = new_request_id();
        let mut conflicts = 0;
        loop {
            let body = self.check_body(caller, call, &request_id);
            let answer = inner
                .client
                .check(&caller.user_id, caller.bearer.as_ref(), &body)
                .await;
            match answer {
                CheckAnswer::Allowed { reservation_id } => {
                    inner.breaker.ok();
                    inner.metrics.check("allowed");
                    return Ok(self
                        .ticket(caller, call, request_id, reservation_id, false)
                        .await);
                }
                CheckAnswer::Refused { code, .. }
                    if code == "REQUEST_ID_CONFLICT" && conflicts == 0 =>
                {
                    conflicts += 1;
                    tracing::info!(metering_request_id = %request_id, "metering: request id conflict; retrying with a new id");
                    request_id = new_request_id();
                }
                CheckAnswer::Refused { code, detail } if code != "REQUEST_ID_CONFLICT" => {
                    inner.breaker.ok();
                    inner.metrics.check("refused");
                    inner.metrics.refusal(&code);
                    let refusal = refusal_of(&code, &detail);
                    tracing::info!(metering_request_id = %request_id, code = %code, user = %caller.user_id, "metering: check refused");
                    return Err(refusal);
                }
                CheckAnswer::Refused { code, .. } => {
                    inner.metrics.check("unavailable");
                    return self.unavailable(caller, call, &code).await;
                }
                CheckAnswer::Failed(why) => {
                    inner.breaker.fail();
                    inner.metrics.check("unavailable");
                    return self.unavailable(caller, call, &why).await;
                }
            }
        }
    }

    fn check_body(&self, caller: &Caller, call: &Call, request_id: &str) -> Value {
        let mut body = json!({
            "user_id": caller.user_id,
            "request_id": request_id,
            "estimated_tokens": self.estimate(call),
            "model": call.model,
        });
        if let Some(path) = &caller.lesson_path {
            body["context"] = json!({ "lesson_path": path });
        }
        body
    }

    /// The API gave no usable answer: a fail-open ticket, or the fail-closed refusal.
    async fn unavailable(
        &self,
        caller: &Caller,
        call: &Call,
        why: &str,
    ) -> Result<Ticket, Refusal> {
        let inner = &self.inner;
        if !inner.settings.fail_open {
            inner.metrics.refusal(Refusal::Unavailable.code());
            tracing::warn!(error = %why, "metering API unavailable: failing closed");
            return Err(Refusal::Unavailable);
        }
        inner.metrics.fail_open.inc();
        let request_id = new_request_id();
        tracing::warn!(metering_request_id = %request_id, error = %why, "metering API unavailable: failing open");
        let reservation = format!("failopen_{request_id}");
        Ok(self
            .ticket(caller, call, request_id, reservation, true)
            .await)
    }

    async fn ticket(
        &self,
        caller: &Caller,
        call: &Call,
        request_id: String,
        reservation_id: String,
        fail_open: bool,
    ) -> Ticket {
        let ticket = Ticket {
            metering: self.clone(),
            caller: caller.clone(),
            model: call.model.clone(),
            prompt_tokens: call.prompt_tokens,
            request_id,
            reservation_id,
            fail_open,
            streamed_chars: 0,
            settled: false,
        };
        // The dead-man's switch: if this process dies before the call settles, the outbox
        // still deducts the prompt once the call's horizon has passed.
        let fallback = ticket
            .deduct_body(ticket.estimated_usage(), true)
            .to_string();
        let horizon = call.horizon + self.inner.settings.timeout + Duration::from_secs(60);
        let bearer = caller.bearer.as_ref().map(|b| b.expose_secret().to_owned());
        if let Err(e) = self
            .inner
            .outbox
            .open(
                &ticket.request_id,
                &caller.user_id,
                bearer.as_deref(),
                &fallback,
                horizon,
            )
            .await
        {
            tracing::error!(metering_request_id = %ticket.request_id, error = %e, "metering: cannot write the outbox; the call is settled from memory");
        }
        tracing::info!(
            metering_request_id = %ticket.request_id,
            reservation_id = %ticket.reservation_id,
            model = %call.model,
            estimated_tokens = self.estimate(call),
            user = %caller.user_id,
            "metering: call admitted"
        );
        ticket
    }

    /// Writes the settlement of `request_id` and wakes the worker. A store that cannot take it
    /// gets one direct delivery instead (logged and counted when that fails too).
    async fn settle(
        &self,
        ticket_user: &str,
        bearer: Option<&str>,
        request_id: &str,
        kind: Option<&str>,
        body: &str,
    ) {
        let inner = &self.inner;
        let written = match kind {
            None => inner.outbox.forget(request_id).await,
            Some(kind) => {
                inner
                    .outbox
                    .settle(request_id, kind, ticket_user, bearer, body)
                    .await
            }
        };
        let Some(kind) = kind else { return };
        match written {
            Ok(()) => inner.wake.notify_one(),
            Err(e) => {
                tracing::error!(metering_request_id = %request_id, error = %e, "metering: cannot write the outbox; delivering directly");
                let row = Row {
                    request_id: request_id.to_owned(),
                    kind: kind.to_owned(),
                    user_id: ticket_user.to_owned(),
                    bearer: bearer.map(str::to_owned),
                    body: body.to_owned(),
                    attempts: 0,
                    next_attempt_ms: 0,
                };
                self.deliver(&row).await;
            }
        }
    }

    /// Delivers due outbox rows until stopped: at once when woken by a settlement, else every
    /// [`POLL_INTERVAL`] (so rows left by an earlier process or a failed attempt go out, the
    /// first pass at start).
    pub async fn run_worker(self, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.deliver_due() => {}
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    }

    /// One pass over the due rows.
    pub async fn deliver_due(&self) {
        let inner = &self.inner;
        let lease = inner.settings.timeout + Duration::from_secs(5);
        for _ in 0..8 {
            let rows = match inner.outbox.due(BATCH).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "metering outbox unreadable; retrying later");
                    return;
                }
            };
            let n = rows.len();
            futures::stream::iter(rows)
                .for_each_concurrent(CONCURRENT_DELIVERIES, |row| async move {
                    if matches!(inner.outbox.claim(&row, lease).await, Ok(true)) {
                        self.deliver(&row).await;
                    }
                })
                .await;
            if n < usize::try_from(BATCH).unwrap_or(usize::MAX) {
                break;
            }
        }
        if let Ok(pending) = inner.outbox.pending().await {
            inner.metrics.outbox_pending.set(pending);
        }
    }

    /// Sends one row and records the outcome in the outbox.
    async fn deliver(&self, row: &Row) {
        let inner = &self.inner;
        let call = row.call();
        let sent = inner
            .client
            .send(call, &row.user_id, row.bearer.as_deref(), &row.body)
            .await;
        let outbox = &inner.outbox;
        let result = match sent {
            Ok(answer) => {
                self.acknowledged(row, &answer);
                outbox.done(row).await
            }
            Err(e) => {
                let (why, permanent) = match &e {
                    SendError::Retry(w) => (w.as_str(), false),
                    SendError::Permanent(w) => (w.as_str(), true),
                };
                if call == "deduct" {
                    inner.metrics.deduct_failures.inc();
                } else {
                    inner.metrics.release_failures.inc();
                }
                tracing::warn!(metering_request_id = %row.request_id, call, attempts = row.attempts + 1, permanent, error = %why, "metering delivery failed");
                outbox.failed(row, why, permanent).await
            }
        };
        if let Err(e) = result {
            tracing::warn!(metering_request_id = %row.request_id, error = %e, "metering outbox update failed (the row is delivered again; the API is idempotent)");
        }
    }

    fn acknowledged(&self, row: &Row, answer: &Value) {
        let m = &self.inner.metrics;
        if row.call() == "release" {
            m.releases.inc();
            tracing::info!(metering_request_id = %row.request_id, "metering: released");
            return;
        }
        let status = answer["status"].as_str().unwrap_or("finalized");
        m.deducts
            .get_or_create(&metrics::OutcomeLabels {
                outcome: status.to_owned(),
            })
            .inc();
        let credits = answer["credits_deducted"].as_f64().unwrap_or(0.0);
        if status != "already_processed" && credits > 0.0 {
            m.credits_deducted.inc_by(credits);
        }
        tracing::info!(metering_request_id = %row.request_id, status, credits_deducted = credits, "metering: deducted");
    }

    /// At shutdown: waits for settlements of dropped tickets, then delivers what is due, all
    /// within `within`. What is left stays in the outbox for the next start.
    pub async fn drain(&self, within: Duration) {
        let work = async {
            self.inner.tasks.close();
            self.inner.tasks.wait().await;
            self.deliver_due().await;
        };
        if tokio::time::timeout(within, work).await.is_err() {
            tracing::warn!("metering: deliveries still pending at exit; the outbox keeps them");
        }
    }
}

/// A fresh lowercase hyphenated UUID.
fn new_request_id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

fn refusal_of(code: &str, detail: &Detail) -> Refusal {
    let balance = detail.available_balance.or(detail.balance).unwrap_or(0.0);
    let required = detail.required.unwrap_or(0.0);
    if detail.is_expired == Some(true) {
        return Refusal::Expired { balance, required };
    }
    match code {
        "INSUFFICIENT_BALANCE" => Refusal::OutOfCredits { balance, required },
        // "USER_MISMATCH" (the token is not the user's), "ACCOUNT_SUSPENDED" and anything
        // else the API refuses with.
        _ => Refusal::Suspended,
    }
}

/// How a metered call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The model reported its usage.
    Used(Usage),
    /// No usage report: estimated from the prompt and the text streamed (a cancelled reply, a
    /// model without usage, a reply that broke off after some text). Nothing streamed:
    /// released.
    Unreported,
}

/// An admitted model call, to be settled exactly once: [`Ticket::settle`], or — dropped
/// unsettled, e.g. by a client disconnect — settled in the background from what was seen.
#[derive(Debug)]
pub struct Ticket {
    metering: Metering,
    caller: Caller,
    model: String,
    prompt_tokens: u64,
    request_id: String,
    reservation_id: String,
    fail_open: bool,
    streamed_chars: u64,
    settled: bool,
}

impl Ticket {
    /// The call's metering `request_id` (for the run's log lines).
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Notes text the student received (what a cancelled call is charged for).
    pub fn saw_text(&mut self, text: &str) {
        self.streamed_chars += text.chars().count() as u64;
    }

    fn estimated_usage(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_tokens,
            output_tokens: self.streamed_chars.div_ceil(4),
            cached_tokens: 0,
            reasoning_tokens: 0,
        }
    }

    fn deduct_body(&self, usage: Usage, estimated: bool) -> Value {
        let mut details = json!({
            "requests": 1,
            "total_tokens": usage.input_tokens + usage.output_tokens,
            "cached_tokens": usage.cached_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
        });
        if estimated {
            details["estimated"] = Value::Bool(true);
        }
        let mut body = json!({
            "user_id": self.caller.user_id,
            "request_id": self.request_id,
            "reservation_id": self.reservation_id,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "model": self.model,
            "usage_details": details,
        });
        if let Some(t) = &self.caller.thread_id {
            body["thread_id"] = json!(t);
        }
        if let Some(path) = &self.caller.lesson_path {
            body["context"] = json!({ "lesson_path": path });
        }
        body
    }

    /// What to write: `(kind, body)`, or `None` for a fail-open call that used nothing (no
    /// reservation to release).
    fn settlement(&self, outcome: Outcome) -> (Option<&'static str>, Value) {
        match outcome {
            Outcome::Used(usage) => (Some("deduct"), self.deduct_body(usage, false)),
            Outcome::Unreported if self.streamed_chars > 0 => (
                Some("deduct"),
                self.deduct_body(self.estimated_usage(), true),
            ),
            Outcome::Unreported if self.fail_open => (None, Value::Null),
            Outcome::Unreported => (
                Some("release"),
                json!({
                    "user_id": self.caller.user_id,
                    "request_id": self.request_id,
                    "reservation_id": self.reservation_id,
                }),
            ),
        }
    }

    /// Settles the call: written to the outbox before this returns.
    pub async fn settle(mut self, outcome: Outcome) {
        self.settled = true;
        let (kind, body) = self.settlement(outcome);
        log_settled(&self.request_id, kind, outcome, self.streamed_chars);
        let bearer = self
            .caller
            .bearer
            .as_ref()
            .map(|b| b.expose_secret().to_owned());
        self.metering
            .settle(
                &self.caller.user_id,
                bearer.as_deref(),
                &self.request_id,
                kind,
                &body.to_string(),
            )
            .await;
    }
}

fn log_settled(request_id: &str, kind: Option<&str>, outcome: Outcome, streamed_chars: u64) {
    let (input, output) = match outcome {
        Outcome::Used(u) => (u.input_tokens, u.output_tokens),
        Outcome::Unreported => (0, 0),
    };
    tracing::info!(
        metering_request_id = %request_id,
        settlement = kind.unwrap_or("none"),
        reported = matches!(outcome, Outcome::Used(_)),
        input_tokens = input,
        output_tokens = output,
        streamed_chars,
        "metering: call settled"
    );
}

impl Drop for Ticket {
    /// Dropped unsettled (the reply was cancelled): settle from what was seen, in the
    /// background (awaited by [`Metering::drain`] at shutdown; the outbox's open row covers
    /// a process that dies first).
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        self.settled = true;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (kind, body) = self.settlement(Outcome::Unreported);
        log_settled(
            &self.request_id,
            kind,
            Outcome::Unreported,
            self.streamed_chars,
        );
        let metering = self.metering.clone();
        let user = self.caller.user_id.clone();
        let bearer = self
            .caller
            .bearer
            .as_ref()
            .map(|b| b.expose_secret().to_owned());
        let request_id = self.request_id.clone();
        let body = body.to_string();
        let tasks = metering.inner.tasks.clone();
        let task = tasks.track_future(async move {
            metering
                .settle(&user, bearer.as_deref(), &request_id, kind, &body)
                .await;
        });
        runtime.spawn(task);
    }
}

/// Fail fast while the metering API is down: after a failed check, checks fail at once
/// (open or closed, as configured) and one per [`PROBE_INTERVAL`] goes through as a probe;
/// the first answer closes it again.
#[derive(Debug, Default)]
struct Breaker {
    down: Mutex<Option<Instant>>,
}

impl Breaker {
    fn admit(&self) -> bool {
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        match *down {
            None => true,
            Some(next) if Instant::now() >= next => {
                *down = Some(Instant::now() + PROBE_INTERVAL);
                true
            }
            Some(_) => false,
        }
    }

    fn ok(&self) {
        *self.down.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn fail(&self) {
        *self.down.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + PROBE_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_lowercase_hyphenated_uuids() {
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_eq!(id, id.to_lowercase());
        assert_ne!(id, new_request_id());
    }

    #[test]
    fn the_breaker_opens_on_a_failure_and_closes_on_an_answer() {
        let b = Breaker::default();
        assert!(b.admit());
        b.fail();
        assert!(!b.admit(), "open: no call until the probe interval");
        b.ok();
        assert!(b.admit());
    }

    #[test]
    fn suspended_mismatched_and_expired_accounts_are_refused_with_their_own_texts() {
        let d = Detail::default();
        assert_eq!(refusal_of("USER_MISMATCH", &d), Refusal::Suspended);
        assert_eq!(refusal_of("ACCOUNT_SUSPENDED", &d), Refusal::Suspended);
        let d = Detail {
            balance: Some(50.0),
            required: Some(800.0),
            ..Detail::default()
        };
        assert_eq!(
            refusal_of("INSUFFICIENT_BALANCE", &d),
            Refusal::OutOfCredits {
                balance: 50.0,
                required: 800.0
            }
        );
        let d = Detail {
            is_expired: Some(true),
            ..d
        };
        assert!(matches!(
            refusal_of("INSUFFICIENT_BALANCE", &d),
            Refusal::Expired { .. }
        ));
    }
}

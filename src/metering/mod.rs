//! Credit metering: every model call of a tutor run is paid for in the book's credits, against
//! its token-metering API (../shared/real-client.md §4).
//!
//! Owns: the per-call protocol — `check` before the model is called ([`Metering::admit`]: a
//! fresh request id, the student's id and bearer, an estimate), then exactly one `deduct` (the
//! model's usage) or `release` (nothing was used) through a [`Ticket`] (`ticket.rs`) —;
//! refusals as messages for the student ([`messages`]); failing open or closed when the API is
//! down, with a breaker (`breaker.rs`) so a dead API costs its timeout once, not on every turn;
//! the HTTP calls (`client.rs`); the durable outbox of deducts and releases (`outbox.rs`) and
//! the worker that delivers it (`worker.rs`); `METERING_*` (`settings.rs`); the `metering_*`
//! series (`metrics.rs`). Must not know prompts, ChatKit or HTTP routes: the tutor wraps its two
//! model calls with it, and the composition root runs the worker.

mod breaker;
mod client;
pub mod messages;
mod metrics;
mod outbox;
mod settings;
mod ticket;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::task::TaskTracker;

pub use self::messages::Refusal;
pub use self::metrics::MeteringMetrics;
pub use self::settings::{MeteringSettings, SETTINGS};
pub use self::ticket::{Outcome, Ticket};

use self::breaker::Breaker;
use self::client::{CheckAnswer, Client, Detail};
use self::outbox::{Outbox, Row};
use crate::db::Database;
use crate::outbound::Outbound;

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
        outbound: &Outbound,
        registry: &mut Registry,
    ) -> Option<Self> {
        let url = settings.api_url.as_deref().filter(|_| settings.enabled)?;
        let metering = Self {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                client: Client::new(url, settings.timeout, outbound),
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
                CheckAnswer::Unusable(why) => {
                    inner.breaker.ok();
                    inner.metrics.check("unavailable");
                    return self.unavailable(caller, call, &why).await;
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

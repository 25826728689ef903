//! One admitted model call, settled exactly once: a deduct of the model's usage, an estimated
//! deduct (no usage report, some text streamed), a release (nothing streamed), or nothing (a
//! fail-open call that used nothing). Dropped unsettled — a cancelled reply — it settles in the
//! background.

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::{Caller, Metering};
use crate::turn::Usage;

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
    pub(super) metering: Metering,
    pub(super) caller: Caller,
    pub(super) model: String,
    pub(super) prompt_tokens: u64,
    pub(super) request_id: String,
    pub(super) reservation_id: String,
    pub(super) fail_open: bool,
    pub(super) streamed_chars: u64,
    pub(super) settled: bool,
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

    pub(super) fn estimated_usage(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_tokens,
            output_tokens: self.streamed_chars.div_ceil(4),
            cached_tokens: 0,
            reasoning_tokens: 0,
        }
    }

    pub(super) fn deduct_body(&self, usage: Usage, estimated: bool) -> Value {
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

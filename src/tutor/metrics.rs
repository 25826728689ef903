//! Tutor metrics: replies by tutor and outcome, tokens by kind, upstream latency and time to
//! first token. Registered on the registry passed to [`super::Tutor::new`].

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::telemetry::metrics::latency_histogram;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReplyLabels {
    /// `offline` or the model API (`responses`, `chat_completions`).
    pub tutor: &'static str,
    /// `teach`, `ask`, `quiz`, `judge` (the non-streamed answer checks), or `unknown` for a
    /// refused mode.
    pub mode: &'static str,
    /// `ok`, `cancelled`, `upstream_rejected`, `upstream_unavailable`, `stream_error`,
    /// `timeout_first_token`, `timeout_idle`, `timeout_total`, `bad_request`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// `input`, `output`, `cached` (part of input), `reasoning` (part of output).
    pub kind: &'static str,
}

/// The tutor's series.
#[derive(Debug, Clone)]
pub struct TutorMetrics {
    pub replies: Family<ReplyLabels, Counter>,
    pub tokens: Family<TokenLabels, Counter>,
    pub retries: Counter,
    pub upstream_duration: Histogram,
    pub time_to_first_token: Histogram,
}

impl TutorMetrics {
    /// Creates the series and registers them on `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            replies: Family::default(),
            tokens: Family::default(),
            retries: Counter::default(),
            upstream_duration: latency_histogram(),
            time_to_first_token: latency_histogram(),
        };
        registry.register(
            "tutor_replies",
            "Tutor replies by tutor, mode and outcome",
            m.replies.clone(),
        );
        registry.register(
            "tutor_tokens",
            "Model tokens by kind (input, output; cached is part of input, reasoning of output)",
            m.tokens.clone(),
        );
        // Exported at 0 from the start (the offline tutor never counts tokens), so dashboards
        // and `rate()` see the series before the first model call.
        for kind in ["input", "output", "cached", "reasoning"] {
            drop(m.tokens.get_or_create(&TokenLabels { kind }));
        }
        registry.register(
            "tutor_upstream_retries",
            "Model requests retried before the first token",
            m.retries.clone(),
        );
        registry.register(
            "tutor_upstream_duration_seconds",
            "Whole model replies, from the first request to the last byte",
            m.upstream_duration.clone(),
        );
        registry.register(
            "tutor_time_to_first_token_seconds",
            "From the first model request to the first text token",
            m.time_to_first_token.clone(),
        );
        m
    }

    /// Counts one finished reply.
    pub fn reply(&self, tutor: &'static str, mode: &'static str, outcome: &'static str) {
        self.replies
            .get_or_create(&ReplyLabels {
                tutor,
                mode,
                outcome,
            })
            .inc();
    }

    /// Counts the tokens of one model call.
    pub fn usage(&self, usage: &crate::turn::Usage) {
        for (kind, n) in [
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cached", usage.cached_tokens),
            ("reasoning", usage.reasoning_tokens),
        ] {
            self.tokens.get_or_create(&TokenLabels { kind }).inc_by(n);
        }
    }

    /// Records the time to the first text token of one reply.
    pub fn first_token(&self, after: Duration) {
        self.time_to_first_token.observe(after.as_secs_f64());
    }
}

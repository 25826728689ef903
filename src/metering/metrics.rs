//! Metering series. Two names are a contract with the ops alerts and must not change:
//! `study_mode_metering_fail_open_total` and `study_mode_metering_deduct_failures_total`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// checks: `allowed`, `refused`, `unavailable`, `breaker_open`; deducts:
    /// `finalized`, `already_processed`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    /// `INSUFFICIENT_BALANCE`, `EXPIRED`, `ACCOUNT_SUSPENDED`, `USER_MISMATCH`, `UNAVAILABLE`
    /// (failing closed).
    pub code: String,
}

/// The metering series.
#[derive(Debug, Clone)]
pub struct MeteringMetrics {
    pub checks: Family<OutcomeLabels, Counter>,
    pub refusals: Family<CodeLabels, Counter>,
    pub deducts: Family<OutcomeLabels, Counter>,
    pub releases: Counter,
    pub deduct_failures: Counter,
    pub release_failures: Counter,
    pub fail_open: Counter,
    pub credits_deducted: Counter<f64, AtomicU64>,
    pub outbox_pending: Gauge,
}

impl MeteringMetrics {
    /// Creates the series and registers them on `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            checks: Family::default(),
            refusals: Family::default(),
            deducts: Family::default(),
            releases: Counter::default(),
            deduct_failures: Counter::default(),
            release_failures: Counter::default(),
            fail_open: Counter::default(),
            credits_deducted: Counter::default(),
            outbox_pending: Gauge::default(),
        };
        registry.register(
            "metering_checks",
            "Credit checks before a model call, by outcome",
            m.checks.clone(),
        );
        registry.register(
            "metering_refusals",
            "Model calls refused by the metering API (or by failing closed), by error code",
            m.refusals.clone(),
        );
        registry.register(
            "metering_deducts",
            "Deducts acknowledged by the metering API, by status",
            m.deducts.clone(),
        );
        registry.register(
            "metering_releases",
            "Releases acknowledged by the metering API",
            m.releases.clone(),
        );
        registry.register(
            "metering_deduct_failures",
            "Deduct deliveries that failed (each is retried from the outbox)",
            m.deduct_failures.clone(),
        );
        registry.register(
            "metering_release_failures",
            "Release deliveries that failed (each is retried from the outbox)",
            m.release_failures.clone(),
        );
        registry.register(
            "metering_fail_open",
            "Model calls let through because the metering API could not be reached",
            m.fail_open.clone(),
        );
        registry.register(
            "metering_credits_deducted",
            "Credits deducted, as the metering API reported them (10,000 = 1 USD)",
            m.credits_deducted.clone(),
        );
        registry.register(
            "metering_outbox_pending",
            "Deducts and releases written but not yet acknowledged",
            m.outbox_pending.clone(),
        );
        m
    }

    pub(super) fn check(&self, outcome: &str) {
        self.checks
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub(super) fn refusal(&self, code: &str) {
        self.refusals
            .get_or_create(&CodeLabels {
                code: code.to_owned(),
            })
            .inc();
    }
}

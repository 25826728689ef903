//! Content metrics: cache lookups per tier, origin fetches by outcome and latency, stale
//! serves and single-flight waiters.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::telemetry::metrics::{HistogramFamily, histogram_family};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LookupLabels {
    /// `l1` (in-process) or `l2` (Redis).
    pub tier: &'static str,
    /// `hit`, `negative_hit` (remembered as missing) or `miss`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OriginLabels {
    /// `github` or `local`.
    pub source: &'static str,
    /// `found`, `not_found` or `error`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: &'static str,
}

/// The series of the content subsystem.
#[derive(Debug, Clone)]
pub struct ContentMetrics {
    pub lookups: Family<LookupLabels, Counter>,
    pub origin_fetches: Family<OriginLabels, Counter>,
    pub origin_duration: HistogramFamily<SourceLabels>,
    pub stale_serves: Counter,
    pub singleflight_waiters: Counter,
}

impl ContentMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            lookups: Family::default(),
            origin_fetches: Family::default(),
            origin_duration: histogram_family(),
            stale_serves: Counter::default(),
            singleflight_waiters: Counter::default(),
        };
        registry.register(
            "content_cache_lookups",
            "Lesson cache lookups by tier (l1, l2) and outcome (hit, negative_hit, miss)",
            m.lookups.clone(),
        );
        registry.register(
            "content_origin_fetches",
            "Lesson origin fetch chains by source and outcome (found, not_found, error)",
            m.origin_fetches.clone(),
        );
        registry.register(
            "content_origin_fetch_duration_seconds",
            "Duration of one lesson origin fetch chain (every extension tried)",
            m.origin_duration.clone(),
        );
        registry.register(
            "content_stale_serves",
            "Lessons served from the last good copy because the origin failed",
            m.stale_serves.clone(),
        );
        registry.register(
            "content_singleflight_waiters",
            "Requests that waited for another request's load of the same lesson",
            m.singleflight_waiters.clone(),
        );
        m
    }

    pub(super) fn lookup(&self, tier: &'static str, outcome: &'static str) {
        self.lookups
            .get_or_create(&LookupLabels { tier, outcome })
            .inc();
    }

    pub(super) fn origin(&self, source: &'static str, outcome: &'static str, took: Duration) {
        self.origin_fetches
            .get_or_create(&OriginLabels { source, outcome })
            .inc();
        self.origin_duration
            .get_or_create(&SourceLabels { source })
            .observe(took.as_secs_f64());
    }
}

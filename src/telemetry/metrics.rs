//! The Prometheus registry of one process and the HTTP series.
//!
//! Owns: `/metrics` encoding, the registry and the shared histogram buckets. Each feature
//! defines and registers its own metric struct (`register(&mut Registry)`) while the
//! composition root builds it, so that one test app's metrics never mix with another's (no
//! global recorder). Must not import any feature.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Latency buckets shared by every histogram: 0.25 ms … ~16 s.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.00025, 2.0, 17))
}

/// A histogram family whose members use [`latency_histogram`].
pub type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// A new histogram family with latency buckets.
pub fn histogram_family<L: Clone + std::hash::Hash + Eq>() -> HistogramFamily<L> {
    Family::new_with_constructor(latency_histogram as fn() -> Histogram)
}

/// The registry of the process, with the HTTP series every request records and the process'
/// open and maximum file descriptors.
pub struct Metrics {
    registry: Registry,
    pub http: HttpMetrics,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("study_mode");
        let http = HttpMetrics::register(&mut registry);
        registry.register_collector(Box::new(super::process::ProcessCollector));
        Self { registry, http }
    }

    /// The registry, for features registering their series at build time.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Prometheus text exposition of every series.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

/// Requests by route and status, latency, in-flight.
#[derive(Debug)]
pub struct HttpMetrics {
    pub requests: Family<RequestLabels, Counter>,
    pub duration: HistogramFamily<RouteLabels>,
    pub in_flight: Gauge,
}

impl HttpMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            duration: histogram_family(),
            in_flight: Gauge::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            m.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to response head by method and route",
            m.duration.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "Requests being handled now",
            m.in_flight.clone(),
        );
        m
    }

    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.duration
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

//! Observability: the tracing subscriber, request ids, Prometheus metrics and the HTTP
//! middleware that ties them to each request.
//!
//! Owns: log format and filter, the `X-Request-ID` contract, the metrics registry. Feature
//! modules own their own metric families and register them through [`metrics::Metrics`].

pub mod http;
pub mod metrics;
pub mod request_id;

use crate::config::{LogFormat, LogSettings};
use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber once; later calls (tests) are no-ops.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_new(&settings.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// Logs at most once per `interval`: used for errors that may repeat on every request
/// (Redis down, SSO unreachable) so the log is not flooded.
#[derive(Debug)]
pub struct LogThrottle {
    interval_ms: u64,
    last_ms: std::sync::atomic::AtomicU64,
    start: std::time::Instant,
}

impl LogThrottle {
    pub fn new(interval: std::time::Duration) -> Self {
        Self {
            interval_ms: interval.as_millis() as u64,
            last_ms: std::sync::atomic::AtomicU64::new(0),
            start: std::time::Instant::now(),
        }
    }

    /// True when the caller should log now (and records that it did).
    pub fn allow(&self) -> bool {
        use std::sync::atomic::Ordering;
        // +1 so the very first call is always allowed.
        let now = self.start.elapsed().as_millis() as u64 + self.interval_ms + 1;
        let last = self.last_ms.load(Ordering::Relaxed);
        now.saturating_sub(last) >= self.interval_ms
            && self
                .last_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::LogThrottle;
    use std::time::Duration;

    #[test]
    fn throttle_allows_the_first_call_then_waits_for_the_interval() {
        let t = LogThrottle::new(Duration::from_secs(3600));
        assert!(t.allow());
        assert!(!t.allow());
        let t = LogThrottle::new(Duration::ZERO);
        assert!(t.allow());
        assert!(t.allow());
    }
}

//! Observability: the tracing subscriber, request ids, Prometheus metrics and the HTTP
//! middleware that ties them to each request.
//!
//! Owns: `LOG_*` settings, log format and filter, the `X-Request-ID` contract, the metrics
//! registry, the HTTP series and the process' file-descriptor series. Feature modules own their own metric families and register
//! them in [`metrics::Metrics`]'s registry. A ground layer: imports only `config`.

pub mod http;
pub mod metrics;
mod process;
pub mod request_id;

use tracing_subscriber::EnvFilter;

use crate::config::{Env, SettingDoc};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "pretty" | "text" => Ok(Self::Pretty),
            other => Err(format!(
                "`{other}` is not a log format; use `json` or `pretty`"
            )),
        }
    }
}

/// Logging.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

/// Variables read by this module.
pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc::new(
        "LOG_LEVEL",
        "`info`",
        "tracing filter, e.g. `info` or `study_mode_api=debug,info`.",
    ),
    SettingDoc::new(
        "LOG_FORMAT",
        "`json` in production, `pretty` in development",
        "`json` or `pretty`.",
    ),
];

impl LogSettings {
    /// `production` picks the default format (JSON lines for log collectors).
    pub fn from_env(env: &mut Env, production: bool) -> Self {
        let default_format = if production {
            LogFormat::Json
        } else {
            LogFormat::Pretty
        };
        Self {
            level: env.string("LOG_LEVEL").unwrap_or_else(|| "info".into()),
            format: env.parse_or("LOG_FORMAT", default_format),
        }
    }
}

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

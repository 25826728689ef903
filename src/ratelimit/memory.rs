//! The in-process limiter (no `REDIS_URL`): the same sliding-window log, per instance, in a
//! mutex'd map. Hand-written rather than `governor` because governor implements GCRA, whose
//! burst semantics differ from the Redis limiter's (see [`super::window`]), and has no
//! all-windows-or-none admission for multi-window policies.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::policy::Window;
use super::window::{Decision, decide, longest};

/// Every this many checks, logs whose entries have all expired are dropped.
const SWEEP_EVERY: u64 = 4096;

#[derive(Debug, Default)]
struct Log {
    entries: VecDeque<Instant>,
    keep_for: Duration,
}

/// Per-instance logs, keyed by policy and subject.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    logs: Mutex<HashMap<String, Log>>,
    checks: AtomicU64,
}

impl MemoryLimiter {
    /// Decides on one request of `key` under `windows`.
    pub fn check(&self, key: &str, windows: &[Window]) -> Decision {
        let now = Instant::now();
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            logs.retain(|_, log| {
                log.entries
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < log.keep_for)
            });
        }
        let log = logs.entry(key.to_owned()).or_default();
        log.keep_for = longest(windows);
        decide(&mut log.entries, now, windows)
    }
}

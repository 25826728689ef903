//! The check's breaker.

use std::sync::Mutex;
use std::time::Instant;

use super::PROBE_INTERVAL;

/// Fail fast while the metering API is down: after a failed check, checks fail at once
/// (open or closed, as configured) and one per [`PROBE_INTERVAL`] goes through as a probe;
/// the first answer closes it again.
#[derive(Debug, Default)]
pub(super) struct Breaker {
    down: Mutex<Option<Instant>>,
}

impl Breaker {
    pub(super) fn admit(&self) -> bool {
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

    pub(super) fn ok(&self) {
        *self.down.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub(super) fn fail(&self) {
        *self.down.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + PROBE_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_on_a_failure_and_closes_on_an_answer() {
        let b = Breaker::default();
        assert!(b.admit());
        b.fail();
        assert!(!b.admit(), "open: no call until the probe interval");
        b.ok();
        assert!(b.admit());
    }
}

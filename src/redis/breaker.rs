//! Fail fast while Redis is down.
//!
//! A `ConnectionManager` whose server vanished makes every command wait for its reconnect
//! (connect timeout, retries with backoff): measured by the Redis fault test, each request
//! waited 1–5 s during an outage. Redis is only a cache and a limiter that fails open, so
//! after a connection-level failure it counts as down: operations fail at once (a miss, an
//! admission) and one operation per [`PROBE_INTERVAL`] goes through to find out whether it is
//! back. The first success closes the breaker again.
//!
//! Written here rather than taken from a circuit-breaker crate (`failsafe`, `recloser`): the
//! whole state is one `Option<Instant>` and the policy (only connection-level errors count,
//! one probe a second) is a few lines, where those crates bring failure-rate windows and
//! backoff policies that we would configure away.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::metrics::gauge::Gauge;

/// How often, while Redis is down, one operation is let through as a probe.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The fail-fast state of one Redis.
#[derive(Debug, Default)]
pub struct Breaker {
    /// `Some(t)`: Redis is down; the next probe may go at `t`.
    down: Mutex<Option<Instant>>,
    /// 1 while open (Redis counts as down), 0 while closed: `redis_breaker_open`.
    open: Gauge,
}

impl Breaker {
    /// Whether an operation may go to Redis now (always while it is up; one probe per
    /// interval while it is down).
    pub fn admit(&self) -> bool {
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        match *down {
            None => true,
            Some(next_probe) if Instant::now() >= next_probe => {
                *down = Some(Instant::now() + PROBE_INTERVAL);
                true
            }
            Some(_) => false,
        }
    }

    /// Notes how an operation that went to Redis ended. Only a failure to reach Redis opens
    /// the breaker; a command error (wrong type, script missing) means Redis answered.
    pub fn observe<T>(&self, result: &redis::RedisResult<T>) {
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(_) => *down = None,
            Err(e) if unreachable(e) => {
                down.get_or_insert(Instant::now() + PROBE_INTERVAL);
            }
            Err(_) => {}
        }
        self.open.set(i64::from(down.is_some()));
    }

    /// The gauge that shows the state (1 open, 0 closed), for registering.
    pub fn gauge(&self) -> Gauge {
        self.open.clone()
    }

    /// True while Redis counts as down.
    #[cfg(test)]
    fn is_open(&self) -> bool {
        self.down
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

fn unreachable(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> redis::RedisResult<()> {
        Err(redis::RedisError::from(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )))
    }

    #[test]
    fn a_connection_failure_opens_it_and_a_success_closes_it() {
        let b = Breaker::default();
        assert!(b.admit());
        b.observe(&refused());
        assert!(b.is_open());
        assert_eq!(b.gauge().get(), 1, "the gauge shows it open");
        assert!(!b.admit(), "fails fast until the next probe");
        b.observe(&Ok(()));
        assert!(!b.is_open());
        assert_eq!(b.gauge().get(), 0, "and closed again");
        assert!(b.admit());
    }

    #[test]
    fn a_command_error_leaves_it_closed() {
        let b = Breaker::default();
        let wrong_type: redis::RedisResult<()> = Err(redis::RedisError::from((
            redis::ErrorKind::TypeError,
            "wrong type",
        )));
        b.observe(&wrong_type);
        assert!(!b.is_open());
    }

    #[test]
    fn while_open_one_probe_goes_through_per_interval() {
        let b = Breaker::default();
        *b.down.lock().expect("lock") = Some(Instant::now());
        assert!(b.admit(), "the probe");
        assert!(!b.admit(), "the others fail fast while it runs");
        assert!(!b.admit());
    }
}

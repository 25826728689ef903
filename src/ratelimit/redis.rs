//! The Redis limiter: the decision of [`super::window::decide`] as one atomic Lua script, run
//! for many checks at once.
//!
//! One sorted set per (policy, subject) holds the admission times in milliseconds of Redis's
//! own clock (`TIME`), so several instances with skewed clocks agree. The script
//! (`script.lua`) takes a batch of checks and, for each in order, trims the log, counts every
//! window and records the request only when every window admits it — all in one atomic step,
//! so concurrent requests from any number of instances are counted exactly.
//!
//! Concurrent checks of this process are coalesced by [`super::batch`]: one script call per
//! batch instead of one per request (the round trip, not the script, was the largest cost of a
//! cached suggestions request). Invoked by SHA (`EVALSHA`); `redis::Script` reloads it on
//! `NOSCRIPT` (e.g. after a restart or `SCRIPT FLUSH`).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;
use redis::{RedisError, Script};

use super::batch::{Answer, Batcher, Pending};
use super::policy::Window;
use super::window::{Decision, WindowState};
use crate::redis::RedisPool;

/// Deadline of one check, its wait for a batch included; past it the request is admitted
/// (fail open).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

const SCRIPT: &str = include_str!("script.lua");

/// The limiter of one process over one Redis: its batcher task and the script.
pub struct RedisLimiter {
    batcher: Batcher,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisLimiter")
    }
}

impl RedisLimiter {
    /// Starts the batcher task on the current Tokio runtime; it ends when the limiter is
    /// dropped. `batch_sizes` observes the number of checks of each script call.
    pub fn new(pool: Arc<RedisPool>, batch_sizes: Histogram) -> Self {
        let script = Arc::new(Script::new(SCRIPT));
        let run = move |batch: &mut [Pending]| {
            let call = Call::of(batch);
            let (pool, script) = (pool.clone(), script.clone());
            async move { call.run(&pool, &script).await }
        };
        Self {
            batcher: Batcher::spawn(run, batch_sizes),
        }
    }

    /// Decides on one request of `key` (already prefixed) under `windows`, in the next batch.
    pub async fn check(&self, key: String, windows: &[Window]) -> Answer {
        let answer = self.batcher.submit(key, windows.to_vec());
        tokio::time::timeout(CHECK_TIMEOUT, answer)
            .await
            .unwrap_or_else(|_| Err(Arc::new(error("rate limit check timed out"))))
    }
}

/// The arguments of one script call: every key, then each check's windows.
struct Call {
    keys: Vec<String>,
    args: Vec<u64>,
    windows: Vec<usize>,
}

impl Call {
    fn of(batch: &mut [Pending]) -> Self {
        let mut call = Self {
            keys: Vec::with_capacity(batch.len()),
            args: Vec::with_capacity(batch.len() * 3),
            windows: Vec::with_capacity(batch.len()),
        };
        for p in batch {
            call.keys.push(std::mem::take(&mut p.key));
            call.windows.push(p.windows.len());
            call.args.push(p.windows.len() as u64);
            for w in &p.windows {
                call.args.push(w.limit);
                call.args.push(millis(w.period));
            }
        }
        call
    }

    /// One `EVALSHA` with every check: the answers in order, or the error of the whole call.
    async fn run(self, pool: &RedisPool, script: &Script) -> Result<Vec<Answer>, RedisError> {
        let mut invocation = script.prepare_invoke();
        for k in &self.keys {
            invocation.key(k);
        }
        for a in &self.args {
            invocation.arg(a);
        }
        // The deadline covers connecting too, and while Redis is down the pool fails at once:
        // a down Redis must not hold requests.
        let out = pool
            .run(CHECK_TIMEOUT, |mut conn| async move {
                invocation.invoke_async::<Vec<i64>>(&mut conn).await
            })
            .await?;
        parse(&out, &self.windows)
            .ok_or_else(|| error_with_kind(redis::ErrorKind::TypeError, "unexpected script reply"))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn error(what: &'static str) -> RedisError {
    error_with_kind(redis::ErrorKind::IoError, what)
}

fn error_with_kind(kind: redis::ErrorKind, what: &'static str) -> RedisError {
    RedisError::from((kind, what))
}

/// The script's flat reply, one answer per check whose number of windows is in `windows`.
fn parse(out: &[i64], windows: &[usize]) -> Option<Vec<Answer>> {
    let mut rest = out;
    let mut answers = Vec::with_capacity(windows.len());
    for &n in windows {
        if rest.len() < 1 + 2 * n {
            return None;
        }
        let (this, tail) = rest.split_at(1 + 2 * n);
        rest = tail;
        answers.push(answer(this));
    }
    rest.is_empty().then_some(answers)
}

fn answer(out: &[i64]) -> Answer {
    let to_u64 = |v: i64| u64::try_from(v.max(0)).unwrap_or(0);
    match out[0] {
        -1 => Err(Arc::new(error_with_kind(
            redis::ErrorKind::TypeError,
            "the limiter's key could not be used (e.g. WRONGTYPE)",
        ))),
        admitted => Ok(Decision {
            admitted: admitted == 1,
            windows: out[1..]
                .chunks(2)
                .map(|c| WindowState {
                    remaining: to_u64(c[0]),
                    reset: Duration::from_millis(to_u64(c[1])),
                })
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_reply_is_split_into_one_answer_per_check_in_order() {
        let out = [1, 4, 60_000, 0, 0, 1_500, 3, 59_000, -1, 0, 0];
        let answers = parse(&out, &[1, 2, 1]).expect("well formed");
        assert_eq!(answers.len(), 3);
        let first = answers[0].as_ref().expect("decided");
        assert!(first.admitted);
        assert_eq!(first.windows[0].remaining, 4);
        assert_eq!(first.windows[0].reset, Duration::from_secs(60));
        let second = answers[1].as_ref().expect("decided");
        assert!(!second.admitted);
        assert_eq!(second.windows.len(), 2);
        assert_eq!(second.retry_after(), Duration::from_millis(1_500));
        assert!(answers[2].is_err(), "-1 is a failed check");
    }

    #[test]
    fn a_reply_of_the_wrong_length_is_refused_whole() {
        assert!(parse(&[1, 4], &[1]).is_none());
        assert!(parse(&[1, 4, 60_000, 1], &[1]).is_none());
        assert!(parse(&[], &[]).is_some_and(|a| a.is_empty()));
    }
}

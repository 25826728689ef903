//! Coalescing of concurrent limiter checks: one task per process sends them to Redis in
//! batches, one script call per batch.
//!
//! A check that arrives while fewer than [`IN_FLIGHT`] calls are in flight goes at once
//! (alone: no waiting for company); the checks that arrive while that many are in flight wait
//! for one to end and go together in the next call, at most [`MAX_BATCH`] a call. So an idle
//! service pays one round trip per check as before, and a busy one one round trip per batch.
//! Redis runs the calls one after another (each atomic), so how many are in flight changes
//! nothing of the counting.
//!
//! Bounded: at most [`QUEUE`] checks wait in the channel; beyond that a check waits to be
//! queued, all within its own deadline (`CHECK_TIMEOUT`), after which it fails open. A check
//! given up by its caller (deadline, dropped request) before its batch is sent is left out.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use prometheus_client::metrics::histogram::Histogram;
use redis::RedisError;
use tokio::sync::{mpsc, oneshot};

use super::policy::Window;
use super::window::Decision;

/// Most checks in one script call: bounds the time Redis spends in one script (3–15 µs a check
/// measured) and the size of one command.
pub const MAX_BATCH: usize = 128;
/// Most checks waiting for a batch.
pub const QUEUE: usize = 4 * MAX_BATCH;
/// Most script calls in flight at once: while one is answered, the next is already in Redis.
/// With one, a busy process on a contended machine idled between calls (measured at 1,000
/// connections: fewer requests per second than with one call per check).
pub const IN_FLIGHT: usize = 2;

/// The answer of one check: a decision, or the error that makes it fail open (shared by every
/// check of a failed call).
pub type Answer = Result<Decision, Arc<RedisError>>;

/// One check waiting for its batch.
#[derive(Debug)]
pub struct Pending {
    /// The log's key, prefixed. Taken by the call that sends it.
    pub key: String,
    pub windows: Vec<Window>,
    reply: oneshot::Sender<Answer>,
}

/// The sending side of the batcher task; the task ends when this is dropped.
#[derive(Debug)]
pub struct Batcher {
    queue: mpsc::Sender<Pending>,
}

impl Batcher {
    /// Spawns the task. `call` sends one batch and answers each of its checks, in order.
    pub fn spawn<F, Fut>(call: F, sizes: Histogram) -> Self
    where
        F: FnMut(&mut [Pending]) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<Answer>, RedisError>> + Send + 'static,
    {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(rx, call, sizes));
        Self { queue }
    }

    /// Queues one check and waits for its answer (no deadline of its own: the caller's).
    pub async fn submit(&self, key: String, windows: Vec<Window>) -> Answer {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            key,
            windows,
            reply,
        };
        if self.queue.send(pending).await.is_err() {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

async fn run<F, Fut>(mut rx: mpsc::Receiver<Pending>, mut call: F, sizes: Histogram)
where
    F: FnMut(&mut [Pending]) -> Fut,
    Fut: Future<Output = Result<Vec<Answer>, RedisError>>,
{
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while open || !in_flight.is_empty() {
        tokio::select! {
            Some(()) = in_flight.next(), if !in_flight.is_empty() => continue,
            n = rx.recv_many(&mut batch, MAX_BATCH), if open && in_flight.len() < IN_FLIGHT => {
                open = n > 0;
            }
        }
        batch.retain(|p: &Pending| !p.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        sizes.observe(batch.len() as f64);
        let answers = call(&mut batch);
        let mut sent = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        in_flight.push(async move { reply(&mut sent, answers.await) });
    }
}

fn reply(batch: &mut Vec<Pending>, answers: Result<Vec<Answer>, RedisError>) {
    match answers {
        Ok(answers) if answers.len() == batch.len() => {
            for (p, a) in batch.drain(..).zip(answers) {
                let _ = p.reply.send(a);
            }
        }
        Ok(_) => reply(
            batch,
            Err(RedisError::from((
                redis::ErrorKind::TypeError,
                "the limiter script answered a different number of checks",
            ))),
        ),
        Err(e) => {
            let e = Arc::new(e);
            for p in batch.drain(..) {
                let _ = p.reply.send(Err(e.clone()));
            }
        }
    }
}

fn stopped() -> Arc<RedisError> {
    Arc::new(RedisError::from((
        redis::ErrorKind::IoError,
        "the rate limiter's batcher has stopped",
    )))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::ratelimit::window::WindowState;

    fn window() -> Vec<Window> {
        vec![Window {
            limit: 1,
            period: Duration::from_secs(1),
        }]
    }

    fn decided(remaining: u64) -> Answer {
        Ok(Decision {
            admitted: true,
            windows: vec![WindowState {
                remaining,
                reset: Duration::ZERO,
            }],
        })
    }

    /// The keys of each batch sent, in order.
    type Seen = Arc<Mutex<Vec<Vec<String>>>>;

    /// A batcher whose calls take `delay`, record the keys of each batch and answer each check
    /// with its position in the batch.
    fn recording(delay: Duration) -> (Arc<Batcher>, Seen) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let call = move |batch: &mut [Pending]| {
            let keys: Vec<String> = batch
                .iter_mut()
                .map(|p| std::mem::take(&mut p.key))
                .collect();
            let n = keys.len();
            log.lock().expect("lock").push(keys);
            async move {
                tokio::time::sleep(delay).await;
                Ok((0..n as u64).map(decided).collect())
            }
        };
        (Arc::new(Batcher::spawn(call, Histogram::new([1.0]))), seen)
    }

    #[tokio::test]
    async fn the_first_checks_go_alone_and_those_arriving_meanwhile_go_together_in_order() {
        let (batcher, seen) = recording(Duration::from_millis(100));
        let first = openers(&batcher).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let rest: Vec<_> = (0..10)
            .map(|i| {
                let b = batcher.clone();
                tokio::spawn(async move { b.submit(format!("k{i}"), window()).await })
            })
            .collect();
        for f in first {
            assert!(f.await.expect("task").is_ok());
        }
        for (i, r) in rest.into_iter().enumerate() {
            let answer = r.await.expect("task").expect("answered");
            assert_eq!(
                answer.windows[0].remaining, i as u64,
                "answers keep the order"
            );
        }
        let mut seen = seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), IN_FLIGHT + 1, "{seen:?}");
        let last = seen.pop().expect("the batch");
        seen.sort();
        let alone: Vec<Vec<String>> = (0..IN_FLIGHT).map(|i| vec![format!("first{i}")]).collect();
        assert_eq!(seen, alone, "each of the first went alone");
        assert_eq!(last, (0..10).map(|i| format!("k{i}")).collect::<Vec<_>>());
    }

    /// [`IN_FLIGHT`] checks, started one after the other so that each goes alone.
    async fn openers(batcher: &Arc<Batcher>) -> Vec<tokio::task::JoinHandle<Answer>> {
        let mut tasks = Vec::new();
        for i in 0..IN_FLIGHT {
            let b = batcher.clone();
            tasks.push(tokio::spawn(async move {
                b.submit(format!("first{i}"), window()).await
            }));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tasks
    }

    #[tokio::test]
    async fn a_batch_holds_at_most_max_batch_checks() {
        let (batcher, seen) = recording(Duration::from_millis(30));
        let all: Vec<_> = (0..3 * MAX_BATCH)
            .map(|i| {
                let b = batcher.clone();
                tokio::spawn(async move { b.submit(format!("k{i}"), window()).await })
            })
            .collect();
        for r in all {
            assert!(r.await.expect("task").is_ok());
        }
        let sizes: Vec<usize> = seen.lock().expect("lock").iter().map(Vec::len).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 3 * MAX_BATCH);
        assert!(sizes.iter().all(|&n| n <= MAX_BATCH), "{sizes:?}");
        assert!(sizes.len() <= 5, "coalesced: {sizes:?}");
    }

    #[tokio::test]
    async fn a_failed_call_answers_every_check_of_its_batch_with_the_error() {
        let call = |batch: &mut [Pending]| {
            let _ = batch;
            async { Err(RedisError::from((redis::ErrorKind::IoError, "boom"))) }
        };
        let batcher = Arc::new(Batcher::spawn(call, Histogram::new([1.0])));
        let all: Vec<_> = (0..20)
            .map(|i| {
                let b = batcher.clone();
                tokio::spawn(async move { b.submit(format!("k{i}"), window()).await })
            })
            .collect();
        for r in all {
            let e = r.await.expect("task").expect_err("failed");
            assert!(e.to_string().contains("boom"), "{e}");
        }
    }

    #[tokio::test]
    async fn a_check_given_up_before_its_batch_is_sent_is_left_out() {
        let (batcher, seen) = recording(Duration::from_millis(100));
        let first = openers(&batcher).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let given_up = tokio::time::timeout(
            Duration::from_millis(10),
            batcher.submit("given-up".into(), window()),
        )
        .await;
        assert!(given_up.is_err(), "still waiting for the first calls");
        let kept = batcher.submit("kept".into(), window()).await;
        assert!(kept.is_ok());
        for f in first {
            assert!(f.await.expect("task").is_ok());
        }
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), IN_FLIGHT + 1, "{seen:?}");
        assert_eq!(seen[IN_FLIGHT], ["kept"], "the given-up check was not sent");
    }
}

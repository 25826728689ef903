//! One turn at a time per thread, on every instance, and the signal that stops a turn when its
//! thread is deleted.
//!
//! Owns: [`ThreadLocks`] and its [`TurnGuard`]. A streaming request takes its thread's turn
//! before it reads the thread (so everything it decides, e.g. which items a retry deletes, is
//! decided on what it saw) and keeps it until its reply is saved. Inside one process the turn is
//! a per-thread async mutex; on PostgreSQL it is also a session advisory lock held on one
//! connection of this instance (`postgres.rs`), so a second instance waits as well, and a
//! crashed instance's locks go with its connection. A turn that cannot get its thread within
//! [`ThreadLocks::wait`] is refused (409) rather than queued without end.
//!
//! `threads.delete` calls [`ThreadLocks::deleted`]: the turn running on that thread here stops
//! at once, and on PostgreSQL a `NOTIFY` stops it on any other instance.

mod postgres;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::db::Database;

/// Default of [`ThreadLocks::wait`] (`TURN_WAIT_SECS`).
pub const TURN_WAIT: Duration = Duration::from_secs(30);

/// The turns of this instance's threads.
#[derive(Clone)]
pub struct ThreadLocks {
    inner: Arc<Inner>,
}

struct Inner {
    /// Threads with a turn running or waiting here.
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// Advisory locks and delete notifications shared with other instances (PostgreSQL).
    shared: Option<postgres::Shared>,
    wait: Duration,
}

/// One thread's turn on this instance.
struct Slot {
    turn: Arc<tokio::sync::Mutex<()>>,
    /// Cancelled when the thread is deleted: the running turn stops, waiters give up.
    deleted: CancellationToken,
}

impl std::fmt::Debug for ThreadLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadLocks")
            .field("shared", &self.inner.shared.is_some())
            .field("wait", &self.inner.wait)
            .finish()
    }
}

/// Why a turn did not get its thread.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another turn held the thread for the whole wait.
    #[error("another reply is being written in this thread")]
    Busy,
    /// The thread was deleted while the turn waited.
    #[error("the thread was deleted")]
    Deleted,
    /// The database could not be asked.
    #[error("thread lock: {0}")]
    Database(#[from] sqlx::Error),
}

impl ThreadLocks {
    /// Turns serialised inside this process only (SQLite: one process owns the file).
    pub fn local(wait: Duration) -> Self {
        Self::with_shared(None, wait)
    }

    /// Turns serialised across every instance on `db` when it is PostgreSQL (advisory locks,
    /// delete notifications; the listener stops at `shutdown`), else [`Self::local`].
    pub fn new(db: &Database, wait: Duration, shutdown: CancellationToken) -> Self {
        match db {
            Database::Postgres(pool) => {
                let locks = Self::with_shared(Some(postgres::Shared::new(pool.clone())), wait);
                postgres::listen_for_deletes(pool.clone(), locks.clone(), shutdown);
                locks
            }
            Database::Sqlite(_) => Self::local(wait),
        }
    }

    fn with_shared(shared: Option<postgres::Shared>, wait: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                slots: Mutex::new(HashMap::new()),
                shared,
                wait,
            }),
        }
    }

    /// Takes `thread_id`'s turn, waiting at most [`Self::wait`] for the turn before it (here
    /// or on another instance) to end.
    pub async fn acquire(&self, thread_id: &str) -> Result<TurnGuard, LockError> {
        let deadline = Instant::now() + self.inner.wait;
        let slot = self.slot(thread_id);
        let mut guard = TurnGuard {
            locks: self.clone(),
            thread_id: thread_id.to_owned(),
            slot,
            local: None,
            shared_key: None,
        };
        let turn = guard.slot.turn.clone();
        let local = tokio::select! {
            biased;
            _ = guard.slot.deleted.cancelled() => return Err(LockError::Deleted),
            local = tokio::time::timeout_at(deadline, turn.lock_owned()) => {
                local.map_err(|_| LockError::Busy)?
            }
        };
        guard.local = Some(local);
        if let Some(shared) = &self.inner.shared {
            let key = postgres::key(thread_id);
            tokio::select! {
                biased;
                _ = guard.slot.deleted.cancelled() => return Err(LockError::Deleted),
                taken = shared.lock(key, deadline) => taken?,
            }
            guard.shared_key = Some(key);
        }
        Ok(guard)
    }

    /// The thread was deleted: its turn here stops (and, with `notify`, on every other
    /// instance too).
    pub async fn deleted(&self, thread_id: &str) {
        self.stop_local(thread_id);
        if let Some(shared) = &self.inner.shared {
            if let Err(e) = shared.notify_deleted(thread_id).await {
                tracing::warn!(error = %e, "could not tell other instances of a deleted thread");
            }
        }
    }

    /// Stops this instance's turn on `thread_id` (a delete here or elsewhere).
    fn stop_local(&self, thread_id: &str) {
        let removed = self.slots().remove(thread_id);
        if let Some(slot) = removed {
            slot.deleted.cancel();
        }
    }

    fn slot(&self, thread_id: &str) -> Arc<Slot> {
        self.slots()
            .entry(thread_id.to_owned())
            .or_insert_with(|| {
                Arc::new(Slot {
                    turn: Arc::new(tokio::sync::Mutex::new(())),
                    deleted: CancellationToken::new(),
                })
            })
            .clone()
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Slot>>> {
        // A panic while the map was held leaves it consistent (single inserts and removes).
        self.inner
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Threads with a turn running or waiting on this instance.
    #[cfg(test)]
    fn busy_threads(&self) -> usize {
        self.slots().len()
    }
}

/// A thread's turn; dropping it lets the next turn in.
pub struct TurnGuard {
    locks: ThreadLocks,
    thread_id: String,
    slot: Arc<Slot>,
    local: Option<OwnedMutexGuard<()>>,
    shared_key: Option<i64>,
}

impl TurnGuard {
    /// Cancelled when the thread is deleted while the turn runs.
    pub fn deleted(&self) -> CancellationToken {
        self.slot.deleted.clone()
    }
}

impl Drop for TurnGuard {
    fn drop(&mut self) {
        if let (Some(key), Some(shared)) = (self.shared_key.take(), &self.locks.inner.shared) {
            shared.unlock(key);
        }
        // The next local waiter may start only after the shared lock is queued for release
        // (the actor handles commands in order, so its lock attempt comes after the unlock).
        drop(self.local.take());
        let mut slots = self.locks.slots();
        // The map's reference and ours: nobody else waits, so the slot goes.
        if Arc::strong_count(&self.slot) == 2
            && slots
                .get(&self.thread_id)
                .is_some_and(|s| Arc::ptr_eq(s, &self.slot))
        {
            slots.remove(&self.thread_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_turn_waits_for_the_first() {
        let locks = ThreadLocks::local(Duration::from_secs(5));
        let first = locks.acquire("t").await.expect("first");
        let waiting = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.acquire("t").await.map(|_| Instant::now()) })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the second turn must wait");
        let released = Instant::now();
        drop(first);
        let started = waiting.await.expect("task").expect("second turn");
        assert!(started >= released);
        assert_eq!(locks.busy_threads(), 0, "slots are removed when unused");
    }

    #[tokio::test]
    async fn other_threads_do_not_wait() {
        let locks = ThreadLocks::local(Duration::from_millis(50));
        let _a = locks.acquire("a").await.expect("a");
        locks.acquire("b").await.expect("b is free");
    }

    #[tokio::test]
    async fn a_turn_held_for_the_whole_wait_is_busy() {
        let locks = ThreadLocks::local(Duration::from_millis(30));
        let _first = locks.acquire("t").await.expect("first");
        assert!(matches!(locks.acquire("t").await, Err(LockError::Busy)));
    }

    #[tokio::test]
    async fn a_delete_stops_the_turn_and_its_waiters() {
        let locks = ThreadLocks::local(Duration::from_secs(5));
        let first = locks.acquire("t").await.expect("first");
        let stop = first.deleted();
        let waiting = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.acquire("t").await.map(drop) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        locks.deleted("t").await;
        assert!(stop.is_cancelled());
        assert!(matches!(
            waiting.await.expect("task"),
            Err(LockError::Deleted)
        ));
        drop(first);
        // A thread of the same id later (an import) starts clean.
        let again = locks.acquire("t").await.expect("fresh slot");
        assert!(!again.deleted().is_cancelled());
    }
}

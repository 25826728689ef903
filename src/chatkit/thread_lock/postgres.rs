//! The cross-instance half of [`super::ThreadLocks`] on PostgreSQL.
//!
//! Owns: the instance's lock connection and the listener of deleted threads. One task owns a
//! connection of its own (outside the pool) and takes session advisory locks on it with
//! `pg_try_advisory_lock`, batching every request that queued up meanwhile into one statement
//! (the locks given back in that batch ride in the same statement);
//! a lock another instance holds is asked for again after a short pause until the turn's
//! deadline. The locks are session locks, so they cost no write and vanish with the connection
//! when an instance dies. After a lost connection the task reconnects and takes its held locks
//! again (a lock somebody else took meanwhile is logged and given up).
//!
//! Needs a direct connection or session pooling: a transaction-pooling proxy (pgbouncer's
//! `transaction` mode) cannot keep session locks.

use std::collections::HashSet;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgListener, PgPool};
use sqlx::{Connection, PgConnection};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{LockError, ThreadLocks};

/// The `NOTIFY` channel of deleted threads; the payload is the thread id.
pub const DELETED_CHANNEL: &str = "study_mode_thread_deleted";

/// Most lock requests in one statement.
const BATCH: usize = 512;
/// Deadline of one statement on the lock connection (a stuck connection is replaced).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Pauses between attempts on a lock another instance holds.
const FIRST_PAUSE: Duration = Duration::from_millis(20);
const LONGEST_PAUSE: Duration = Duration::from_millis(250);

/// The advisory-lock key of a thread: 64 bits of SHA-256 of a namespaced id, the same on
/// every instance and version. Two threads sharing a key (odds ~2⁻⁶⁴ per pair) would only
/// take turns.
pub fn key(thread_id: &str) -> i64 {
    let mut hasher = Sha256::new();
    hasher.update(b"study-mode-api thread turn\0");
    hasher.update(thread_id.as_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

enum Command {
    Lock {
        key: i64,
        reply: oneshot::Sender<Result<bool, String>>,
    },
    Unlock(i64),
}

/// The handle of the lock task, and the pool `NOTIFY` is sent on.
pub struct Shared {
    tx: mpsc::UnboundedSender<Command>,
    pool: PgPool,
}

impl Shared {
    pub fn new(pool: PgPool) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(pool.clone(), rx));
        Self { tx, pool }
    }

    /// Takes `key`, asking again until `deadline` while another instance holds it.
    pub async fn lock(&self, key: i64, deadline: Instant) -> Result<(), LockError> {
        let mut pause = FIRST_PAUSE;
        loop {
            let (reply, answer) = oneshot::channel();
            self.tx
                .send(Command::Lock { key, reply })
                .map_err(|_| LockError::Database(sqlx::Error::PoolClosed))?;
            match answer.await {
                Ok(Ok(true)) => return Ok(()),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    return Err(LockError::Database(sqlx::Error::Io(std::io::Error::other(
                        e,
                    ))));
                }
                Err(_) => return Err(LockError::Database(sqlx::Error::PoolClosed)),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(LockError::Busy);
            }
            // The last attempt is made at the deadline itself.
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(LONGEST_PAUSE);
        }
    }

    /// Gives `key` back (queued: the task handles commands in order).
    pub fn unlock(&self, key: i64) {
        let _ = self.tx.send(Command::Unlock(key));
    }

    /// Tells every instance (this one too) that `thread_id` is gone.
    pub async fn notify_deleted(&self, thread_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(DELETED_CHANNEL)
            .bind(thread_id)
            .execute(&self.pool)
            .await
            .map(drop)
    }
}

/// The lock task: one connection, the keys it holds, commands in batches.
async fn run(pool: PgPool, mut rx: mpsc::UnboundedReceiver<Command>) {
    let mut task = LockTask {
        pool,
        conn: None,
        held: HashSet::new(),
    };
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        task.handle(batch).await;
    }
    if let Some(conn) = task.conn.take() {
        let _ = conn.close().await; // the session's locks go with it
    }
}

struct LockTask {
    pool: PgPool,
    conn: Option<PgConnection>,
    held: HashSet<i64>,
}

impl LockTask {
    async fn handle(&mut self, batch: Vec<Command>) {
        let mut unlocks = Vec::new();
        let mut requests = Vec::new();
        for command in batch {
            match command {
                Command::Unlock(key) => {
                    if self.held.remove(&key) {
                        unlocks.push(key);
                    }
                }
                Command::Lock { key, reply } => requests.push((key, reply)),
            }
        }
        if requests.is_empty() {
            if !unlocks.is_empty() {
                // A failure here ends the session, which releases its locks all the same.
                let _ = self.run_unlocks(&unlocks).await;
            }
            return;
        }
        let mut wanted: Vec<i64> = requests
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !self.held.contains(k))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let granted = if unlocks.is_empty() || wanted.is_empty() || self.conn.is_none() {
            if !unlocks.is_empty() {
                let _ = self.run_unlocks(&unlocks).await;
            }
            self.try_locks(&wanted).await
        } else {
            // Under load, turns end and start in every batch: one statement for both.
            match self.unlock_and_try_locks(&unlocks, &wanted).await {
                Ok(granted) => Ok(granted),
                // The session is gone, and with it the locks to give back.
                Err(_) => self.try_locks(&wanted).await,
            }
        };
        let granted = match granted {
            Ok(granted) => granted,
            Err(e) => {
                let message = e.to_string();
                tracing::warn!(error = %message, "thread lock connection failed");
                for (_, reply) in requests {
                    let _ = reply.send(Err(message.clone()));
                }
                return;
            }
        };
        let mut abandoned = Vec::new();
        for (key, reply) in requests {
            // Each granted key goes to its first asker; a key held here already is refused.
            let ok = granted.contains(&key) && self.held.insert(key);
            if reply.send(Ok(ok)).is_err() && ok {
                // The asker gave up (its client left): give the lock back.
                self.held.remove(&key);
                abandoned.push(key);
            }
        }
        if !abandoned.is_empty() {
            let _ = self.run_unlocks(&abandoned).await;
        }
    }

    /// The keys of `keys` the session now holds; retried once on a fresh connection.
    async fn try_locks(&mut self, keys: &[i64]) -> Result<HashSet<i64>, sqlx::Error> {
        if keys.is_empty() {
            return Ok(HashSet::new());
        }
        match self.try_locks_once(keys).await {
            Ok(granted) => Ok(granted),
            Err(_) => {
                self.conn = None;
                self.try_locks_once(keys).await
            }
        }
    }

    async fn try_locks_once(&mut self, keys: &[i64]) -> Result<HashSet<i64>, sqlx::Error> {
        self.unlock_and_try_locks(&[], keys).await
    }

    /// Gives back `unlocks`, then tries `keys`, in one statement (`UNION ALL` runs its parts
    /// in order, so a key given back can be taken again by the same batch).
    async fn unlock_and_try_locks(
        &mut self,
        unlocks: &[i64],
        keys: &[i64],
    ) -> Result<HashSet<i64>, sqlx::Error> {
        let conn = self.connection().await?;
        let rows: Vec<(bool, i64, bool)> = timed(
            sqlx::query_as(
                "SELECT false, k, pg_advisory_unlock(k) FROM unnest($1::int8[]) AS k \
                 UNION ALL SELECT true, k, pg_try_advisory_lock(k) FROM unnest($2::int8[]) AS k",
            )
            .bind(unlocks)
            .bind(keys)
            .fetch_all(&mut *conn),
        )
        .await
        .inspect_err(|_| self.conn = None)?;
        Ok(rows
            .into_iter()
            .filter(|(lock, _, ok)| *lock && *ok)
            .map(|(_, k, _)| k)
            .collect())
    }

    async fn run_unlocks(&mut self, keys: &[i64]) -> Result<(), sqlx::Error> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(()); // no session: nothing is held
        };
        timed(
            sqlx::query("SELECT pg_advisory_unlock(k) FROM unnest($1::int8[]) AS k")
                .bind(keys)
                .execute(&mut *conn),
        )
        .await
        .map(drop)
        .inspect_err(|_| self.conn = None)
    }

    /// The lock connection, connecting (and taking the held locks again) when there is none.
    async fn connection(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        if self.conn.is_none() {
            let options = self.pool.connect_options();
            let mut conn = timed(PgConnection::connect_with(&options)).await?;
            if !self.held.is_empty() {
                let held: Vec<i64> = self.held.iter().copied().collect();
                let rows: Vec<(i64, bool)> = timed(
                    sqlx::query_as(
                        "SELECT k, pg_try_advisory_lock(k) FROM unnest($1::int8[]) AS k",
                    )
                    .bind(&held)
                    .fetch_all(&mut conn),
                )
                .await?;
                for (key, ok) in rows {
                    if !ok {
                        tracing::warn!(key, "lost a thread's turn lock while reconnecting");
                        self.held.remove(&key);
                    }
                }
            }
            self.conn = Some(conn);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| sqlx::Error::Protocol("no lock connection".into()))
    }
}

async fn timed<T>(
    fut: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    tokio::time::timeout(STATEMENT_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| {
            Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "thread lock statement timed out",
            )))
        })
}

/// Stops this instance's turns on threads deleted anywhere, until `shutdown`. The listener
/// reconnects by itself; a delete announced while it was away is still caught, later, by the
/// reply's own write (`NoSuchThread`).
pub fn listen_for_deletes(pool: PgPool, locks: ThreadLocks, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut listener = loop {
            let attempt = async {
                let mut listener = PgListener::connect_with(&pool).await?;
                listener.listen(DELETED_CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            match attempt.await {
                Ok(listener) => break listener,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for deleted threads yet");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                next = listener.recv() => match next {
                    Ok(notification) => locks.stop_local(notification.payload()),
                    Err(e) => {
                        tracing::warn!(error = %e, "listening for deleted threads failed");
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                },
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn keys_are_stable_and_distinct() {
        assert_eq!(key("thr_a"), key("thr_a"));
        assert_ne!(key("thr_a"), key("thr_b"));
        // Pinned (also by an independent SHA-256): every instance and version must compute
        // the same key, or two versions side by side in a rollout would not take turns.
        assert_eq!(key("thr_a"), 3_835_110_877_412_975_279);
    }
}

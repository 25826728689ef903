//! SQLite pool for the embedded mode: WAL journal, busy timeout, foreign keys on, the parent
//! folder created when missing, migrations under `migrations/sqlite`, and the WAL checkpointer.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL pages, and when
//! other pool connections are reading it cannot finish, so it ran again on nearly every later
//! commit: 1,032 checkpoint attempts in 1,500 commits, 34 % of all the instructions of a chat
//! turn (callgrind, docs/BENCHMARKS.md). The pool's connections therefore never checkpoint;
//! one task does, once a second (`PASSIVE`: it never blocks readers or writers), until the pool
//! is closed.

use std::str::FromStr;

use secrecy::ExposeSecret;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{DatabaseSettings, DbError, pool_lifetimes};

pub(super) async fn connect(settings: &DatabaseSettings) -> Result<SqlitePool, DbError> {
    let options = SqliteConnectOptions::from_str(settings.url.expose_secret())?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // NORMAL is durable across application crashes in WAL mode; FULL adds an fsync per
        // commit for power loss, which the embedded mode does not promise.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        .pragma("wal_autocheckpoint", "0");
    if let Some(parent) = options.get_filename().parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .map_err(|e| DbError::Setup(format!("cannot create {}: {e}", parent.display())))?;
        }
    }
    let (max_lifetime, idle_timeout) = pool_lifetimes();
    let pool = SqlitePoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(settings.acquire_timeout)
        .max_lifetime(max_lifetime)
        .idle_timeout(idle_timeout)
        // An embedded connection cannot break the way a socket does; sqlx's default ping on
        // every acquire is a round trip to the connection's thread per statement.
        .test_before_acquire(false)
        .connect_with(options)
        .await?;
    sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
    tokio::spawn(checkpoint_every(pool.clone(), CHECKPOINT_EVERY));
    Ok(pool)
}

/// How often the WAL is checkpointed.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Copies the WAL into the database every `period` (what the pool's connections no longer do
/// at commit time), until the pool is closed.
async fn checkpoint_every(pool: SqlitePool, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %e, "SQLite WAL checkpoint failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;

    /// Commits leave the WAL alone (no checkpoint inside a commit); the task copies it into
    /// the database file within its period.
    #[tokio::test]
    async fn the_wal_is_checkpointed_by_the_task_not_by_commits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("t.db");
        let url = format!("sqlite:{}", file.display());
        let settings = DatabaseSettings::from_env(&mut Env::from_map([("DATABASE_URL", url)]));
        let pool = connect(&settings).await.expect("pool");
        let auto: (i64,) = sqlx::query_as("PRAGMA wal_autocheckpoint")
            .fetch_one(&pool)
            .await
            .expect("pragma");
        assert_eq!(auto.0, 0, "commits never checkpoint");
        tokio::time::sleep(CHECKPOINT_EVERY * 2).await; // the migrations' pages are in
        let before = std::fs::metadata(&file).expect("db file").len();
        sqlx::query("CREATE TABLE pad (b BLOB)")
            .execute(&pool)
            .await
            .expect("table");
        for _ in 0..64 {
            sqlx::query("INSERT INTO pad VALUES (randomblob(16384))")
                .execute(&pool)
                .await
                .expect("insert");
        }
        let just_after = std::fs::metadata(&file).expect("db file").len();
        assert!(
            just_after < before + 512 * 1024,
            "the commits did not copy the WAL ({before} → {just_after} bytes)"
        );
        tokio::time::sleep(CHECKPOINT_EVERY * 3).await;
        let later = std::fs::metadata(&file).expect("db file").len();
        assert!(
            later >= before + 1024 * 1024,
            "the task copied the WAL into the database ({before} → {later} bytes)"
        );
        pool.close().await;
    }
}

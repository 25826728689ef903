//! SQLite pool for the embedded mode: WAL journal, busy timeout, foreign keys on, the parent
//! folder created when missing, migrations under `migrations/sqlite`.

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
        .foreign_keys(true);
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
        .connect_with(options)
        .await?;
    sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
    Ok(pool)
}

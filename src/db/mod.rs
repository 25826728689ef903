//! The database: connection pools, migrations, warm-up and readiness for PostgreSQL
//! (production) and SQLite (embedded).
//!
//! Owns: `DATABASE_*` settings, how we connect (pool sizes, timeouts, `application_name`, WAL),
//! the schema (`migrations/`), and store latency metrics. The ChatKit thread store is built on
//! [`Database`]; this module must not know the ChatKit protocol.

mod postgres;
mod settings;
mod sqlite;

pub use postgres::{LEGACY_SCHEMA, SCHEMA};
pub use settings::{DatabaseSettings, SETTINGS};

use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sqlx::{PgPool, SqlitePool};

use crate::telemetry::metrics::{HistogramFamily, histogram_family};

/// A connected, migrated database.
#[derive(Debug, Clone)]
pub enum Database {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Errors opening the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Setup(String),
}

impl Database {
    /// Connects, applies migrations and warms `min_connections` connections.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, DbError> {
        let db = if settings.is_postgres() {
            Database::Postgres(postgres::connect(settings).await?)
        } else {
            Database::Sqlite(sqlite::connect(settings).await?)
        };
        db.warm(settings.min_connections).await;
        Ok(db)
    }

    /// A PostgreSQL pool with this service's connection settings, without creating the schema
    /// or migrating (what `import-legacy --dry-run` uses: it must change nothing).
    pub async fn postgres_unmigrated(settings: &DatabaseSettings) -> Result<PgPool, DbError> {
        postgres::pool(settings).await
    }

    /// `postgres` or `sqlite`.
    pub fn backend(&self) -> &'static str {
        match self {
            Database::Postgres(_) => "postgres",
            Database::Sqlite(_) => "sqlite",
        }
    }

    /// Opens `n` connections at once so the first requests do not pay for the handshakes.
    /// Runs on every start (the old service only warmed on the first).
    async fn warm(&self, n: u32) {
        let checks = (0..n).map(|_| async {
            match self {
                Database::Postgres(p) => p.acquire().await.map(drop),
                Database::Sqlite(p) => p.acquire().await.map(drop),
            }
        });
        let results = futures::future::join_all(checks).await;
        let failed = results.iter().filter(|r| r.is_err()).count();
        if failed > 0 {
            tracing::warn!(failed, "some pool connections could not be warmed");
        }
    }

    /// Readiness check: one round trip.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Database::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.map(drop),
            Database::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.map(drop),
        }
    }

    /// Closes the pool (graceful shutdown).
    pub async fn close(&self) {
        match self {
            Database::Postgres(p) => p.close().await,
            Database::Sqlite(p) => p.close().await,
        }
    }
}

/// True when `error` means the database cannot be reached right now rather than a bug: the
/// connection was refused or lost, no pooled connection came within the acquire timeout, or
/// the server is shutting down or starting up. Callers answer these with 503 ("try again"),
/// not an opaque 500; the pool reconnects by itself once the database is back.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed => true,
        // SQLSTATE class 08 (connection exception), 57P01–57P03 (admin shutdown, crash
        // shutdown, cannot connect now) and 53300 (too many connections).
        sqlx::Error::Database(e) if e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() => {
            e.code().is_some_and(|code| is_sqlite_busy(&code))
        }
        sqlx::Error::Database(e) => e.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// `SQLITE_BUSY` (5) or `SQLITE_LOCKED` (6), also as extended codes (`SQLITE_BUSY_TIMEOUT`
/// 773, …: the primary code is the low byte): another process holds the database's lock
/// beyond the busy timeout, which passes like an unreachable server does.
fn is_sqlite_busy(code: &str) -> bool {
    code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreOpLabels {
    pub backend: &'static str,
    pub operation: &'static str,
}

/// Store latency by backend and operation, and the size of PostgreSQL's group commits.
#[derive(Debug, Clone)]
pub struct StoreMetrics {
    pub duration: HistogramFamily<StoreOpLabels>,
    /// Writes committed by each group-commit statement.
    pub write_batch: Histogram,
}

impl StoreMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            duration: histogram_family(),
            write_batch: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
        };
        registry.register(
            "store_operation_duration_seconds",
            "Store operation latency by backend and operation",
            m.duration.clone(),
        );
        registry.register(
            "store_write_batch_size",
            "Turn writes committed together by one group commit",
            m.write_batch.clone(),
        );
        m
    }

    /// Records one operation that started at `started`.
    pub fn observe(&self, backend: &'static str, operation: &'static str, started: Instant) {
        self.duration
            .get_or_create(&StoreOpLabels { backend, operation })
            .observe(started.elapsed().as_secs_f64());
    }
}

/// Shared pool timeouts: connections idle for a second are pinged before use (`postgres::PING_IDLE`)
/// and connections are recycled hourly, as a managed PostgreSQL expects.
fn pool_lifetimes() -> (Duration, Duration) {
    (Duration::from_secs(3600), Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use super::is_unavailable;

    #[test]
    fn an_unreachable_database_is_unavailable_but_a_query_error_is_not() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(is_unavailable(&sqlx::Error::Io(refused)));
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::PoolClosed));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
        assert!(!is_unavailable(&sqlx::Error::ColumnNotFound("id".into())));
    }
}

//! PostgreSQL pool: schema `study_mode`, `application_name=study_mode_api`, statement
//! timeout, JIT off (short OLTP queries), migrations under `migrations/postgres`.
//!
//! Our tables live in `study_mode`, never in `study_mode_chat`: that schema belongs to the Python
//! service we replace (same table names, another layout), which must keep working until the
//! cut-over is done and after a rollback. A database on which an earlier version of this service
//! created its tables in `study_mode_chat` is carried over once, at start ([`carry_over`]).

use std::str::FromStr;

use secrecy::ExposeSecret;
use sha2::{Digest, Sha384};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool, Postgres, Transaction};

use super::{DatabaseSettings, DbError, pool_lifetimes};

/// A pooled connection idle this long is pinged before it is handed out.
const PING_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// Our schema (first on every connection's search path).
pub const SCHEMA: &str = "study_mode";

/// The schema of the Python service; earlier versions of ours also used it.
pub const LEGACY_SCHEMA: &str = "study_mode_chat";

/// Our first migration as earlier versions applied it (in `study_mode_chat`): its checksum
/// identifies a database of ours to carry over. The file must never change.
const STUDY_MODE_CHAT_0001: &str =
    include_str!("../../migrations/carry-over/study_mode_chat_0001.sql");

/// Advisory lock key of the carry-over (several replicas may start together).
const CARRY_OVER_LOCK: i64 = 0x5354_5544_594d_4f44; // "STUDYMOD"

pub(super) async fn connect(settings: &DatabaseSettings) -> Result<PgPool, DbError> {
    let pool = pool(settings).await?;
    create_schema(&pool).await?;
    carry_over(&pool).await?;
    sqlx::migrate!("./migrations/postgres").run(&pool).await?;
    Ok(pool)
}

/// The pool alone: no schema, no migration (`import-legacy --dry-run` changes nothing).
pub(super) async fn pool(settings: &DatabaseSettings) -> Result<PgPool, DbError> {
    let timeout_ms = settings.statement_timeout.as_millis().to_string();
    let search_path = format!("{SCHEMA},public");
    let options = PgConnectOptions::from_str(settings.url.expose_secret())?
        .application_name("study_mode_api")
        .options([
            ("statement_timeout", timeout_ms.as_str()),
            ("jit", "off"),
            ("search_path", search_path.as_str()),
        ]);
    let (max_lifetime, idle_timeout) = pool_lifetimes();
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(settings.acquire_timeout)
        .max_lifetime(max_lifetime)
        .idle_timeout(idle_timeout)
        // A connection idle for a while is pinged before use (a restarted server or a dropped
        // NAT entry shows there, not in a user's statement); one just returned by another
        // request is not: sqlx's `test_before_acquire` would add a round trip to every
        // statement (most of the turn path's).
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await?)
}

/// The schema must exist before sqlx creates its `_sqlx_migrations` table, so that the table
/// always lands in `study_mode` (first on the search path) and not in `public` on the very
/// first start only. Two instances starting at once may race here; the loser's "already
/// exists" error is harmless.
async fn create_schema(pool: &PgPool) -> Result<(), DbError> {
    match sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        .execute(pool)
        .await
    {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("23505" | "42P06")) => {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Moves the tables an earlier version of this service created in `study_mode_chat` (recognised
/// by `study_mode_chat._sqlx_migrations` holding our first migration, and our `status` column)
/// to `study_mode`, with sqlx's migration table, in one transaction: `ALTER TABLE … SET SCHEMA`
/// moves each table with its rows, indexes and constraints, without copying a row. The first
/// migration's text changed (its schema name), so its recorded checksum is updated to the new
/// file's; nothing else is rewritten. Runs under an advisory lock; a no-op once done.
async fn carry_over(pool: &PgPool) -> Result<(), DbError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CARRY_OVER_LOCK)
        .execute(&mut *tx)
        .await?;
    let ours_there = exists(&mut tx, LEGACY_SCHEMA, "_sqlx_migrations").await?
        && has_column(&mut tx, LEGACY_SCHEMA, "threads", "status").await?;
    if !ours_there {
        return Ok(());
    }
    if exists(&mut tx, SCHEMA, "threads").await? {
        return Err(DbError::Setup(format!(
            "this service's tables exist both in {LEGACY_SCHEMA} (an earlier version) and in \
             {SCHEMA}; move or drop one set by hand (docs/OPERATIONS.md, \"Cut-over\")"
        )));
    }
    let old: Option<Vec<u8>> = sqlx::query_scalar(&format!(
        "SELECT checksum FROM {LEGACY_SCHEMA}._sqlx_migrations WHERE version = 1"
    ))
    .fetch_optional(&mut *tx)
    .await?;
    if old.as_deref() != Some(Sha384::digest(STUDY_MODE_CHAT_0001).as_slice()) {
        return Err(DbError::Setup(format!(
            "{LEGACY_SCHEMA}._sqlx_migrations does not record this service's first migration; \
             refusing to move tables it does not recognise"
        )));
    }
    let new = sqlx::migrate!("./migrations/postgres")
        .iter()
        .find(|m| m.version == 1)
        .map(|m| m.checksum.to_vec())
        .ok_or_else(|| DbError::Setup("migration 1 is missing".into()))?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        .execute(&mut *tx)
        .await?;
    for table in ["threads", "items", "attachments", "_sqlx_migrations"] {
        sqlx::query(&format!(
            "ALTER TABLE {LEGACY_SCHEMA}.{table} SET SCHEMA {SCHEMA}"
        ))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(&format!(
        "UPDATE {SCHEMA}._sqlx_migrations SET checksum = $1 WHERE version = 1"
    ))
    .bind(new)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::warn!(
        from = LEGACY_SCHEMA,
        to = SCHEMA,
        "moved this service's tables to their own schema"
    );
    Ok(())
}

/// True when `schema.table` exists.
async fn exists(
    tx: &mut Transaction<'_, Postgres>,
    schema: &str,
    table: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
         WHERE table_schema = $1 AND table_name = $2)",
    )
    .bind(schema)
    .bind(table)
    .fetch_one(&mut **tx)
    .await
}

async fn has_column(
    tx: &mut Transaction<'_, Postgres>,
    schema: &str,
    table: &str,
    column: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name = $2 AND column_name = $3)",
    )
    .bind(schema)
    .bind(table)
    .bind(column)
    .fetch_one(&mut **tx)
    .await
}

//! PostgreSQL pool: schema `study_mode_chat`, `application_name=study_mode_api`, statement
//! timeout, JIT off (short OLTP queries), migrations under `migrations/postgres`.

use std::str::FromStr;

use secrecy::ExposeSecret;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{DatabaseSettings, DbError, pool_lifetimes};

pub(super) async fn connect(settings: &DatabaseSettings) -> Result<PgPool, DbError> {
    let timeout_ms = settings.statement_timeout.as_millis().to_string();
    let options = PgConnectOptions::from_str(settings.url.expose_secret())?
        .application_name("study_mode_api")
        .options([
            ("statement_timeout", timeout_ms.as_str()),
            ("jit", "off"),
            ("search_path", "study_mode_chat,public"),
        ]);
    let (max_lifetime, idle_timeout) = pool_lifetimes();
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(settings.acquire_timeout)
        .max_lifetime(max_lifetime)
        .idle_timeout(idle_timeout)
        .test_before_acquire(true)
        .connect_with(options)
        .await?;
    create_schema(&pool).await?;
    sqlx::migrate!("./migrations/postgres").run(&pool).await?;
    Ok(pool)
}

/// The schema must exist before sqlx creates its `_sqlx_migrations` table, so that the table
/// always lands in `study_mode_chat` (first on the search path) and not in `public` on the very
/// first start only. Two instances starting at once may race here; the loser's "already
/// exists" error is harmless.
async fn create_schema(pool: &PgPool) -> Result<(), DbError> {
    match sqlx::query("CREATE SCHEMA IF NOT EXISTS study_mode_chat")
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

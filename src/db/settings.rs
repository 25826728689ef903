//! `DATABASE_*` settings: which database holds the threads, and how the pool behaves.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::config::{Env, SettingDoc};

/// The thread store: PostgreSQL in production, SQLite embedded.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// May carry a password, so it is never printed.
    pub url: SecretString,
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
    /// Most turn writes committed by one statement (PostgreSQL group commit); 1 = each alone.
    pub write_batch: usize,
}

/// Variables read by this module.
pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc::new(
        "DATABASE_URL",
        "`sqlite:./data/study_mode.db`",
        "`postgres://…` or `sqlite:…`: the thread store.",
    ),
    SettingDoc::new(
        "DATABASE_MAX_CONNECTIONS",
        "25 (PostgreSQL), 8 (SQLite)",
        "Pool size.",
    ),
    SettingDoc::new(
        "DATABASE_MIN_CONNECTIONS",
        "`3`",
        "Connections opened (warmed) at every start and kept open.",
    ),
    SettingDoc::new(
        "DATABASE_ACQUIRE_TIMEOUT_SECS",
        "`30`",
        "Wait for a pooled connection before failing.",
    ),
    SettingDoc::new(
        "DATABASE_STATEMENT_TIMEOUT_SECS",
        "`30`",
        "PostgreSQL `statement_timeout` of every connection.",
    ),
    SettingDoc::new(
        "DATABASE_WRITE_BATCH",
        "`64`",
        "Group commit: most turn writes (new thread, message, reply) that share one commit (one \
         statement on PostgreSQL, one transaction on SQLite); each is acknowledged after that \
         commit. `1` writes each alone.",
    ),
];

/// Where the embedded store lives when `DATABASE_URL` is unset.
const DEFAULT_URL: &str = "sqlite:./data/study_mode.db";

impl DatabaseSettings {
    pub fn from_env(env: &mut Env) -> Self {
        let url = env
            .string("DATABASE_URL")
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        let postgres = is_postgres_url(&url);
        if !postgres && !url.starts_with("sqlite:") {
            env.error(
                "DATABASE_URL",
                "must start with postgres://, postgresql:// or sqlite:",
            );
        }
        let max_connections =
            env.parse_or("DATABASE_MAX_CONNECTIONS", if postgres { 25 } else { 8 });
        let min_connections = env.parse_or("DATABASE_MIN_CONNECTIONS", 3u32);
        if min_connections > max_connections {
            env.error(
                "DATABASE_MIN_CONNECTIONS",
                "must not exceed DATABASE_MAX_CONNECTIONS",
            );
        }
        let write_batch = env.parse_or("DATABASE_WRITE_BATCH", 64usize);
        if write_batch == 0 {
            env.error("DATABASE_WRITE_BATCH", "must be at least 1");
        }
        Self {
            url: url.into(),
            max_connections,
            min_connections,
            acquire_timeout: env.secs_or("DATABASE_ACQUIRE_TIMEOUT_SECS", 30),
            statement_timeout: env.secs_or("DATABASE_STATEMENT_TIMEOUT_SECS", 30),
            write_batch,
        }
    }

    /// True when `url` names a PostgreSQL server.
    pub fn is_postgres(&self) -> bool {
        is_postgres_url(self.url.expose_secret())
    }

    /// `postgres` or `sqlite`.
    pub fn backend(&self) -> &'static str {
        if self.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        }
    }
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

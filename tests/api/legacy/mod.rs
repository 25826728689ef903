//! `import-legacy` and the start-up refusal, against PostgreSQL databases built in the Python
//! service's two layouts (docs/OPERATIONS.md, "Cut-over") and filled with rows serialised by the
//! reference `openai-chatkit` types (`tests/legacy/legacy_rows.py`, run in the oracle's
//! virtualenv). Each test has a database of its own: a legacy schema in the shared test
//! database would make every other production test refuse to start.

mod carry_over;
mod import;

use std::collections::HashMap;
use std::process::Command;

use serde_json::Value;
use sqlx::{Connection, PgPool};
use study_mode_api::config::Env;
use study_mode_api::db::DatabaseSettings;

use crate::support::app::{test_database_server_url, unique};
use crate::support::chatkit_client::oracle_python;

/// The Python service's two table layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `CREATE TABLE IF NOT EXISTS` of the service today: TEXT columns, `organization_id`,
    /// `UNIQUE (id, user_id)`, no foreign keys, `data` wrapped.
    Current,
    /// Early deployments: VARCHAR columns, no `organization_id`, `items.thread_id` a foreign
    /// key with `ON DELETE CASCADE`, `data` bare.
    Older,
}

const CURRENT_DDL: &str = "
CREATE SCHEMA study_mode_chat;
CREATE TABLE study_mode_chat.threads (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, organization_id TEXT,
    lesson_path TEXT DEFAULT '', title TEXT DEFAULT 'Study Session',
    created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    data JSONB NOT NULL, CONSTRAINT threads_id_user_unique UNIQUE (id, user_id));
CREATE TABLE study_mode_chat.items (
    id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, user_id TEXT NOT NULL, organization_id TEXT,
    created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    data JSONB NOT NULL, CONSTRAINT items_id_user_unique UNIQUE (id, user_id));
CREATE TABLE study_mode_chat.attachments (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, organization_id TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), data JSONB NOT NULL,
    CONSTRAINT attachments_id_user_unique UNIQUE (id, user_id));
CREATE INDEX idx_threads_user_created ON study_mode_chat.threads (user_id, created_at DESC);
CREATE INDEX idx_threads_user_lesson ON study_mode_chat.threads (user_id, lesson_path);
CREATE INDEX idx_threads_org_created ON study_mode_chat.threads (organization_id, created_at DESC)
    WHERE organization_id IS NOT NULL;
CREATE INDEX idx_items_thread_created ON study_mode_chat.items (thread_id, created_at);
CREATE INDEX idx_items_user_thread ON study_mode_chat.items (user_id, thread_id);
CREATE INDEX idx_attachments_user ON study_mode_chat.attachments (user_id, created_at DESC);
";

const OLDER_DDL: &str = "
CREATE SCHEMA study_mode_chat;
CREATE TABLE study_mode_chat.threads (
    id VARCHAR(255) PRIMARY KEY, user_id VARCHAR(255) NOT NULL, lesson_path VARCHAR(500),
    title VARCHAR(500), created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), data JSONB NOT NULL);
CREATE TABLE study_mode_chat.items (
    id VARCHAR(255) PRIMARY KEY,
    thread_id VARCHAR(255) NOT NULL REFERENCES study_mode_chat.threads (id) ON DELETE CASCADE,
    user_id VARCHAR(255) NOT NULL, created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), data JSONB NOT NULL);
CREATE TABLE study_mode_chat.attachments (
    id VARCHAR(255) PRIMARY KEY, user_id VARCHAR(255) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), data JSONB NOT NULL);
";

/// A database of its own, created empty.
pub struct TestDb {
    pub url: String,
    pub pool: PgPool,
}

impl TestDb {
    pub async fn create() -> Self {
        let server = test_database_server_url();
        let name = format!("study_mode_test_{}_legacy", unique(""));
        let mut admin = sqlx::PgConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL is required: {server}: {e}"));
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .expect("CREATE DATABASE");
        let mut url = url::Url::parse(&server).expect("URL");
        url.set_path(&name);
        let url = url.to_string();
        let pool = PgPool::connect(&url).await.expect("connect");
        Self { url, pool }
    }

    /// The service's database settings on this database.
    pub fn settings(&self) -> DatabaseSettings {
        let vars: HashMap<String, String> = [
            ("DATABASE_URL".to_owned(), self.url.clone()),
            ("DATABASE_MIN_CONNECTIONS".to_owned(), "1".to_owned()),
            ("DATABASE_MAX_CONNECTIONS".to_owned(), "4".to_owned()),
        ]
        .into();
        DatabaseSettings::from_env(&mut Env::from_map(vars))
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn text(&self, sql: &str) -> Option<String> {
        sqlx::query_scalar(sql)
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// The fixture rows of `tests/legacy/legacy_rows.py`.
pub fn fixture() -> Value {
    let python = oracle_python();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/legacy/legacy_rows.py");
    let out = Command::new(&python)
        .args([script, "fixture"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "legacy_rows.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("fixture JSON")
}

/// A database in `layout` holding the fixture (the older layout's foreign key refuses the
/// item whose thread is missing, so that one exists only in the current layout).
pub async fn legacy_db(layout: Layout) -> TestDb {
    let db = TestDb::create().await;
    let ddl = match layout {
        Layout::Current => CURRENT_DDL,
        Layout::Older => OLDER_DDL,
    };
    sqlx::raw_sql(ddl).execute(&db.pool).await.expect("DDL");
    let rows = fixture();
    for t in rows["threads"].as_array().expect("threads") {
        insert_thread(&db, layout, t).await;
    }
    for i in rows["items"].as_array().expect("items") {
        if layout == Layout::Older && i["thread_id"] == "thr_gone" {
            continue;
        }
        insert_item(&db, layout, i).await;
    }
    db
}

pub async fn insert_thread(db: &TestDb, layout: Layout, t: &Value) {
    let s = |k: &str| t[k].as_str().map(str::to_owned);
    let q = match layout {
        Layout::Current => sqlx::query(
            "INSERT INTO study_mode_chat.threads (id, user_id, organization_id, lesson_path, \
             title, created_at, updated_at, data) \
             VALUES ($1, $2, $3, $4, $5, $6::timestamptz, $7::timestamptz, $8::jsonb)",
        )
        .bind(s("id"))
        .bind(s("user_id"))
        .bind(s("organization_id"))
        .bind(s("lesson_path"))
        .bind(s("title"))
        .bind(s("created_at"))
        .bind(s("updated_at"))
        .bind(s("data")),
        Layout::Older => sqlx::query(
            "INSERT INTO study_mode_chat.threads (id, user_id, lesson_path, title, created_at, \
             updated_at, data) VALUES ($1, $2, $3, $4, $5::timestamptz, $6::timestamptz, $7::jsonb)",
        )
        .bind(s("id"))
        .bind(s("user_id"))
        .bind(s("lesson_path"))
        .bind(s("title"))
        .bind(s("created_at"))
        .bind(s("updated_at"))
        .bind(s("data_older")),
    };
    q.execute(&db.pool).await.expect("insert legacy thread");
}

pub async fn insert_item(db: &TestDb, layout: Layout, i: &Value) {
    let s = |k: &str| i[k].as_str().map(str::to_owned);
    let q = match layout {
        Layout::Current => sqlx::query(
            "INSERT INTO study_mode_chat.items (id, thread_id, user_id, organization_id, \
             created_at, updated_at, data) \
             VALUES ($1, $2, $3, $4, $5::timestamptz, $6::timestamptz, $7::jsonb)",
        )
        .bind(s("id"))
        .bind(s("thread_id"))
        .bind(s("user_id"))
        .bind(s("organization_id"))
        .bind(s("created_at"))
        .bind(s("updated_at"))
        .bind(s("data")),
        Layout::Older => sqlx::query(
            "INSERT INTO study_mode_chat.items (id, thread_id, user_id, created_at, \
             updated_at, data) VALUES ($1, $2, $3, $4::timestamptz, $5::timestamptz, $6::jsonb)",
        )
        .bind(s("id"))
        .bind(s("thread_id"))
        .bind(s("user_id"))
        .bind(s("created_at"))
        .bind(s("updated_at"))
        .bind(s("data_older")),
    };
    q.execute(&db.pool).await.expect("insert legacy item");
}

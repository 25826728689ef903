//! Pools and migrations, once per backend.

use study_mode_api::db::Database;

use crate::per_backend;
use crate::support::app::{Backend, spawn_echo_app};

per_backend! {
    migrations_create_the_thread_tables => tables_exist;
    a_restart_on_an_existing_database_migrates_nothing_twice => restart_is_idempotent;
}

async fn count_tables(db: &Database) -> i64 {
    match db {
        Database::Postgres(p) => sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables \
             WHERE table_schema = 'study_mode' \
             AND table_name IN ('threads','items','attachments')",
        )
        .fetch_one(p)
        .await
        .expect("query"),
        Database::Sqlite(p) => sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type='table' \
             AND name IN ('threads','items','attachments')",
        )
        .fetch_one(p)
        .await
        .expect("query"),
    }
}

async fn tables_exist(backend: Backend) {
    let app = spawn_echo_app(backend).await;
    assert_eq!(count_tables(&app.db).await, 3);
}

async fn restart_is_idempotent(backend: Backend) {
    let first = spawn_echo_app(backend).await;
    let settings = first.settings.database.clone();
    // A second pool on the same database runs the migrator again: nothing to do, no error.
    let again = Database::connect(&settings).await.expect("second start");
    assert_eq!(count_tables(&again).await, 3);
    again.close().await;
}

#[tokio::test]
async fn postgres_connections_identify_the_service_and_use_the_schema() {
    let app = spawn_echo_app(Backend::Production).await;
    let Database::Postgres(pool) = &app.db else {
        panic!("production backend is PostgreSQL")
    };
    let (name, path, timeout): (String, String, String) = sqlx::query_as(
        "SELECT current_setting('application_name'), current_setting('search_path'), \
         current_setting('statement_timeout')",
    )
    .fetch_one(pool)
    .await
    .expect("query");
    assert_eq!(name, "study_mode_api");
    assert!(path.starts_with("study_mode,"), "{path}");
    assert_eq!(timeout, "30s");
    let migrations_schema: String = sqlx::query_scalar(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = '_sqlx_migrations'",
    )
    .fetch_one(pool)
    .await
    .expect("migrations table");
    assert_eq!(migrations_schema, "study_mode");
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode() {
    let app = spawn_echo_app(Backend::Embedded).await;
    let Database::Sqlite(pool) = &app.db else {
        panic!("embedded backend is SQLite")
    };
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(pool)
        .await
        .expect("pragma");
    assert_eq!(mode, "wal");
}

/// Another process holding SQLite's write lock past the busy timeout is a 503 ("try again"),
/// as the docs promise, not an opaque 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_locked_by_another_process_is_503() {
    use secrecy::ExposeSecret;
    use sqlx::Connection;

    let app = crate::support::app::spawn_echo_app(crate::support::app::Backend::Embedded).await;
    let chat = app.chat("locked");
    let (thread_id, _) = chat.create("hello").await;
    let url = app.settings.database.url.expose_secret().to_owned();
    let mut holder = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut holder)
        .await
        .expect("lock");
    let answer = chat
        .send_raw(
            &serde_json::json!({"type": "threads.update",
                "params": {"thread_id": thread_id, "title": "renamed"}})
            .to_string(),
        )
        .await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert!(
        answer.text.contains("service_unavailable"),
        "{}",
        answer.text
    );
    sqlx::query("ROLLBACK")
        .execute(&mut holder)
        .await
        .expect("unlock");
}

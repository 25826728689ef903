//! A database on which an earlier version of this service created its tables in
//! `study_mode_chat` (the Python service's schema) is carried over to `study_mode` at start,
//! without losing a row; the Python service's own tables are never mistaken for ours.

use serde_json::json;
use sqlx::migrate::Migrator;
use study_mode_api::db::Database;

use super::TestDb;
use crate::support::app::{Backend, spawn_echo_app_with};
use crate::support::chatkit_client::Chat;

/// The database exactly as the earlier version left it: its first migration (kept verbatim in
/// `migrations/carry-over/`) applied by sqlx with `study_mode_chat` first on the search path,
/// and rows written in its format.
async fn earlier_version_database() -> TestDb {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/migrations/carry-over/study_mode_chat_0001.sql"
        ),
        dir.path().join("0001_threads_items_attachments.sql"),
    )
    .expect("copy the old migration");
    let options: sqlx::postgres::PgConnectOptions = db.url.parse().expect("url");
    let old = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.options([("search_path", "study_mode_chat,public")]))
        .await
        .expect("connect");
    sqlx::query("CREATE SCHEMA study_mode_chat")
        .execute(&old)
        .await
        .expect("schema");
    Migrator::new(dir.path())
        .await
        .expect("migrator")
        .run(&old)
        .await
        .expect("the earlier version's migration");
    sqlx::raw_sql(
        r#"INSERT INTO study_mode_chat.threads (id, user_id, lesson_path, title, status, metadata, created_at, updated_at)
           VALUES ('thr_1', 'carol', 'a/b', 'Loops', '{"type":"active"}', '{"k":1}', '2026-01-01T10:00:00Z', '2026-01-01T10:00:00Z'),
                  ('thr_2', 'carol', NULL, NULL, '{"type":"active"}', '{}', '2026-01-02T10:00:00Z', '2026-01-02T10:00:00Z');
           INSERT INTO study_mode_chat.items (id, thread_id, user_id, item_type, created_at, updated_at, data) VALUES
             ('msg_1', 'thr_1', 'carol', 'user_message', '2026-01-01T10:00:01Z', '2026-01-01T10:00:01Z',
              '{"id":"msg_1","thread_id":"thr_1","created_at":"2026-01-01T10:00:01Z","type":"user_message","content":[{"type":"input_text","text":"hi"}],"attachments":[],"inference_options":{}}'),
             ('msg_2', 'thr_1', 'carol', 'assistant_message', '2026-01-01T10:00:02Z', '2026-01-01T10:00:02Z',
              '{"id":"msg_2","thread_id":"thr_1","created_at":"2026-01-01T10:00:02Z","type":"assistant_message","content":[{"annotations":[],"text":"hello","type":"output_text"}]}');"#,
    )
    .execute(&old)
    .await
    .expect("rows of the earlier version");
    old.close().await;
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_versions_tables_move_to_their_own_schema_without_losing_a_row() {
    let db = earlier_version_database().await;
    let app = spawn_echo_app_with(Backend::Production, &[("DATABASE_URL", db.url.as_str())]).await;
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'study_mode_chat'"
        )
        .await,
        0,
        "nothing of ours is left in the Python service's schema"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM study_mode.threads").await,
        2
    );
    assert_eq!(db.scalar("SELECT count(*) FROM study_mode.items").await, 2);
    assert_eq!(
        db.text("SELECT string_agg(version::text, ',' ORDER BY version) FROM study_mode._sqlx_migrations WHERE success")
            .await
            .as_deref(),
        Some("1,2,3")
    );

    let carol = Chat::new(&app.address, "carol");
    let got = carol
        .send(json!({"type": "threads.get_by_id", "params": {"thread_id": "thr_1"}}))
        .await;
    assert_eq!(got.status, 200, "{}", got.text);
    let got = got.json();
    assert_eq!(got["title"], "Loops");
    assert_eq!(got["items"]["data"][1]["content"][0]["text"], "hello");
    let said = carol.say("thr_1", "more").await;
    assert_eq!(said.status, 200, "{}", said.text);
    assert_eq!(carol.items("thr_1").await.len(), 4);

    // Started again (a second replica, a restart): nothing to carry, nothing to migrate.
    let again = Database::connect(&db.settings()).await.expect("restart");
    again.close().await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM study_mode.threads").await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_database_gets_its_tables_in_study_mode_only() {
    let db = TestDb::create().await;
    let _app = spawn_echo_app_with(Backend::Production, &[("DATABASE_URL", db.url.as_str())]).await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'study_mode_chat'")
            .await,
        0
    );
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'study_mode' \
             AND table_name IN ('threads', 'items', 'attachments', 'legacy_imports', \
             'legacy_import_skipped', '_sqlx_migrations')"
        )
        .await,
        6
    );
}

//! `import-legacy` on both layouts: what is imported, what is skipped and why, what the student
//! then sees through every ChatKit request, dry runs, second runs and resumption.

use std::process::Command;

use serde_json::{Value, json};
use study_mode_api::legacy::{self, Counts, Report};
use study_mode_api::startup::{Application, StartError};

use super::{Layout, TestDb, fixture, insert_item, legacy_db};
use crate::support::app::{Backend, TestApp, settings_for, spawn_echo_app_with};
use crate::support::chatkit_client::Chat;

async fn import(db: &TestDb, dry_run: bool, batch: usize) -> Report {
    legacy::run(&db.settings(), dry_run, batch, false)
        .await
        .unwrap_or_else(|e| panic!("import-legacy (dry_run={dry_run}) failed: {e}"))
}

async fn serve(db: &TestDb) -> TestApp {
    spawn_echo_app_with(Backend::Production, &[("DATABASE_URL", db.url.as_str())]).await
}

/// Recursively drops `null` members: pydantic writes them, the reference's `exclude_none`
/// (and we) do not.
fn norm(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), norm(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(norm).collect()),
        other => other.clone(),
    }
}

/// The fixture item `id` as the reference serialised it.
fn source_item(id: &str) -> Value {
    let rows = fixture();
    let row = rows["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["id"] == id)
        .cloned()
        .expect("fixture item");
    norm(&serde_json::from_str(row["data_older"].as_str().expect("data")).expect("json"))
}

/// Every legacy row as text, to prove the import left them as they were.
async fn legacy_fingerprint(db: &TestDb) -> (Option<String>, Option<String>) {
    (
        db.text("SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM study_mode_chat.threads t")
            .await,
        db.text("SELECT md5(string_agg(i::text, '|' ORDER BY id)) FROM study_mode_chat.items i")
            .await,
    )
}

fn counts(read: u64, new: u64, skipped: u64) -> Counts {
    Counts {
        read,
        new,
        changed: 0,
        unchanged: 0,
        skipped,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_current_layout_is_imported_readable_and_continuable() {
    adopt(Layout::Current).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_older_layout_is_imported_readable_and_continuable() {
    adopt(Layout::Older).await
}

async fn adopt(layout: Layout) {
    let db = legacy_db(layout).await;
    let before = legacy_fingerprint(&db).await;
    let items_read = if layout == Layout::Current { 12 } else { 11 };

    // Not imported yet: the service refuses to start, naming the command.
    let dir = tempfile::tempdir().expect("dir");
    let (settings, _) = settings_for(Backend::Production, &dir, &[("DATABASE_URL", &db.url)]);
    match Application::build(settings).await {
        Err(StartError::LegacyNotImported(e)) => {
            assert!(
                e.to_string().contains("study-mode-api import-legacy"),
                "{e}"
            )
        }
        Err(e) => panic!("wrong refusal: {e}"),
        Ok(_) => panic!("served a legacy database that was never imported"),
    }

    // A dry run reports and creates nothing (the refused start created our empty schema).
    let tables_before = db.scalar("SELECT count(*) FROM study_mode.threads").await;
    let dry = import(&db, true, 2).await;
    assert!(dry.dry_run);
    assert_eq!(dry.threads, counts(5, 4, 1), "{dry}");
    assert_eq!(dry.items, counts(items_read, 7, items_read - 7), "{dry}");
    assert_eq!(dry.users, 2);
    assert_eq!(tables_before, 0);
    assert_eq!(
        db.scalar("SELECT count(*) FROM study_mode.threads").await,
        0
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM study_mode.legacy_imports")
            .await,
        0
    );

    // The import, two rows per transaction: the same counts, every skip with its reason.
    let report = import(&db, false, 2).await;
    assert!(!report.dry_run && !report.resumed);
    assert_eq!(
        report.layout,
        if layout == Layout::Current {
            "current"
        } else {
            "older"
        }
    );
    assert_eq!(
        (report.threads, report.items, report.users),
        (dry.threads, dry.items, 2)
    );
    let reason = |id: &str| {
        report
            .skipped
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.reason.clone())
            .unwrap_or_else(|| panic!("{id} not reported as skipped: {report}"))
    };
    assert!(reason("thr_broken").contains("not a thread status"));
    assert!(reason("msg_broken_1").contains("thr_broken"));
    assert!(reason("msg_wrong_user").contains("thr_bob_1"));
    assert!(reason("msg_b1_0").contains("start trigger"));
    assert!(reason("msg_bad").contains("not a ChatKit item"));
    if layout == Layout::Current {
        assert!(reason("msg_orphan").contains("thr_gone"));
    }
    let recorded = db
        .scalar("SELECT count(*) FROM study_mode.legacy_import_skipped")
        .await;
    assert_eq!(
        recorded as u64,
        report.threads.skipped + report.items.skipped
    );
    assert_eq!(
        legacy_fingerprint(&db).await,
        before,
        "legacy rows untouched"
    );
    let text = report.to_string();
    assert!(text.contains("threads: 5 read; new 4"), "{text}");

    // Served: every ChatKit read, then a new turn on an imported thread.
    let app = serve(&db).await;
    let alice = Chat::new(&app.address, "alice");
    let list = alice
        .send(json!({"type": "threads.list", "params": {"order": "desc", "limit": 10}}))
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    let threads = list.json()["data"].as_array().expect("data").clone();
    let ids: Vec<&str> = threads.iter().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(ids, ["thr_alice_3", "thr_alice_2", "thr_alice_1"]);
    assert_eq!(threads[2]["title"], "Study Session");
    assert_eq!(threads[2]["created_at"], "2025-11-03T09:15:00.123456Z");
    let long = threads[0]["title"].as_str().expect("title");
    assert!(
        long.starts_with("Über «Agenten» — \"quotes\" & 'apostrophes' 🤖 xxx"),
        "{long}"
    );
    assert_eq!(long.chars().count(), legacy::parse::TITLE_CHARS);
    let got = alice
        .send(json!({"type": "threads.get_by_id", "params": {"thread_id": "thr_alice_1"}}))
        .await;
    assert_eq!(got.status, 200, "{}", got.text);
    let items = got.json()["items"]["data"]
        .as_array()
        .expect("items")
        .clone();
    let ids: Vec<&str> = items.iter().filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(ids, ["msg_a1_1", "msg_a1_2", "msg_a1_3"], "order kept");
    for item in &items {
        let id = item["id"].as_str().expect("id");
        assert_eq!(
            norm(item),
            source_item(id),
            "{id} as the reference wrote it"
        );
    }
    assert_eq!(alice.items("thr_alice_2").await, Vec::<Value>::new());
    let page = alice
        .send(json!({"type": "items.list", "params": {"thread_id": "thr_alice_1", "order": "desc", "limit": 2}}))
        .await;
    let page = page.json();
    assert_eq!(page["data"][0]["id"], "msg_a1_3");
    assert_eq!(page["has_more"], true);

    let said = alice.say("thr_alice_1", "Und weiter?").await;
    assert_eq!(said.status, 200, "{}", said.text);
    assert!(said.text.contains("You said: Und weiter?"), "{}", said.text);
    assert_eq!(alice.items("thr_alice_1").await.len(), 5);
    let renamed = alice
        .send(json!({"type": "threads.update", "params": {"thread_id": "thr_alice_1", "title": "Agents"}}))
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    let deleted = alice
        .send(json!({"type": "threads.delete", "params": {"thread_id": "thr_alice_2"}}))
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);

    let bob = Chat::new(&app.address, "bob");
    let bobs = bob.items("thr_bob_1").await;
    let ids: Vec<&str> = bobs.iter().filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(
        ids,
        ["msg_b1_1", "msg_b1_2"],
        "the left-over trigger is not shown"
    );
    let foreign = bob
        .send(json!({"type": "threads.get_by_id", "params": {"thread_id": "thr_alice_1"}}))
        .await;
    assert_eq!(foreign.status, 404, "{}", foreign.text);
    assert_eq!(
        legacy_fingerprint(&db).await,
        before,
        "the Python service's rows stay"
    );
}

/// The row versions of our tables: equal before and after = no row was rewritten.
async fn our_versions(db: &TestDb) -> (Option<String>, Option<String>) {
    (
        db.text(
            "SELECT string_agg(id || ':' || xmin::text, ',' ORDER BY id) FROM study_mode.threads",
        )
        .await,
        db.text(
            "SELECT string_agg(id || ':' || xmin::text, ',' ORDER BY id) FROM study_mode.items",
        )
        .await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_takes_only_what_changed_and_changes_nothing_when_nothing_did() {
    let db = legacy_db(Layout::Current).await;
    let first = import(&db, false, 3).await;
    assert_eq!(first.threads.new, 4);
    let versions = our_versions(&db).await;

    // Nothing changed in the legacy store: nothing is read (the rows are older than the
    // watermark) and no row of ours is rewritten.
    let second = import(&db, false, 3).await;
    assert!(second.since.is_some(), "{second}");
    assert_eq!((second.threads.read, second.items.read), (0, 0), "{second}");
    assert_eq!(our_versions(&db).await, versions);

    // The Python service keeps serving: a rename, a new thread, a new item.
    sqlx::query(
        "UPDATE study_mode_chat.threads SET title = 'Agents, again', updated_at = NOW() \
         WHERE id = 'thr_alice_1'",
    )
    .execute(&db.pool)
    .await
    .expect("rename");
    let rows = fixture();
    let mut thread = rows["threads"][1].clone();
    thread["id"] = json!("thr_alice_new");
    thread["updated_at"] = json!(chrono::Utc::now().to_rfc3339());
    super::insert_thread(&db, Layout::Current, &thread).await;
    let mut item = rows["items"][0].clone();
    let mut data: Value = serde_json::from_str(item["data"].as_str().expect("data")).expect("json");
    data["item"]["id"] = json!("msg_new");
    item["id"] = json!("msg_new");
    item["data"] = json!(data.to_string());
    item["updated_at"] = json!(chrono::Utc::now().to_rfc3339());
    insert_item(&db, Layout::Current, &item).await;

    let dry = import(&db, true, 3).await;
    let third = import(&db, false, 3).await;
    assert_eq!(
        (dry.threads, dry.items),
        (third.threads, third.items),
        "{dry}\n{third}"
    );
    assert_eq!(
        third.threads,
        Counts {
            read: 2,
            new: 1,
            changed: 1,
            unchanged: 0,
            skipped: 0
        },
        "{third}"
    );
    assert_eq!(
        third.items,
        Counts {
            read: 1,
            new: 1,
            changed: 0,
            unchanged: 0,
            skipped: 0
        },
        "{third}"
    );
    let app = serve(&db).await;
    let alice = Chat::new(&app.address, "alice");
    let got = alice
        .send(json!({"type": "threads.get_by_id", "params": {"thread_id": "thr_alice_1"}}))
        .await
        .json();
    assert_eq!(got["title"], "Agents, again");
    assert_eq!(got["items"]["data"].as_array().map(Vec::len), Some(4));
    drop(app);

    // Within the safety margin the same rows are read again, compared, and left alone.
    let versions = our_versions(&db).await;
    let fourth = import(&db, false, 3).await;
    assert_eq!((fourth.threads.read, fourth.items.read), (2, 1), "{fourth}");
    assert_eq!(
        (fourth.threads.unchanged, fourth.items.unchanged),
        (2, 1),
        "{fourth}"
    );
    assert_eq!(our_versions(&db).await, versions, "no row rewritten");
}

/// A crash leaves exactly this: the run's row unfinished with the cursor of its last committed
/// page (cursor and page commit together), and nothing of the pages after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_import_is_resumed_after_its_last_committed_page() {
    let db = legacy_db(Layout::Current).await;
    import(&db, false, 2).await;
    let all = db.scalar("SELECT count(*) FROM study_mode.items").await;
    sqlx::raw_sql(
        "UPDATE study_mode.legacy_imports SET finished_at = NULL, phase = 'items', \
         cursor_id = 'msg_a1_2';
         DELETE FROM study_mode.items WHERE id > 'msg_a1_2';",
    )
    .execute(&db.pool)
    .await
    .expect("crash state");
    assert_eq!(db.scalar("SELECT count(*) FROM study_mode.items").await, 2);

    // An unfinished import is not an import: serving is still refused.
    let dir = tempfile::tempdir().expect("dir");
    let (settings, _) = settings_for(Backend::Production, &dir, &[("DATABASE_URL", &db.url)]);
    assert!(matches!(
        Application::build(settings).await,
        Err(StartError::LegacyNotImported(_))
    ));

    let resumed = import(&db, false, 2).await;
    assert!(resumed.resumed, "{resumed}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM study_mode.items").await,
        all
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM study_mode.legacy_imports WHERE finished_at IS NULL")
            .await,
        0
    );
    serve(&db).await;
}

fn binary(args: &[&str], url: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_study-mode-api"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", url)
        .env("DATABASE_MIN_CONNECTIONS", "1")
        .env("PORT", "0")
        .env("LOG_LEVEL", "warn")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run the binary")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exits_2_naming_import_legacy_and_the_command_reports_with_progress() {
    let db = legacy_db(Layout::Older).await;
    let run = |args: &'static [&'static str]| {
        let url = db.url.clone();
        tokio::task::spawn_blocking(move || binary(args, &url))
    };

    // A dry run on a database we never touched: a report, and not even our schema is made.
    let dry = run(&["import-legacy", "--dry-run"]).await.expect("join");
    let out = String::from_utf8_lossy(&dry.stdout);
    let err = String::from_utf8_lossy(&dry.stderr);
    assert!(dry.status.success(), "{out}\n{err}");
    assert!(out.contains("dry run, nothing was changed"), "{out}");
    assert!(out.contains("threads: 5 read; would be new 4"), "{out}");
    assert!(out.contains("items: 11 read; would be new 7"), "{out}");
    assert!(out.contains("users: 2"), "{out}");
    assert!(out.contains("msg_bad"), "skipped rows listed: {out}");
    assert!(
        err.contains("import-legacy: items 11/11 read"),
        "progress: {err}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'study_mode'")
            .await,
        0
    );

    let served = run(&["serve"]).await.expect("join");
    let stderr = String::from_utf8_lossy(&served.stderr);
    assert_eq!(served.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].contains("`study-mode-api import-legacy`"),
        "{stderr}"
    );
    assert!(!stderr.contains("migration"), "{stderr}");

    let real = run(&["import-legacy", "--batch", "3"]).await.expect("join");
    let out = String::from_utf8_lossy(&real.stdout);
    assert!(
        real.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&real.stderr)
    );
    assert!(out.contains("items: 11 read; new 7"), "{out}");
    serve(&db).await;
}

//! Group commit on both backends: the turn path's writes of many concurrent turns share one
//! commit (a statement on PostgreSQL, a transaction on SQLite), and each write still gets its
//! own answer after that commit.

use futures::future::join_all;
use study_mode_api::chatkit::ids;
use study_mode_api::chatkit::store::{ThreadChanges, ThreadRecord, ThreadStoreError};
use study_mode_api::chatkit::types::{AssistantContent, ItemKind, ThreadItem};

use crate::support::app::{Backend, metric, spawn_echo_app, spawn_echo_app_with, unique};

crate::per_backend! {
    concurrent_turn_writes_share_commits_and_each_gets_its_own_answer => concurrent_turn_writes;
    concurrent_replies_commit_their_changes_with_their_items => concurrent_replies;
    a_batch_of_one_turns_group_commit_off => batch_of_one;
}

fn thread() -> ThreadRecord {
    ThreadRecord::new(ids::thread_id(), Some("01-Part/02-lesson".into()), None)
}

fn item(thread_id: &str, text: &str) -> ThreadItem {
    ThreadItem {
        id: ids::message_id(),
        thread_id: thread_id.to_owned(),
        created_at: ids::now(),
        kind: ItemKind::AssistantMessage {
            content: vec![AssistantContent::text(text)],
        },
    }
}

/// What a write is meant to do, and what must follow from it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Good,
    /// An item on another owner's thread: `NoSuchThread`, nothing written.
    Intruder,
    /// A new thread reusing another owner's thread id: `NoSuchThread`, their thread unchanged
    /// and no item written.
    Hijack,
    /// An item PostgreSQL refuses (U+0000 in JSONB): an error, and no thread left behind.
    /// SQLite keeps any JSON text, so there it is a good write.
    Refused,
}

fn kind(n: usize, backend: Backend) -> Kind {
    match n % 10 {
        3 => Kind::Intruder,
        5 => Kind::Hijack,
        7 if backend == Backend::Production => Kind::Refused,
        _ => Kind::Good,
    }
}

/// 300 writes at once: they are committed in fewer batches than writes, every good one is
/// stored, and the bad ones (another owner's thread, a row PostgreSQL refuses) fail alone.
async fn concurrent_turn_writes(backend: Backend) {
    let app = spawn_echo_app(backend).await;
    let s = app.state.chatkit.store.clone();
    let (owner, other) = (unique("group"), unique("group-other"));
    let foreign = thread();
    s.save_thread_with_item(&other, &foreign, &item(&foreign.id, "theirs"))
        .await
        .expect("the other owner's thread");
    let before = metric(&app, "study_mode_store_write_batch_size_count").await;

    let threads: Vec<ThreadRecord> = (0..300).map(|_| thread()).collect();
    let firsts: Vec<ThreadItem> = threads
        .iter()
        .enumerate()
        .map(|(n, t)| match kind(n, backend) {
            Kind::Good => item(&t.id, &format!("hello {n}")),
            Kind::Intruder => item(&foreign.id, "intruder"),
            Kind::Hijack => item(&foreign.id, "hijack"),
            Kind::Refused => item(&t.id, "a\0b"),
        })
        .collect();
    let results = join_all(threads.iter().zip(&firsts).enumerate().map(|(n, (t, i))| {
        let (s, owner, foreign) = (&s, &owner, &foreign);
        async move {
            match kind(n, backend) {
                Kind::Intruder => s.save_item(owner, i).await,
                Kind::Hijack => {
                    let mut theirs = t.clone();
                    theirs.id.clone_from(&foreign.id);
                    theirs.title = Some("hijacked".into());
                    s.save_thread_with_item(owner, &theirs, i).await
                }
                _ => s.save_thread_with_item(owner, t, i).await,
            }
        }
    }))
    .await;

    let statements = metric(&app, "study_mode_store_write_batch_size_count").await - before;
    assert!(
        statements > 0.0 && statements < 300.0,
        "300 concurrent writes took {statements} group commits"
    );
    for (n, result) in results.iter().enumerate() {
        match kind(n, backend) {
            Kind::Good => assert!(result.is_ok(), "write {n}: {result:?}"),
            Kind::Intruder | Kind::Hijack => assert!(
                matches!(result, Err(ThreadStoreError::NoSuchThread)),
                "write {n}: {result:?}"
            ),
            Kind::Refused => assert!(
                matches!(result, Err(ThreadStoreError::Database(_))),
                "write {n}: {result:?}"
            ),
        }
    }
    for (n, (t, i)) in threads.iter().zip(&firsts).enumerate() {
        let stored = s.load_thread(&owner, &t.id).await.expect("load");
        assert_eq!(
            stored.is_some(),
            kind(n, backend) == Kind::Good,
            "thread {n}"
        );
        if kind(n, backend) == Kind::Good {
            let back = s.load_item(&owner, &t.id, &i.id).await.expect("load");
            assert_eq!(back.as_ref(), Some(i), "item {n} reads back unchanged");
        }
    }
    let theirs = s
        .load_items(
            &other,
            &foreign.id,
            &study_mode_api::chatkit::store::PageQuery::first(
                10,
                study_mode_api::chatkit::request::Order::Asc,
            ),
            study_mode_api::chatkit::store::Hidden::Include,
        )
        .await
        .expect("their items");
    assert_eq!(theirs.data.len(), 1, "no intruder's item on their thread");
    let their_thread = s
        .load_thread(&other, &foreign.id)
        .await
        .expect("load")
        .expect("their thread");
    assert_eq!(
        their_thread.title, foreign.title,
        "their thread was not renamed"
    );
    assert!(
        s.load_thread(&owner, &foreign.id)
            .await
            .expect("load")
            .is_none(),
        "their thread did not become ours"
    );
}

/// Replies at once: each one's title and state land with its items; a reply to another
/// owner's thread writes neither.
async fn concurrent_replies(backend: Backend) {
    let app = spawn_echo_app(backend).await;
    let s = app.state.chatkit.store.clone();
    let (owner, other) = (unique("group"), unique("group-other"));
    let mut threads = Vec::new();
    for n in 0..100 {
        let t = thread();
        let who = if n % 4 == 1 { &other } else { &owner };
        s.save_thread_with_item(who, &t, &item(&t.id, "question"))
            .await
            .expect("thread");
        threads.push(t);
    }
    let updated: Vec<ThreadRecord> = threads
        .iter()
        .enumerate()
        .map(|(n, t)| {
            let mut t = t.clone();
            t.title = Some(format!("Title {n}"));
            t.metadata
                .insert("state".into(), serde_json::json!({"n": n}));
            t.updated_at = ids::now();
            t
        })
        .collect();
    let replies: Vec<(ThreadItem, ThreadItem)> = updated
        .iter()
        .map(|t| (item(&t.id, "answer"), item(&t.id, "buttons")))
        .collect();
    let before = metric(&app, "study_mode_store_write_batch_size_count").await;
    let results = join_all(updated.iter().zip(&replies).map(|(t, (a, b))| {
        let (s, owner) = (&s, &owner);
        async move {
            let changes = ThreadChanges {
                thread: t,
                title: true,
                metadata: true,
            };
            s.save_reply(owner, Some(&changes), &[a, b]).await
        }
    }))
    .await;
    let commits = metric(&app, "study_mode_store_write_batch_size_count").await - before;
    assert!(
        commits > 0.0 && commits < 100.0,
        "100 concurrent replies took {commits} group commits"
    );
    for (n, result) in results.iter().enumerate() {
        let theirs = n % 4 == 1;
        assert_eq!(
            matches!(result, Err(ThreadStoreError::NoSuchThread)),
            theirs,
            "reply {n}: {result:?}"
        );
        let who = if theirs { &other } else { &owner };
        let back = s
            .load_thread(who, &updated[n].id)
            .await
            .expect("load")
            .expect("thread");
        let (a, b) = &replies[n];
        let items = [
            s.load_item(who, &back.id, &a.id).await.expect("load"),
            s.load_item(who, &back.id, &b.id).await.expect("load"),
        ];
        if theirs {
            assert_eq!(back.title, None, "reply {n} changed another owner's thread");
            assert!(back.metadata.is_empty());
            assert!(items.iter().all(Option::is_none), "reply {n}");
        } else {
            assert_eq!(back.title, updated[n].title, "reply {n}");
            assert_eq!(back.metadata, updated[n].metadata, "reply {n}");
            assert_eq!(items, [Some(a.clone()), Some(b.clone())], "reply {n}");
        }
    }
}

/// `DATABASE_WRITE_BATCH=1` writes each turn on its own: no group commit at all.
async fn batch_of_one(backend: Backend) {
    let app = spawn_echo_app_with(backend, &[("DATABASE_WRITE_BATCH", "1")]).await;
    let s = app.state.chatkit.store.clone();
    let owner = unique("alone");
    join_all((0..20).map(|_| {
        let (s, owner) = (&s, &owner);
        async move {
            let t = thread();
            s.save_thread_with_item(owner, &t, &item(&t.id, "hi"))
                .await
                .expect("stored");
        }
    }))
    .await;
    assert_eq!(
        metric(&app, "study_mode_store_write_batch_size_count").await,
        0.0
    );
}

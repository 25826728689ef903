//! The thread store's shared suite, run against PostgreSQL and SQLite: ownership, upserts,
//! pagination in both orders with ties, hidden items, cascades, attachments.

use chrono::{DateTime, Utc};
use serde_json::json;
use study_mode_api::chatkit::request::Order;
use study_mode_api::chatkit::store::{
    AttachmentRecord, Hidden, PageQuery, ThreadRecord, ThreadStoreError,
};
use study_mode_api::chatkit::types::{AssistantContent, ItemKind, ThreadItem};
use study_mode_api::chatkit::{ThreadStore, ids};
use study_mode_api::db::Database;

use crate::per_backend;
use crate::support::app::{Backend, spawn_echo_app, unique};

per_backend! {
    a_saved_thread_loads_back_for_its_owner_only => thread_round_trip;
    a_foreign_owner_cannot_overwrite_a_thread_or_add_items_to_it => foreign_writes_fail;
    items_upsert_by_id_and_load_back_unchanged => item_upsert;
    item_pages_follow_created_at_then_id_in_both_orders => item_pagination;
    hidden_items_never_appear_in_visible_pages_and_do_not_shorten_them => hidden_pages;
    thread_pages_follow_created_at_then_id_in_both_orders => thread_pagination;
    deleting_a_thread_deletes_its_items => delete_cascades;
    delete_items_after_removes_exactly_the_later_items => delete_after;
    attachment_metadata_is_owner_scoped => attachments;
}

/// PostgreSQL's JSONB refuses U+0000, so the item below cannot be stored: its thread must not
/// be either (`threads.create` once left an empty thread on every try).
#[tokio::test]
async fn a_new_thread_whose_first_item_is_refused_is_not_stored_either() {
    let (_app, s) = store(Backend::Production).await;
    let owner = unique("nul");
    let t = thread(&ids::thread_id());
    let item = text_item(&t.id, &ids::message_id(), at(1), "a\0b");
    assert!(s.save_thread_with_item(&owner, &t, &item).await.is_err());
    assert!(s.load_thread(&owner, &t.id).await.expect("load").is_none());
    let fine = text_item(&t.id, &ids::message_id(), at(2), "fine");
    s.save_thread_with_item(&owner, &t, &fine)
        .await
        .expect("both stored");
    assert!(s.load_thread(&owner, &t.id).await.expect("load").is_some());
    let stored = s.load_item(&owner, &t.id, &fine.id).await.expect("load");
    assert_eq!(stored.map(|i| i.id), Some(fine.id));
}

async fn store(backend: Backend) -> (crate::support::app::TestApp, ThreadStore) {
    let app = spawn_echo_app(backend).await;
    let store = app.state.chatkit.store.clone();
    (app, store)
}

fn at(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(1_800_000_000_000_000 + micros).expect("time")
}

fn thread(id: &str) -> ThreadRecord {
    ThreadRecord::new(
        id.to_owned(),
        Some("01-Part/02-lesson".into()),
        Some("org-1".into()),
    )
}

fn text_item(thread_id: &str, id: &str, created_at: DateTime<Utc>, text: &str) -> ThreadItem {
    ThreadItem {
        id: id.to_owned(),
        thread_id: thread_id.to_owned(),
        created_at,
        kind: ItemKind::AssistantMessage {
            content: vec![AssistantContent::text(text)],
        },
    }
}

fn hidden_item(thread_id: &str, id: &str, created_at: DateTime<Utc>) -> ThreadItem {
    ThreadItem {
        id: id.to_owned(),
        thread_id: thread_id.to_owned(),
        created_at,
        kind: ItemKind::SdkHiddenContext {
            content: "note".into(),
        },
    }
}

fn ids_of(items: &[ThreadItem]) -> Vec<&str> {
    items.iter().map(|i| i.id.as_str()).collect()
}

async fn thread_round_trip(backend: Backend) {
    let (_app, s) = store(backend).await;
    let (alice, bob) = (unique("alice"), unique("bob"));
    let mut t = thread(&ids::thread_id());
    s.save_thread(&alice, &t).await.expect("save");
    assert_eq!(
        s.load_thread(&alice, &t.id).await.expect("load"),
        Some(t.clone())
    );
    assert_eq!(s.load_thread(&bob, &t.id).await.expect("load"), None);
    t.title = Some("Closures".into());
    t.status = json!({"type": "locked", "reason": "done"});
    t.updated_at = ids::now();
    s.save_thread(&alice, &t).await.expect("update");
    let back = s
        .load_thread(&alice, &t.id)
        .await
        .expect("load")
        .expect("thread");
    assert_eq!(back.title.as_deref(), Some("Closures"));
    assert_eq!(back.status, t.status);
    assert_eq!(back.lesson_path.as_deref(), Some("01-Part/02-lesson"));
    assert_eq!(back.organization_id.as_deref(), Some("org-1"));
    assert_eq!(
        back.created_at, t.created_at,
        "microsecond precision is kept"
    );
}

async fn foreign_writes_fail(backend: Backend) {
    let (_app, s) = store(backend).await;
    let (alice, mallory) = (unique("alice"), unique("mallory"));
    let t = thread(&ids::thread_id());
    s.save_thread(&alice, &t).await.expect("save");
    let mut stolen = t.clone();
    stolen.title = Some("pwned".into());
    assert!(matches!(
        s.save_thread(&mallory, &stolen).await,
        Err(ThreadStoreError::NoSuchThread)
    ));
    assert_eq!(
        s.load_thread(&alice, &t.id)
            .await
            .expect("load")
            .expect("t")
            .title,
        None
    );
    let item = text_item(&t.id, "msg_x", at(1), "hi");
    assert!(matches!(
        s.save_item(&mallory, &item).await,
        Err(ThreadStoreError::NoSuchThread)
    ));
    s.save_item(&alice, &item).await.expect("owner writes");
    assert_eq!(
        s.load_item(&mallory, &t.id, "msg_x").await.expect("load"),
        None
    );
    assert!(
        !s.delete_item(&mallory, &t.id, "msg_x")
            .await
            .expect("delete")
    );
    assert!(!s.delete_thread(&mallory, &t.id).await.expect("delete"));
    assert!(
        s.load_item(&alice, &t.id, "msg_x")
            .await
            .expect("load")
            .is_some()
    );
}

async fn item_upsert(backend: Backend) {
    let (_app, s) = store(backend).await;
    let owner = unique("u");
    let t = thread(&ids::thread_id());
    s.save_thread(&owner, &t).await.expect("save");
    let first = text_item(&t.id, "msg_1", at(5), "draft");
    s.save_item(&owner, &first).await.expect("insert");
    let second = text_item(&t.id, "msg_1", at(5), "final");
    s.save_item(&owner, &second).await.expect("upsert");
    assert_eq!(
        s.load_item(&owner, &t.id, "msg_1").await.expect("load"),
        Some(second)
    );
    let page = s
        .load_items(
            &owner,
            &t.id,
            &PageQuery::first(10, Order::Asc),
            Hidden::Include,
        )
        .await
        .expect("page");
    assert_eq!(page.data.len(), 1);
}

async fn item_pagination(backend: Backend) {
    let (_app, s) = store(backend).await;
    let owner = unique("u");
    let t = thread(&ids::thread_id());
    s.save_thread(&owner, &t).await.expect("save");
    // Three items share one timestamp: the id breaks the tie.
    for (id, micros) in [
        ("msg_d", 2),
        ("msg_a", 1),
        ("msg_c", 1),
        ("msg_b", 1),
        ("msg_e", 3),
    ] {
        s.save_item(&owner, &text_item(&t.id, id, at(micros), id))
            .await
            .expect("save");
    }
    let mut seen = Vec::new();
    let mut query = PageQuery::first(2, Order::Asc);
    loop {
        let page = s
            .load_items(&owner, &t.id, &query, Hidden::Exclude)
            .await
            .expect("page");
        seen.extend(ids_of(&page.data).into_iter().map(str::to_owned));
        if !page.has_more {
            assert_eq!(page.after, None);
            break;
        }
        assert_eq!(
            page.after.as_deref(),
            page.data.last().map(|i| i.id.as_str())
        );
        query.after = page.after;
    }
    assert_eq!(seen, ["msg_a", "msg_b", "msg_c", "msg_d", "msg_e"]);
    let desc = s
        .load_items(
            &owner,
            &t.id,
            &PageQuery::first(3, Order::Desc),
            Hidden::Exclude,
        )
        .await
        .expect("p");
    assert_eq!(ids_of(&desc.data), ["msg_e", "msg_d", "msg_c"]);
    let next = PageQuery {
        after: desc.after.clone(),
        limit: 3,
        order: Order::Desc,
    };
    let rest = s
        .load_items(&owner, &t.id, &next, Hidden::Exclude)
        .await
        .expect("p");
    assert_eq!(ids_of(&rest.data), ["msg_b", "msg_a"]);
    assert!(!rest.has_more);
}

async fn hidden_pages(backend: Backend) {
    let (_app, s) = store(backend).await;
    let owner = unique("u");
    let t = thread(&ids::thread_id());
    s.save_thread(&owner, &t).await.expect("save");
    s.save_item(&owner, &text_item(&t.id, "msg_1", at(1), "a"))
        .await
        .expect("save");
    s.save_item(&owner, &hidden_item(&t.id, "shcx_2", at(2)))
        .await
        .expect("save");
    s.save_item(&owner, &hidden_item(&t.id, "shcx_3", at(3)))
        .await
        .expect("save");
    s.save_item(&owner, &text_item(&t.id, "msg_4", at(4), "b"))
        .await
        .expect("save");
    let page = s
        .load_items(
            &owner,
            &t.id,
            &PageQuery::first(2, Order::Asc),
            Hidden::Exclude,
        )
        .await
        .expect("p");
    assert_eq!(
        ids_of(&page.data),
        ["msg_1", "msg_4"],
        "a full page despite two hidden items"
    );
    assert!(!page.has_more);
    let all = s
        .load_items(
            &owner,
            &t.id,
            &PageQuery::first(10, Order::Asc),
            Hidden::Include,
        )
        .await
        .expect("p");
    assert_eq!(all.data.len(), 4);
}

async fn thread_pagination(backend: Backend) {
    let (_app, s) = store(backend).await;
    let owner = unique("u");
    let mut expected = Vec::new();
    for (id, micros) in [("thr_c", 1), ("thr_a", 1), ("thr_b", 2)] {
        let id = format!("{id}_{owner}");
        let mut t = thread(&id);
        t.created_at = at(micros);
        s.save_thread(&owner, &t).await.expect("save");
        expected.push(id);
    }
    let order = [
        expected[1].clone(),
        expected[0].clone(),
        expected[2].clone(),
    ];
    let page1 = s
        .load_threads(&owner, &PageQuery::first(2, Order::Asc))
        .await
        .expect("p");
    assert_eq!(
        page1.data.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        order[..2]
    );
    assert_eq!(page1.after.as_deref(), Some(order[1].as_str()));
    let page2 = s
        .load_threads(
            &owner,
            &PageQuery {
                after: page1.after,
                limit: 2,
                order: Order::Asc,
            },
        )
        .await
        .expect("p");
    assert_eq!(
        page2.data.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        order[2..]
    );
    assert!(!page2.has_more);
    let desc = s
        .load_threads(&owner, &PageQuery::first(10, Order::Desc))
        .await
        .expect("p");
    let mut reversed = order.to_vec();
    reversed.reverse();
    assert_eq!(
        desc.data.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        reversed
    );
    let other = s
        .load_threads(&unique("other"), &PageQuery::first(10, Order::Desc))
        .await
        .expect("p");
    assert!(other.data.is_empty());
}

async fn count_items(db: &Database, thread_id: &str) -> i64 {
    match db {
        Database::Postgres(p) => {
            sqlx::query_scalar("SELECT count(*) FROM items WHERE thread_id = $1")
                .bind(thread_id)
                .fetch_one(p)
                .await
                .expect("count")
        }
        Database::Sqlite(p) => {
            sqlx::query_scalar("SELECT count(*) FROM items WHERE thread_id = ?1")
                .bind(thread_id)
                .fetch_one(p)
                .await
                .expect("count")
        }
    }
}

async fn delete_cascades(backend: Backend) {
    let (app, s) = store(backend).await;
    let owner = unique("u");
    let t = thread(&ids::thread_id());
    s.save_thread(&owner, &t).await.expect("save");
    s.save_item(&owner, &text_item(&t.id, "msg_1", at(1), "a"))
        .await
        .expect("save");
    s.save_item(&owner, &hidden_item(&t.id, "shcx_1", at(2)))
        .await
        .expect("save");
    assert_eq!(count_items(&app.db, &t.id).await, 2);
    assert!(s.delete_thread(&owner, &t.id).await.expect("delete"));
    assert_eq!(count_items(&app.db, &t.id).await, 0);
    assert_eq!(s.load_thread(&owner, &t.id).await.expect("load"), None);
    assert!(!s.delete_thread(&owner, &t.id).await.expect("again"));
}

async fn delete_after(backend: Backend) {
    let (_app, s) = store(backend).await;
    let owner = unique("u");
    let t = thread(&ids::thread_id());
    s.save_thread(&owner, &t).await.expect("save");
    let pivot = text_item(&t.id, "msg_b", at(1), "pivot");
    for item in [
        text_item(&t.id, "msg_a", at(1), "same time, smaller id"),
        pivot.clone(),
        text_item(&t.id, "msg_c", at(1), "same time, larger id"),
        hidden_item(&t.id, "shcx_d", at(2)),
        text_item(&t.id, "msg_e", at(3), "later"),
    ] {
        s.save_item(&owner, &item).await.expect("save");
    }
    assert!(
        s.delete_items_after(&unique("other"), &pivot)
            .await
            .expect("foreign")
            .is_empty()
    );
    let gone = s.delete_items_after(&owner, &pivot).await.expect("delete");
    assert_eq!(ids_of(&gone), ["msg_c", "shcx_d", "msg_e"]);
    let left = s
        .load_items(
            &owner,
            &t.id,
            &PageQuery::first(10, Order::Asc),
            Hidden::Include,
        )
        .await
        .expect("p");
    assert_eq!(ids_of(&left.data), ["msg_a", "msg_b"]);
}

async fn attachments(backend: Backend) {
    let (_app, s) = store(backend).await;
    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = AttachmentRecord {
        id: format!("atc_{}", unique("")),
        thread_id: None,
        created_at: ids::now(),
        data: json!({"id": "atc", "name": "a.png", "mime_type": "image/png", "type": "image", "preview_url": "https://x/p.png"}),
    };
    s.save_attachment(&alice, &a).await.expect("save");
    assert_eq!(
        s.load_attachment(&alice, &a.id).await.expect("load"),
        Some(a.clone())
    );
    assert_eq!(s.load_attachment(&bob, &a.id).await.expect("load"), None);
    assert!(matches!(
        s.save_attachment(&bob, &a).await,
        Err(ThreadStoreError::NoSuchThread)
    ));
    let moved = AttachmentRecord {
        thread_id: Some("thr_1".into()),
        ..a.clone()
    };
    s.save_attachment(&alice, &moved).await.expect("upsert");
    assert_eq!(
        s.load_attachment(&alice, &a.id).await.expect("load"),
        Some(moved)
    );
    assert!(!s.delete_attachment(&bob, &a.id).await.expect("delete"));
    assert!(s.delete_attachment(&alice, &a.id).await.expect("delete"));
    assert_eq!(s.load_attachment(&alice, &a.id).await.expect("load"), None);
}

//! The durable thread store: [`ThreadStore`], on PostgreSQL or SQLite, chosen once from the
//! [`Database`] the app connected. One body of queries serves both (`sql.rs`); the only
//! difference, how a timestamp is stored, is `dialect.rs`.
//!
//! Lives under `chatkit/` (not `crate::db`) because it speaks the protocol's item model
//! (item types, hidden context, the `after` cursor), while `crate::db` owns only pools,
//! migrations and must not know the protocol.
//!
//! Every operation takes the owner (`CurrentUser::id`) and filters on it, so another user's
//! thread or item is indistinguishable from a missing one. Every write is committed before the
//! call returns: the turn path's writes may share one commit with other turns'
//! (`group_commit.rs`), but each call still returns only after that commit. Pages are ordered
//! by `(created_at, id)` and filter hidden items in SQL, so pages are never cut short by them.

mod dialect;
mod group_commit;
mod sql;

use std::future::Future;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{Postgres, Sqlite};

use super::request::Order;
use super::types::{Page, Thread, ThreadItem};
use crate::db::{Database, StoreMetrics};
use group_commit::{GroupCommit, Target, Write};
use sql::SqlStore;

/// A thread without its items: what [`ThreadStore::save_thread`] takes, so items can never be
/// stored inline (the reference's `Thread`-passed-to-`save_thread` defect cannot happen).
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadRecord {
    pub id: String,
    pub title: Option<String>,
    /// `ThreadStatus` as JSON (`{"type":"active"}` …).
    pub status: Value,
    /// Integration metadata; never sent to the client (as the reference).
    pub metadata: Map<String, Value>,
    pub lesson_path: Option<String>,
    pub organization_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ThreadRecord {
    /// A new active thread created now.
    pub fn new(id: String, lesson_path: Option<String>, organization_id: Option<String>) -> Self {
        let now = super::ids::now();
        Self {
            id,
            title: None,
            status: serde_json::json!({"type": "active"}),
            metadata: Map::new(),
            lesson_path,
            organization_id,
            created_at: now,
            updated_at: now,
        }
    }

    /// The wire `Thread` with `items`.
    pub fn to_wire(&self, items: Page<ThreadItem>) -> Thread {
        Thread {
            title: self.title.clone(),
            id: self.id.clone(),
            created_at: self.created_at,
            status: self.status.clone(),
            allowed_image_domains: None,
            metadata: Map::new(),
            items,
        }
    }
}

/// What of a thread a reply changed: its title, its metadata (the responder's state), or
/// both; the values are the record's.
#[derive(Debug, Clone, Copy)]
pub struct ThreadChanges<'a> {
    pub thread: &'a ThreadRecord,
    pub title: bool,
    pub metadata: bool,
}

/// Attachment metadata (the `Attachment` JSON) and its owner's thread.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentRecord {
    pub id: String,
    pub thread_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub data: Value,
}

/// Which page to read: `limit` rows after the row whose id is `after`, in `order`.
#[derive(Debug, Clone, PartialEq)]
pub struct PageQuery {
    pub after: Option<String>,
    pub limit: u32,
    pub order: Order,
}

impl PageQuery {
    pub fn first(limit: u32, order: Order) -> Self {
        Self {
            after: None,
            limit,
            order,
        }
    }
}

/// Whether a page of items includes hidden-context items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hidden {
    Include,
    Exclude,
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum ThreadStoreError {
    /// Also a stored value that does not decode (JSON, timestamp), naming its column.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A write aimed at a thread the owner does not have.
    #[error("no such thread")]
    NoSuchThread,
}

impl ThreadStoreError {
    /// The database is unreachable for now (see [`crate::db::is_unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ThreadStoreError::Database(e) if crate::db::is_unavailable(e))
    }
}

pub type StoreResult<T> = Result<T, ThreadStoreError>;

/// The store of this process (the reference's `chatkit.store.Store`, owner-scoped): the one
/// query body on the configured backend, latency recorded per operation.
#[derive(Debug, Clone)]
pub struct ThreadStore {
    backend: Backend,
    metrics: std::sync::Arc<StoreMetrics>,
    /// Most bytes of item JSON in one page (`PAGE_MAX_BYTES`): a page stops early, with
    /// `has_more` and `after` set, rather than hold 100 items of a megabyte each.
    page_max_bytes: usize,
    /// The turn path's writes, batched (`DATABASE_WRITE_BATCH` > 1).
    group: Option<GroupCommit>,
}

/// Default of [`ThreadStore::with_page_max_bytes`]: 4 MiB.
pub const PAGE_MAX_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
enum Backend {
    Postgres(SqlStore<Postgres>),
    Sqlite(SqlStore<Sqlite>),
}

impl ThreadStore {
    /// The store on the app's database; latency goes to `metrics` (shared with `/metrics`).
    pub fn new(db: &Database, metrics: &StoreMetrics) -> Self {
        let backend = match db {
            Database::Postgres(p) => Backend::Postgres(SqlStore::new(p.clone())),
            Database::Sqlite(p) => Backend::Sqlite(SqlStore::new(p.clone())),
        };
        let metrics = std::sync::Arc::new(metrics.clone());
        Self {
            backend,
            metrics,
            page_max_bytes: PAGE_MAX_BYTES,
            group: None,
        }
    }

    /// The same store committing the turn path's writes (new thread with its message, a
    /// message, a reply) in groups of at most `max` per commit (`group_commit.rs`: one
    /// statement on PostgreSQL, one transaction on SQLite); `max` ≤ 1 writes each on its own.
    /// Starts a task: call inside the runtime.
    pub fn with_write_batch(mut self, max: usize) -> Self {
        let target = match &self.backend {
            _ if max <= 1 => None,
            Backend::Postgres(s) => Some(Target::Postgres(s.pool().clone())),
            Backend::Sqlite(s) => Some(Target::Sqlite(s.pool().clone())),
        };
        self.group = target.map(|t| GroupCommit::start(t, max, self.metrics.write_batch.clone()));
        self
    }

    /// The same store with pages bounded to `bytes` of item JSON (at least one item a page).
    pub fn with_page_max_bytes(mut self, bytes: usize) -> Self {
        self.page_max_bytes = bytes;
        self
    }

    fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Postgres(_) => "postgres",
            Backend::Sqlite(_) => "sqlite",
        }
    }

    async fn timed<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let started = Instant::now();
        let result = fut.await;
        self.metrics.observe(self.backend_name(), op, started);
        result
    }
}

/// Calls the same method on whichever backend is configured, timing it as `op`.
macro_rules! dispatch {
    ($self:ident, $op:literal, $s:ident => $call:expr) => {
        match &$self.backend {
            Backend::Postgres($s) => $self.timed($op, $call).await,
            Backend::Sqlite($s) => $self.timed($op, $call).await,
        }
    };
}

impl ThreadStore {
    /// The owner's thread, or `None`.
    pub async fn load_thread(&self, owner: &str, id: &str) -> StoreResult<Option<ThreadRecord>> {
        dispatch!(self, "load_thread", s => s.load_thread(owner, id))
    }

    /// Inserts or updates (title, status, metadata, updated_at) the owner's thread. Updating a
    /// thread id owned by someone else changes nothing and fails with `NoSuchThread`.
    pub async fn save_thread(&self, owner: &str, thread: &ThreadRecord) -> StoreResult<()> {
        dispatch!(self, "save_thread", s => s.save_thread(owner, thread))
    }

    /// Inserts the owner's new thread with its first item, in one transaction: a refused item
    /// leaves no thread behind.
    pub async fn save_thread_with_item(
        &self,
        owner: &str,
        thread: &ThreadRecord,
        item: &ThreadItem,
    ) -> StoreResult<()> {
        if let Some(group) = &self.group {
            let write = Write::create(owner, thread, item);
            return self
                .timed("save_thread_with_item", group.write(write))
                .await;
        }
        dispatch!(self, "save_thread_with_item", s => s.save_thread_with_item(owner, thread, item))
    }

    /// Which of `ids` name visible items of the owner's thread, in one query (at most a few
    /// hundred ids: one placeholder each).
    pub async fn visible_item_ids(
        &self,
        owner: &str,
        thread_id: &str,
        ids: &[String],
    ) -> StoreResult<Vec<String>> {
        dispatch!(self, "visible_item_ids", s => s.visible_item_ids(owner, thread_id, ids))
    }

    /// One page of the owner's threads by `(created_at, id)`.
    pub async fn load_threads(
        &self,
        owner: &str,
        page: &PageQuery,
    ) -> StoreResult<Page<ThreadRecord>> {
        dispatch!(self, "load_threads", s => s.load_threads(owner, page))
    }

    /// Deletes the thread and its items; false when there was none.
    pub async fn delete_thread(&self, owner: &str, id: &str) -> StoreResult<bool> {
        dispatch!(self, "delete_thread", s => s.delete_thread(owner, id))
    }

    /// The end of a reply, in one transaction: the thread's `changes` (title and/or
    /// metadata, with `updated_at`), then `items` (`NoSuchThread` when the thread is gone).
    pub async fn save_reply(
        &self,
        owner: &str,
        changes: Option<&ThreadChanges<'_>>,
        items: &[&ThreadItem],
    ) -> StoreResult<()> {
        if let Some(group) = &self.group {
            let write = Write::reply(owner, changes, items);
            return self.timed("save_reply", group.write(write)).await;
        }
        dispatch!(self, "save_reply", s => s.save_reply(owner, changes, items))
    }

    /// Inserts or replaces an item of the owner's thread (`NoSuchThread` otherwise).
    pub async fn save_item(&self, owner: &str, item: &ThreadItem) -> StoreResult<()> {
        if let Some(group) = &self.group {
            let write = Write::reply(owner, None, &[item]);
            return self.timed("save_item", group.write(write)).await;
        }
        dispatch!(self, "save_item", s => s.save_item(owner, item))
    }

    /// One item of the owner's thread, or `None`.
    pub async fn load_item(
        &self,
        owner: &str,
        thread_id: &str,
        item_id: &str,
    ) -> StoreResult<Option<ThreadItem>> {
        dispatch!(self, "load_item", s => s.load_item(owner, thread_id, item_id))
    }

    /// One page of items of the owner's thread by `(created_at, id)`.
    pub async fn load_items(
        &self,
        owner: &str,
        thread_id: &str,
        page: &PageQuery,
        hidden: Hidden,
    ) -> StoreResult<Page<ThreadItem>> {
        let max_bytes = self.page_max_bytes;
        dispatch!(self, "load_items", s => s.load_items(owner, thread_id, page, hidden, max_bytes))
    }

    /// Deletes one item; false when there was none.
    pub async fn delete_item(
        &self,
        owner: &str,
        thread_id: &str,
        item_id: &str,
    ) -> StoreResult<bool> {
        dispatch!(self, "delete_item", s => s.delete_item(owner, thread_id, item_id))
    }

    /// Deletes every item after `item` in `(created_at, id)` order; the deleted items, oldest
    /// first.
    pub async fn delete_items_after(
        &self,
        owner: &str,
        item: &ThreadItem,
    ) -> StoreResult<Vec<ThreadItem>> {
        dispatch!(self, "delete_items_after", s => s.delete_items_after(owner, item))
    }

    /// Inserts or replaces attachment metadata.
    pub async fn save_attachment(
        &self,
        owner: &str,
        attachment: &AttachmentRecord,
    ) -> StoreResult<()> {
        dispatch!(self, "save_attachment", s => s.save_attachment(owner, attachment))
    }

    pub async fn load_attachment(
        &self,
        owner: &str,
        id: &str,
    ) -> StoreResult<Option<AttachmentRecord>> {
        dispatch!(self, "load_attachment", s => s.load_attachment(owner, id))
    }

    pub async fn delete_attachment(&self, owner: &str, id: &str) -> StoreResult<bool> {
        dispatch!(self, "delete_attachment", s => s.delete_attachment(owner, id))
    }
}

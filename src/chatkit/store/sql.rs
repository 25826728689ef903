//! The thread store's queries: one body of SQL and Rust for PostgreSQL and SQLite.
//!
//! The text is written in the subset both accept: `$N` placeholders (SQLite takes `$N` as a
//! named parameter, which sqlx binds to argument N, so a repeated `$1` is one value),
//! `CAST($N AS TEXT)` rather than `$N::text`, the current time bound rather than `now()`, JSON
//! bound and read as [`Json`] (JSONB on PostgreSQL, the `serde_json` text on SQLite), and
//! timestamps as [`DbTime`], the one encoding that differs (see [`super::dialect`]). The
//! schemas stay as they were (`migrations/{postgres,sqlite}`); PostgreSQL finds the tables on
//! its search path (`study_mode_chat`).
//!
//! [`SqlStore`] is generic over the sqlx database rather than a macro instantiated twice: the
//! body stays ordinary code (formatted, type-checked once, errors pointing at its lines), and
//! the single `where` clause below is the exact list of what a backend must supply. The
//! [`super::ThreadStore`] enum holds the two instantiations; there is no other dispatch.

use futures::TryStreamExt;
use serde_json::{Map, Value};
use std::sync::LazyLock;

use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

use super::dialect::{DbTime, Dialect};
use super::{
    AttachmentRecord, Hidden, PageQuery, StoreResult, ThreadChanges, ThreadRecord, ThreadStoreError,
};
use crate::chatkit::request::Order;
use crate::chatkit::types::{HIDDEN_TYPES, Page, ThreadItem};

/// The thread store on a pool of `DB`.
#[derive(Debug)]
pub(super) struct SqlStore<DB: sqlx::Database> {
    pool: Pool<DB>,
}

// Derived `Clone` would ask for `DB: Clone`.
impl<DB: sqlx::Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

impl<DB: sqlx::Database> SqlStore<DB> {
    pub(super) fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }

    pub(super) fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

// The clauses shared by the one-row statements below and SQLite's multi-row batches
// (`group_commit.rs`), as macros so that `concat!` can build constants of them.
macro_rules! thread_columns {
    () => {
        "id, user_id, organization_id, lesson_path, title, status, metadata, created_at, updated_at"
    };
}
macro_rules! thread_conflict {
    () => {
        "ON CONFLICT (id) DO UPDATE SET title = excluded.title, status = excluded.status, \
         metadata = excluded.metadata, updated_at = excluded.updated_at \
         WHERE threads.user_id = excluded.user_id"
    };
}
macro_rules! item_columns {
    () => {
        "id, thread_id, user_id, item_type, created_at, updated_at, data"
    };
}
macro_rules! item_conflict {
    () => {
        "ON CONFLICT (thread_id, id) DO UPDATE SET item_type = excluded.item_type, \
         data = excluded.data, updated_at = excluded.updated_at \
         WHERE items.user_id = excluded.user_id"
    };
}

/// `threads` columns in the order the thread inserts bind them.
pub(super) const THREAD_COLUMNS_IN: &str = thread_columns!();
/// A thread insert meeting an existing id: the owner's thread is updated, another owner's is
/// left alone (no row written).
pub(super) const THREAD_CONFLICT: &str = thread_conflict!();
/// `items` columns in the order the item inserts bind them.
pub(super) const ITEM_COLUMNS_IN: &str = item_columns!();
/// An item insert meeting an existing item: the owner's is replaced, another owner's is left
/// alone.
pub(super) const ITEM_CONFLICT: &str = item_conflict!();

/// Inserts or updates a thread (`$1`…`$9`); updating another owner's thread writes nothing.
const UPSERT_THREAD: &str = concat!(
    "INSERT INTO threads (",
    thread_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ",
    thread_conflict!()
);

/// Inserts or replaces an item (`$1`…`$7`: id, thread, owner, type, created, updated, JSON) of
/// the owner's thread: inserting through a SELECT on the owner's thread makes a foreign thread
/// a no-op, and the conflict clause leaves another owner's item alone.
const UPSERT_ITEM: &str = concat!(
    "INSERT INTO items (",
    item_columns!(),
    ") SELECT $1, t.id, t.user_id, $4, $5, $6, $7 FROM threads t \
     WHERE t.id = $2 AND t.user_id = $3 ",
    item_conflict!()
);

/// What a reply changed of the owner's thread (`$1`…`$7`: id, owner, title?, title,
/// metadata?, metadata, updated_at).
const UPDATE_THREAD_CHANGES: &str = "UPDATE threads SET \
     title = CASE WHEN $3 THEN $4 ELSE title END, \
     metadata = CASE WHEN $5 THEN $6 ELSE metadata END, updated_at = $7 \
     WHERE id = $1 AND user_id = $2";

/// Upserts an item into the thread row `t` of a data-modifying `WITH` (PostgreSQL), its values
/// bound from `$first` on (id, type, created, updated, JSON).
fn insert_item_from_t(first: usize) -> String {
    let [a, b, c, d, e] = [first, first + 1, first + 2, first + 3, first + 4];
    format!(
        "INSERT INTO items ({ITEM_COLUMNS_IN}) \
         SELECT ${a}, t.id, t.user_id, ${b}, ${c}, ${d}, ${e} FROM t {ITEM_CONFLICT}"
    )
}

/// A new thread and its first item in one statement.
static CREATE_WITH_ITEM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH t AS ({UPSERT_THREAD} RETURNING id, user_id) {}",
        insert_item_from_t(10)
    )
});

/// A reply's thread changes and its item in one statement.
static REPLY_WITH_CHANGES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH t AS ({UPDATE_THREAD_CHANGES} RETURNING id, user_id) {}",
        insert_item_from_t(8)
    )
});

const THREAD_COLUMNS: &str =
    "id, title, status, metadata, lesson_path, organization_id, created_at, updated_at";

impl<DB> SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    // The values bound (Encode) and the columns read (Decode).
    for<'q> &'q str: Type<DB> + Encode<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    String: Type<DB> + for<'r> Decode<'r, DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB>,
    bool: Type<DB> + for<'q> Encode<'q, DB>,
    DbTime: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    for<'q> Json<&'q Value>: Type<DB> + Encode<'q, DB>,
    Json<Value>: Type<DB> + for<'r> Decode<'r, DB>,
    for<'q> Json<&'q Map<String, Value>>: Type<DB> + Encode<'q, DB>,
    Json<Map<String, Value>>: Type<DB> + for<'r> Decode<'r, DB>,
    for<'q> Json<&'q ThreadItem>: Type<DB> + Encode<'q, DB>,
    Json<ThreadItem>: Type<DB> + for<'r> Decode<'r, DB>,
{
    pub(super) async fn load_thread(
        &self,
        owner: &str,
        id: &str,
    ) -> StoreResult<Option<ThreadRecord>> {
        let sql = format!("SELECT {THREAD_COLUMNS} FROM threads WHERE id = $1 AND user_id = $2");
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(owner)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::thread_from).transpose()
    }

    pub(super) async fn save_thread(&self, owner: &str, t: &ThreadRecord) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        Self::upsert_thread(&mut conn, owner, t).await
    }

    /// The owner's new thread and its first item in one transaction: both or neither.
    pub(super) async fn save_thread_with_item(
        &self,
        owner: &str,
        t: &ThreadRecord,
        item: &ThreadItem,
    ) -> StoreResult<()> {
        if DB::WRITABLE_CTE {
            // One statement: the item is inserted from the thread row just written.
            let query = Self::bind_thread(sqlx::query(CREATE_WITH_ITEM.as_str()), owner, t);
            let done = Self::bind_item(query, item).execute(&self.pool).await?;
            return written(DB::rows_affected(&done));
        }
        let mut tx = self.pool.begin().await?;
        Self::upsert_thread(&mut tx, owner, t).await?;
        Self::upsert_item(&mut tx, owner, item).await?;
        tx.commit().await?;
        Ok(())
    }

    fn bind_thread<'q>(
        query: Query<'q, DB, DB::Arguments<'q>>,
        owner: &'q str,
        t: &'q ThreadRecord,
    ) -> Query<'q, DB, DB::Arguments<'q>> {
        query
            .bind(t.id.as_str())
            .bind(owner)
            .bind(t.organization_id.as_deref())
            .bind(t.lesson_path.as_deref())
            .bind(t.title.as_deref())
            .bind(Json(&t.status))
            .bind(Json(&t.metadata))
            .bind(DbTime(t.created_at))
            .bind(DbTime(t.updated_at))
    }

    /// Binds an item's id, type, times and JSON, the values of [`insert_item_from_t`], after
    /// the binds already on `query`.
    fn bind_item<'q>(
        query: Query<'q, DB, DB::Arguments<'q>>,
        item: &'q ThreadItem,
    ) -> Query<'q, DB, DB::Arguments<'q>> {
        query
            .bind(item.id.as_str())
            .bind(item.kind.type_name())
            .bind(DbTime(item.created_at))
            .bind(DbTime(chrono::Utc::now()))
            .bind(Json(item))
    }

    async fn upsert_thread(
        conn: &mut DB::Connection,
        owner: &str,
        t: &ThreadRecord,
    ) -> StoreResult<()> {
        let done = Self::bind_thread(sqlx::query(UPSERT_THREAD), owner, t)
            .execute(conn)
            .await?;
        written(DB::rows_affected(&done))
    }

    pub(super) async fn load_threads(
        &self,
        owner: &str,
        page: &PageQuery,
    ) -> StoreResult<Page<ThreadRecord>> {
        let (cmp, dir) = order_sql(page.order);
        let sql = format!(
            "SELECT {THREAD_COLUMNS} FROM threads WHERE user_id = $1 \
             AND (CAST($2 AS TEXT) IS NULL OR (created_at, id) {cmp} \
             (SELECT created_at, id FROM threads WHERE id = $2 AND user_id = $1)) \
             ORDER BY created_at {dir}, id {dir} LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind(page.after.as_deref())
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let threads = rows
            .iter()
            .map(Self::thread_from)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paginate(threads, page.limit, |t| &t.id))
    }

    pub(super) async fn delete_thread(&self, owner: &str, id: &str) -> StoreResult<bool> {
        // Items go with the thread (ON DELETE CASCADE; SQLite has foreign keys on for every
        // connection), in the same statement.
        let done = sqlx::query("DELETE FROM threads WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    /// The end of a reply in one transaction: the thread's new title and/or metadata (what
    /// `changes` marks), then `items`. One commit for what used to be one per write.
    pub(super) async fn save_reply(
        &self,
        owner: &str,
        changes: Option<&ThreadChanges<'_>>,
        items: &[&ThreadItem],
    ) -> StoreResult<()> {
        match (changes, items) {
            (None, [item]) => return self.save_item(owner, item).await, // autocommit
            (Some(c), [item]) if DB::WRITABLE_CTE => {
                let query = Self::bind_changes(sqlx::query(REPLY_WITH_CHANGES.as_str()), owner, c);
                let done = Self::bind_item(query, item).execute(&self.pool).await?;
                return written(DB::rows_affected(&done));
            }
            _ => {}
        }
        if DB::WRITABLE_CTE {
            let mut tx = self.pool.begin().await?;
            Self::write_reply(&mut tx, owner, changes, items).await?;
            tx.commit().await?;
        } else {
            // SQLite: each statement on its own (a transaction would add two hops to the
            // connection's thread). The turn lock keeps them in order; a crash between
            // them can only leave a new title or state without its reply.
            let mut conn = self.pool.acquire().await?;
            Self::write_reply(&mut conn, owner, changes, items).await?;
        }
        Ok(())
    }

    async fn write_reply(
        conn: &mut DB::Connection,
        owner: &str,
        changes: Option<&ThreadChanges<'_>>,
        items: &[&ThreadItem],
    ) -> StoreResult<()> {
        if let Some(c) = changes {
            let done = Self::bind_changes(sqlx::query(UPDATE_THREAD_CHANGES), owner, c)
                .execute(&mut *conn)
                .await?;
            written(DB::rows_affected(&done))?;
        }
        for item in items {
            Self::upsert_item(&mut *conn, owner, item).await?;
        }
        Ok(())
    }

    fn bind_changes<'q>(
        query: Query<'q, DB, DB::Arguments<'q>>,
        owner: &'q str,
        c: &'q ThreadChanges<'q>,
    ) -> Query<'q, DB, DB::Arguments<'q>> {
        query
            .bind(c.thread.id.as_str())
            .bind(owner)
            .bind(c.title)
            .bind(c.thread.title.as_deref())
            .bind(c.metadata)
            .bind(Json(&c.thread.metadata))
            .bind(DbTime(c.thread.updated_at))
    }

    pub(super) async fn save_item(&self, owner: &str, item: &ThreadItem) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        Self::upsert_item(&mut conn, owner, item).await
    }

    async fn upsert_item(
        conn: &mut DB::Connection,
        owner: &str,
        item: &ThreadItem,
    ) -> StoreResult<()> {
        let done = sqlx::query(UPSERT_ITEM)
            .bind(item.id.as_str())
            .bind(item.thread_id.as_str())
            .bind(owner)
            .bind(item.kind.type_name())
            .bind(DbTime(item.created_at))
            .bind(DbTime(chrono::Utc::now()))
            .bind(Json(item))
            .execute(conn)
            .await?;
        written(DB::rows_affected(&done))
    }

    pub(super) async fn load_item(
        &self,
        owner: &str,
        thread_id: &str,
        item_id: &str,
    ) -> StoreResult<Option<ThreadItem>> {
        let row =
            sqlx::query("SELECT data FROM items WHERE thread_id = $1 AND id = $2 AND user_id = $3")
                .bind(thread_id)
                .bind(item_id)
                .bind(owner)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(Self::item_from).transpose()
    }

    pub(super) async fn load_items(
        &self,
        owner: &str,
        thread_id: &str,
        page: &PageQuery,
        hidden: Hidden,
        max_bytes: usize,
    ) -> StoreResult<Page<ThreadItem>> {
        let (cmp, dir) = order_sql(page.order);
        let filter = hidden_filter(hidden);
        let sql = format!(
            "SELECT data FROM items WHERE thread_id = $1 AND user_id = $2{filter} \
             AND (CAST($3 AS TEXT) IS NULL OR (created_at, id) {cmp} \
             (SELECT created_at, id FROM items WHERE thread_id = $1 AND id = $3 AND user_id = $2)) \
             ORDER BY created_at {dir}, id {dir} LIMIT $4"
        );
        // Rows are streamed, so a page of huge items is never held whole beyond `max_bytes`.
        let mut rows = sqlx::query(&sql)
            .bind(thread_id)
            .bind(owner)
            .bind(page.after.as_deref())
            .bind(i64::from(page.limit) + 1)
            .fetch(&self.pool);
        let mut items = Vec::new();
        let mut bytes = 0usize;
        while let Some(row) = rows.try_next().await? {
            let item = Self::item_from(&row)?;
            bytes = bytes.saturating_add(json_size(&item));
            if !items.is_empty() && bytes > max_bytes {
                let after = items.last().map(|i: &ThreadItem| i.id.clone());
                return Ok(Page {
                    data: items,
                    has_more: true,
                    after,
                });
            }
            items.push(item);
        }
        Ok(paginate(items, page.limit, |i| &i.id))
    }

    pub(super) async fn visible_item_ids(
        &self,
        owner: &str,
        thread_id: &str,
        ids: &[String],
    ) -> StoreResult<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (3..ids.len() + 3).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT id FROM items WHERE thread_id = $1 AND user_id = $2{} AND id IN ({})",
            hidden_filter(Hidden::Exclude),
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(thread_id).bind(owner);
        for id in ids {
            query = query.bind(id.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| row.try_get::<String, _>("id").map_err(Into::into))
            .collect()
    }

    pub(super) async fn delete_item(
        &self,
        owner: &str,
        thread_id: &str,
        item_id: &str,
    ) -> StoreResult<bool> {
        let done =
            sqlx::query("DELETE FROM items WHERE thread_id = $1 AND id = $2 AND user_id = $3")
                .bind(thread_id)
                .bind(item_id)
                .bind(owner)
                .execute(&self.pool)
                .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    pub(super) async fn delete_items_after(
        &self,
        owner: &str,
        item: &ThreadItem,
    ) -> StoreResult<Vec<ThreadItem>> {
        let rows = sqlx::query(
            "DELETE FROM items WHERE thread_id = $1 AND user_id = $2 \
             AND (created_at, id) > ($3, $4) RETURNING data, created_at, id",
        )
        .bind(item.thread_id.as_str())
        .bind(owner)
        .bind(DbTime(item.created_at))
        .bind(item.id.as_str())
        .fetch_all(&self.pool)
        .await?;
        // RETURNING promises no order: sort by the key, oldest first.
        let mut keyed = rows
            .iter()
            .map(|r| {
                let DbTime(at) = r.try_get("created_at")?;
                let id: String = r.try_get("id")?;
                Ok(((at, id), Self::item_from(r)?))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(keyed.into_iter().map(|(_, item)| item).collect())
    }

    pub(super) async fn save_attachment(
        &self,
        owner: &str,
        a: &AttachmentRecord,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "INSERT INTO attachments (id, user_id, thread_id, created_at, data) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET thread_id = excluded.thread_id, data = excluded.data \
             WHERE attachments.user_id = excluded.user_id",
        )
        .bind(a.id.as_str())
        .bind(owner)
        .bind(a.thread_id.as_deref())
        .bind(DbTime(a.created_at))
        .bind(Json(&a.data))
        .execute(&self.pool)
        .await?;
        written(DB::rows_affected(&done))
    }

    pub(super) async fn load_attachment(
        &self,
        owner: &str,
        id: &str,
    ) -> StoreResult<Option<AttachmentRecord>> {
        let row = sqlx::query(
            "SELECT id, thread_id, created_at, data FROM attachments \
             WHERE id = $1 AND user_id = $2",
        )
        .bind(id)
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let DbTime(created_at) = r.try_get("created_at")?;
            let Json(data) = r.try_get("data")?;
            Ok(AttachmentRecord {
                id: r.try_get("id")?,
                thread_id: r.try_get("thread_id")?,
                created_at,
                data,
            })
        })
        .transpose()
    }

    pub(super) async fn delete_attachment(&self, owner: &str, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM attachments WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    fn thread_from(row: &DB::Row) -> StoreResult<ThreadRecord> {
        let Json(status) = row.try_get("status")?;
        let Json(metadata) = row.try_get("metadata")?;
        let DbTime(created_at) = row.try_get("created_at")?;
        let DbTime(updated_at) = row.try_get("updated_at")?;
        Ok(ThreadRecord {
            id: row.try_get("id")?,
            title: row.try_get("title")?,
            status,
            metadata,
            lesson_path: row.try_get("lesson_path")?,
            organization_id: row.try_get("organization_id")?,
            created_at,
            updated_at,
        })
    }

    fn item_from(row: &DB::Row) -> StoreResult<ThreadItem> {
        let Json(item) = row.try_get("data")?;
        Ok(item)
    }
}

/// An upsert guarded by `user_id` (or a SELECT on the owner's thread) that wrote nothing hit
/// someone else's row, or no thread.
fn written(rows: u64) -> StoreResult<()> {
    match rows {
        0 => Err(ThreadStoreError::NoSuchThread),
        _ => Ok(()),
    }
}

fn hidden_filter(hidden: Hidden) -> String {
    match hidden {
        Hidden::Include => String::new(),
        Hidden::Exclude => format!(
            " AND item_type NOT IN ('{}', '{}')",
            HIDDEN_TYPES[0], HIDDEN_TYPES[1]
        ),
    }
}

/// The length of `item`'s JSON, counted without building it.
fn json_size(item: &ThreadItem) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Serialising a stored item cannot fail; a failure counts as nothing.
    let _ = serde_json::to_writer(&mut count, item);
    count.0
}

/// Turns `limit + 1` fetched rows into a page: `has_more` and the `after` cursor.
fn paginate<T>(mut rows: Vec<T>, limit: u32, id_of: impl Fn(&T) -> &str) -> Page<T> {
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let after = if has_more {
        rows.last().map(|r| id_of(r).to_owned())
    } else {
        None
    };
    Page {
        data: rows,
        has_more,
        after,
    }
}

/// SQL fragments for an order: the comparison that resumes after the cursor and the direction.
fn order_sql(order: Order) -> (&'static str, &'static str) {
    match order {
        Order::Asc => (">", "ASC"),
        Order::Desc => ("<", "DESC"),
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use serde_json::json;
    use sqlx::SqlitePool;
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

    use super::*;
    use crate::chatkit::ids::sortable;
    use crate::chatkit::types::{AssistantContent, ItemKind};

    async fn sqlite() -> SqlitePool {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("pool");
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .expect("migrate");
        pool
    }

    fn at(micros: i64) -> DateTime<chrono::Utc> {
        DateTime::from_timestamp_micros(1_800_000_000_000_000 + micros).expect("time")
    }

    /// Existing SQLite databases keep working: rows written the way the store always wrote
    /// them (`serde_json::to_string`, `ids::sortable`, `?N`) read back, and new rows carry the
    /// same bytes, as text.
    #[tokio::test]
    async fn sqlite_rows_keep_their_bytes_both_ways() {
        let pool = sqlite().await;
        let store = SqlStore::new(pool.clone());
        let mut old = ThreadRecord::new("thr_old".into(), Some("l".into()), None);
        old.metadata.insert("k".into(), json!([1, "two"]));
        old.created_at = at(1);
        old.updated_at = at(2);
        sqlx::query(
            "INSERT INTO threads (id, user_id, organization_id, lesson_path, title, status, \
             metadata, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .bind(&old.id)
        .bind("alice")
        .bind(&old.organization_id)
        .bind(&old.lesson_path)
        .bind(&old.title)
        .bind(serde_json::to_string(&old.status).expect("json"))
        .bind(serde_json::to_string(&old.metadata).expect("json"))
        .bind(sortable(&old.created_at))
        .bind(sortable(&old.updated_at))
        .execute(&pool)
        .await
        .expect("old insert");
        assert_eq!(
            store.load_thread("alice", "thr_old").await.expect("load"),
            Some(old.clone())
        );

        let mut new = old.clone();
        new.id = "thr_new".into();
        store.save_thread("alice", &new).await.expect("save");
        let item = ThreadItem {
            id: "msg_1".into(),
            thread_id: new.id.clone(),
            created_at: at(3),
            kind: ItemKind::AssistantMessage {
                content: vec![AssistantContent::text("hi")],
            },
        };
        store.save_item("alice", &item).await.expect("save item");
        let raw: (String, String, String, String, String) = sqlx::query_as(
            "SELECT status, metadata, created_at, updated_at, \
             typeof(status) || typeof(metadata) || typeof(created_at) || typeof(updated_at) \
             FROM threads WHERE id = 'thr_new'",
        )
        .fetch_one(&pool)
        .await
        .expect("raw thread");
        assert_eq!(
            raw,
            (
                serde_json::to_string(&new.status).expect("json"),
                serde_json::to_string(&new.metadata).expect("json"),
                sortable(&new.created_at),
                sortable(&new.updated_at),
                "texttexttexttext".to_owned(),
            )
        );
        let raw: (String, String, String, String) = sqlx::query_as(
            "SELECT data, created_at, updated_at, typeof(data) || typeof(created_at) \
             FROM items WHERE id = 'msg_1'",
        )
        .fetch_one(&pool)
        .await
        .expect("raw item");
        assert_eq!(raw.0, serde_json::to_string(&item).expect("json"));
        assert_eq!(raw.1, sortable(&item.created_at));
        assert_eq!(raw.2.len(), raw.1.len(), "updated_at is sortable text too");
        assert_eq!(raw.3, "texttext");
    }

    /// `$N` placeholders bind by number on SQLite, a repeated `$1` being one value.
    #[tokio::test]
    async fn sqlite_dollar_placeholders_bind_by_number() {
        let pool = sqlite().await;
        let row: (String, String, String, Option<String>) =
            sqlx::query_as("SELECT $2, $1, $2 || $1, CAST($3 AS TEXT)")
                .bind("a")
                .bind("b")
                .bind(None::<&str>)
                .fetch_one(&pool)
                .await
                .expect("select");
        assert_eq!(row, ("b".into(), "a".into(), "ba".into(), None));
    }
}

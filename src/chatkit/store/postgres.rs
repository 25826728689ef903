//! The PostgreSQL [`Store`]: schema `study_mode_chat` (on the search path), JSONB item data,
//! `TIMESTAMPTZ` (microsecond) ordering keys.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{PgPool, Row};

use super::{
    AttachmentRecord, Hidden, PageQuery, Store, StoreResult, ThreadRecord, ThreadStoreError,
    order_sql, paginate,
};
use crate::chatkit::types::{HIDDEN_TYPES, Page, ThreadItem};

/// Thread store on a PostgreSQL pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

const THREAD_COLUMNS: &str =
    "id, title, status, metadata, lesson_path, organization_id, created_at, updated_at";

fn thread_from(row: &sqlx::postgres::PgRow) -> StoreResult<ThreadRecord> {
    let status: Json<Value> = row.try_get("status")?;
    let metadata: Json<Map<String, Value>> = row.try_get("metadata")?;
    Ok(ThreadRecord {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        status: status.0,
        metadata: metadata.0,
        lesson_path: row.try_get("lesson_path")?,
        organization_id: row.try_get("organization_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn item_from(row: &sqlx::postgres::PgRow) -> StoreResult<ThreadItem> {
    let data: Json<Value> = row.try_get("data")?;
    Ok(serde_json::from_value(data.0)?)
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

impl Store for PgStore {
    async fn load_thread(&self, owner: &str, id: &str) -> StoreResult<Option<ThreadRecord>> {
        let sql = format!("SELECT {THREAD_COLUMNS} FROM threads WHERE id = $1 AND user_id = $2");
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(owner)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(thread_from).transpose()
    }

    async fn save_thread(&self, owner: &str, t: &ThreadRecord) -> StoreResult<()> {
        let done = sqlx::query(
            "INSERT INTO threads (id, user_id, organization_id, lesson_path, title, status, \
             metadata, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, status = excluded.status, \
             metadata = excluded.metadata, updated_at = excluded.updated_at \
             WHERE threads.user_id = excluded.user_id",
        )
        .bind(&t.id)
        .bind(owner)
        .bind(&t.organization_id)
        .bind(&t.lesson_path)
        .bind(&t.title)
        .bind(Json(&t.status))
        .bind(Json(&t.metadata))
        .bind(t.created_at)
        .bind(t.updated_at)
        .execute(&self.pool)
        .await?;
        match done.rows_affected() {
            0 => Err(ThreadStoreError::NoSuchThread),
            _ => Ok(()),
        }
    }

    async fn load_threads(&self, owner: &str, page: &PageQuery) -> StoreResult<Page<ThreadRecord>> {
        let (cmp, dir) = order_sql(page.order);
        let sql = format!(
            "SELECT {THREAD_COLUMNS} FROM threads WHERE user_id = $1 AND ($2::text IS NULL OR \
             (created_at, id) {cmp} (SELECT created_at, id FROM threads WHERE id = $2 AND user_id = $1)) \
             ORDER BY created_at {dir}, id {dir} LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind(&page.after)
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let threads = rows
            .iter()
            .map(thread_from)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paginate(threads, page.limit, |t| &t.id))
    }

    async fn delete_thread(&self, owner: &str, id: &str) -> StoreResult<bool> {
        // Items go with the thread (ON DELETE CASCADE), in the same statement.
        let done = sqlx::query("DELETE FROM threads WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn save_item(&self, owner: &str, item: &ThreadItem) -> StoreResult<()> {
        // Inserting through a SELECT on the owner's thread makes a foreign thread a no-op.
        let done = sqlx::query(
            "INSERT INTO items (id, thread_id, user_id, item_type, created_at, updated_at, data) \
             SELECT $1, t.id, t.user_id, $4, $5, now(), $6 FROM threads t \
             WHERE t.id = $2 AND t.user_id = $3 \
             ON CONFLICT (thread_id, id) DO UPDATE SET item_type = excluded.item_type, \
             data = excluded.data, updated_at = excluded.updated_at \
             WHERE items.user_id = excluded.user_id",
        )
        .bind(&item.id)
        .bind(&item.thread_id)
        .bind(owner)
        .bind(item.kind.type_name())
        .bind(item.created_at)
        .bind(Json(item))
        .execute(&self.pool)
        .await?;
        match done.rows_affected() {
            0 => Err(ThreadStoreError::NoSuchThread),
            _ => Ok(()),
        }
    }

    async fn load_item(
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
        row.as_ref().map(item_from).transpose()
    }

    async fn load_items(
        &self,
        owner: &str,
        thread_id: &str,
        page: &PageQuery,
        hidden: Hidden,
    ) -> StoreResult<Page<ThreadItem>> {
        let (cmp, dir) = order_sql(page.order);
        let filter = hidden_filter(hidden);
        let sql = format!(
            "SELECT data FROM items WHERE thread_id = $1 AND user_id = $2{filter} AND ($3::text IS NULL OR \
             (created_at, id) {cmp} (SELECT created_at, id FROM items WHERE thread_id = $1 AND id = $3 AND user_id = $2)) \
             ORDER BY created_at {dir}, id {dir} LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(thread_id)
            .bind(owner)
            .bind(&page.after)
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(item_from)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paginate(items, page.limit, |i| &i.id))
    }

    async fn delete_item(&self, owner: &str, thread_id: &str, item_id: &str) -> StoreResult<bool> {
        let done =
            sqlx::query("DELETE FROM items WHERE thread_id = $1 AND id = $2 AND user_id = $3")
                .bind(thread_id)
                .bind(item_id)
                .bind(owner)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_items_after(
        &self,
        owner: &str,
        item: &ThreadItem,
    ) -> StoreResult<Vec<ThreadItem>> {
        let rows = sqlx::query(
            "DELETE FROM items WHERE thread_id = $1 AND user_id = $2 AND (created_at, id) > ($3, $4) \
             RETURNING data, created_at, id",
        )
        .bind(&item.thread_id)
        .bind(owner)
        .bind(item.created_at)
        .bind(&item.id)
        .fetch_all(&self.pool)
        .await?;
        let mut keyed = rows
            .iter()
            .map(|r| {
                let at: DateTime<Utc> = r.try_get("created_at")?;
                let id: String = r.try_get("id")?;
                Ok(((at, id), item_from(r)?))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(keyed.into_iter().map(|(_, item)| item).collect())
    }

    async fn save_attachment(&self, owner: &str, a: &AttachmentRecord) -> StoreResult<()> {
        let done = sqlx::query(
            "INSERT INTO attachments (id, user_id, thread_id, created_at, data) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET thread_id = excluded.thread_id, data = excluded.data \
             WHERE attachments.user_id = excluded.user_id",
        )
        .bind(&a.id)
        .bind(owner)
        .bind(&a.thread_id)
        .bind(a.created_at)
        .bind(Json(&a.data))
        .execute(&self.pool)
        .await?;
        match done.rows_affected() {
            0 => Err(ThreadStoreError::NoSuchThread),
            _ => Ok(()),
        }
    }

    async fn load_attachment(
        &self,
        owner: &str,
        id: &str,
    ) -> StoreResult<Option<AttachmentRecord>> {
        let row = sqlx::query("SELECT id, thread_id, created_at, data FROM attachments WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(owner)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let data: Json<Value> = r.try_get("data")?;
            Ok(AttachmentRecord {
                id: r.try_get("id")?,
                thread_id: r.try_get("thread_id")?,
                created_at: r.try_get("created_at")?,
                data: data.0,
            })
        })
        .transpose()
    }

    async fn delete_attachment(&self, owner: &str, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM attachments WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

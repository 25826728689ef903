//! Reading the Python service's tables (`study_mode_chat.threads`, `.items`): which layout they
//! have, and one page of rows at a time in primary-key order (keyset pagination on the index
//! the old service created; the whole table is never held in memory).

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use super::parse::{LegacyItem, LegacyThread};
use crate::db::LEGACY_SCHEMA;

/// The legacy tables as found: which optional columns exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `current` (with `organization_id`, `UNIQUE (id, user_id)`, wrapped `data`) or `older`
    /// (`VARCHAR` columns, no `organization_id`, a foreign key, bare `data`).
    pub name: &'static str,
    pub threads_organization: bool,
    pub threads_lesson_path: bool,
    pub threads_title: bool,
    pub threads_updated_at: bool,
    pub items_updated_at: bool,
}

impl Layout {
    /// Whether a second run can read only what changed (both tables have `updated_at`).
    pub fn incremental(&self) -> bool {
        self.threads_updated_at && self.items_updated_at
    }
}

async fn columns(pool: &PgPool, table: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name = $2",
    )
    .bind(LEGACY_SCHEMA)
    .bind(table)
    .fetch_all(pool)
    .await
}

/// The legacy layout, or `None` when there are no legacy tables (none at all, or only tables
/// of this service, recognised by `status`).
pub async fn detect(pool: &PgPool) -> Result<Option<Layout>, sqlx::Error> {
    let threads = columns(pool, "threads").await?;
    let items = columns(pool, "items").await?;
    let has = |cols: &[String], c: &str| cols.iter().any(|x| x == c);
    let legacy = |cols: &[String]| has(cols, "data") && !has(cols, "status") && has(cols, "id");
    if !legacy(&threads) || !legacy(&items) {
        return Ok(None);
    }
    let organization = has(&threads, "organization_id");
    Ok(Some(Layout {
        name: if organization { "current" } else { "older" },
        threads_organization: organization,
        threads_lesson_path: has(&threads, "lesson_path"),
        threads_title: has(&threads, "title"),
        threads_updated_at: has(&threads, "updated_at"),
        items_updated_at: has(&items, "updated_at"),
    }))
}

/// `column` cast to `ty`, or NULL when the layout has no such column.
fn col(present: bool, column: &str, ty: &str) -> String {
    if present {
        format!("CAST({column} AS {ty})")
    } else {
        format!("CAST(NULL AS {ty})")
    }
}

/// The `WHERE` of a page (after the cursor, changed since the watermark) and the values to
/// bind after `$1` (the limit), in order: PostgreSQL refuses a value bound to no placeholder.
struct Filter<'a> {
    sql: String,
    after: Option<&'a str>,
    since: Option<DateTime<Utc>>,
}

impl<'a> Filter<'a> {
    fn new(after: Option<&'a str>, since: Option<DateTime<Utc>>, updated_at: bool) -> Self {
        let since = since.filter(|_| updated_at);
        let mut clauses = Vec::new();
        let mut n = 1;
        if after.is_some() {
            n += 1;
            clauses.push(format!("id > ${n}"));
        }
        if since.is_some() {
            n += 1;
            clauses.push(format!("updated_at >= ${n}"));
        }
        let sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        Self { sql, after, since }
    }

    fn bind<'q>(
        &self,
        mut query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>
    where
        'a: 'q,
    {
        if let Some(after) = self.after {
            query = query.bind(after);
        }
        if let Some(since) = self.since {
            query = query.bind(since);
        }
        query
    }
}

/// Up to `limit` thread rows with an id above `after`, changed at or after `since`.
pub async fn threads(
    pool: &PgPool,
    layout: &Layout,
    after: Option<&str>,
    since: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<LegacyThread>, sqlx::Error> {
    let filter = Filter::new(after, since, layout.threads_updated_at);
    let sql = format!(
        "SELECT CAST(id AS TEXT) AS id, CAST(user_id AS TEXT) AS user_id, {org} AS organization_id, \
         {lesson} AS lesson_path, {title} AS title, CAST(created_at AS TIMESTAMPTZ) AS created_at, \
         {updated} AS updated_at, CAST(data AS TEXT) AS data \
         FROM {LEGACY_SCHEMA}.threads {filter} ORDER BY id LIMIT $1",
        org = col(layout.threads_organization, "organization_id", "TEXT"),
        lesson = col(layout.threads_lesson_path, "lesson_path", "TEXT"),
        title = col(layout.threads_title, "title", "TEXT"),
        updated = col(layout.threads_updated_at, "updated_at", "TIMESTAMPTZ"),
        filter = filter.sql,
    );
    let rows = filter
        .bind(sqlx::query(&sql).bind(limit))
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(LegacyThread {
                id: r.try_get("id")?,
                user_id: r.try_get("user_id")?,
                organization_id: r.try_get("organization_id")?,
                lesson_path: r.try_get("lesson_path")?,
                title: r.try_get("title")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
                data: r.try_get("data")?,
            })
        })
        .collect()
}

/// Up to `limit` item rows with an id above `after`, changed at or after `since`.
pub async fn items(
    pool: &PgPool,
    layout: &Layout,
    after: Option<&str>,
    since: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<LegacyItem>, sqlx::Error> {
    let filter = Filter::new(after, since, layout.items_updated_at);
    let sql = format!(
        "SELECT CAST(id AS TEXT) AS id, CAST(thread_id AS TEXT) AS thread_id, \
         CAST(user_id AS TEXT) AS user_id, CAST(created_at AS TIMESTAMPTZ) AS created_at, \
         {updated} AS updated_at, CAST(data AS TEXT) AS data \
         FROM {LEGACY_SCHEMA}.items {filter} ORDER BY id LIMIT $1",
        updated = col(layout.items_updated_at, "updated_at", "TIMESTAMPTZ"),
        filter = filter.sql,
    );
    let rows = filter
        .bind(sqlx::query(&sql).bind(limit))
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(LegacyItem {
                id: r.try_get("id")?,
                thread_id: r.try_get("thread_id")?,
                user_id: r.try_get("user_id")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
                data: r.try_get("data")?,
            })
        })
        .collect()
}

/// How many rows of `table` a run will read (for the progress line).
pub async fn count(
    pool: &PgPool,
    table: &str,
    since: Option<DateTime<Utc>>,
    updated_at: bool,
) -> Result<i64, sqlx::Error> {
    aggregate(pool, "count(*)", table, since, updated_at).await
}

/// Distinct users among the threads a run reads.
pub async fn users(
    pool: &PgPool,
    since: Option<DateTime<Utc>>,
    updated_at: bool,
) -> Result<i64, sqlx::Error> {
    aggregate(
        pool,
        "count(DISTINCT user_id)",
        "threads",
        since,
        updated_at,
    )
    .await
}

async fn aggregate(
    pool: &PgPool,
    what: &str,
    table: &str,
    since: Option<DateTime<Utc>>,
    updated_at: bool,
) -> Result<i64, sqlx::Error> {
    let filter = Filter::new(None, since, updated_at);
    // `$1` is the limit in a page; here the first value bound is the watermark.
    let sql = format!(
        "SELECT {what} FROM {LEGACY_SCHEMA}.{table} {}",
        filter.sql.replace("$2", "$1")
    );
    let mut query = sqlx::query_scalar(&sql);
    if let Some(since) = filter.since {
        query = query.bind(since);
    }
    query.fetch_one(pool).await
}

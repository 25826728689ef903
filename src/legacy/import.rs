//! One run of `import-legacy`: threads first, then items, each in pages of `batch` rows read in
//! id order, each page written in one transaction together with the run's cursor — so a crash
//! loses at most the page in flight and the next run resumes after the last committed one.
//!
//! Writes are idempotent upserts keyed by id that change a row only when its content differs
//! (`IS DISTINCT FROM`), so re-reading a row is harmless and a run over an unchanged store
//! changes nothing. A second run reads only rows whose `updated_at` is at or after the previous
//! run's start minus [`MARGIN`] (the old service sets `updated_at = NOW()` on every write; the
//! margin covers its transactions still open when our run started). `--dry-run` runs the same
//! pages and the same comparisons as reads, and writes nothing at all.

use std::collections::HashSet;
use std::io::Write;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::parse::{self, NewItem, NewThread};
use super::source::{self, Layout};
use super::{LegacyError, Skipped};
use crate::db::{LEGACY_SCHEMA, SCHEMA};

/// How far back of the previous run's start a run reads again.
pub const MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Per table: what a run did with the rows it read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub read: u64,
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub skipped: u64,
}

/// The running totals of a run (kept in `legacy_imports.counts`, so a resumed run goes on
/// counting).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub threads: Counts,
    pub items: Counts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Threads,
    Items,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Threads => "threads",
            Phase::Items => "items",
        }
    }
}

/// A run in progress.
pub(super) struct Run<'a> {
    pool: &'a PgPool,
    layout: &'a Layout,
    dry_run: bool,
    /// Our tables exist (a dry run on a fresh database has none: everything is new).
    ours: bool,
    batch: i64,
    pub id: Option<i64>,
    pub since: Option<DateTime<Utc>>,
    pub resumed: bool,
    phase: Phase,
    cursor: Option<String>,
    pub totals: Totals,
    /// Threads skipped by this run (a dry run must skip their items too).
    skipped_threads: HashSet<String>,
    /// The first skipped rows, for the report (all of them are on stderr and, unless dry, in
    /// `legacy_import_skipped`).
    pub listed: Vec<Skipped>,
    progress: bool,
}

/// Most skipped rows listed in the final report.
const LISTED: usize = 50;

impl<'a> Run<'a> {
    /// Resumes the unfinished run, or starts one reading what changed since the last finished
    /// run (everything when there was none, or when the layout has no `updated_at`).
    pub async fn begin(
        pool: &'a PgPool,
        layout: &'a Layout,
        dry_run: bool,
        batch: usize,
        progress: bool,
    ) -> Result<Run<'a>, LegacyError> {
        let ours: bool = sqlx::query_scalar(&format!(
            "SELECT to_regclass('{SCHEMA}.legacy_imports') IS NOT NULL \
             AND to_regclass('{SCHEMA}.threads') IS NOT NULL"
        ))
        .fetch_one(pool)
        .await?;
        let mut run = Run {
            pool,
            layout,
            dry_run,
            ours,
            batch: batch.max(1) as i64,
            id: None,
            since: None,
            resumed: false,
            phase: Phase::Threads,
            cursor: None,
            totals: Totals::default(),
            skipped_threads: HashSet::new(),
            listed: Vec::new(),
            progress,
        };
        if !ours {
            return Ok(run);
        }
        if !dry_run {
            let unfinished = sqlx::query(&format!(
                "SELECT id, since, phase, cursor_id, counts FROM {SCHEMA}.legacy_imports \
                 WHERE finished_at IS NULL ORDER BY id DESC LIMIT 1"
            ))
            .fetch_optional(pool)
            .await?;
            if let Some(row) = unfinished {
                let Json(totals): Json<Totals> = row.try_get("counts")?;
                let phase: String = row.try_get("phase")?;
                run.id = Some(row.try_get("id")?);
                run.since = row.try_get("since")?;
                run.phase = if phase == "items" {
                    Phase::Items
                } else {
                    Phase::Threads
                };
                run.cursor = row.try_get("cursor_id")?;
                run.totals = totals;
                run.resumed = true;
                return Ok(run);
            }
        }
        let last: Option<DateTime<Utc>> = sqlx::query_scalar(&format!(
            "SELECT max(started_at) FROM {SCHEMA}.legacy_imports WHERE finished_at IS NOT NULL"
        ))
        .fetch_one(pool)
        .await?;
        run.since = last.map(|t| t - MARGIN);
        if !dry_run {
            run.id = Some(
                sqlx::query_scalar(&format!(
                    "INSERT INTO {SCHEMA}.legacy_imports (layout, started_at, since) \
                     VALUES ($1, clock_timestamp(), $2) RETURNING id"
                ))
                .bind(layout.name)
                .bind(run.since)
                .fetch_one(pool)
                .await?,
            );
        }
        Ok(run)
    }

    /// Reads and writes every page of both tables, then marks the run finished.
    pub async fn execute(&mut self) -> Result<(), LegacyError> {
        if self.phase == Phase::Threads {
            let total = source::count(
                self.pool,
                "threads",
                self.since,
                self.layout.threads_updated_at,
            )
            .await?;
            loop {
                let rows = source::threads(
                    self.pool,
                    self.layout,
                    self.cursor.as_deref(),
                    self.since,
                    self.batch,
                )
                .await?;
                let Some(last) = rows.last().map(|r| r.id.clone()) else {
                    break;
                };
                self.threads(rows, &last).await?;
                self.show(total);
            }
            self.phase = Phase::Items;
            self.cursor = None;
            self.end_progress();
        }
        let total =
            source::count(self.pool, "items", self.since, self.layout.items_updated_at).await?;
        loop {
            let rows = source::items(
                self.pool,
                self.layout,
                self.cursor.as_deref(),
                self.since,
                self.batch,
            )
            .await?;
            let Some(last) = rows.last().map(|r| r.id.clone()) else {
                break;
            };
            self.items(rows, &last).await?;
            self.show(total);
        }
        self.end_progress();
        if let Some(id) = self.id {
            sqlx::query(&format!(
                "UPDATE {SCHEMA}.legacy_imports SET phase = 'done', cursor_id = NULL, \
                 counts = $2, finished_at = clock_timestamp() WHERE id = $1"
            ))
            .bind(id)
            .bind(Json(self.totals))
            .execute(self.pool)
            .await?;
        }
        Ok(())
    }

    fn skip(&mut self, table: &'static str, id: String, reason: String) -> Skipped {
        eprintln!("\nimport-legacy: skipped {table} {id}: {reason}");
        let skipped = Skipped { table, id, reason };
        if self.listed.len() < LISTED {
            self.listed.push(skipped.clone());
        }
        skipped
    }

    async fn threads(
        &mut self,
        rows: Vec<parse::LegacyThread>,
        last: &str,
    ) -> Result<(), LegacyError> {
        let read = rows.len() as u64;
        let mut skipped = Vec::new();
        let mut ok: Vec<NewThread> = Vec::with_capacity(rows.len());
        for row in rows {
            let id = row.id.clone();
            match parse::thread(row) {
                Ok(t) => ok.push(t),
                Err(reason) => skipped.push(self.skip("threads", id, reason)),
            }
        }
        let mut tx = self.pool.begin().await?;
        if self.ours && !ok.is_empty() {
            let ids: Vec<&str> = ok.iter().map(|t| t.id.as_str()).collect();
            let users: Vec<&str> = ok.iter().map(|t| t.user_id.as_str()).collect();
            let taken: HashSet<String> = sqlx::query_scalar(&format!(
                "SELECT t.id FROM {SCHEMA}.threads t \
                 JOIN UNNEST($1::text[], $2::text[]) AS u(id, user_id) ON t.id = u.id \
                 WHERE t.user_id <> u.user_id"
            ))
            .bind(&ids)
            .bind(&users)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
            let (conflicting, rest): (Vec<_>, Vec<_>) =
                ok.into_iter().partition(|t| taken.contains(&t.id));
            ok = rest;
            for t in conflicting {
                let reason = "the id belongs to another user's thread in this service's store";
                skipped.push(self.skip("threads", t.id, reason.into()));
            }
        }
        let (new, changed) = self.write_threads(&mut tx, &ok).await?;
        self.skipped_threads
            .extend(skipped.iter().map(|s| s.id.clone()));
        let counts = &mut self.totals.threads;
        counts.read += read;
        counts.new += new;
        counts.changed += changed;
        counts.unchanged += ok.len() as u64 - new - changed;
        counts.skipped += skipped.len() as u64;
        self.finish_page(tx, "threads", &skipped, last).await
    }

    /// New and changed rows among `rows` (written, unless this is a dry run).
    async fn write_threads(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        rows: &[NewThread],
    ) -> Result<(u64, u64), LegacyError> {
        if rows.is_empty() {
            return Ok((0, 0));
        }
        if !self.ours {
            return Ok((rows.len() as u64, 0));
        }
        let values = "UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::jsonb[], $7::jsonb[], $8::timestamptz[], $9::timestamptz[]) \
             AS u(id, user_id, organization_id, lesson_path, title, status, metadata, \
             created_at, updated_at)";
        let changed = |new: &str| {
            format!(
                "(t.organization_id, t.lesson_path, t.title, t.status, t.metadata, t.created_at) \
                 IS DISTINCT FROM ({new}.organization_id, {new}.lesson_path, {new}.title, \
                 {new}.status, {new}.metadata, {new}.created_at)"
            )
        };
        let sql = if self.dry_run {
            format!(
                "SELECT t.id IS NULL AS inserted FROM {values} \
                 LEFT JOIN {SCHEMA}.threads t ON t.id = u.id \
                 WHERE t.id IS NULL OR {}",
                changed("u")
            )
        } else {
            format!(
                "INSERT INTO {SCHEMA}.threads AS t (id, user_id, organization_id, lesson_path, \
                 title, status, metadata, created_at, updated_at) SELECT * FROM {values} \
                 ON CONFLICT (id) DO UPDATE SET organization_id = excluded.organization_id, \
                 lesson_path = excluded.lesson_path, title = excluded.title, \
                 status = excluded.status, metadata = excluded.metadata, \
                 created_at = excluded.created_at, updated_at = excluded.updated_at \
                 WHERE t.user_id = excluded.user_id AND {} \
                 RETURNING (xmax = 0) AS inserted",
                changed("excluded")
            )
        };
        let inserted: Vec<bool> = sqlx::query_scalar(&sql)
            .bind(rows.iter().map(|t| t.id.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|t| t.user_id.as_str()).collect::<Vec<_>>())
            .bind(
                rows.iter()
                    .map(|t| t.organization_id.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(
                rows.iter()
                    .map(|t| t.lesson_path.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(rows.iter().map(|t| t.title.as_deref()).collect::<Vec<_>>())
            .bind(
                rows.iter()
                    .map(|t| t.status.clone())
                    .collect::<Vec<Value>>(),
            )
            .bind(
                rows.iter()
                    .map(|t| Value::Object(t.metadata.clone()))
                    .collect::<Vec<Value>>(),
            )
            .bind(rows.iter().map(|t| t.created_at).collect::<Vec<_>>())
            .bind(rows.iter().map(|t| t.updated_at).collect::<Vec<_>>())
            .fetch_all(&mut **tx)
            .await?;
        let new = inserted.iter().filter(|i| **i).count() as u64;
        Ok((new, inserted.len() as u64 - new))
    }

    async fn items(&mut self, rows: Vec<parse::LegacyItem>, last: &str) -> Result<(), LegacyError> {
        let read = rows.len() as u64;
        let mut skipped = Vec::new();
        let mut ok: Vec<NewItem> = Vec::with_capacity(rows.len());
        for row in rows {
            let id = row.id.clone();
            match parse::item(row) {
                Ok(i) => ok.push(i),
                Err(reason) => skipped.push(self.skip("items", id, reason)),
            }
        }
        let mut tx = self.pool.begin().await?;
        if !ok.is_empty() {
            let missing = self.missing_threads(&mut tx, &ok).await?;
            let (orphans, rest): (Vec<_>, Vec<_>) = ok.into_iter().partition(|i| {
                missing.contains(&i.item.id) || self.skipped_threads.contains(&i.item.thread_id)
            });
            ok = rest;
            for i in orphans {
                let reason = format!(
                    "its thread {} is not in the store for user {} (missing from the legacy \
                     store, skipped, or another user's)",
                    i.item.thread_id, i.user_id
                );
                skipped.push(self.skip("items", i.item.id, reason));
            }
        }
        let (new, changed) = self.write_items(&mut tx, &ok).await?;
        let counts = &mut self.totals.items;
        counts.read += read;
        counts.new += new;
        counts.changed += changed;
        counts.unchanged += ok.len() as u64 - new - changed;
        counts.skipped += skipped.len() as u64;
        self.finish_page(tx, "items", &skipped, last).await
    }

    /// Ids of the items in `rows` whose thread is not (or, in a dry run, would not be) ours
    /// for the item's user.
    async fn missing_threads(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        rows: &[NewItem],
    ) -> Result<HashSet<String>, LegacyError> {
        let ours = format!(
            "EXISTS (SELECT 1 FROM {SCHEMA}.threads t \
             WHERE t.id = u.thread_id AND t.user_id = u.user_id)"
        );
        // A dry run wrote no thread: a legacy thread of the same user will be there.
        let legacy = format!(
            "EXISTS (SELECT 1 FROM {LEGACY_SCHEMA}.threads l \
             WHERE l.id = u.thread_id AND l.user_id = u.user_id)"
        );
        let present = match (self.dry_run, self.ours) {
            (false, _) => ours,
            (true, true) => format!("({ours} OR {legacy})"),
            (true, false) => legacy,
        };
        let sql = format!(
            "SELECT u.id FROM UNNEST($1::text[], $2::text[], $3::text[]) \
             AS u(id, thread_id, user_id) WHERE NOT {present}"
        );
        Ok(sqlx::query_scalar(&sql)
            .bind(rows.iter().map(|i| i.item.id.as_str()).collect::<Vec<_>>())
            .bind(
                rows.iter()
                    .map(|i| i.item.thread_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(rows.iter().map(|i| i.user_id.as_str()).collect::<Vec<_>>())
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect())
    }

    async fn write_items(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        rows: &[NewItem],
    ) -> Result<(u64, u64), LegacyError> {
        if rows.is_empty() {
            return Ok((0, 0));
        }
        if !self.ours {
            return Ok((rows.len() as u64, 0));
        }
        let values = "UNNEST($1::text[], $2::text[], $3::text[], $4::text[], \
             $5::timestamptz[], $6::timestamptz[], $7::jsonb[]) \
             AS u(id, thread_id, user_id, item_type, created_at, updated_at, data)";
        let changed = |new: &str| {
            format!(
                "(i.item_type, i.created_at, i.data) IS DISTINCT FROM \
                 ({new}.item_type, {new}.created_at, {new}.data)"
            )
        };
        let sql = if self.dry_run {
            format!(
                "SELECT i.id IS NULL AS inserted FROM {values} \
                 LEFT JOIN {SCHEMA}.items i ON i.thread_id = u.thread_id AND i.id = u.id \
                 WHERE i.id IS NULL OR {}",
                changed("u")
            )
        } else {
            format!(
                "INSERT INTO {SCHEMA}.items AS i (id, thread_id, user_id, item_type, created_at, \
                 updated_at, data) SELECT * FROM {values} \
                 ON CONFLICT (thread_id, id) DO UPDATE SET item_type = excluded.item_type, \
                 created_at = excluded.created_at, updated_at = excluded.updated_at, \
                 data = excluded.data \
                 WHERE i.user_id = excluded.user_id AND {} \
                 RETURNING (xmax = 0) AS inserted",
                changed("excluded")
            )
        };
        let data = rows
            .iter()
            .map(|i| serde_json::to_value(&i.item))
            .collect::<Result<Vec<Value>, _>>()
            .map_err(|e| LegacyError::Encode(e.to_string()))?;
        let inserted: Vec<bool> = sqlx::query_scalar(&sql)
            .bind(rows.iter().map(|i| i.item.id.as_str()).collect::<Vec<_>>())
            .bind(
                rows.iter()
                    .map(|i| i.item.thread_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(rows.iter().map(|i| i.user_id.as_str()).collect::<Vec<_>>())
            .bind(
                rows.iter()
                    .map(|i| i.item.kind.type_name())
                    .collect::<Vec<_>>(),
            )
            .bind(rows.iter().map(|i| i.item.created_at).collect::<Vec<_>>())
            .bind(rows.iter().map(|i| i.updated_at).collect::<Vec<_>>())
            .bind(data)
            .fetch_all(&mut **tx)
            .await?;
        let new = inserted.iter().filter(|i| **i).count() as u64;
        Ok((new, inserted.len() as u64 - new))
    }

    /// Records the page's skipped rows and the cursor, and commits (a dry run rolls back).
    async fn finish_page(
        &mut self,
        mut tx: Transaction<'_, Postgres>,
        table: &'static str,
        skipped: &[Skipped],
        last: &str,
    ) -> Result<(), LegacyError> {
        self.cursor = Some(last.to_owned());
        let Some(id) = self.id.filter(|_| !self.dry_run) else {
            tx.rollback().await?;
            return Ok(());
        };
        if !skipped.is_empty() {
            sqlx::query(&format!(
                "INSERT INTO {SCHEMA}.legacy_import_skipped (import_id, source_table, id, reason) \
                 SELECT $1, $2, * FROM UNNEST($3::text[], $4::text[]) \
                 ON CONFLICT (import_id, source_table, id) DO UPDATE SET reason = excluded.reason"
            ))
            .bind(id)
            .bind(table)
            .bind(skipped.iter().map(|s| s.id.as_str()).collect::<Vec<_>>())
            .bind(
                skipped
                    .iter()
                    .map(|s| s.reason.as_str())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(&format!(
            "UPDATE {SCHEMA}.legacy_imports SET phase = $2, cursor_id = $3, counts = $4 \
             WHERE id = $1"
        ))
        .bind(id)
        .bind(self.phase.name())
        .bind(last)
        .bind(Json(self.totals))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The progress line on stderr (one `\r`-rewritten line per phase, as `warm-cache`).
    fn show(&self, total: i64) {
        if !self.progress {
            return;
        }
        let counts = match self.phase {
            Phase::Threads => self.totals.threads,
            Phase::Items => self.totals.items,
        };
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\rimport-legacy: {} {}/{} read, {} skipped",
            self.phase.name(),
            counts.read,
            total.max(counts.read as i64),
            counts.skipped
        );
        let _ = err.flush();
    }

    fn end_progress(&self) {
        if self.progress {
            eprintln!();
        }
    }
}

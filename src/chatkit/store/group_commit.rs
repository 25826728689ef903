//! Group commit: the turn path's writes of many concurrent turns in one commit.
//!
//! Owns: [`GroupCommit`], one writer task per store. A turn's writes (a new thread with its first
//! message, a user message, a reply with the thread's changes) become a [`Write`] sent to the
//! writer; the writer takes every write that queued up while its batches ran (up to
//! `DATABASE_WRITE_BATCH`), commits them together and answers each write after that commit. So
//! the ack of every item still follows its commit, while the database commits once per batch
//! instead of once per turn. How a batch is written depends on the [`Target`]:
//!
//! - PostgreSQL: one data-modifying statement (`UNNEST` of arrays: thread inserts, thread
//!   updates, item upserts; [`BATCH_SQL`]), at most [`IN_FLIGHT`] at once: it parses, plans
//!   and commits once per batch.
//! - SQLite: one transaction of three multi-row statements (new threads, thread changes,
//!   items; `RETURNING` what each wrote), one batch at a time. SQLite has a single writer:
//!   turns writing from several pool connections only waited on each other's lock, and every
//!   statement is a hop to the connection's thread (a new thread also paid its own `BEGIN` and
//!   `COMMIT`); here they queue in order and a batch pays one checkout and five hops whatever
//!   its size.
//!
//! Each write's answer is its own: a write whose thread is gone or someone else's gets
//! `NoSuchThread`, as the one-write statements of `sql.rs` do, read from the rows the batch's
//! statements return. A batch never holds two writes of one thread (a data-modifying `WITH`
//! must not touch a row twice); a later write of the same thread waits for the next batch. When a batch fails (a row the database refuses, a thread
//! deleted under the batch), every write of it is retried alone, concurrently, so one bad write
//! fails alone.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use prometheus_client::metrics::histogram::Histogram;
use sqlx::{PgPool, SqlitePool};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::dialect::DbTime;
use super::sql::{ITEM_COLUMNS_IN, ITEM_CONFLICT, THREAD_COLUMNS_IN, THREAD_CONFLICT};
use super::{StoreResult, ThreadChanges, ThreadRecord, ThreadStoreError};
use crate::chatkit::types::ThreadItem;

/// Writes queued for the writer before a sender waits (backpressure, not loss).
const QUEUE: usize = 4096;

/// Batch statements running at once on PostgreSQL (each on its own pooled connection). More
/// than one: a commit waits for the WAL to reach the disk, and PostgreSQL flushes concurrent
/// commits together, so a slow disk does not cap the turns per second at one batch per flush.
const IN_FLIGHT: usize = 4;

/// The database a writer commits to, and how.
#[derive(Debug, Clone)]
pub(super) enum Target {
    /// One [`BATCH_SQL`] statement per batch, up to [`IN_FLIGHT`] at once.
    Postgres(PgPool),
    /// One transaction of multi-row statements per batch, one batch at a time (SQLite's one
    /// writer).
    Sqlite(SqlitePool),
}

impl Target {
    fn in_flight(&self) -> usize {
        match self {
            Target::Postgres(_) => IN_FLIGHT,
            Target::Sqlite(_) => 1,
        }
    }

    /// Writes `writes` (no two touching one thread) in one commit and reads each one's answer;
    /// `Err` when the database refused the batch (nothing of it is written). `sql` is the text
    /// of [`BATCH_SQL`] to run on PostgreSQL.
    async fn execute(
        &self,
        sql: &str,
        writes: &[&Write],
    ) -> Result<Vec<StoreResult<()>>, sqlx::Error> {
        match self {
            Target::Postgres(pool) => execute_postgres(pool, sql, writes).await,
            Target::Sqlite(pool) => execute_sqlite(pool, writes).await,
        }
    }
}

/// The turn path's writes of one store, committed in batches by one task.
#[derive(Debug, Clone)]
pub(super) struct GroupCommit {
    tx: mpsc::Sender<Job>,
}

/// One turn's write, owned so it can wait in the queue.
#[derive(Debug)]
pub(super) struct Write {
    owner: String,
    /// A new thread (upserted, as `save_thread_with_item`), its items then require it.
    create: Option<NewThread>,
    /// What a reply changed of its thread; its items then require that update.
    changes: Option<Changes>,
    items: Vec<ItemRow>,
}

#[derive(Debug)]
struct NewThread {
    id: String,
    organization_id: Option<String>,
    lesson_path: Option<String>,
    title: Option<String>,
    status: String,
    metadata: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug)]
struct Changes {
    thread_id: String,
    set_title: bool,
    title: Option<String>,
    set_metadata: bool,
    metadata: String,
    updated_at: DateTime<Utc>,
}

#[derive(Debug)]
struct ItemRow {
    id: String,
    thread_id: String,
    item_type: &'static str,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    data: String,
}

impl ItemRow {
    fn new(item: &ThreadItem) -> Self {
        Self {
            id: item.id.clone(),
            thread_id: item.thread_id.clone(),
            item_type: item.kind.type_name(),
            created_at: item.created_at,
            updated_at: Utc::now(),
            data: json(item),
        }
    }
}

/// `items` without earlier copies of the same item (the last copy wins, as when the upserts
/// ran one after another): one statement may write an item only once.
fn last_copies<'a>(items: &'a [&'a ThreadItem]) -> impl Iterator<Item = &'a ThreadItem> {
    items.iter().enumerate().filter_map(move |(n, item)| {
        let later = items[n + 1..]
            .iter()
            .any(|other| other.id == item.id && other.thread_id == item.thread_id);
        (!later).then_some(*item)
    })
}

/// The JSON of a value the store writes (serialising the protocol's types cannot fail).
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

impl Write {
    /// A new thread with its first item.
    pub(super) fn create(owner: &str, t: &ThreadRecord, item: &ThreadItem) -> Self {
        Self {
            owner: owner.to_owned(),
            create: Some(NewThread {
                id: t.id.clone(),
                organization_id: t.organization_id.clone(),
                lesson_path: t.lesson_path.clone(),
                title: t.title.clone(),
                status: json(&t.status),
                metadata: json(&t.metadata),
                created_at: t.created_at,
                updated_at: t.updated_at,
            }),
            changes: None,
            items: vec![ItemRow::new(item)],
        }
    }

    /// A reply's thread changes (if any) and items; with neither it writes nothing.
    pub(super) fn reply(
        owner: &str,
        changes: Option<&ThreadChanges<'_>>,
        items: &[&ThreadItem],
    ) -> Self {
        Self {
            owner: owner.to_owned(),
            create: None,
            changes: changes.map(|c| Changes {
                thread_id: c.thread.id.clone(),
                set_title: c.title,
                title: c.thread.title.clone(),
                set_metadata: c.metadata,
                metadata: json(&c.thread.metadata),
                updated_at: c.thread.updated_at,
            }),
            items: last_copies(items).map(ItemRow::new).collect(),
        }
    }

    /// The threads this write touches (a batch holds each at most once).
    /// The thread this write creates or changes, if any: its items must be on it.
    fn own_thread(&self) -> Option<&str> {
        match (&self.create, &self.changes) {
            (Some(t), _) => Some(&t.id),
            (None, Some(c)) => Some(&c.thread_id),
            (None, None) => None,
        }
    }

    fn threads(&self) -> impl Iterator<Item = &str> {
        let create = self.create.as_ref().map(|t| t.id.as_str());
        let changes = self.changes.as_ref().map(|c| c.thread_id.as_str());
        let items = self.items.iter().map(|i| i.thread_id.as_str());
        create.into_iter().chain(changes).chain(items)
    }
}

#[derive(Debug)]
struct Job {
    write: Write,
    done: oneshot::Sender<StoreResult<()>>,
}

impl GroupCommit {
    /// Starts the writer on `target`, taking at most `max_batch` writes per commit. The task
    /// ends when the last clone of the store is dropped, after answering what it holds.
    /// `sizes` records the writes of each batch.
    pub(super) fn start(target: Target, max_batch: usize, sizes: Histogram) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(target, rx, max_batch.max(1), sizes));
        Self { tx }
    }

    /// Commits `write` with whatever else is waiting; returns after the commit.
    pub(super) async fn write(&self, write: Write) -> StoreResult<()> {
        let (done, answer) = oneshot::channel();
        self.tx
            .send(Job { write, done })
            .await
            .map_err(|_| ThreadStoreError::Database(sqlx::Error::PoolClosed))?;
        answer
            .await
            .unwrap_or(Err(ThreadStoreError::Database(sqlx::Error::PoolClosed)))
    }
}

async fn run(target: Target, mut rx: mpsc::Receiver<Job>, max_batch: usize, sizes: Histogram) {
    let in_flight = Arc::new(Semaphore::new(target.in_flight()));
    let mut statement = Statement::new();
    let mut carried: Option<Job> = None;
    loop {
        // A free slot first: while every slot waits on its commit, writes queue up and the
        // next batch grows.
        let Ok(slot) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let first = match carried.take() {
            Some(job) => job,
            None => match rx.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let mut batch = vec![first];
        let mut threads: HashSet<String> = HashSet::new();
        threads.extend(batch[0].write.threads().map(str::to_owned));
        while batch.len() < max_batch {
            let Ok(job) = rx.try_recv() else { break };
            if job.write.threads().any(|t| threads.contains(t)) {
                carried = Some(job);
                break;
            }
            threads.extend(job.write.threads().map(str::to_owned));
            batch.push(job);
        }
        sizes.observe(batch.len() as f64);
        let (target, sql) = (target.clone(), statement.next());
        tokio::spawn(async move {
            commit(&target, &sql, batch).await;
            drop(slot);
        });
    }
}

/// Batches before the batch statement is first renamed (see [`Statement`]).
const REPLAN_FROM: u64 = 64;

/// The text of [`BATCH_SQL`] the next batch runs on PostgreSQL. sqlx prepares a statement once
/// per connection, and PostgreSQL keeps the generic plan it makes for it, which fits the tables
/// as they were then: on a new database, with `threads` nearly empty, that plan joins the
/// updates by hashing and checks the items' threads with a hashed subplan, each a sequential
/// scan of `threads`, and it stays while the table grows unless an `ANALYZE` invalidates it
/// (with autovacuum off: 6,349 scans reading 68 million rows in 33,000 turns, PostgreSQL's CPU
/// per turn twice what it is with fitting plans; docs/BENCHMARKS.md, "The batch statement's
/// plan, group commit on SQLite, time-ordered ids", part 1). Planning every batch (an unnamed statement) fits the plan but doubled the parse and
/// plan work to ≈ 40 % of PostgreSQL's CPU. So the text gets a new comment, and every
/// connection prepares and plans it again, each time the writer's count of batches doubles
/// from [`REPLAN_FROM`] on: the plan in use was made when the tables held at least half of
/// what the writer has written, at the cost of one more prepared statement per connection each
/// doubling (about 30 in a process's life; sqlx closes the oldest once its cache of 100 a
/// connection is full).
#[derive(Debug)]
struct Statement {
    batches: u64,
    text: Arc<str>,
}

impl Statement {
    fn new() -> Self {
        Self {
            batches: 0,
            text: Arc::from(BATCH_SQL),
        }
    }

    /// Counts one batch and returns the text it runs.
    fn next(&mut self) -> Arc<str> {
        self.batches += 1;
        if self.batches >= REPLAN_FROM && self.batches.is_power_of_two() {
            self.text = Arc::from(format!("{BATCH_SQL} /* plan {} */", self.batches));
        }
        self.text.clone()
    }
}

/// Writes `batch` in one commit (`sql`: the batch statement's text on PostgreSQL) and answers
/// every job; on failure each job alone.
async fn commit(target: &Target, sql: &str, batch: Vec<Job>) {
    let writes: Vec<&Write> = batch.iter().map(|j| &j.write).collect();
    let error = match target.execute(sql, &writes).await {
        Ok(results) => {
            for (job, result) in batch.into_iter().zip(results) {
                let _ = job.done.send(result);
            }
            return;
        }
        Err(e) => e,
    };
    let mut batch = batch;
    if batch.len() == 1 {
        if let Some(job) = batch.pop() {
            let _ = job.done.send(Err(error.into()));
        }
        return;
    }
    tracing::debug!(error = %error, writes = batch.len(), "group commit failed; writing alone");
    join_all(batch.into_iter().map(|job| async move {
        let result = match target.execute(sql, &[&job.write]).await {
            Ok(mut results) => results.pop().unwrap_or(Err(ThreadStoreError::NoSuchThread)),
            Err(e) => Err(e.into()),
        };
        let _ = job.done.send(result);
    }))
    .await;
}

/// The batch statement (its text as [`Statement`] names it). `nt`: new threads (upserts, another owner's id untouched); `ut`: a
/// reply's changes to the owner's thread; `it`: item upserts, each requiring its thread as its
/// write does (`via`: 1 = created in `nt`, 2 = updated in `ut`, 0 = the owner's existing
/// thread). It returns the threads `ut` updated (kind 2) and the items `it` wrote (kind 0),
/// from which each write's answer is read.
const BATCH_SQL: &str = "WITH nt AS (\
     INSERT INTO threads (id, user_id, organization_id, lesson_path, title, status, metadata, \
     created_at, updated_at) \
     SELECT n.id, n.user_id, n.organization_id, n.lesson_path, n.title, n.status::jsonb, \
     n.metadata::jsonb, n.created_at, n.updated_at \
     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
     $7::text[], $8::timestamptz[], $9::timestamptz[]) \
     AS n(id, user_id, organization_id, lesson_path, title, status, metadata, created_at, updated_at) \
     ON CONFLICT (id) DO UPDATE SET title = excluded.title, status = excluded.status, \
     metadata = excluded.metadata, updated_at = excluded.updated_at \
     WHERE threads.user_id = excluded.user_id \
     RETURNING id, user_id), \
     ut AS (\
     UPDATE threads SET title = CASE WHEN c.set_title THEN c.title ELSE threads.title END, \
     metadata = CASE WHEN c.set_metadata THEN c.metadata::jsonb ELSE threads.metadata END, \
     updated_at = c.updated_at \
     FROM UNNEST($10::text[], $11::text[], $12::bool[], $13::text[], $14::bool[], $15::text[], \
     $16::timestamptz[]) AS c(id, user_id, set_title, title, set_metadata, metadata, updated_at) \
     WHERE threads.id = c.id AND threads.user_id = c.user_id \
     RETURNING threads.id, threads.user_id), \
     it AS (\
     INSERT INTO items (id, thread_id, user_id, item_type, created_at, updated_at, data) \
     SELECT u.id, u.thread_id, u.user_id, u.item_type, u.created_at, u.updated_at, u.data::jsonb \
     FROM UNNEST($17::text[], $18::text[], $19::text[], $20::text[], $21::timestamptz[], \
     $22::timestamptz[], $23::text[], $24::int2[]) \
     AS u(id, thread_id, user_id, item_type, created_at, updated_at, data, via) \
     WHERE CASE u.via \
     WHEN 1 THEN EXISTS (SELECT 1 FROM nt WHERE nt.id = u.thread_id AND nt.user_id = u.user_id) \
     WHEN 2 THEN EXISTS (SELECT 1 FROM ut WHERE ut.id = u.thread_id AND ut.user_id = u.user_id) \
     ELSE EXISTS (SELECT 1 FROM threads t WHERE t.id = u.thread_id AND t.user_id = u.user_id) END \
     ON CONFLICT (thread_id, id) DO UPDATE SET item_type = excluded.item_type, \
     data = excluded.data, updated_at = excluded.updated_at \
     WHERE items.user_id = excluded.user_id \
     RETURNING items.thread_id, items.id) \
     SELECT 2::int2 AS kind, id AS thread_id, '' AS item_id FROM ut \
     UNION ALL SELECT 0::int2, thread_id, id FROM it";

/// Runs `sql` ([`BATCH_SQL`]) for `writes` (no two touching one thread) and reads each one's
/// answer.
async fn execute_postgres(
    pool: &PgPool,
    sql: &str,
    writes: &[&Write],
) -> Result<Vec<StoreResult<()>>, sqlx::Error> {
    let mut n = NewColumns::default();
    let mut c = ChangeColumns::default();
    let mut i = ItemColumns::default();
    for w in writes {
        if let Some(t) = &w.create {
            n.id.push(t.id.as_str());
            n.user_id.push(w.owner.as_str());
            n.organization_id.push(t.organization_id.as_deref());
            n.lesson_path.push(t.lesson_path.as_deref());
            n.title.push(t.title.as_deref());
            n.status.push(t.status.as_str());
            n.metadata.push(t.metadata.as_str());
            n.created_at.push(t.created_at);
            n.updated_at.push(t.updated_at);
        }
        if let Some(ch) = &w.changes {
            c.id.push(ch.thread_id.as_str());
            c.user_id.push(w.owner.as_str());
            c.set_title.push(ch.set_title);
            c.title.push(ch.title.as_deref());
            c.set_metadata.push(ch.set_metadata);
            c.metadata.push(ch.metadata.as_str());
            c.updated_at.push(ch.updated_at);
        }
        let via: i16 = match (&w.create, &w.changes) {
            (Some(_), _) => 1,
            (None, Some(_)) => 2,
            (None, None) => 0,
        };
        for item in &w.items {
            i.id.push(item.id.as_str());
            i.thread_id.push(item.thread_id.as_str());
            i.user_id.push(w.owner.as_str());
            i.item_type.push(item.item_type);
            i.created_at.push(item.created_at);
            i.updated_at.push(item.updated_at);
            i.data.push(item.data.as_str());
            i.via.push(via);
        }
    }
    let rows: Vec<(i16, String, String)> = sqlx::query_as(sql)
        .bind(&n.id)
        .bind(&n.user_id)
        .bind(&n.organization_id)
        .bind(&n.lesson_path)
        .bind(&n.title)
        .bind(&n.status)
        .bind(&n.metadata)
        .bind(&n.created_at)
        .bind(&n.updated_at)
        .bind(&c.id)
        .bind(&c.user_id)
        .bind(&c.set_title)
        .bind(&c.title)
        .bind(&c.set_metadata)
        .bind(&c.metadata)
        .bind(&c.updated_at)
        .bind(&i.id)
        .bind(&i.thread_id)
        .bind(&i.user_id)
        .bind(&i.item_type)
        .bind(&i.created_at)
        .bind(&i.updated_at)
        .bind(&i.data)
        .bind(&i.via)
        .fetch_all(pool)
        .await?;
    let mut updated: HashSet<&str> = HashSet::new();
    let mut items: HashSet<(&str, &str)> = HashSet::new();
    for (kind, thread_id, item_id) in &rows {
        match kind {
            0 => items.insert((thread_id.as_str(), item_id.as_str())),
            _ => updated.insert(thread_id.as_str()),
        };
    }
    // A create answers by its item (as `save_thread_with_item` does): the item was written
    // only if its thread was.
    let thread_done = |w: &Write| match &w.changes {
        Some(ch) => updated.contains(ch.thread_id.as_str()),
        None => true,
    };
    Ok(answers(writes, thread_done, &items))
}

/// Each write's answer: `Ok` when its thread part was written (`thread_done`) and every one of
/// its items is among `stored` (thread id, item id), else `NoSuchThread`.
fn answers(
    writes: &[&Write],
    thread_done: impl Fn(&Write) -> bool,
    stored: &HashSet<(&str, &str)>,
) -> Vec<StoreResult<()>> {
    writes
        .iter()
        .map(|w| {
            let ok = thread_done(w)
                && w.items
                    .iter()
                    .all(|i| stored.contains(&(i.thread_id.as_str(), i.id.as_str())));
            if ok {
                Ok(())
            } else {
                Err(ThreadStoreError::NoSuchThread)
            }
        })
        .collect()
}

/// Most rows in one SQLite statement of a batch (at most 9 values each, far below SQLite's
/// 32,766).
const SQLITE_ROWS: usize = 500;

/// Writes `writes` in one SQLite transaction of at most three multi-row statements (the new
/// threads, the thread changes, the items; more only past [`SQLITE_ROWS`] rows), each a single
/// hop to the connection's thread whatever the batch's size, and reads each write's answer from
/// the rows they return, as [`execute_postgres`] does: another owner's thread writes nothing of
/// a create and none of a reply's items.
///
/// The statements are not kept prepared: their text depends on the number of rows, and
/// hundreds of texts would push the read path's statements out of sqlx's cache (100 a
/// connection); preparing one costs SQLite less than the hop that runs it.
async fn execute_sqlite(
    pool: &SqlitePool,
    writes: &[&Write],
) -> Result<Vec<StoreResult<()>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let creates = owned(writes, |w| w.create.as_ref());
    let mut created: HashSet<String> = HashSet::new();
    for chunk in creates.chunks(SQLITE_ROWS) {
        let sql = format!(
            "INSERT INTO threads ({THREAD_COLUMNS_IN}) VALUES {} {THREAD_CONFLICT} RETURNING id",
            placeholders(chunk.len(), 9)
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql).persistent(false);
        for (owner, t) in chunk {
            query = query
                .bind(t.id.as_str())
                .bind(*owner)
                .bind(t.organization_id.as_deref())
                .bind(t.lesson_path.as_deref())
                .bind(t.title.as_deref())
                .bind(t.status.as_str())
                .bind(t.metadata.as_str())
                .bind(DbTime(t.created_at))
                .bind(DbTime(t.updated_at));
        }
        created.extend(query.fetch_all(&mut *tx).await?);
    }
    let changes = owned(writes, |w| w.changes.as_ref());
    let mut updated: HashSet<String> = HashSet::new();
    for chunk in changes.chunks(SQLITE_ROWS) {
        // `VALUES` in FROM names its columns column1…column7: id, owner, title?, title,
        // metadata?, metadata, updated_at.
        let sql = format!(
            "UPDATE threads SET \
             title = CASE WHEN c.column3 THEN c.column4 ELSE threads.title END, \
             metadata = CASE WHEN c.column5 THEN c.column6 ELSE threads.metadata END, \
             updated_at = c.column7 FROM (VALUES {}) AS c \
             WHERE threads.id = c.column1 AND threads.user_id = c.column2 RETURNING threads.id",
            placeholders(chunk.len(), 7)
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql).persistent(false);
        for (owner, c) in chunk {
            query = query
                .bind(c.thread_id.as_str())
                .bind(*owner)
                .bind(c.set_title)
                .bind(c.title.as_deref())
                .bind(c.set_metadata)
                .bind(c.metadata.as_str())
                .bind(DbTime(c.updated_at));
        }
        updated.extend(query.fetch_all(&mut *tx).await?);
    }
    let thread_done = |w: &Write| match (&w.create, &w.changes) {
        (Some(t), _) => created.contains(&t.id),
        (None, Some(c)) => updated.contains(&c.thread_id),
        (None, None) => true,
    };
    // Items only of writes whose thread part was written; the join on the owner's thread
    // refuses the rest (another owner's thread, a thread gone).
    // An item of a write that creates or changes a thread must be on that thread (as `via` in
    // `BATCH_SQL`); one that is not is refused, and its write answers `NoSuchThread`.
    let items: Vec<(&str, &ItemRow)> = writes
        .iter()
        .filter(|w| thread_done(w))
        .flat_map(|w| {
            w.items
                .iter()
                .filter(|i| w.own_thread().is_none_or(|t| t == i.thread_id))
                .map(|i| (w.owner.as_str(), i))
        })
        .collect();
    let mut stored: Vec<(String, String)> = Vec::with_capacity(items.len());
    for chunk in items.chunks(SQLITE_ROWS) {
        // column1…column7: id, thread, owner, type, created, updated, JSON. `WHERE true`
        // parts the join from the upsert clause (SQLite's grammar).
        let sql = format!(
            "INSERT INTO items ({ITEM_COLUMNS_IN}) \
             SELECT c.column1, t.id, t.user_id, c.column4, c.column5, c.column6, c.column7 \
             FROM (VALUES {}) AS c JOIN threads t ON t.id = c.column2 AND t.user_id = c.column3 \
             WHERE true {ITEM_CONFLICT} RETURNING thread_id, id",
            placeholders(chunk.len(), 7)
        );
        let mut query = sqlx::query_as::<_, (String, String)>(&sql).persistent(false);
        for (owner, item) in chunk {
            query = query
                .bind(item.id.as_str())
                .bind(item.thread_id.as_str())
                .bind(*owner)
                .bind(item.item_type)
                .bind(DbTime(item.created_at))
                .bind(DbTime(item.updated_at))
                .bind(item.data.as_str());
        }
        stored.extend(query.fetch_all(&mut *tx).await?);
    }
    tx.commit().await?;
    let stored: HashSet<(&str, &str)> = stored
        .iter()
        .map(|(thread, id)| (thread.as_str(), id.as_str()))
        .collect();
    Ok(answers(writes, thread_done, &stored))
}

/// `part` of every write that has one, with the write's owner.
fn owned<'a, T>(
    writes: &[&'a Write],
    part: impl Fn(&'a Write) -> Option<&'a T>,
) -> Vec<(&'a str, &'a T)> {
    writes
        .iter()
        .filter_map(|w| part(w).map(|p| (w.owner.as_str(), p)))
        .collect()
}

/// `rows` groups of `width` `?` placeholders: `(?, ?), (?, ?)`.
fn placeholders(rows: usize, width: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(", "));
    vec![row; rows].join(", ")
}

#[derive(Default)]
struct NewColumns<'a> {
    id: Vec<&'a str>,
    user_id: Vec<&'a str>,
    organization_id: Vec<Option<&'a str>>,
    lesson_path: Vec<Option<&'a str>>,
    title: Vec<Option<&'a str>>,
    status: Vec<&'a str>,
    metadata: Vec<&'a str>,
    created_at: Vec<DateTime<Utc>>,
    updated_at: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct ChangeColumns<'a> {
    id: Vec<&'a str>,
    user_id: Vec<&'a str>,
    set_title: Vec<bool>,
    title: Vec<Option<&'a str>>,
    set_metadata: Vec<bool>,
    metadata: Vec<&'a str>,
    updated_at: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct ItemColumns<'a> {
    id: Vec<&'a str>,
    thread_id: Vec<&'a str>,
    user_id: Vec<&'a str>,
    item_type: Vec<&'a str>,
    created_at: Vec<DateTime<Utc>>,
    updated_at: Vec<DateTime<Utc>>,
    data: Vec<&'a str>,
    via: Vec<i16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batch statement is renamed when the count of batches doubles from `REPLAN_FROM`
    /// on, and only then.
    #[test]
    fn the_batch_statement_is_renamed_at_each_doubling() {
        let mut statement = Statement::new();
        let texts: Vec<Arc<str>> = (0..1100).map(|_| statement.next()).collect();
        let renamed: Vec<usize> = (1..texts.len())
            .filter(|&n| texts[n] != texts[n - 1])
            .map(|n| n + 1)
            .collect();
        assert_eq!(renamed, [64, 128, 256, 512, 1024]);
        assert_eq!(&*texts[0], BATCH_SQL);
        assert_eq!(&*texts[1099], format!("{BATCH_SQL} /* plan 1024 */"));
    }
}

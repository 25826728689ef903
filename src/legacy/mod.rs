//! Adopting the Python service's database: `study-mode-api import-legacy [--dry-run]`, and the
//! start-up check that refuses to serve a database whose legacy threads were never imported.
//!
//! Owns: reading the two legacy layouts of `study_mode_chat.{threads,items}` ([`source`]),
//! turning a legacy row into ours or a reason to skip it ([`parse`]), the resumable,
//! incremental, batched import ([`import`]) and its record (`study_mode.legacy_imports`,
//! `study_mode.legacy_import_skipped`), the report, and [`check`]. Must not write to the legacy
//! tables: they stay readable by the Python service, so the operator can roll back
//! (docs/OPERATIONS.md, "Cut-over"). Writes our tables directly in batches (one statement per
//! page, not one store call per row) but stores exactly what the thread store reads: every item
//! goes through the ChatKit types (`chatkit::types::ThreadItem`) on its way in.

pub mod import;
pub mod parse;
pub mod source;

use chrono::{DateTime, Utc};

pub use import::{Counts, MARGIN, Totals};

use crate::db::{Database, DatabaseSettings, DbError, LEGACY_SCHEMA, SCHEMA};

/// What went wrong with an import as a whole (a bad row is skipped, not an error).
#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    #[error("import-legacy needs DATABASE_URL=postgres://… (the database the Python service used)")]
    NotPostgres,
    #[error(
        "there is nothing to import: no legacy tables {LEGACY_SCHEMA}.threads and \
         {LEGACY_SCHEMA}.items in this database"
    )]
    NoLegacyTables,
    #[error("cannot open the store: {0}")]
    Open(#[from] DbError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot encode an item: {0}")]
    Encode(String),
}

/// A legacy row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub table: &'static str,
    pub id: String,
    pub reason: String,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    pub dry_run: bool,
    pub layout: &'static str,
    /// Rows changed at or after this were read; `None` = every row.
    pub since: Option<DateTime<Utc>>,
    pub resumed: bool,
    pub import_id: Option<i64>,
    pub threads: Counts,
    pub items: Counts,
    /// Distinct users of the legacy threads read.
    pub users: i64,
    /// The first skipped rows (every one was printed on stderr when met).
    pub skipped: Vec<Skipped>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.dry_run {
            "dry run, nothing was changed"
        } else if self.resumed {
            "resumed after an interrupted run"
        } else {
            "done"
        };
        writeln!(f, "import-legacy: {what}")?;
        writeln!(f, "  legacy layout: {}", self.layout)?;
        match self.since {
            Some(t) => writeln!(f, "  read: rows changed since {}", t.to_rfc3339())?,
            None => writeln!(f, "  read: every row")?,
        }
        let verb = if self.dry_run { "would be " } else { "" };
        for (name, c) in [("threads", self.threads), ("items", self.items)] {
            writeln!(
                f,
                "  {name}: {} read; {verb}new {}, {verb}changed {}, unchanged {}, skipped {}",
                c.read, c.new, c.changed, c.unchanged, c.skipped
            )?;
        }
        writeln!(f, "  users: {}", self.users)?;
        let total = self.threads.skipped + self.items.skipped;
        if total > 0 {
            writeln!(f, "  skipped rows ({total}):")?;
            for s in &self.skipped {
                writeln!(f, "    {} {}: {}", s.table, s.id, s.reason)?;
            }
            if total > self.skipped.len() as u64 {
                let rest = total - self.skipped.len() as u64;
                match self.import_id {
                    Some(id) if !self.dry_run => writeln!(
                        f,
                        "    … and {rest} more: SELECT * FROM {SCHEMA}.legacy_import_skipped \
                         WHERE import_id = {id}"
                    )?,
                    _ => writeln!(f, "    … and {rest} more (printed above)")?,
                }
            }
        }
        Ok(())
    }
}

/// Imports (or, with `dry_run`, only reads and compares) the legacy tables of the database of
/// `settings`. `progress` shows a progress line on stderr.
pub async fn run(
    settings: &DatabaseSettings,
    dry_run: bool,
    batch: usize,
    progress: bool,
) -> Result<Report, LegacyError> {
    if !settings.is_postgres() {
        return Err(LegacyError::NotPostgres);
    }
    let pool = if dry_run {
        Database::postgres_unmigrated(settings).await?
    } else {
        match Database::connect(settings).await? {
            Database::Postgres(pool) => pool,
            Database::Sqlite(_) => return Err(LegacyError::NotPostgres),
        }
    };
    let result = run_on(&pool, dry_run, batch, progress).await;
    pool.close().await;
    result
}

async fn run_on(
    pool: &sqlx::PgPool,
    dry_run: bool,
    batch: usize,
    progress: bool,
) -> Result<Report, LegacyError> {
    let layout = source::detect(pool)
        .await?
        .ok_or(LegacyError::NoLegacyTables)?;
    let mut run = import::Run::begin(pool, &layout, dry_run, batch, progress).await?;
    run.execute().await?;
    let users = source::users(pool, run.since, layout.threads_updated_at).await?;
    Ok(Report {
        dry_run,
        layout: layout.name,
        since: run.since.filter(|_| layout.incremental()),
        resumed: run.resumed,
        import_id: run.id,
        threads: run.totals.threads,
        items: run.totals.items,
        users,
        skipped: run.listed,
    })
}

/// Why `serve` refuses a database: its legacy threads were never imported.
#[derive(Debug, thiserror::Error)]
#[error(
    "this database holds the Python study-mode service's threads ({LEGACY_SCHEMA}.threads), \
     never imported: run `study-mode-api import-legacy` first (docs/OPERATIONS.md, \"Cut-over\")"
)]
pub struct NotImported;

/// Whether the service may serve `db`: no legacy tables, or at least one finished import. Two
/// catalogue queries and one on `legacy_imports`: cheap on every start.
pub async fn check(db: &Database) -> Result<Result<(), NotImported>, sqlx::Error> {
    let Database::Postgres(pool) = db else {
        return Ok(Ok(()));
    };
    if source::detect(pool).await?.is_none() {
        return Ok(Ok(()));
    }
    let imported: bool = sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM {SCHEMA}.legacy_imports WHERE finished_at IS NOT NULL)"
    ))
    .fetch_one(pool)
    .await?;
    Ok(if imported { Ok(()) } else { Err(NotImported) })
}

//! The durable outbox of deducts and releases, in the thread store's database (PostgreSQL or
//! SQLite, `migrations/*/…metering_outbox.sql`).
//!
//! A row is written when a check admits a model call (`open`: the deduct to send if the run
//! never reports back — the process crashed —, due only after the call's horizon), and turned
//! into the real `deduct` or `release` before the reply ends. The worker ([`super::Metering::run_worker`])
//! sends due rows, deletes them once acknowledged and reschedules failures with backoff; the
//! API is idempotent on `request_id`, so a row delivered twice (two replicas, a lost answer)
//! costs nothing. Rows name the API they were reserved at: a worker delivers only its own
//! API's rows. Times are unix milliseconds (`BIGINT`), the same on both backends.

use std::time::Duration;

use crate::db::Database;

/// One pending delivery. No `Debug`: it holds the student's bearer.
#[derive(Clone, sqlx::FromRow)]
pub(super) struct Row {
    pub request_id: String,
    /// `open`, `deduct`, `release` (`dead`: refused for good, never selected).
    pub kind: String,
    pub user_id: String,
    pub bearer: Option<String>,
    pub body: String,
    pub attempts: i64,
    pub next_attempt_ms: i64,
}

impl Row {
    /// The API call that delivers the row (`open` rows are delivered as estimated deducts).
    pub fn call(&self) -> &'static str {
        if self.kind == "release" {
            "release"
        } else {
            "deduct"
        }
    }
}

/// Runs the same query text on either backend.
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            Database::Postgres($pool) => $body,
            Database::Sqlite($pool) => $body,
        }
    };
}

/// The outbox table of one database, for one metering API.
#[derive(Debug, Clone)]
pub(super) struct Outbox {
    db: Database,
    api_url: String,
}

/// Milliseconds since the epoch.
pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The delay before retry number `attempts + 1`: 1 s doubled per attempt, at most 5 min.
pub(super) fn backoff(attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(0, 9)).unwrap_or(9);
    Duration::from_secs(2u64.pow(exp)).min(Duration::from_secs(300))
}

impl Outbox {
    pub(super) fn new(db: Database, api_url: &str) -> Self {
        Self {
            db,
            api_url: api_url.to_owned(),
        }
    }

    /// Records an admitted call: `fallback` is sent as a deduct after `horizon` unless the
    /// run settles it first.
    pub(super) async fn open(
        &self,
        request_id: &str,
        user_id: &str,
        bearer: Option<&str>,
        fallback: &str,
        horizon: Duration,
    ) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let sql = "INSERT INTO metering_outbox \
             (request_id, api_url, kind, user_id, bearer, body, attempts, created_ms, next_attempt_ms) \
             VALUES ($1, $2, 'open', $3, $4, $5, 0, $6, $7)";
        on_pool!(&self.db, |p| sqlx::query(sql)
            .bind(request_id)
            .bind(&self.api_url)
            .bind(user_id)
            .bind(bearer)
            .bind(fallback)
            .bind(now)
            .bind(now.saturating_add(ms(horizon)))
            .execute(p)
            .await
            .map(drop))
    }

    /// Turns the call's row into its `deduct` or `release`, due now (inserting it when the
    /// open row is missing — its write had failed).
    pub(super) async fn settle(
        &self,
        request_id: &str,
        kind: &str,
        user_id: &str,
        bearer: Option<&str>,
        body: &str,
    ) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let update = "UPDATE metering_outbox SET kind = $2, body = $3, next_attempt_ms = $4 \
             WHERE request_id = $1";
        let done = on_pool!(&self.db, |p| sqlx::query(update)
            .bind(request_id)
            .bind(kind)
            .bind(body)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if done > 0 {
            return Ok(());
        }
        let insert = "INSERT INTO metering_outbox \
             (request_id, api_url, kind, user_id, bearer, body, attempts, created_ms, next_attempt_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7)";
        on_pool!(&self.db, |p| sqlx::query(insert)
            .bind(request_id)
            .bind(&self.api_url)
            .bind(kind)
            .bind(user_id)
            .bind(bearer)
            .bind(body)
            .bind(now)
            .execute(p)
            .await
            .map(drop))
    }

    /// Removes the call's row (a fail-open call that used nothing: there is nothing to settle).
    pub(super) async fn forget(&self, request_id: &str) -> Result<(), sqlx::Error> {
        let sql = "DELETE FROM metering_outbox WHERE request_id = $1 AND kind = 'open'";
        on_pool!(&self.db, |p| sqlx::query(sql)
            .bind(request_id)
            .execute(p)
            .await
            .map(drop))
    }

    /// Up to `limit` rows of this API due now, oldest first.
    pub(super) async fn due(&self, limit: i64) -> Result<Vec<Row>, sqlx::Error> {
        let sql = "SELECT request_id, kind, user_id, bearer, body, attempts, next_attempt_ms \
             FROM metering_outbox \
             WHERE api_url = $1 AND kind IN ('open', 'deduct', 'release') AND next_attempt_ms <= $2 \
             ORDER BY next_attempt_ms LIMIT $3";
        on_pool!(&self.db, |p| sqlx::query_as::<_, Row>(sql)
            .bind(&self.api_url)
            .bind(now_ms())
            .bind(limit)
            .fetch_all(p)
            .await)
    }

    /// Takes `row` for `lease` (another worker selecting it meanwhile gets nothing): true when
    /// this worker has it.
    pub(super) async fn claim(&self, row: &Row, lease: Duration) -> Result<bool, sqlx::Error> {
        let sql = "UPDATE metering_outbox SET next_attempt_ms = $4 \
             WHERE request_id = $1 AND kind = $2 AND next_attempt_ms = $3";
        let n = on_pool!(&self.db, |p| sqlx::query(sql)
            .bind(&row.request_id)
            .bind(&row.kind)
            .bind(row.next_attempt_ms)
            .bind(now_ms().saturating_add(ms(lease)))
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The API acknowledged `row`.
    pub(super) async fn done(&self, row: &Row) -> Result<(), sqlx::Error> {
        let sql = "DELETE FROM metering_outbox WHERE request_id = $1 AND kind = $2";
        on_pool!(&self.db, |p| sqlx::query(sql)
            .bind(&row.request_id)
            .bind(&row.kind)
            .execute(p)
            .await
            .map(drop))
    }

    /// `row` failed: retried after the backoff, or (`permanent`) kept as `dead`.
    pub(super) async fn failed(
        &self,
        row: &Row,
        error: &str,
        permanent: bool,
    ) -> Result<(), sqlx::Error> {
        let next = now_ms().saturating_add(ms(backoff(row.attempts)));
        let sql = "UPDATE metering_outbox SET attempts = attempts + 1, next_attempt_ms = $3, \
             last_error = $4, kind = CASE WHEN $5 THEN 'dead' ELSE kind END \
             WHERE request_id = $1 AND kind = $2";
        on_pool!(&self.db, |p| sqlx::query(sql)
            .bind(&row.request_id)
            .bind(&row.kind)
            .bind(next)
            .bind(error)
            .bind(permanent)
            .execute(p)
            .await
            .map(drop))
    }

    /// Deducts and releases of this API not yet acknowledged.
    pub(super) async fn pending(&self) -> Result<i64, sqlx::Error> {
        let sql = "SELECT COUNT(*) FROM metering_outbox \
             WHERE api_url = $1 AND kind IN ('deduct', 'release')";
        on_pool!(&self.db, |p| sqlx::query_scalar::<_, i64>(sql)
            .bind(&self.api_url)
            .fetch_one(p)
            .await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_one_second_to_five_minutes() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(50), Duration::from_secs(300));
        assert_eq!(backoff(-1), Duration::from_secs(1));
    }
}

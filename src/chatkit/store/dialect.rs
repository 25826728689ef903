//! What differs between the two backends of the thread store, and nothing else: how a
//! timestamp is stored ([`DbTime`]), plus the one accessor sqlx keeps off its traits.
//!
//! - PostgreSQL: `TIMESTAMPTZ` (microsecond precision), bound and read as `DateTime<Utc>`.
//! - SQLite: fixed-width RFC 3339 text with six fraction digits ([`sortable`], e.g.
//!   `2023-11-14T22:13:20.000001Z`), so text order is time order. The `ORDER BY created_at`
//!   and `(created_at, id)` comparisons of [`super::sql`] rely on that; the bytes are the ones
//!   the store has always written, so existing databases need no migration. Reading accepts
//!   any RFC 3339 or naive timestamp ([`wire_time::parse`]), as before.

use chrono::{DateTime, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentValue, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};

use crate::chatkit::ids::{sortable, wire_time};

/// A timestamp column (`created_at`, `updated_at`) as the backend stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DbTime(pub DateTime<Utc>);

/// A backend the generic store runs on.
pub(super) trait Dialect: sqlx::Database {
    /// Rows written by an `execute` (an inherent method of each backend's `QueryResult`).
    fn rows_affected(done: &Self::QueryResult) -> u64;

    /// Data-modifying `WITH` (PostgreSQL): a turn's two writes become one statement, one
    /// round trip and one commit. SQLite has none; there a statement is a hop to the
    /// connection's thread, and a transaction costs two more.
    const WRITABLE_CTE: bool;
}

impl Dialect for Postgres {
    fn rows_affected(done: &Self::QueryResult) -> u64 {
        done.rows_affected()
    }

    const WRITABLE_CTE: bool = true;
}

impl Dialect for Sqlite {
    fn rows_affected(done: &Self::QueryResult) -> u64 {
        done.rows_affected()
    }

    const WRITABLE_CTE: bool = false;
}

// PostgreSQL: exactly `DateTime<Utc>` (TIMESTAMPTZ).

impl Type<Postgres> for DbTime {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for DbTime {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }

    fn size_hint(&self) -> usize {
        <DateTime<Utc> as Encode<Postgres>>::size_hint(&self.0)
    }
}

impl<'r> Decode<'r, Postgres> for DbTime {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        <DateTime<Utc> as Decode<Postgres>>::decode(value).map(DbTime)
    }
}

// SQLite: the sortable text.

impl Type<Sqlite> for DbTime {
    fn type_info() -> SqliteTypeInfo {
        <&str as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <&str as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for DbTime {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        <String as Encode<Sqlite>>::encode(sortable(&self.0), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for DbTime {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let raw = <&str as Decode<Sqlite>>::decode(value)?;
        wire_time::parse(raw)
            .map(DbTime)
            .ok_or_else(|| format!("stored timestamp is invalid: {raw:?}").into())
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Row;
    use sqlx::sqlite::SqlitePoolOptions;

    use super::*;

    /// The SQLite encoding is byte for byte the `sortable` text the store always wrote, and
    /// reads back (also from a timestamp written in another RFC 3339 form).
    #[tokio::test]
    async fn sqlite_time_is_the_sortable_text() {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .expect("pool");
        let t = DateTime::from_timestamp_micros(1_700_000_000_000_000).expect("t");
        let row = sqlx::query("SELECT $1 AS raw, typeof($1) AS kind, $2 AS other")
            .bind(DbTime(t))
            .bind("2023-11-14T22:13:20.5+00:00")
            .fetch_one(&pool)
            .await
            .expect("select");
        assert_eq!(row.get::<String, _>("raw"), "2023-11-14T22:13:20.000000Z");
        assert_eq!(row.get::<String, _>("kind"), "text");
        assert_eq!(row.get::<DbTime, _>("raw"), DbTime(t));
        let half = DateTime::from_timestamp_micros(1_700_000_000_500_000).expect("t");
        assert_eq!(row.get::<DbTime, _>("other"), DbTime(half));
        let bad = sqlx::query("SELECT 'yesterday' AS raw")
            .fetch_one(&pool)
            .await
            .expect("select");
        assert!(bad.try_get::<DbTime, _>("raw").is_err());
    }
}

//! Server-minted identifiers and timestamps of threads and items.
//!
//! Ids are a type prefix (as the reference: `thr`, `msg`, `tc`, `shcx`, …) plus the 32 hex digits
//! of a UUIDv7 (RFC 9562: a 48-bit millisecond timestamp, then 74 bits, part of them a counter
//! the uuid crate keeps within a millisecond, the rest random) instead of the reference's 8
//! random digits, so that collisions stay negligible at any realistic number of threads.
//! Time-ordered ids are for the database: a new thread's row and its items land at the right edge of the id indexes (`threads` primary key,
//! `items (thread_id, …)`) instead of on a random leaf page each, so an insert touches the few
//! pages already in memory rather than dirtying (and, after each checkpoint, logging in full)
//! one page per row of indexes larger than the buffer cache (docs/BENCHMARKS.md, "The batch
//! statement's plan, group commit on SQLite, time-ordered ids", part 3). An id says when its thread was made, which the thread's `created_at` says anyway;
//! ids are not secrets: every read is checked against its owner. Timestamps are UTC with
//! microsecond precision (what both stores keep) and strictly increasing within the process,
//! so that items written one after the other never tie on `created_at`.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, SecondsFormat, Utc};

/// A fresh id with `prefix`, e.g. `thr_019af7c2e5a97b3c8d2e4f6a1b3c5d7e`: later ids of this
/// process sort after earlier ones (the uuid crate's v7 counter keeps them increasing within a
/// millisecond).
pub fn mint(prefix: &str) -> String {
    let mut buf = [0u8; uuid::fmt::Simple::LENGTH];
    let hex = uuid::Uuid::now_v7().simple().encode_lower(&mut buf);
    let mut id = String::with_capacity(prefix.len() + 1 + hex.len());
    id.push_str(prefix);
    id.push('_');
    id.push_str(hex);
    id
}

/// Id of a new thread.
pub fn thread_id() -> String {
    mint("thr")
}

/// Id of a new message item (user or assistant), as the reference's `message` type.
pub fn message_id() -> String {
    mint("msg")
}

/// Id of a new SDK hidden-context item.
pub fn hidden_id() -> String {
    mint("shcx")
}

/// Now, truncated to microseconds and strictly after every earlier call in this process.
pub fn now() -> DateTime<Utc> {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let wall = Utc::now().timestamp_micros();
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = wall.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return DateTime::from_timestamp_micros(next).unwrap_or_else(Utc::now),
            Err(seen) => last = seen,
        }
    }
}

/// Serde format of every protocol timestamp: RFC 3339 in UTC with `Z`, the fraction written
/// exactly as pydantic writes it (six digits, omitted when zero), so that the reference's
/// round trip reproduces our bytes.
pub mod wire_time {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn format(t: &DateTime<Utc>) -> String {
        if t.timestamp_subsec_micros() == 0 {
            t.to_rfc3339_opts(SecondsFormat::Secs, true)
        } else {
            t.to_rfc3339_opts(SecondsFormat::Micros, true)
        }
    }

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = String::deserialize(d)?;
        parse(&raw).ok_or_else(|| serde::de::Error::custom(format!("invalid timestamp {raw:?}")))
    }

    /// RFC 3339 with an offset, or a naive timestamp taken as UTC (what the reference writes).
    pub fn parse(raw: &str) -> Option<DateTime<Utc>> {
        if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
            return Some(t.with_timezone(&Utc));
        }
        chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|n| n.and_utc())
    }
}

/// The fixed-width text form the SQLite store sorts on (text order = time order).
pub fn sortable(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_the_prefix_and_a_uuid_v7() {
        let id = thread_id();
        let (prefix, hex) = id.split_once('_').expect("prefix");
        assert_eq!(prefix, "thr");
        assert_eq!(hex.len(), 32);
        assert!(
            hex.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        let uuid = uuid::Uuid::parse_str(hex).expect("a uuid");
        assert_eq!(uuid.get_version_num(), 7);
        assert_ne!(thread_id(), thread_id());
    }

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        let ids: Vec<String> = (0..10_000).map(|_| message_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids out of order");
    }

    #[test]
    fn now_is_strictly_increasing_at_microsecond_precision() {
        let a = now();
        let b = now();
        assert!(b > a);
        assert_eq!(a.timestamp_subsec_nanos() % 1000, 0);
    }

    #[test]
    fn wire_time_matches_pydantic_and_parses_naive_timestamps() {
        let t = DateTime::from_timestamp_micros(1_700_000_000_000_001).expect("t");
        assert_eq!(wire_time::format(&t), "2023-11-14T22:13:20.000001Z");
        let whole = DateTime::from_timestamp_micros(1_700_000_000_000_000).expect("t");
        assert_eq!(wire_time::format(&whole), "2023-11-14T22:13:20Z");
        assert_eq!(wire_time::parse("2023-11-14T22:13:20.000001"), Some(t));
        assert_eq!(sortable(&whole), "2023-11-14T22:13:20.000000Z");
    }
}

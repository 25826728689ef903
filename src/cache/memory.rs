//! In-process cache backend on moka: bounded by the total size of the values in bytes, with a
//! TTL per entry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::Expiry;

use super::CacheMetrics;

#[derive(Clone)]
struct Entry {
    value: Bytes,
    ttl: Duration,
}

struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, entry: &Entry, _now: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        entry: &Entry,
        _now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// The in-process backend (embedded mode, or the L1 tier of a two-tier cache).
#[derive(Clone)]
pub struct MemoryCache {
    inner: moka::future::Cache<String, Entry>,
    metrics: Arc<CacheMetrics>,
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("entries", &self.inner.entry_count())
            .finish()
    }
}

impl MemoryCache {
    /// A cache holding at most `max_bytes` of keys and values.
    pub fn new(max_bytes: u64, metrics: Arc<CacheMetrics>) -> Self {
        let inner = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &String, v: &Entry| {
                u32::try_from(k.len() + v.value.len()).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .support_invalidation_closures()
            .build();
        Self { inner, metrics }
    }

    pub async fn get(&self, key: &str) -> Option<Bytes> {
        let hit = self.inner.get(key).await.map(|e| e.value);
        let outcome = if hit.is_some() { "hit" } else { "miss" };
        self.metrics.count("memory", "get", outcome);
        hit
    }

    pub async fn set(&self, key: &str, value: Bytes, ttl: Duration) {
        self.inner
            .insert(key.to_owned(), Entry { value, ttl })
            .await;
        self.metrics.count("memory", "set", "ok");
    }

    pub async fn delete(&self, keys: &[String]) -> u64 {
        let mut removed = 0;
        for key in keys {
            if self.inner.remove(key).await.is_some() {
                removed += 1;
            }
        }
        self.metrics.count("memory", "delete", "ok");
        removed
    }

    pub async fn delete_prefix(&self, prefix: &str) -> u64 {
        self.inner.run_pending_tasks().await;
        let matching = self
            .inner
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .count() as u64;
        let prefix = prefix.to_owned();
        // Only fails when invalidation closures are not enabled, and they are (see `new`).
        let _ = self
            .inner
            .invalidate_entries_if(move |k, _| k.starts_with(&prefix));
        self.inner.run_pending_tasks().await;
        self.metrics.count("memory", "delete_prefix", "ok");
        matching
    }
}

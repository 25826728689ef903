//! The Redis cache: byte values under string keys with a TTL, prefix deletion, readiness ping.
//!
//! Owns: cache operations and their metrics (`cache_operations`). A failure never fails a
//! request: it is logged (throttled), counted, and treated as a miss. Must not know what is
//! cached (lessons, JWKS…): callers own their keys.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, RedisResult};

use super::pool::{OPERATION_TIMEOUT, RedisPool};

/// Deadline of a prefix deletion (SCAN over the keyspace, UNLINK in batches).
const DELETE_PREFIX_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheOpLabels {
    pub backend: &'static str,
    pub operation: &'static str,
    pub outcome: &'static str,
}

/// Cache operations by operation and outcome (`hit`, `miss`, `ok`, `error`).
#[derive(Debug, Clone)]
pub struct CacheMetrics {
    pub operations: Family<CacheOpLabels, Counter>,
}

impl CacheMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            operations: Family::default(),
        };
        registry.register(
            "cache_operations",
            "Cache operations by backend, operation and outcome (error = backend failure)",
            m.operations.clone(),
        );
        m
    }

    fn count(&self, operation: &'static str, outcome: &'static str) {
        self.operations
            .get_or_create(&CacheOpLabels {
                backend: "redis",
                operation,
                outcome,
            })
            .inc();
    }
}

/// The Redis cache backend.
#[derive(Clone, Debug)]
pub struct RedisCache {
    pool: Arc<RedisPool>,
    metrics: CacheMetrics,
}

impl RedisCache {
    pub fn new(pool: Arc<RedisPool>, registry: &mut Registry) -> Self {
        Self {
            pool,
            metrics: CacheMetrics::register(registry),
        }
    }

    /// The underlying pool (shared with the rate limiter).
    pub fn pool(&self) -> &Arc<RedisPool> {
        &self.pool
    }

    fn failed(&self, operation: &'static str, error: &redis::RedisError) {
        self.pool.log_failure(operation, error);
        self.metrics.count(operation, "error");
    }

    pub async fn get(&self, key: &str) -> Option<Bytes> {
        let key = self.pool.key(key);
        let result: RedisResult<Option<Vec<u8>>> = self
            .pool
            .run(
                OPERATION_TIMEOUT,
                |mut conn| async move { conn.get(key).await },
            )
            .await;
        match result {
            Ok(v) => {
                let outcome = if v.is_some() { "hit" } else { "miss" };
                self.metrics.count("get", outcome);
                v.map(Bytes::from)
            }
            Err(e) => {
                self.failed("get", &e);
                None
            }
        }
    }

    pub async fn set(&self, key: &str, value: Bytes, ttl: Duration) {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let key = self.pool.key(key);
        let result: RedisResult<()> = self
            .pool
            .run(OPERATION_TIMEOUT, |mut conn| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(value.as_ref())
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async(&mut conn)
                    .await
            })
            .await;
        match result {
            Ok(()) => self.metrics.count("set", "ok"),
            Err(e) => self.failed("set", &e),
        }
    }

    pub async fn delete(&self, keys: &[String]) -> u64 {
        if keys.is_empty() {
            return 0;
        }
        let full: Vec<String> = keys.iter().map(|k| self.pool.key(k)).collect();
        let result: RedisResult<u64> = self
            .pool
            .run(
                OPERATION_TIMEOUT,
                |mut conn| async move { conn.del(full).await },
            )
            .await;
        match result {
            Ok(n) => {
                self.metrics.count("delete", "ok");
                n
            }
            Err(e) => {
                self.failed("delete", &e);
                0
            }
        }
    }

    /// SCAN + UNLINK in batches (never KEYS, which blocks Redis).
    pub async fn delete_prefix(&self, prefix: &str) -> u64 {
        let pattern = format!("{}*", escape_glob(&self.pool.key(prefix)));
        let scan = |mut conn: ConnectionManager| async move {
            let mut cursor: u64 = 0;
            let mut removed = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(500)
                    .query_async(&mut conn)
                    .await?;
                if !keys.is_empty() {
                    let n: u64 = redis::cmd("UNLINK")
                        .arg(&keys)
                        .query_async(&mut conn)
                        .await?;
                    removed += n;
                }
                if next == 0 {
                    return Ok(removed);
                }
                cursor = next;
            }
        };
        let result: RedisResult<u64> = self.pool.run(DELETE_PREFIX_TIMEOUT, scan).await;
        match result {
            Ok(n) => {
                self.metrics.count("delete_prefix", "ok");
                n
            }
            Err(e) => {
                self.failed("delete_prefix", &e);
                0
            }
        }
    }

    pub async fn ping(&self) -> Result<(), String> {
        let result: RedisResult<String> = self
            .pool
            .run(OPERATION_TIMEOUT, |mut conn| async move {
                redis::cmd("PING").query_async(&mut conn).await
            })
            .await;
        result.map(drop).map_err(|e| e.to_string())
    }
}

/// Escapes Redis glob metacharacters so a prefix matches literally.
fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn glob_metacharacters_are_escaped() {
        assert_eq!(super::escape_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}

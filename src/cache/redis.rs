//! Redis backend: a small set of multiplexed connections (`REDIS_MAX_CONNECTIONS`), each a
//! `ConnectionManager` that reconnects by itself; `rediss://` for TLS; `REDIS_PASSWORD` applied
//! when the URL has none; every key under `REDIS_KEY_PREFIX`.
//!
//! A connection that cannot be made at start-up is retried lazily (at most once a second per
//! slot), so the service starts and serves while Redis is down, and recovers when it returns.
//! Every operation goes through [`RedisPool::run`]: one deadline covering the connection too,
//! and the [`Breaker`] that makes operations fail at once while Redis is down.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, IntoConnectionInfo, RedisResult};
use tokio::sync::Mutex;

use super::CacheMetrics;
use super::breaker::Breaker;
use crate::config::RedisSettings;
use crate::telemetry::LogThrottle;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Deadline of one cache operation, connecting included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(1);
/// Deadline of a prefix deletion (SCAN over the keyspace, UNLINK in batches).
const DELETE_PREFIX_TIMEOUT: Duration = Duration::from_secs(10);

struct Slot {
    conn: Mutex<(Option<ConnectionManager>, Option<Instant>)>,
}

/// Connections to one Redis, shared by the cache and the rate limiter.
pub struct RedisPool {
    client: redis::Client,
    slots: Vec<Slot>,
    next: AtomicUsize,
    prefix: String,
    log: LogThrottle,
    breaker: Breaker,
}

impl std::fmt::Debug for RedisPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPool")
            .field("slots", &self.slots.len())
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisPool {
    /// Builds the pool and tries every connection once; failures are logged, not fatal.
    pub async fn connect(settings: &RedisSettings) -> Result<Arc<Self>, redis::RedisError> {
        let mut info = settings.url.as_str().into_connection_info()?;
        if info.redis.password.is_none() {
            info.redis.password = settings.password.clone();
        }
        let pool = Arc::new(Self {
            client: redis::Client::open(info)?,
            slots: (0..settings.max_connections)
                .map(|_| Slot {
                    conn: Mutex::new((None, None)),
                })
                .collect(),
            next: AtomicUsize::new(0),
            prefix: settings.key_prefix.clone(),
            log: LogThrottle::new(Duration::from_secs(30)),
            breaker: Breaker::default(),
        });
        for _ in 0..pool.slots.len() {
            if let Err(e) = pool.connection().await {
                tracing::warn!(error = %e, "redis is not reachable at start; will retry");
                break;
            }
        }
        Ok(pool)
    }

    /// The prefix of every key this service writes.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `prefix + key`.
    pub fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    /// A connection, round-robin over the slots.
    pub async fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[i].conn.lock().await;
        if let Some(conn) = &slot.0 {
            return Ok(conn.clone());
        }
        if slot.1.is_some_and(|t| t.elapsed() < RETRY_INTERVAL) {
            return Err(redis::RedisError::from((
                redis::ErrorKind::IoError,
                "redis unavailable (waiting before reconnecting)",
            )));
        }
        slot.1 = Some(Instant::now());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT)
            .set_number_of_retries(2)
            .set_max_delay(1000);
        let conn = ConnectionManager::new_with_config(self.client.clone(), config).await?;
        slot.0 = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `op` on a connection within `deadline` (connecting included), unless Redis is down
    /// and this is not the probe's turn: then it fails at once.
    pub async fn run<T, F, Fut>(&self, deadline: Duration, op: F) -> RedisResult<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.breaker.admit() {
            return Err(redis::RedisError::from((
                redis::ErrorKind::IoError,
                "redis is down (failing fast; probing once a second)",
            )));
        }
        let attempt = async { op(self.connection().await?).await };
        let result = tokio::time::timeout(deadline, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(redis::RedisError::from((
                    redis::ErrorKind::IoError,
                    "redis operation timed out",
                )))
            });
        self.breaker.observe(&result);
        result
    }

    /// Logs a Redis failure at most once per 30 s.
    pub fn log_failure(&self, operation: &str, error: &redis::RedisError) {
        if self.log.allow() {
            tracing::warn!(operation, error = %error, "redis operation failed (further failures muted for 30 s)");
        }
    }
}

/// The Redis cache backend.
#[derive(Clone, Debug)]
pub struct RedisCache {
    pool: Arc<RedisPool>,
    metrics: Arc<CacheMetrics>,
}

impl RedisCache {
    pub fn new(pool: Arc<RedisPool>, metrics: Arc<CacheMetrics>) -> Self {
        Self { pool, metrics }
    }

    /// The underlying pool (shared with the rate limiter).
    pub fn pool(&self) -> &Arc<RedisPool> {
        &self.pool
    }

    fn failed(&self, operation: &'static str, error: &redis::RedisError) {
        self.pool.log_failure(operation, error);
        self.metrics.count("redis", operation, "error");
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
                self.metrics.count("redis", "get", outcome);
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
            Ok(()) => self.metrics.count("redis", "set", "ok"),
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
                self.metrics.count("redis", "delete", "ok");
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
                self.metrics.count("redis", "delete_prefix", "ok");
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

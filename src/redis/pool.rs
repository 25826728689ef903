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

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, RedisResult};
use secrecy::ExposeSecret;
use tokio::sync::Mutex;

use super::RedisSettings;
use super::breaker::Breaker;
use crate::telemetry::LogThrottle;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Deadline of one cache operation, connecting included.
pub(super) const OPERATION_TIMEOUT: Duration = Duration::from_secs(1);

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
        let mut info = settings.url.expose_secret().into_connection_info()?;
        if info.redis.password.is_none() {
            info.redis.password = settings
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_owned());
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

    /// Registers `redis_breaker_open` (1 while Redis counts as down and operations fail fast).
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "redis_breaker_open",
            "1 while Redis counts as down and its operations fail fast (breaker open), else 0",
            self.breaker.gauge(),
        );
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

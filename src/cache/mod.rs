//! The shared key/value cache: one interface, two backends chosen once at start-up —
//! Redis ([`RedisCache`], shared by every instance) or in-process ([`MemoryCache`], moka).
//!
//! Owns: byte values under string keys with a TTL, prefix deletion, readiness ping and cache
//! metrics. A backend failure never fails a request: it is logged (throttled), counted, and
//! treated as a miss. Must not know what is cached (content, JWKS…): callers own their keys.

mod breaker;
mod memory;
mod redis;

pub use self::memory::MemoryCache;
pub use self::redis::{RedisCache, RedisPool};

use std::time::Duration;

use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// The cache of one process.
#[derive(Clone, Debug)]
pub enum Cache {
    Memory(MemoryCache),
    Redis(RedisCache),
}

impl Cache {
    /// `memory` or `redis`.
    pub fn backend(&self) -> &'static str {
        match self {
            Cache::Memory(_) => "memory",
            Cache::Redis(_) => "redis",
        }
    }

    /// The value under `key`; `None` on a miss or a backend failure.
    pub async fn get(&self, key: &str) -> Option<Bytes> {
        match self {
            Cache::Memory(c) => c.get(key).await,
            Cache::Redis(c) => c.get(key).await,
        }
    }

    /// Stores `value` under `key` for `ttl`. Failures are logged and counted, never returned.
    pub async fn set(&self, key: &str, value: Bytes, ttl: Duration) {
        match self {
            Cache::Memory(c) => c.set(key, value, ttl).await,
            Cache::Redis(c) => c.set(key, value, ttl).await,
        }
    }

    /// Removes `keys`; answers how many existed (0 on a backend failure).
    pub async fn delete(&self, keys: &[String]) -> u64 {
        match self {
            Cache::Memory(c) => c.delete(keys).await,
            Cache::Redis(c) => c.delete(keys).await,
        }
    }

    /// Removes every key starting with `prefix`; answers how many were removed.
    pub async fn delete_prefix(&self, prefix: &str) -> u64 {
        match self {
            Cache::Memory(c) => c.delete_prefix(prefix).await,
            Cache::Redis(c) => c.delete_prefix(prefix).await,
        }
    }

    /// Readiness: an error message when the backend does not answer.
    pub async fn ping(&self) -> Result<(), String> {
        match self {
            Cache::Memory(_) => Ok(()),
            Cache::Redis(c) => c.ping().await,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheOpLabels {
    pub backend: &'static str,
    pub operation: &'static str,
    pub outcome: &'static str,
}

/// Cache operations by backend, operation and outcome (`hit`, `miss`, `ok`, `error`).
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

    pub(crate) fn count(
        &self,
        backend: &'static str,
        operation: &'static str,
        outcome: &'static str,
    ) {
        self.operations
            .get_or_create(&CacheOpLabels {
                backend,
                operation,
                outcome,
            })
            .inc();
    }
}

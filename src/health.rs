//! Readiness: whether the dependencies this instance needs answer right now.
//!
//! Owns: the dependency probes behind `GET /health/ready` (the database, and Redis when it is
//! configured), each with its own deadline, and the report's shape. Embedded mode has no Redis:
//! its cache is the in-process tier, always up, reported as backend `memory`.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::db::Database;
use crate::redis::RedisCache;

/// The probes of one process. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Readiness {
    db: Database,
    cache: Option<RedisCache>,
    timeout: Duration,
}

/// One dependency's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Check {
    pub status: &'static str,
    pub backend: &'static str,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The checks of every dependency.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Checks {
    pub store: Check,
    pub cache: Check,
}

impl Checks {
    /// True when every dependency answered in time.
    pub fn all_up(&self) -> bool {
        self.store.error.is_none() && self.cache.error.is_none()
    }
}

impl Readiness {
    /// Probes `db` and, when present, `cache`, each within `timeout`.
    pub fn new(db: Database, cache: Option<RedisCache>, timeout: Duration) -> Self {
        Self { db, cache, timeout }
    }

    /// Every dependency checked at once.
    pub async fn check(&self) -> Checks {
        let store = probe(self.db.backend(), self.timeout, async {
            self.db.ping().await.map_err(|e| e.to_string())
        });
        let cache = async {
            match &self.cache {
                Some(cache) => probe("redis", self.timeout, cache.ping()).await,
                None => probe("memory", self.timeout, async { Ok(()) }).await,
            }
        };
        let (store, cache) = tokio::join!(store, cache);
        Checks { store, cache }
    }
}

async fn probe(
    backend: &'static str,
    timeout: Duration,
    probe: impl std::future::Future<Output = Result<(), String>>,
) -> Check {
    let started = Instant::now();
    let error = match tokio::time::timeout(timeout, probe).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(format!("no answer within {} ms", timeout.as_millis())),
    };
    Check {
        status: if error.is_none() { "up" } else { "down" },
        backend,
        latency_ms: (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
        error,
    }
}

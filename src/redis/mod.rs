//! Redis, shared by every instance: the connection pool with its fail-fast breaker, and the
//! byte cache on top of it.
//!
//! Owns: `REDIS_*` settings, connections ([`RedisPool`], shared by the cache and the rate
//! limiter), and [`RedisCache`]. Must not know what is stored: callers own their keys. Without
//! `REDIS_URL` there is no Redis at all; the features that would use it keep their state in
//! process (the lesson loader's L1, the in-process limiter).

mod breaker;
mod cache;
mod pool;

pub use self::cache::{CacheMetrics, RedisCache};
pub use self::pool::RedisPool;

use secrecy::SecretString;

use crate::config::{Env, SettingDoc};

/// Shared cache and limiter backend. Absent = in-process cache and limiter.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: SecretString,
    pub password: Option<SecretString>,
    pub max_connections: usize,
    pub key_prefix: String,
}

/// Variables read by this module.
pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc::new(
        "REDIS_URL",
        "unset: in-process cache and limiter",
        "`redis://` or `rediss://` (TLS, e.g. Upstash) URL of the shared cache and rate limiter.",
    ),
    SettingDoc::new(
        "REDIS_PASSWORD",
        "unset",
        "Password applied to `REDIS_URL` when the URL carries none.",
    ),
    SettingDoc::new(
        "REDIS_MAX_CONNECTIONS",
        "`4`",
        "Multiplexed Redis connections per process; requests are spread over them.",
    ),
    SettingDoc::new(
        "REDIS_KEY_PREFIX",
        "`study_mode:`",
        "Prefix of every Redis key this service writes.",
    ),
];

impl RedisSettings {
    /// `None` when `REDIS_URL` is unset.
    pub fn from_env(env: &mut Env) -> Option<Self> {
        let url = env.string("REDIS_URL")?;
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            env.error("REDIS_URL", "must start with redis:// or rediss://");
        }
        let max_connections = env.parse_or("REDIS_MAX_CONNECTIONS", 4usize);
        if max_connections == 0 {
            env.error("REDIS_MAX_CONNECTIONS", "must be at least 1");
        }
        Some(Self {
            url: url.into(),
            password: env.string("REDIS_PASSWORD").map(SecretString::from),
            max_connections,
            key_prefix: env
                .string("REDIS_KEY_PREFIX")
                .unwrap_or_else(|| "study_mode:".into()),
        })
    }
}

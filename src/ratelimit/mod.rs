//! Rate limiting: policies, the Redis limiter (one atomic Lua script) and the in-process one.
//!
//! Owns: admission decisions and the `RateLimit*` headers. Must fail open when Redis is down.

use crate::config::{Env, SettingDoc};

/// Settings of the rate limiter.
#[derive(Debug, Clone, Default)]
pub struct RateLimitSettings {}

/// Variables read by this module.
pub const SETTINGS: &[SettingDoc] = &[];

impl RateLimitSettings {
    pub fn from_env(_env: &mut Env) -> Self {
        Self {}
    }
}

//! Rate limiting: policies, the Redis limiter (one atomic Lua script) and the in-process one.
//!
//! Owns: admission decisions, the client IP of a request, and the `RateLimit*` headers. Must
//! fail open when Redis is down.
//!
//! INTERIM (until the rate-limit issue lands): every request is admitted and no headers are
//! added. Callers already use the final API ([`RateLimiter::check`], [`ClientIp`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use prometheus_client::registry::Registry;

use crate::app::AppState;
use crate::cache::RedisPool;
use crate::config::{Env, SettingDoc};
use crate::error::ApiError;

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

/// Which policy a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Per user: `threads.create`, `threads.add_user_message`, `threads.retry_after_item`.
    Chat,
    /// Per client IP: unauthenticated endpoints such as suggestions.
    Anon,
}

/// The limiter of one process.
#[derive(Debug, Clone, Default)]
pub struct RateLimiter {}

impl RateLimiter {
    pub fn new(
        _settings: &RateLimitSettings,
        _redis: Option<Arc<RedisPool>>,
        _registry: &mut Registry,
    ) -> Self {
        Self {}
    }

    /// Counts one request of `key` against `policy`: the headers to add to the response when
    /// admitted, or a 429 error (with `Retry-After` and the same headers) when not.
    pub async fn check(&self, _policy: Policy, _key: &str) -> Result<HeaderMap, ApiError> {
        Ok(HeaderMap::new())
    }
}

/// The client's IP address: the socket peer (proxies are handled by the rate-limit issue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| ClientIp(addr.ip()))
            .ok_or_else(|| ApiError::internal("no peer address on the request"))
    }
}

//! Rate limiting: policies, the Redis limiter (one atomic Lua script per batch of concurrent
//! checks) and the in-process one.
//!
//! Owns: admission decisions, the client IP of a request, and the `RateLimit*` headers. Must
//! fail open when Redis is down (admit, count `outcome="failed_open"`, log at most once a
//! minute).
//!
//! Headers follow draft-ietf-httpapi-ratelimit-headers-09 (structured fields): every answer of
//! a checked request carries `RateLimit-Policy: "chat";q=20;w=60` (quota, window in seconds)
//! and `RateLimit: "chat";r=3;t=12` (remaining, seconds until the oldest counted request
//! leaves the window). A multi-window policy lists one item per window, named
//! `chat-60s`, `chat-86400s`. A refusal is a 429 with `Retry-After` (seconds) and the JSON error
//! `rate_limited` whose `details` give `policy`, `limit`, `window`, `reset_seconds`, `reset_at`.

mod batch;
mod client_ip;
mod memory;
pub mod policy;
mod redis;
pub mod window;

pub use policy::{Limits, Window};

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::config::{Env, SettingDoc};
use crate::redis::RedisPool;
use crate::telemetry::LogThrottle;
use window::Decision;

/// `RateLimit-Policy` response header.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit` response header.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Settings of the rate limiter.
#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    pub chat: Limits,
    pub anon: Limits,
    /// Failed authentications per client IP (`RATE_LIMIT_AUTH_FAILURES`).
    pub auth_failures: Limits,
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        let per_minute = |limit| {
            Limits(vec![Window {
                limit,
                period: Duration::from_secs(60),
            }])
        };
        Self {
            chat: per_minute(20),
            anon: per_minute(120),
            auth_failures: per_minute(30),
            trusted_proxies: Vec::new(),
        }
    }
}

/// Variables read by this module.
pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc::new(
        "RATE_LIMIT_CHAT",
        "`20/minute`",
        "Per-user limit of new chat turns (`threads.create`, `add_user_message`, `retry_after_item`); e.g. `20/minute,200/day`.",
    ),
    SettingDoc::new(
        "RATE_LIMIT_ANON",
        "`120/minute`",
        "Per-client-IP limit of unauthenticated endpoints (suggestions).",
    ),
    SettingDoc::new(
        "RATE_LIMIT_AUTH_FAILURES",
        "`30/minute`",
        "Per-client-IP limit of failed authentications; beyond it requests with a token are 429 before the token is checked (no SSO call).",
    ),
    SettingDoc::new(
        "TRUSTED_PROXIES",
        "unset: `X-Forwarded-For` ignored",
        "Comma-separated IPs/CIDRs of reverse proxies whose `X-Forwarded-For` is believed.",
    ),
];

impl RateLimitSettings {
    /// The windows of `policy`.
    pub fn limits(&self, policy: Policy) -> &Limits {
        match policy {
            Policy::Chat => &self.chat,
            Policy::Anon => &self.anon,
            Policy::AuthFailures => &self.auth_failures,
        }
    }

    pub fn from_env(env: &mut Env) -> Self {
        let defaults = Self::default();
        let trusted_proxies = match env
            .string("TRUSTED_PROXIES")
            .map(|s| client_ip::parse_trusted(&s))
        {
            None => Vec::new(),
            Some(Ok(list)) => list,
            Some(Err(e)) => {
                env.error("TRUSTED_PROXIES", e);
                Vec::new()
            }
        };
        Self {
            chat: env.parse_or("RATE_LIMIT_CHAT", defaults.chat),
            anon: env.parse_or("RATE_LIMIT_ANON", defaults.anon),
            auth_failures: env.parse_or("RATE_LIMIT_AUTH_FAILURES", defaults.auth_failures),
            trusted_proxies,
        }
    }
}

/// Most subjects remembered as over a failure budget (expired ones are dropped first).
const MAX_REFUSED: usize = 100_000;

fn subject_of(policy: Policy, key: &str) -> String {
    format!("ratelimit:{}:{}", policy.name(), key)
}

/// Which policy a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Per user: `threads.create`, `threads.add_user_message`, `threads.retry_after_item`.
    Chat,
    /// Per client IP: unauthenticated endpoints such as suggestions.
    Anon,
    /// Per client IP: failed authentications ([`RateLimiter::record_failure`]).
    AuthFailures,
}

impl Policy {
    /// Position in per-policy arrays.
    fn index(self) -> usize {
        match self {
            Self::Chat => 0,
            Self::Anon => 1,
            Self::AuthFailures => 2,
        }
    }

    /// The policy's name in headers, keys and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Anon => "anon",
            Self::AuthFailures => "auth_failures",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    policy: &'static str,
    outcome: &'static str,
}

#[derive(Debug)]
enum Backend {
    Redis(Arc<RedisPool>, redis::RedisLimiter),
    Memory(memory::MemoryLimiter),
}

#[derive(Debug)]
struct Inner {
    settings: RateLimitSettings,
    backend: Backend,
    decisions: Family<DecisionLabels, Counter>,
    /// Subjects over a failure budget, until when, with the refusal to repeat (in process).
    refused: Mutex<HashMap<String, (Instant, Limited)>>,
    log: LogThrottle,
    /// `RateLimit-Policy` of each policy (by [`Policy::index`]): the same on every answer.
    policy_headers: [Option<HeaderValue>; 3],
}

/// The limiter of one process (cheap to clone).
#[derive(Debug, Clone)]
pub struct RateLimiter(Arc<Inner>);

impl RateLimiter {
    pub fn new(
        settings: &RateLimitSettings,
        redis: Option<Arc<RedisPool>>,
        registry: &mut Registry,
    ) -> Self {
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "ratelimit_decisions",
            "Rate-limit decisions by policy and outcome (admitted, limited, failed_open)",
            decisions.clone(),
        );
        let backend = match redis {
            Some(pool) => {
                let sizes = Histogram::new(exponential_buckets(1.0, 2.0, 8));
                registry.register(
                    "ratelimit_redis_batch_checks",
                    "Limiter checks sent to Redis per script call (concurrent checks are batched)",
                    sizes.clone(),
                );
                Backend::Redis(pool.clone(), redis::RedisLimiter::new(pool, sizes))
            }
            None => Backend::Memory(memory::MemoryLimiter::default()),
        };
        let policy_headers = [Policy::Chat, Policy::Anon, Policy::AuthFailures]
            .map(|p| policy_value(p, settings.limits(p)));
        Self(Arc::new(Inner {
            settings: settings.clone(),
            backend,
            decisions,
            refused: Mutex::new(HashMap::new()),
            log: LogThrottle::new(Duration::from_secs(60)),
            policy_headers,
        }))
    }

    /// The windows of `policy`.
    pub fn limits(&self, policy: Policy) -> &Limits {
        self.0.settings.limits(policy)
    }

    /// Counts one request of `key` against `policy`: the headers to add to the response when
    /// admitted, or [`Limited`] (answered 429 with `Retry-After` and the same headers) when not.
    pub async fn check(&self, policy: Policy, key: &str) -> Result<HeaderMap, Limited> {
        let limits = self.limits(policy);
        let decision = match &self.0.backend {
            Backend::Memory(m) => m.check(&subject_of(policy, key), limits.windows()),
            Backend::Redis(pool, script) => {
                // `pool.key(subject_of(..))`, in one allocation.
                let prefixed = format!("{}ratelimit:{}:{}", pool.prefix(), policy.name(), key);
                match script.check(prefixed, limits.windows()).await {
                    Ok(d) => d,
                    Err(error) => return Ok(self.fail_open(policy, &error)),
                }
            }
        };
        let mut headers = self.policy_header(policy, 2);
        if let Some(v) = state_value(policy, limits, &decision) {
            headers.insert(RATELIMIT, v);
        }
        if decision.admitted {
            self.count(policy, "admitted");
            Ok(headers)
        } else {
            self.count(policy, "limited");
            Err(Limited::new(policy, limits, &decision, headers))
        }
    }

    /// Counts one failure of `key` against `policy` (failed authentications): `Some` once the
    /// budget is spent, and from then on [`Self::still_refused`] answers for `key` at once
    /// until the window lets it in again.
    pub async fn record_failure(&self, policy: Policy, key: &str) -> Option<Limited> {
        let limited = self.check(policy, key).await.err()?;
        let until = Instant::now() + Duration::from_secs(limited.retry_after_secs);
        let mut refused = self.0.refused.lock().unwrap_or_else(|e| e.into_inner());
        if refused.len() >= MAX_REFUSED {
            let now = Instant::now();
            refused.retain(|_, (until, _)| *until > now);
        }
        if refused.len() < MAX_REFUSED {
            refused.insert(subject_of(policy, key), (until, limited.clone()));
        }
        Some(limited)
    }

    /// The refusal of `key` while it is over its failure budget (no request is counted).
    pub fn still_refused(&self, policy: Policy, key: &str) -> Option<Limited> {
        let subject = subject_of(policy, key);
        let mut refused = self.0.refused.lock().unwrap_or_else(|e| e.into_inner());
        match refused.get(&subject) {
            Some((until, limited)) if *until > Instant::now() => Some(limited.clone()),
            Some(_) => {
                refused.remove(&subject);
                None
            }
            None => None,
        }
    }

    /// The client address of a request from `peer` (see [`ClientIp`]).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        client_ip::resolve(peer, forwarded, &self.0.settings.trusted_proxies)
    }

    fn fail_open(&self, policy: Policy, error: &::redis::RedisError) -> HeaderMap {
        self.count(policy, "failed_open");
        if self.0.log.allow() {
            tracing::warn!(policy = policy.name(), %error,
                "rate limiter unavailable, admitting requests (fail open; muted for 60 s)");
        }
        self.policy_header(policy, 1)
    }

    /// A map of room for `capacity` headers, holding `RateLimit-Policy`.
    fn policy_header(&self, policy: Policy, capacity: usize) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(capacity);
        if let Some(v) = &self.0.policy_headers[policy.index()] {
            map.insert(RATELIMIT_POLICY, v.clone());
        }
        map
    }

    fn count(&self, policy: Policy, outcome: &'static str) {
        self.0
            .decisions
            .get_or_create(&DecisionLabels {
                policy: policy.name(),
                outcome,
            })
            .inc();
    }
}

fn push_item_name(out: &mut String, policy: Policy, limits: &Limits, w: &Window) {
    out.push_str(policy.name());
    if limits.windows().len() > 1 {
        let _ = write!(out, "-{}s", w.period.as_secs());
    }
}

/// `RateLimit-Policy`: `"chat";q=20;w=60`, one item per window.
fn policy_value(policy: Policy, limits: &Limits) -> Option<HeaderValue> {
    let mut out = String::new();
    for (i, w) in limits.windows().iter().enumerate() {
        out.push_str(if i == 0 { "\"" } else { ", \"" });
        push_item_name(&mut out, policy, limits, w);
        let _ = write!(out, "\";q={};w={}", w.limit, w.period.as_secs());
    }
    HeaderValue::from_str(&out).ok()
}

/// `RateLimit`: `"chat";r=3;t=12`, one item per window.
fn state_value(policy: Policy, limits: &Limits, decision: &Decision) -> Option<HeaderValue> {
    let mut out = String::with_capacity(24 * limits.windows().len());
    for (i, (w, s)) in limits.windows().iter().zip(&decision.windows).enumerate() {
        out.push_str(if i == 0 { "\"" } else { ", \"" });
        push_item_name(&mut out, policy, limits, w);
        let _ = write!(out, "\";r={};t={}", s.remaining, ceil_secs(s.reset));
    }
    HeaderValue::from_str(&out).ok()
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}

/// A refused request: which window refused it and when to come back.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "rate limit exceeded: at most {limit} requests per {window_secs} s; retry in {retry_after_secs} s"
)]
pub struct Limited {
    pub policy: Policy,
    /// Quota of the window that refused (the one with the longest wait).
    pub limit: u64,
    pub window_secs: u64,
    /// Whole seconds until a request would be admitted (at least 1).
    pub retry_after_secs: u64,
    pub reset_at: chrono::DateTime<chrono::Utc>,
    /// `RateLimit-Policy` and `RateLimit`, as on an admitted request.
    pub headers: HeaderMap,
}

impl Limited {
    fn new(policy: Policy, limits: &Limits, decision: &Decision, headers: HeaderMap) -> Self {
        let retry = ceil_secs(decision.retry_after()).max(1);
        // The window that refused with the longest wait is the one reported.
        let blocking = limits
            .windows()
            .iter()
            .zip(&decision.windows)
            .filter(|(_, s)| s.remaining == 0)
            .max_by_key(|(_, s)| s.reset)
            .map(|(w, _)| *w)
            .unwrap_or(limits.windows()[0]);
        Self {
            policy,
            limit: blocking.limit,
            window_secs: blocking.period.as_secs(),
            retry_after_secs: retry,
            reset_at: chrono::Utc::now() + chrono::Duration::seconds(retry as i64),
            headers,
        }
    }
}

/// The client's IP address: the socket peer, or the rightmost untrusted `X-Forwarded-For`
/// address when the peer is in `TRUSTED_PROXIES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The request came without the peer address the accept loop attaches: a wiring bug, answered
/// with an opaque 500.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no peer address on the request")]
pub struct NoPeerAddress;

impl<S> FromRequestParts<S> for ClientIp
where
    RateLimiter: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = NoPeerAddress;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, NoPeerAddress> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or(NoPeerAddress)?;
        let limiter = RateLimiter::from_ref(state);
        Ok(ClientIp(limiter.client_ip(peer, &parts.headers)))
    }
}

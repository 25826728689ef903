//! The state every route can reach, as sub-states: each handler and extractor asks for the part
//! it uses (`State<Content>`, `State<ChatKit>`, …) through axum's `FromRef`, so no feature ever
//! names [`AppState`].
//!
//! Owns: the shape of the state and the small plain sub-states that belong to no feature (body
//! limits, admin secrets). Built by `crate::startup`; imports feature types only.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::chatkit::ChatKit;
use crate::content::Content;
use crate::health::Readiness;
use crate::ratelimit::RateLimiter;
use crate::telemetry::metrics::Metrics;

/// Everything a request handler can reach. Cheap to clone (handles and `Arc`s).
#[derive(Clone, FromRef)]
pub struct AppState {
    pub auth: Arc<Auth>,
    pub limiter: RateLimiter,
    pub chatkit: ChatKit,
    pub content: Content,
    pub readiness: Readiness,
    pub metrics: Arc<Metrics>,
    pub body: BodyLimits,
    pub secrets: Secrets,
    /// Cancelled when open streams must end (shutdown deadline reached).
    pub shutdown: CancellationToken,
}

/// How much of a request body is read, and for how long (`MAX_BODY_BYTES`,
/// `BODY_READ_TIMEOUT_SECS`).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub read_timeout: Duration,
}

/// The shared secrets of the admin and webhook routes; a route whose secret is unset answers
/// 404.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub admin: Option<Arc<SecretString>>,
    pub github_webhook: Option<Arc<SecretString>>,
}

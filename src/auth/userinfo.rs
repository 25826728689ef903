//! Opaque (non-JWT) tokens, verified by the SSO's OIDC userinfo endpoint.
//!
//! Positive answers are cached for `USERINFO_CACHE_SECS` under the SHA-256 of the token (the
//! token itself is never stored, logged or used as a key); concurrent requests with the same
//! token share one call (moka's `try_get_with`). Rejections are remembered for
//! [`REJECTED_TTL`] under the same hash, so a client replaying random tokens costs the SSO one
//! call per token, not one per request.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use super::CurrentUser;
use super::claims::user_from_claims;
use super::error::AuthError;
use crate::telemetry::LogThrottle;

/// How long a token the SSO refused is refused without asking again.
pub const REJECTED_TTL: Duration = Duration::from_secs(60);

/// Largest userinfo answer accepted.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The userinfo client and its cache.
pub struct Userinfo {
    url: String,
    http: reqwest::Client,
    /// `None` when `USERINFO_CACHE_SECS` is 0.
    cache: Option<Cache<[u8; 32], CurrentUser>>,
    /// Hashes of tokens refused within [`REJECTED_TTL`], with the refusal.
    rejected: Cache<[u8; 32], AuthError>,
    log: LogThrottle,
}

impl std::fmt::Debug for Userinfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Userinfo").field("url", &self.url).finish()
    }
}

impl Userinfo {
    pub fn new(url: String, http: reqwest::Client, ttl: Duration) -> Self {
        Self {
            url,
            http,
            cache: (!ttl.is_zero()).then(|| {
                Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(ttl)
                    .build()
            }),
            rejected: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(REJECTED_TTL)
                .build(),
            log: LogThrottle::new(Duration::from_secs(60)),
        }
    }

    /// The user the SSO says owns `token`.
    pub async fn verify(&self, token: &str) -> Result<CurrentUser, AuthError> {
        if !is_token68(token) {
            return Err(AuthError::Malformed("not a bearer token"));
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(refusal) = self.rejected.get(&key).await {
            return Err(refusal);
        }
        let result = match &self.cache {
            None => self.fetch(token).await,
            Some(cache) => cache
                .try_get_with(key, self.fetch(token))
                .await
                .map_err(|e: Arc<AuthError>| (*e).clone()),
        };
        if let Err(refusal) = &result
            && !matches!(refusal, AuthError::Unavailable(_))
        {
            self.rejected.insert(key, refusal.clone()).await;
        }
        result
    }

    async fn fetch(&self, token: &str) -> Result<CurrentUser, AuthError> {
        let response = self
            .http
            .get(&self.url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| self.unavailable(format!("request failed: {e}")))?;
        match response.status() {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Err(AuthError::Rejected),
            s => return Err(self.unavailable(format!("answered {s}"))),
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| self.unavailable(format!("reading the body failed: {e}")))?;
        if body.len() > MAX_BODY_BYTES {
            return Err(self.unavailable("answer too large".into()));
        }
        let claims: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| self.unavailable("answer is not JSON".into()))?;
        user_from_claims(&claims)
    }

    fn unavailable(&self, error: String) -> AuthError {
        // `error` comes from reqwest or the status; it never contains the token (a header).
        if self.log.allow() {
            tracing::warn!(url = %self.url, %error, "userinfo call failed (further failures muted for 60 s)");
        }
        AuthError::Unavailable(
            "cannot verify the token: the SSO's userinfo endpoint is unavailable".into(),
        )
    }
}

/// RFC 6750 `b64token`: the only characters a bearer token may contain.
fn is_token68(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn bearer_token_syntax_is_enforced() {
        assert!(super::is_token68("abc-DEF_123.~+/=="));
        assert!(!super::is_token68("has space"));
        assert!(!super::is_token68("=="));
        assert!(!super::is_token68("quote\""));
    }
}

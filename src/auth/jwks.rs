//! The SSO's signing keys (JWKS): fetched over HTTP, cached, refreshed.
//!
//! - Fresh for `JWKS_CACHE_TTL_SECS` (1 h); a stale set is refreshed by one request while the
//!   others keep using it; a failed refresh keeps the old keys (logged, throttled).
//! - An unknown `kid` triggers at most one refresh per [`UNKNOWN_KID_INTERVAL`], single-flight:
//!   concurrent requests wait for the one fetch instead of each fetching.
//! - After a failed fetch no new fetch is tried for [`FAILURE_BACKOFF`], so an unreachable SSO
//!   is not hammered by every request.
//! - The algorithm of each key comes from the JWK (its `alg`, else its key type and curve);
//!   only RS256, ES256 and EdDSA keys are kept. HMAC (`oct`) keys are never used.
//!
//! Hand-written rather than a generic cache because moka has no "keep the last good value".

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::error::AuthError;
use crate::telemetry::LogThrottle;

/// At most one refresh per this interval is caused by tokens with an unknown `kid`.
pub const UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(60);
/// Pause after a failed fetch before the next one.
pub const FAILURE_BACKOFF: Duration = Duration::from_secs(5);
/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// One verification key and the only algorithm it may verify.
#[derive(Clone)]
pub struct VerifyingKey {
    pub key: DecodingKey,
    pub alg: Algorithm,
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Arc<VerifyingKey>>,
    fetched_at: Option<Instant>,
    failed_at: Option<Instant>,
    unknown_kid_refresh_at: Option<Instant>,
    /// Completed fetch attempts: lets a waiter see that another task fetched meanwhile.
    attempts: u64,
}

/// The cached key set of one SSO.
pub struct Jwks {
    url: String,
    http: reqwest::Client,
    ttl: Duration,
    state: RwLock<KeySet>,
    refresh: tokio::sync::Mutex<()>,
    log: LogThrottle,
    fetches: Family<Vec<(String, String)>, Counter>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks").field("url", &self.url).finish()
    }
}

enum Lookup {
    Fresh(Arc<VerifyingKey>),
    Stale(Arc<VerifyingKey>),
    Missing { attempts: u64 },
}

impl Jwks {
    pub fn new(
        url: String,
        http: reqwest::Client,
        ttl: Duration,
        fetches: Family<Vec<(String, String)>, Counter>,
    ) -> Self {
        Self {
            url,
            http,
            ttl,
            state: RwLock::new(KeySet::default()),
            refresh: tokio::sync::Mutex::new(()),
            log: LogThrottle::new(Duration::from_secs(60)),
            fetches,
        }
    }

    /// The key named `kid`, refreshing the set when needed.
    pub async fn key(&self, kid: &str) -> Result<Arc<VerifyingKey>, AuthError> {
        match self.lookup(kid) {
            Lookup::Fresh(key) => Ok(key),
            Lookup::Stale(key) => {
                // One request refreshes; the others do not wait for it.
                if let Ok(_guard) = self.refresh.try_lock() {
                    self.fetch_unless_backing_off().await;
                }
                Ok(self.current(kid).unwrap_or(key))
            }
            Lookup::Missing { attempts } => self.refresh_for_missing(kid, attempts).await,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeySet> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, KeySet> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn current(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.read().keys.get(kid).cloned()
    }

    fn lookup(&self, kid: &str) -> Lookup {
        let set = self.read();
        match set.keys.get(kid) {
            Some(key) if set.fetched_at.is_some_and(|t| t.elapsed() < self.ttl) => {
                Lookup::Fresh(key.clone())
            }
            Some(key) => Lookup::Stale(key.clone()),
            None => Lookup::Missing {
                attempts: set.attempts,
            },
        }
    }

    async fn refresh_for_missing(
        &self,
        kid: &str,
        seen_attempts: u64,
    ) -> Result<Arc<VerifyingKey>, AuthError> {
        {
            let _guard = self.refresh.lock().await;
            // Someone else fetched while we waited: use their result.
            if self.read().attempts == seen_attempts && self.may_refresh_for_unknown_kid() {
                self.fetch_unless_backing_off().await;
            }
        }
        if let Some(key) = self.current(kid) {
            return Ok(key);
        }
        let set = self.read();
        if set.keys.is_empty() && set.failed_at.is_some() {
            return Err(AuthError::Unavailable(
                "cannot verify tokens: the SSO's key set (JWKS) is unreachable and no keys are cached"
                    .into(),
            ));
        }
        Err(AuthError::UnknownKey)
    }

    /// Before the first successful fetch we always may (failures are paced by
    /// [`FAILURE_BACKOFF`]); afterwards once per [`UNKNOWN_KID_INTERVAL`], even when the SSO
    /// published no keys, so garbage `kid`s cannot make us hammer it.
    fn may_refresh_for_unknown_kid(&self) -> bool {
        let mut set = self.write();
        if set.fetched_at.is_none() {
            return true;
        }
        if set
            .unknown_kid_refresh_at
            .is_some_and(|t| t.elapsed() < UNKNOWN_KID_INTERVAL)
        {
            return false;
        }
        set.unknown_kid_refresh_at = Some(Instant::now());
        true
    }

    async fn fetch_unless_backing_off(&self) {
        if self
            .read()
            .failed_at
            .is_some_and(|t| t.elapsed() < FAILURE_BACKOFF)
        {
            return;
        }
        let result = self.fetch().await;
        let mut set = self.write();
        set.attempts += 1;
        match result {
            Ok(keys) => {
                self.count("ok");
                set.keys = keys;
                set.fetched_at = Some(Instant::now());
                set.failed_at = None;
            }
            Err(error) => {
                self.count("error");
                set.failed_at = Some(Instant::now());
                if self.log.allow() {
                    tracing::warn!(url = %self.url, %error, cached_keys = set.keys.len(),
                        "JWKS refresh failed; keeping the cached keys (further failures muted for 60 s)");
                }
            }
        }
    }

    fn count(&self, outcome: &str) {
        self.fetches
            .get_or_create(&vec![("outcome".to_owned(), outcome.to_owned())])
            .inc();
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<VerifyingKey>>, String> {
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("reading the body failed: {e}"))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("document larger than {MAX_JWKS_BYTES} bytes"));
        }
        parse_key_set(&body)
    }
}

/// Parses a JWKS document, keeping each usable key (a key we cannot use is skipped, not fatal).
pub fn parse_key_set(body: &[u8]) -> Result<HashMap<String, Arc<VerifyingKey>>, String> {
    #[derive(serde::Deserialize)]
    struct Doc {
        keys: Vec<serde_json::Value>,
    }
    let doc: Doc = serde_json::from_slice(body).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = HashMap::new();
    for raw in doc.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw) else {
            continue;
        };
        if let (Some(kid), Some(key)) = (jwk.common.key_id.clone(), verifying_key(&jwk)) {
            keys.insert(kid, Arc::new(key));
        }
    }
    Ok(keys)
}

/// The key and its algorithm, when the JWK is a signing key of a supported kind.
fn verifying_key(jwk: &Jwk) -> Option<VerifyingKey> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let inferred = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    let declared = match jwk.common.key_algorithm {
        None => inferred,
        Some(KeyAlgorithm::RS256) => Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => Algorithm::ES256,
        Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
        Some(_) => return None,
    };
    if declared != inferred {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyingKey { key, alg: declared })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_keys_unknown_curves_and_mismatched_algorithms_are_skipped() {
        let doc = br#"{"keys":[
            {"kty":"oct","kid":"h","k":"c2VjcmV0"},
            {"kty":"EC","kid":"p384","crv":"P-384","x":"AA","y":"AA"},
            {"kty":"OKP","kid":"ed-as-rsa","crv":"Ed25519","alg":"RS256","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty":"OKP","kid":"ed","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty":"weird","kid":"w"}
        ]}"#;
        let keys = parse_key_set(doc).expect("a JWKS");
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["ed"]);
        assert_eq!(keys["ed"].alg, Algorithm::EdDSA);
    }

    #[test]
    fn a_document_that_is_not_a_jwks_is_an_error() {
        assert!(parse_key_set(b"<html>").is_err());
        assert!(parse_key_set(br#"{"nokeys":[]}"#).is_err());
    }
}

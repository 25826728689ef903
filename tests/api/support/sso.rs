//! A fake SSO for the auth tests: a real local HTTP server publishing a JWKS and a userinfo
//! endpoint, counting every request it receives, plus the signing keys (PEM fixtures under
//! tests/fixtures/jwt: RSA 2048, EC P-256, Ed25519) and helpers that mint tokens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A private key and the JWK publishing its public half under `kid`.
#[derive(Clone)]
pub struct Key {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
}

impl Key {
    pub fn rsa(kid: &str, file: &str) -> Self {
        let encoding = EncodingKey::from_rsa_pem(&fixture(file)).expect("rsa pem");
        Self::from_encoding(kid, Algorithm::RS256, encoding)
    }

    pub fn ec(kid: &str, file: &str) -> Self {
        let encoding = EncodingKey::from_ec_pem(&fixture(file)).expect("ec pem");
        Self::from_encoding(kid, Algorithm::ES256, encoding)
    }

    /// Ed25519: the JWK `x` is the last 32 bytes of the SubjectPublicKeyInfo.
    pub fn ed(kid: &str, file: &str) -> Self {
        let encoding = EncodingKey::from_ed_pem(&fixture(file)).expect("ed pem");
        let public = String::from_utf8(fixture(&file.replace(".pem", ".pub.pem"))).expect("utf8");
        let b64: String = public.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(b64).expect("pem body");
        let x = URL_SAFE_NO_PAD.encode(&der[der.len() - 32..]);
        Self {
            kid: kid.into(),
            alg: Algorithm::EdDSA,
            encoding,
            jwk: json!({"kty":"OKP","crv":"Ed25519","x":x,"kid":kid,"use":"sig","alg":"EdDSA"}),
        }
    }

    fn from_encoding(kid: &str, alg: Algorithm, encoding: EncodingKey) -> Self {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("jwk");
        jwk.common.key_id = Some(kid.into());
        Self {
            kid: kid.into(),
            alg,
            encoding,
            jwk: serde_json::to_value(jwk).expect("jwk json"),
        }
    }

    /// A token with a standard header (`alg` of this key, `kid`) over `claims`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(
            &json!({"alg": alg_name(self.alg), "kid": self.kid, "typ": "JWT"}),
            claims,
        )
    }

    /// A token with any header, signed by this key with its own algorithm.
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        sign_raw(header, claims, &self.encoding, self.alg)
    }
}

pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::HS256 => "HS256",
        _ => "other",
    }
}

pub fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

pub fn sign_raw(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).expect("sign");
    format!("{message}.{signature}")
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims of a valid token for `sub`, valid for 10 minutes.
pub fn claims(sub: &str) -> Value {
    json!({"sub": sub, "email": format!("{sub}@example.com"), "name": "Ann Example",
           "iat": now(), "exp": now() + 600, "organization_ids": ["org-1"]})
}

#[derive(Default)]
pub struct SsoState {
    pub keys: Mutex<Vec<Value>>,
    pub userinfo: Mutex<HashMap<String, Value>>,
    pub jwks_hits: AtomicUsize,
    pub userinfo_hits: AtomicUsize,
    pub other_hits: AtomicUsize,
    /// When set, every endpoint answers 503 (the SSO is down).
    pub down: AtomicBool,
}

/// A running fake SSO.
pub struct FakeSso {
    pub url: String,
    pub state: Arc<SsoState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSso {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeSso {
    pub async fn start(keys: &[&Key]) -> Self {
        let state = Arc::new(SsoState::default());
        *state.keys.lock().expect("lock") = keys.iter().map(|k| k.jwk.clone()).collect();
        let router = Self::router(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { url, state, task }
    }

    /// The same SSO over HTTPS (HTTP/2) with `ca`'s certificate.
    pub async fn start_tls(keys: &[&Key], ca: &super::tls::TestCa) -> Self {
        let state = Arc::new(SsoState::default());
        *state.keys.lock().expect("lock") = keys.iter().map(|k| k.jwk.clone()).collect();
        let server = super::tls::serve_h2(Self::router(state.clone()), ca, 100).await;
        Self {
            url: server.origin,
            state,
            task: server.task,
        }
    }

    fn router(state: Arc<SsoState>) -> axum::Router {
        axum::Router::new()
            .route("/api/auth/jwks", get(jwks))
            .route("/api/auth/oauth2/userinfo", get(userinfo))
            .fallback(other)
            .with_state(state)
    }

    pub fn publish(&self, keys: &[&Key]) {
        *self.state.keys.lock().expect("lock") = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    pub fn accept_opaque(&self, token: &str, claims: Value) {
        self.state
            .userinfo
            .lock()
            .expect("lock")
            .insert(token.into(), claims);
    }

    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn userinfo_hits(&self) -> usize {
        self.state.userinfo_hits.load(Ordering::SeqCst)
    }

    pub fn other_hits(&self) -> usize {
        self.state.other_hits.load(Ordering::SeqCst)
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }
}

async fn jwks(State(s): State<Arc<SsoState>>) -> impl IntoResponse {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    if s.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let keys = s.keys.lock().expect("lock").clone();
    Json(json!({ "keys": keys })).into_response()
}

async fn userinfo(State(s): State<Arc<SsoState>>, headers: HeaderMap) -> impl IntoResponse {
    s.userinfo_hits.fetch_add(1, Ordering::SeqCst);
    if s.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    match s.userinfo.lock().expect("lock").get(token) {
        Some(claims) => Json(claims.clone()).into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_token"})),
        )
            .into_response(),
    }
}

async fn other(State(s): State<Arc<SsoState>>) -> StatusCode {
    s.other_hits.fetch_add(1, Ordering::SeqCst);
    StatusCode::NOT_FOUND
}

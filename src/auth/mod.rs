//! Authentication: bearer JWTs verified against the SSO's JWKS, opaque tokens via userinfo,
//! and the development mode.
//!
//! Owns: turning request headers into a verified [`CurrentUser`]. Must never log, count or cache
//! a token (opaque tokens are cached under their SHA-256 only).
//!
//! Rules: `Authorization: Bearer <token>` is required unless dev mode is on. A token of three
//! dot-separated segments is a JWT ([`jwt`]); anything else is an opaque token checked at
//! `USERINFO_URL` ([`userinfo`]). Outside dev mode `X-User-ID` and `?user_id=` are ignored.
//! In dev mode a request without a token is the user of `X-User-ID` (or `?user_id=`, or
//! `DEV_USER_ID`); a request *with* a token is verified like in production when an SSO is
//! configured (so a misconfigured SSO shows up in development), and ignored when none is.

mod claims;
mod error;
pub mod jwks;
pub mod jwt;
pub mod userinfo;

pub use error::AuthError;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::config::{Env, SettingDoc};
use crate::outbound::Outbound;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Deadline of each call to the SSO.
const SSO_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest accepted `JWT_LEEWAY_SECS`.
const MAX_LEEWAY_SECS: u64 = 60;

/// Settings of authentication.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    pub jwks_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub issuer: Option<String>,
    pub audience: Vec<String>,
    pub leeway_secs: u64,
    pub jwks_ttl: Duration,
    pub userinfo_cache_ttl: Duration,
    pub dev_user_id: String,
    /// Whether opaque tokens are checked at userinfo at all (`ALLOW_OPAQUE_TOKENS`).
    pub allow_opaque: bool,
}

/// Variables read by this module.
pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc::new(
        "JWKS_URL",
        "`{SSO_URL}/api/auth/jwks`",
        "JSON Web Key Set that signs the SSO's JWTs (RS256, ES256 or EdDSA keys).",
    ),
    SettingDoc::new(
        "USERINFO_URL",
        "`{SSO_URL}/api/auth/oauth2/userinfo`",
        "OIDC userinfo endpoint that verifies opaque (non-JWT) bearer tokens.",
    ),
    SettingDoc::new(
        "JWT_ISSUER",
        "unset: not checked",
        "Required `iss` of JWTs. Required in production.",
    ),
    SettingDoc::new(
        "JWT_AUDIENCE",
        "unset: not checked",
        "Comma-separated accepted `aud` values of JWTs. Required in production.",
    ),
    SettingDoc::new(
        "JWT_LEEWAY_SECS",
        "`60`",
        "Clock skew allowed on `exp`/`nbf`; more than 60 is refused.",
    ),
    SettingDoc::new(
        "JWKS_CACHE_TTL_SECS",
        "`3600`",
        "How long fetched keys are fresh; a failed refresh keeps the old keys.",
    ),
    SettingDoc::new(
        "USERINFO_CACHE_SECS",
        "`60`",
        "How long a verified opaque token is remembered (0 = ask the SSO every time).",
    ),
    SettingDoc::new(
        "ALLOW_OPAQUE_TOKENS",
        "`false` in production, else `true`",
        "Accept opaque (non-JWT) tokens, checked at userinfo. Userinfo does not prove a token was issued for this service.",
    ),
    SettingDoc::new(
        "DEV_USER_ID",
        "`dev-user-123`",
        "Dev mode only: the user of requests that send neither a token nor `X-User-ID`.",
    ),
];

impl AuthSettings {
    pub fn from_env(env: &mut Env, sso_url: Option<&str>, production: bool) -> Self {
        let derived = |path: &str| sso_url.map(|base| format!("{base}{path}"));
        let leeway_secs = env.parse_or("JWT_LEEWAY_SECS", MAX_LEEWAY_SECS);
        if leeway_secs > MAX_LEEWAY_SECS {
            env.error("JWT_LEEWAY_SECS", "must be at most 60");
        }
        let jwks_ttl = env.secs_or("JWKS_CACHE_TTL_SECS", 3600);
        if jwks_ttl.is_zero() {
            env.error("JWKS_CACHE_TTL_SECS", "must be at least 1");
        }
        let settings = Self {
            jwks_url: env.string("JWKS_URL").or_else(|| derived("/api/auth/jwks")),
            userinfo_url: env
                .string("USERINFO_URL")
                .or_else(|| derived("/api/auth/oauth2/userinfo")),
            issuer: env.string("JWT_ISSUER"),
            audience: env
                .string("JWT_AUDIENCE")
                .map(|a| {
                    a.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            leeway_secs: leeway_secs.min(MAX_LEEWAY_SECS),
            jwks_ttl,
            userinfo_cache_ttl: env.secs_or("USERINFO_CACHE_SECS", 60),
            dev_user_id: env
                .string("DEV_USER_ID")
                .unwrap_or_else(|| "dev-user-123".into()),
            allow_opaque: env.bool("ALLOW_OPAQUE_TOKENS").unwrap_or(!production),
        };
        for (name, url) in [
            ("JWKS_URL", &settings.jwks_url),
            ("USERINFO_URL", &settings.userinfo_url),
        ] {
            if let Some(u) = url
                && url::Url::parse(u).is_err()
            {
                env.error(name, format!("`{u}` is not a URL"));
            }
        }
        settings
    }
}

impl AuthSettings {
    /// Production rules: without both an issuer and an audience, a token minted by the same
    /// SSO for another of its clients would be accepted here.
    pub fn validate_production(&self, env: &mut Env) {
        if self.issuer.is_none() {
            env.error(
                "JWT_ISSUER",
                "is required in production (tokens of any issuer would be accepted)",
            );
        }
        if self.audience.is_empty() {
            env.error(
                "JWT_AUDIENCE",
                "is required in production (tokens minted for another client would be accepted)",
            );
        }
    }
}

/// The verified user of a request. `id` is the store's owner key for every thread and item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrentUser {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: String,
    pub tenant_id: Option<String>,
    pub organization_ids: Vec<String>,
    pub client_id: Option<String>,
    pub client_name: Option<String>,
}

impl CurrentUser {
    /// A user known only by id (dev mode).
    pub fn with_id(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            email: None,
            name: None,
            role: "user".into(),
            tenant_id: None,
            organization_ids: Vec::new(),
            client_id: None,
            client_name: None,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    method: &'static str,
    outcome: &'static str,
}

/// The authenticator of one process (JWKS cache, userinfo cache, dev mode).
#[derive(Debug)]
pub struct Auth {
    jwt: Option<jwt::JwtVerifier>,
    userinfo: Option<userinfo::Userinfo>,
    dev_mode: bool,
    dev_user_id: String,
    outcomes: Family<OutcomeLabels, Counter>,
}

impl Auth {
    /// The authenticator of `settings`; its SSO client is built from `outbound` (extra roots).
    pub fn new(
        settings: &AuthSettings,
        dev_mode: bool,
        outbound: &Outbound,
        registry: &mut Registry,
    ) -> Self {
        let outcomes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "auth_requests",
            "Authentications by method (jwt, userinfo, dev) and outcome (ok or the reason)",
            outcomes.clone(),
        );
        let fetches = Family::<Vec<(String, String)>, Counter>::default();
        registry.register(
            "auth_jwks_fetches",
            "JWKS fetches by outcome",
            fetches.clone(),
        );
        let http = outbound
            .client_builder()
            .timeout(SSO_TIMEOUT)
            .connect_timeout(SSO_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            jwt: settings.jwks_url.clone().map(|url| jwt::JwtVerifier {
                jwks: jwks::Jwks::new(url, http.clone(), settings.jwks_ttl, fetches),
                issuer: settings.issuer.clone(),
                audience: settings.audience.clone(),
                leeway_secs: settings.leeway_secs.min(MAX_LEEWAY_SECS),
            }),
            userinfo: settings
                .userinfo_url
                .clone()
                .filter(|_| settings.allow_opaque)
                .map(|url| userinfo::Userinfo::new(url, http, settings.userinfo_cache_ttl)),
            dev_mode,
            dev_user_id: settings.dev_user_id.clone(),
            outcomes,
        }
    }

    /// Resolves the user of a request from its headers (and, in dev mode only, its query).
    pub async fn authenticate(&self, parts: &Parts) -> Result<CurrentUser, AuthError> {
        let token = match bearer_token(parts) {
            Ok(t) => t,
            Err(e) => return Err(self.reject("header", e)),
        };
        let verifies = self.jwt.is_some() || self.userinfo.is_some();
        match token {
            Some(token) if !self.dev_mode || verifies => self.verify(token).await,
            _ if self.dev_mode => {
                let user = self.dev_user(parts).map_err(|e| self.reject("dev", e))?;
                self.count("dev", "ok");
                Ok(user)
            }
            _ => Err(self.reject("header", AuthError::Missing)),
        }
    }

    /// Verifies a bearer token (JWT or opaque).
    pub async fn verify(&self, token: &str) -> Result<CurrentUser, AuthError> {
        let jwt_shaped = token.bytes().filter(|b| *b == b'.').count() == 2;
        let (method, result) = match (jwt_shaped, &self.jwt, &self.userinfo) {
            (true, Some(jwt), _) => ("jwt", jwt.verify(token).await),
            (false, _, Some(userinfo)) => ("userinfo", userinfo.verify(token).await),
            (true, None, _) => ("jwt", Err(not_configured("JWTs", "JWKS_URL"))),
            (false, _, None) => ("userinfo", Err(AuthError::OpaqueRefused)),
        };
        match result {
            Ok(user) => {
                self.count(method, "ok");
                Ok(user)
            }
            Err(e) => Err(self.reject(method, e)),
        }
    }

    fn reject(&self, method: &'static str, error: AuthError) -> AuthError {
        self.count(method, error.reason());
        error
    }

    fn count(&self, method: &'static str, outcome: &'static str) {
        self.outcomes
            .get_or_create(&OutcomeLabels { method, outcome })
            .inc();
    }

    /// Dev mode: `X-User-ID`, else `?user_id=`, else the configured dev user. An id that is
    /// given but unusable is refused: it once silently became the shared dev user.
    fn dev_user(&self, parts: &Parts) -> Result<CurrentUser, AuthError> {
        let header = |name: &str| parts.headers.get(name).map(|v| v.to_str());
        let from_query = || {
            url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .find(|(k, _)| k == "user_id")
                .map(|(_, v)| v.into_owned())
        };
        let given = match header("x-user-id") {
            Some(Ok(v)) => Some(v.to_owned()),
            Some(Err(_)) => return Err(AuthError::BadDevUser(BAD_DEV_USER)),
            None => from_query(),
        };
        let id = given.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        match id {
            Some(id) if id.len() > MAX_DEV_USER_BYTES || !printable_ascii(&id) => {
                Err(AuthError::BadDevUser(BAD_DEV_USER))
            }
            Some(id) => Ok(CurrentUser {
                name: header("x-user-name")
                    .and_then(Result::ok)
                    .map(str::trim)
                    .filter(|v| !v.is_empty() && v.len() <= MAX_DEV_USER_BYTES)
                    .map(str::to_owned),
                ..CurrentUser::with_id(id)
            }),
            None => Ok(CurrentUser {
                email: Some("dev@localhost".into()),
                name: Some("Dev User".into()),
                ..CurrentUser::with_id(self.dev_user_id.clone())
            }),
        }
    }
}

fn printable_ascii(id: &str) -> bool {
    id.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

/// Longest dev-mode user id, in bytes.
const MAX_DEV_USER_BYTES: usize = 256;
const BAD_DEV_USER: &str =
    "X-User-ID (or user_id): a dev-mode user id is printable ASCII of at most 256 bytes";

fn not_configured(what: &str, variable: &str) -> AuthError {
    AuthError::Unavailable(format!(
        "{what} cannot be verified: no {variable} (or SSO_URL) is configured"
    ))
}

/// The bearer token of the request: `None` when there is no `Authorization` header.
fn bearer_token(parts: &Parts) -> Result<Option<&str>, AuthError> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    if value.len() > MAX_TOKEN_BYTES + "Bearer ".len() {
        return Err(AuthError::TooLarge(MAX_TOKEN_BYTES));
    }
    let value = value
        .to_str()
        .map_err(|_| AuthError::Malformed("the Authorization header is not ASCII"))?;
    let value = value.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed("use the Bearer scheme"));
    }
    match token.trim() {
        "" => Err(AuthError::Missing),
        t => Ok(Some(t)),
    }
}

/// The verified user of a request, for any router state that holds the [`Auth`] of the
/// process. The rejection answers 401 (or 503 when the SSO cannot be reached).
impl<S> FromRequestParts<S> for CurrentUser
where
    Arc<Auth>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthError> {
        Arc::<Auth>::from_ref(state).authenticate(parts).await
    }
}

//! Authentication: bearer JWTs verified against the SSO's JWKS, opaque tokens via userinfo,
//! and the development mode.
//!
//! Owns: turning request headers into a verified [`CurrentUser`]. Must never log a token.
//!
//! INTERIM (until the auth issue lands): the user comes from `X-User-ID` or the `user_id`
//! query parameter, and a request without one gets 401. Handlers already depend only on the
//! [`CurrentUser`] extractor, so real verification replaces this without touching them.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::app::AppState;
use crate::config::{Env, SettingDoc};
use crate::error::ApiError;

/// Settings of authentication.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {}

/// Variables read by this module.
pub const SETTINGS: &[SettingDoc] = &[];

impl AuthSettings {
    pub fn from_env(_env: &mut Env, _sso_url: Option<&str>) -> Self {
        Self {}
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

/// The authenticator of one process (JWKS cache, userinfo cache, dev mode).
#[derive(Debug, Clone, Default)]
pub struct Auth {}

impl Auth {
    pub fn new(_settings: &AuthSettings, _dev_mode: bool, _registry: &mut Registry) -> Self {
        Self {}
    }

    /// Resolves the user of a request from its headers and query.
    pub async fn authenticate(&self, parts: &Parts) -> Result<CurrentUser, ApiError> {
        let from_header = parts
            .headers
            .get("x-user-id")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        let from_query = || {
            url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .find(|(k, _)| k == "user_id")
                .map(|(_, v)| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        from_header
            .or_else(from_query)
            .map(CurrentUser::with_id)
            .ok_or_else(|| ApiError::unauthorized("missing user: send X-User-ID"))
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state.auth.authenticate(parts).await
    }
}

//! Authentication: bearer JWTs verified against the SSO's JWKS, opaque tokens via userinfo,
//! and the development mode.
//!
//! Owns: turning request headers into a verified `CurrentUser`. Must never log a token.

use crate::config::{Env, SettingDoc};

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

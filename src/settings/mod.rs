//! The whole configuration of one process, composed from each owner's settings.
//!
//! Owns: the general variables (`ENVIRONMENT`, `DEV_MODE`, `SSO_URL`, `ADMIN_SECRET`), the order
//! in which owners read theirs, the production safety rules that span owners, and the list of
//! every documented setting ([`all_settings`], behind `--help` and the README's table). Each
//! owner (`http`, `db`, `redis`, `telemetry`, `content`, `tutor`, `auth`, `ratelimit`,
//! `metering`, `outbound`) declares and validates its own variables; this module only composes them.

use secrecy::{ExposeSecret, SecretString};

use crate::config::{ConfigErrors, Env, Environment, SettingDoc};
use crate::db::DatabaseSettings;
use crate::http::settings::ServerSettings;
use crate::redis::RedisSettings;
use crate::telemetry::LogSettings;
use crate::{auth, content, db, http, metering, outbound, ratelimit, redis, telemetry, tutor};

/// Shortest `ADMIN_SECRET` production accepts: a guessable secret drops every cache at will.
const MIN_ADMIN_SECRET_BYTES: usize = 32;

/// The whole configuration of one process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: Option<RedisSettings>,
    pub log: LogSettings,
    /// Development-only: accept requests without a token.
    pub dev_mode: bool,
    pub sso_url: Option<String>,
    pub admin_secret: Option<SecretString>,
    pub content: content::ContentSettings,
    pub tutor: tutor::TutorSettings,
    pub auth: auth::AuthSettings,
    pub ratelimit: ratelimit::RateLimitSettings,
    pub metering: metering::MeteringSettings,
    /// `EXTRA_CA_FILE`: the trust every outbound client is built with.
    pub outbound: outbound::Outbound,
}

/// The general variables, read here.
pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc::new(
        "ENVIRONMENT",
        "`development`",
        "`development` or `production`; production refuses unsafe settings.",
    ),
    SettingDoc::new(
        "DEV_MODE",
        "on in development unless `SSO_URL` is set",
        "Accept requests without a token (user from `X-User-ID`). Refused in production.",
    ),
    SettingDoc::new(
        "SSO_URL",
        "unset",
        "Base URL of the SSO; the JWKS and userinfo URLs derive from it. Required in production.",
    ),
    SettingDoc::new(
        "ADMIN_SECRET",
        "unset: admin routes disabled",
        "Secret expected in `X-Admin-Secret` by `/admin/*`; at least 32 bytes in production.",
    ),
];

/// Every documented setting of the service, in README order.
pub fn all_settings() -> Vec<&'static SettingDoc> {
    [
        http::settings::SETTINGS,
        SETTINGS,
        db::SETTINGS,
        redis::SETTINGS,
        telemetry::SETTINGS,
        content::SETTINGS,
        tutor::SETTINGS,
        auth::SETTINGS,
        ratelimit::SETTINGS,
        metering::SETTINGS,
        outbound::SETTINGS,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The settings table as Markdown, exactly as the README shows it.
pub fn markdown_table() -> String {
    let mut out = String::from("| variable | default | meaning |\n|---|---|---|\n");
    for s in all_settings() {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            s.name, s.default, s.meaning
        ));
    }
    out
}

impl Settings {
    /// Reads the process environment (after loading `.env` when present in development).
    pub fn from_process_env() -> Result<Self, ConfigErrors> {
        // `.env` is a development convenience; the loader never overrides real variables.
        let _ = dotenvy::dotenv();
        Self::from_env(&mut Env::from_process())
    }

    /// Reads settings from any set of variables (tests build theirs from a map).
    pub fn from_env(env: &mut Env) -> Result<Self, ConfigErrors> {
        let environment = env.parse_or("ENVIRONMENT", Environment::Development);
        let production = environment == Environment::Production;
        let sso_url = env
            .string("SSO_URL")
            .map(|u| u.trim_end_matches('/').to_owned());
        let dev_mode = env
            .bool("DEV_MODE")
            .unwrap_or(!production && sso_url.is_none());
        let settings = Settings {
            environment,
            server: ServerSettings::from_env(env, production),
            database: DatabaseSettings::from_env(env),
            redis: RedisSettings::from_env(env),
            log: LogSettings::from_env(env, production),
            dev_mode,
            admin_secret: env.secret("ADMIN_SECRET"),
            content: content::ContentSettings::from_env(env),
            tutor: tutor::TutorSettings::from_env(env),
            auth: auth::AuthSettings::from_env(env, sso_url.as_deref(), production),
            ratelimit: ratelimit::RateLimitSettings::from_env(env),
            metering: metering::MeteringSettings::from_env(env, production),
            outbound: outbound::Outbound::from_env(env),
            sso_url,
        };
        if production {
            settings.validate_production(env);
        }
        env.finish()?;
        Ok(settings)
    }

    /// Production settings that are allowed but probably wrong, logged as warnings at start.
    pub fn warnings(&self) -> Vec<String> {
        if self.environment != Environment::Production {
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.ratelimit.trusted_proxies.is_empty() {
            out.push(
                "TRUSTED_PROXIES is unset: behind an ingress every client has its address and \
                 all share one anonymous rate-limit budget; set it to the ingress's address"
                    .to_owned(),
            );
        }
        if !self.database.is_postgres() {
            out.push(
                "DATABASE_URL is SQLite in production: one instance only, on a local disk"
                    .to_owned(),
            );
        }
        if self.redis.is_none() {
            out.push(
                "REDIS_URL is unset in production: rate limits and the lesson cache are per instance"
                    .to_owned(),
            );
        }
        out
    }

    /// The production safety rules: each failure names its variable.
    fn validate_production(&self, env: &mut Env) {
        self.server.validate_production(env);
        self.auth.validate_production(env);
        if self.dev_mode {
            env.error("DEV_MODE", "dev mode is never allowed in production");
        }
        if self.sso_url.is_none() {
            env.error(
                "SSO_URL",
                "is required in production (tokens are verified against it)",
            );
        }
        let short = |s: &SecretString| s.expose_secret().len() < MIN_ADMIN_SECRET_BYTES;
        if self.admin_secret.as_ref().is_some_and(short) {
            env.error(
                "ADMIN_SECRET",
                "must be at least 32 bytes in production (e.g. `openssl rand -hex 32`)",
            );
        }
    }
}

#[cfg(test)]
mod tests;

//! Typed settings, read once at start-up from the environment (and `.env` in development).
//!
//! Owns: every environment variable the service reads, its default, its validation, and the
//! production safety rules. Every problem is collected and reported together, each naming its
//! variable. Nothing else in the crate reads the environment; feature modules define their own
//! settings structs with a `from_env(&mut Env)` constructor that this module calls.

mod env;

pub use env::{ConfigError, ConfigErrors, Env, SettingDoc};

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::{auth, content, ratelimit, tutor};

/// Where the service runs; production enables the safety rules of [`Settings::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

impl std::str::FromStr for Environment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Self::Development),
            "production" | "prod" => Ok(Self::Production),
            other => Err(format!(
                "`{other}` is not an environment; use `development` or `production`"
            )),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "pretty" | "text" => Ok(Self::Pretty),
            other => Err(format!(
                "`{other}` is not a log format; use `json` or `pretty`"
            )),
        }
    }
}

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
    pub admin_secret: Option<String>,
    pub content: content::ContentSettings,
    pub tutor: tutor::TutorSettings,
    pub auth: auth::AuthSettings,
    pub ratelimit: ratelimit::RateLimitSettings,
}

/// HTTP listener and request handling.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub host: IpAddr,
    pub port: u16,
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// Deadline for a client's first bytes and each HTTP/1 request head (also the keep-alive
    /// idle timeout).
    pub header_read_timeout: Duration,
    /// Deadline for a whole request body.
    pub body_read_timeout: Duration,
    /// A stream silent this long gets an SSE comment (`None`: never).
    pub sse_keepalive: Option<Duration>,
    pub shutdown_timeout: Duration,
    pub readiness_timeout: Duration,
    /// Length of the kernel's accept queue (`listen(2)` backlog).
    pub listen_backlog: u32,
    /// Set `SO_REUSEPORT` so several processes can share one port.
    pub reuse_port: bool,
}

/// The thread store: PostgreSQL in production, SQLite embedded.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
}

impl DatabaseSettings {
    /// True when `url` names a PostgreSQL server.
    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")
    }
}

/// Shared cache and limiter backend. Absent = in-process cache and limiter.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: String,
    pub password: Option<String>,
    pub max_connections: usize,
    pub key_prefix: String,
}

/// Logging.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

/// Documentation of the variables this module reads (the others live with their features).
pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc::new("HOST", "127.0.0.1", "Address to listen on."),
    SettingDoc::new("PORT", "8000", "Port to listen on (0 picks a free port)."),
    SettingDoc::new(
        "ENVIRONMENT",
        "development",
        "`development` or `production`; production refuses unsafe settings.",
    ),
    SettingDoc::new(
        "DATABASE_URL",
        "sqlite:./data/study_mode.db",
        "`postgres://…` or `sqlite:…`: the thread store.",
    ),
    SettingDoc::new(
        "DATABASE_MAX_CONNECTIONS",
        "25 (PostgreSQL), 8 (SQLite)",
        "Pool size.",
    ),
    SettingDoc::new(
        "DATABASE_MIN_CONNECTIONS",
        "3",
        "Connections opened (warmed) at every start and kept open.",
    ),
    SettingDoc::new(
        "DATABASE_ACQUIRE_TIMEOUT_SECS",
        "30",
        "Wait for a pooled connection before failing.",
    ),
    SettingDoc::new(
        "DATABASE_STATEMENT_TIMEOUT_SECS",
        "30",
        "PostgreSQL `statement_timeout` of every connection.",
    ),
    SettingDoc::new(
        "REDIS_URL",
        "(unset: in-process cache and limiter)",
        "`redis://` or `rediss://` (TLS) URL of the shared cache and rate limiter.",
    ),
    SettingDoc::new(
        "REDIS_PASSWORD",
        "(unset)",
        "Password applied to `REDIS_URL` when the URL carries none.",
    ),
    SettingDoc::new(
        "REDIS_MAX_CONNECTIONS",
        "4",
        "Multiplexed Redis connections per process (requests are spread over them).",
    ),
    SettingDoc::new(
        "REDIS_KEY_PREFIX",
        "study_mode:",
        "Prefix of every Redis key this service writes.",
    ),
    SettingDoc::new(
        "ALLOWED_ORIGINS",
        "http://localhost:3000 (development)",
        "Comma-separated browser origins allowed by CORS, with credentials. Required in production; `*` refused.",
    ),
    SettingDoc::new(
        "DEV_MODE",
        "on in development unless SSO_URL is set",
        "Accept requests without a token (user from `X-User-ID`). Refused in production.",
    ),
    SettingDoc::new(
        "LOG_LEVEL",
        "info",
        "tracing filter, e.g. `info` or `study_mode_api=debug,info`.",
    ),
    SettingDoc::new(
        "LOG_FORMAT",
        "json (production), pretty (development)",
        "`json` or `pretty`.",
    ),
    SettingDoc::new(
        "SSO_URL",
        "(unset)",
        "Base URL of the SSO; JWKS and userinfo URLs derive from it. Required in production.",
    ),
    SettingDoc::new(
        "ADMIN_SECRET",
        "(unset: admin routes disabled)",
        "Secret expected in `X-Admin-Secret` by `/admin/*`.",
    ),
    SettingDoc::new(
        "MAX_BODY_BYTES",
        "1048576",
        "Largest accepted request body; larger gets 413.",
    ),
    SettingDoc::new(
        "REQUEST_TIMEOUT_SECS",
        "30",
        "Deadline for a non-streaming request.",
    ),
    SettingDoc::new(
        "HEADER_READ_TIMEOUT_SECS",
        "30",
        "A connection must send its request head within this; also how long an idle keep-alive connection stays open (set it above the idle timeout of a proxy in front).",
    ),
    SettingDoc::new(
        "BODY_READ_TIMEOUT_SECS",
        "15",
        "A request body must arrive whole within this, else 408.",
    ),
    SettingDoc::new(
        "SSE_KEEPALIVE_SECS",
        "15",
        "A ChatKit stream silent this long (e.g. waiting for a model's first token) gets an SSE comment line, so proxies and load balancers do not close it as idle; 0 = never.",
    ),
    SettingDoc::new(
        "SHUTDOWN_TIMEOUT_SECS",
        "10",
        "On SIGTERM/SIGINT: how long in-flight requests and open streams get before they are ended.",
    ),
    SettingDoc::new(
        "LISTEN_BACKLOG",
        "1024",
        "Accept-queue length of the listener (the kernel caps it at `net.core.somaxconn`).",
    ),
    SettingDoc::new(
        "REUSE_PORT",
        "false",
        "Set `SO_REUSEPORT` so several processes on one host share `PORT` (the kernel spreads connections).",
    ),
    SettingDoc::new(
        "READINESS_TIMEOUT_MS",
        "1000",
        "Deadline of each dependency check in `/health/ready`.",
    ),
];

/// Every documented setting of the service, in README order.
pub fn all_settings() -> Vec<&'static SettingDoc> {
    [
        SETTINGS,
        content::SETTINGS,
        tutor::SETTINGS,
        auth::SETTINGS,
        ratelimit::SETTINGS,
    ]
    .into_iter()
    .flatten()
    .collect()
}

impl Settings {
    /// Reads the process environment (after loading `.env` when present in development).
    pub fn from_process_env() -> Result<Self, ConfigErrors> {
        // `.env` is a development convenience; the loader never overrides real variables.
        let _ = dotenvy::dotenv();
        let settings = Self::from_env(&mut Env::from_process())?;
        Ok(settings)
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
            server: server_settings(env, production),
            database: database_settings(env),
            redis: redis_settings(env),
            log: LogSettings {
                level: env.string("LOG_LEVEL").unwrap_or_else(|| "info".into()),
                format: env.parse_or(
                    "LOG_FORMAT",
                    if production {
                        LogFormat::Json
                    } else {
                        LogFormat::Pretty
                    },
                ),
            },
            dev_mode,
            admin_secret: env.string("ADMIN_SECRET"),
            content: content::ContentSettings::from_env(env),
            tutor: tutor::TutorSettings::from_env(env),
            auth: auth::AuthSettings::from_env(env, sso_url.as_deref()),
            ratelimit: ratelimit::RateLimitSettings::from_env(env),
            sso_url,
        };
        settings.validate(env);
        env.finish()?;
        Ok(settings)
    }

    /// The production safety rules: each failure names its variable.
    fn validate(&self, env: &mut Env) {
        if self.environment != Environment::Production {
            return;
        }
        let origins = &self.server.allowed_origins;
        if origins.is_empty() {
            env.error(
                "ALLOWED_ORIGINS",
                "must list the allowed origins in production",
            );
        }
        if origins.iter().any(|o| o.contains('*')) {
            env.error("ALLOWED_ORIGINS", "`*` is not allowed in production");
        }
        if self.dev_mode {
            env.error("DEV_MODE", "dev mode is never allowed in production");
        }
        if self.sso_url.is_none() {
            env.error(
                "SSO_URL",
                "is required in production (tokens are verified against it)",
            );
        }
    }

    /// True in production.
    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

fn server_settings(env: &mut Env, production: bool) -> ServerSettings {
    let default_origins = if production {
        Vec::new()
    } else {
        vec!["http://localhost:3000".to_owned()]
    };
    let allowed_origins = env
        .string("ALLOWED_ORIGINS")
        .map(|v| {
            v.split(',')
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect()
        })
        .unwrap_or(default_origins);
    for origin in &allowed_origins {
        if origin != "*" && url::Url::parse(origin).is_err() {
            env.error(
                "ALLOWED_ORIGINS",
                format!("`{origin}` is not an origin like https://example.com"),
            );
        }
    }
    let header_read_timeout = env.secs_or("HEADER_READ_TIMEOUT_SECS", 30);
    let body_read_timeout = env.secs_or("BODY_READ_TIMEOUT_SECS", 15);
    for (name, value) in [
        ("HEADER_READ_TIMEOUT_SECS", header_read_timeout),
        ("BODY_READ_TIMEOUT_SECS", body_read_timeout),
    ] {
        if value.is_zero() {
            env.error(name, "must be at least 1 second");
        }
    }
    ServerSettings {
        host: env.parse_or("HOST", IpAddr::from([127, 0, 0, 1])),
        port: env.parse_or("PORT", 8000),
        allowed_origins,
        max_body_bytes: env.parse_or("MAX_BODY_BYTES", 1024 * 1024),
        request_timeout: env.secs_or("REQUEST_TIMEOUT_SECS", 30),
        header_read_timeout,
        body_read_timeout,
        sse_keepalive: Some(env.secs_or("SSE_KEEPALIVE_SECS", 15)).filter(|d| !d.is_zero()),
        shutdown_timeout: env.secs_or("SHUTDOWN_TIMEOUT_SECS", 10),
        readiness_timeout: Duration::from_millis(env.parse_or("READINESS_TIMEOUT_MS", 1000)),
        listen_backlog: env.parse_or("LISTEN_BACKLOG", 1024),
        reuse_port: env.bool("REUSE_PORT").unwrap_or(false),
    }
}

fn database_settings(env: &mut Env) -> DatabaseSettings {
    let url = env
        .string("DATABASE_URL")
        .unwrap_or_else(|| format!("sqlite:{}", default_sqlite_path().display()));
    let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !postgres && !url.starts_with("sqlite:") {
        env.error(
            "DATABASE_URL",
            "must start with postgres://, postgresql:// or sqlite:",
        );
    }
    let max_connections = env.parse_or("DATABASE_MAX_CONNECTIONS", if postgres { 25 } else { 8 });
    let min_connections = env.parse_or("DATABASE_MIN_CONNECTIONS", 3u32);
    if min_connections > max_connections {
        env.error(
            "DATABASE_MIN_CONNECTIONS",
            "must not exceed DATABASE_MAX_CONNECTIONS",
        );
    }
    DatabaseSettings {
        url,
        max_connections,
        min_connections,
        acquire_timeout: env.secs_or("DATABASE_ACQUIRE_TIMEOUT_SECS", 30),
        statement_timeout: env.secs_or("DATABASE_STATEMENT_TIMEOUT_SECS", 30),
    }
}

fn default_sqlite_path() -> PathBuf {
    PathBuf::from("./data/study_mode.db")
}

fn redis_settings(env: &mut Env) -> Option<RedisSettings> {
    let url = env.string("REDIS_URL")?;
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        env.error("REDIS_URL", "must start with redis:// or rediss://");
    }
    let max_connections = env.parse_or("REDIS_MAX_CONNECTIONS", 4usize);
    if max_connections == 0 {
        env.error("REDIS_MAX_CONNECTIONS", "must be at least 1");
    }
    Some(RedisSettings {
        url,
        password: env.string("REDIS_PASSWORD"),
        max_connections,
        key_prefix: env
            .string("REDIS_KEY_PREFIX")
            .unwrap_or_else(|| "study_mode:".into()),
    })
}

#[cfg(test)]
mod tests;

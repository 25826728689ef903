//! Settings of the HTTP edge: the listener, request limits, deadlines and CORS origins.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::{Env, SettingDoc};

/// HTTP listener and request handling.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub host: IpAddr,
    pub port: u16,
    pub allowed_origins: Vec<String>,
    /// `Access-Control-Max-Age` of a CORS preflight: how long a browser may reuse it.
    pub cors_max_age: Duration,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// Deadline for a client's first bytes and each HTTP/1 request head (also the keep-alive
    /// idle timeout).
    pub header_read_timeout: Duration,
    /// Deadline for a whole request body.
    pub body_read_timeout: Duration,
    /// A stream silent this long gets an SSE comment (`None`: never).
    pub sse_keepalive: Option<Duration>,
    /// An HTTP/1 non-streaming response must be taken within this (`None`: never).
    pub response_send_timeout: Option<Duration>,
    pub shutdown_timeout: Duration,
    pub readiness_timeout: Duration,
    /// Most bytes of item JSON in one `items.list` page (`PAGE_MAX_BYTES`).
    pub page_max_bytes: usize,
    /// How long a turn waits for its thread's previous turn (`TURN_WAIT_SECS`).
    pub turn_wait: Duration,
    /// `MAX_MESSAGE_CHARS`, `MAX_TITLE_CHARS`, `HISTORY_CHARS`.
    pub chat_limits: crate::chatkit::ChatKitLimits,
    /// Serve HTTP/2 with prior knowledge (h2c).
    pub http2_cleartext: bool,
    /// HTTP/2 keep-alive ping interval, also how long a ping may go unanswered.
    pub http2_keepalive: Duration,
    /// Length of the kernel's accept queue (`listen(2)` backlog).
    pub listen_backlog: u32,
    /// Set `SO_REUSEPORT` so several processes can share one port.
    pub reuse_port: bool,
}

/// Variables read by this module.
pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc::new("HOST", "`127.0.0.1`", "Address to listen on."),
    SettingDoc::new("PORT", "`8000`", "Port to listen on (0 picks a free port)."),
    SettingDoc::new(
        "ALLOWED_ORIGINS",
        "`http://localhost:3000` in development",
        "Comma-separated browser origins allowed by CORS, with credentials. Required in production; `*` refused.",
    ),
    SettingDoc::new(
        "CORS_MAX_AGE_SECS",
        "`86400`",
        "`Access-Control-Max-Age` of a CORS preflight answer (how long a browser caches it), as the old service.",
    ),
    SettingDoc::new(
        "MAX_BODY_BYTES",
        "`1048576`",
        "Largest accepted request body; larger gets 413.",
    ),
    SettingDoc::new(
        "REQUEST_TIMEOUT_SECS",
        "`30`",
        "Deadline of a non-streaming request (503 after it).",
    ),
    SettingDoc::new(
        "HEADER_READ_TIMEOUT_SECS",
        "`30`",
        "A connection must send its request head within this (slow clients are disconnected); also how long an idle keep-alive connection stays open (HTTP/2: how long one may start no request before it gets a GOAWAY) — keep it above the idle timeout of any proxy in front (nginx-ingress: 60 s).",
    ),
    SettingDoc::new(
        "BODY_READ_TIMEOUT_SECS",
        "`15`",
        "A request body must arrive whole within this, else 408.",
    ),
    SettingDoc::new(
        "RESPONSE_SEND_TIMEOUT_SECS",
        "`30`",
        "A response that is not a ChatKit stream must reach the client within this, counted from when it is ready; a client that does not take it (stops reading) is disconnected and the response freed. HTTP/1 only; `0` = never.",
    ),
    SettingDoc::new(
        "SSE_KEEPALIVE_SECS",
        "`15`",
        "A ChatKit stream silent this long (e.g. waiting for a model's first token) gets an SSE comment line (`: keep-alive`), so proxies and load balancers do not close it as idle; `0` = never.",
    ),
    SettingDoc::new(
        "PAGE_MAX_BYTES",
        "`4194304`",
        "Most bytes of items in one page of `items.list` (and of history read for a turn); a page ends early with `has_more` and `after` set. At least one item is always sent.",
    ),
    SettingDoc::new(
        "TURN_WAIT_SECS",
        "`30`",
        "Turns of one thread never overlap, on any instance: a message, retry or action sent while the thread's previous reply is still being written waits this long for it to end, then gets 409.",
    ),
    SettingDoc::new(
        "MAX_MESSAGE_CHARS",
        "`32000`",
        "Longest chat message (its text and quoted text), in characters; longer is 400 naming the field.",
    ),
    SettingDoc::new(
        "MAX_TITLE_CHARS",
        "`200`",
        "Longest thread title: a longer rename is 400, a longer generated title is cut.",
    ),
    SettingDoc::new(
        "HISTORY_CHARS",
        "`24000`",
        "Characters of past turns a reply is given; the oldest turns are dropped, or cut, first.",
    ),
    SettingDoc::new(
        "HTTP2_CLEARTEXT",
        "`true`",
        "Serve HTTP/2 with prior knowledge (h2c) besides HTTP/1.1; `false` closes such connections.",
    ),
    SettingDoc::new(
        "HTTP2_KEEPALIVE_SECS",
        "`20`",
        "HTTP/2 connections get a ping this often; one unanswered for as long closes the connection.",
    ),
    SettingDoc::new(
        "LISTEN_BACKLOG",
        "`1024`",
        "Accept-queue length of the listener (the kernel caps it at `net.core.somaxconn`).",
    ),
    SettingDoc::new(
        "REUSE_PORT",
        "`false`",
        "Set `SO_REUSEPORT` so several processes on one host share `PORT` (the kernel spreads connections).",
    ),
    SettingDoc::new(
        "SHUTDOWN_TIMEOUT_SECS",
        "`10`",
        "On SIGTERM/SIGINT: how long in-flight requests and open streams get before they are ended.",
    ),
    SettingDoc::new(
        "READINESS_TIMEOUT_MS",
        "`1000`",
        "Deadline of each dependency check in `/health/ready`.",
    ),
];

impl ServerSettings {
    /// `production` changes one default: no origin is allowed unless listed.
    pub fn from_env(env: &mut Env, production: bool) -> Self {
        let allowed_origins = allowed_origins(env, production);
        let header_read_timeout = env.secs_or("HEADER_READ_TIMEOUT_SECS", 30);
        let body_read_timeout = env.secs_or("BODY_READ_TIMEOUT_SECS", 15);
        let http2_keepalive = env.secs_or("HTTP2_KEEPALIVE_SECS", 20);
        for (name, value) in [
            ("HEADER_READ_TIMEOUT_SECS", header_read_timeout),
            ("BODY_READ_TIMEOUT_SECS", body_read_timeout),
            ("HTTP2_KEEPALIVE_SECS", http2_keepalive),
        ] {
            if value.is_zero() {
                env.error(name, "must be at least 1 second");
            }
        }
        Self {
            host: env.parse_or("HOST", IpAddr::from([127, 0, 0, 1])),
            port: env.parse_or("PORT", 8000),
            allowed_origins,
            cors_max_age: env.secs_or("CORS_MAX_AGE_SECS", 86_400),
            max_body_bytes: env.parse_or("MAX_BODY_BYTES", 1024 * 1024),
            request_timeout: env.secs_or("REQUEST_TIMEOUT_SECS", 30),
            header_read_timeout,
            body_read_timeout,
            sse_keepalive: Some(env.secs_or("SSE_KEEPALIVE_SECS", 15)).filter(|d| !d.is_zero()),
            response_send_timeout: Some(env.secs_or("RESPONSE_SEND_TIMEOUT_SECS", 30))
                .filter(|d| !d.is_zero()),
            shutdown_timeout: env.secs_or("SHUTDOWN_TIMEOUT_SECS", 10),
            readiness_timeout: Duration::from_millis(env.parse_or("READINESS_TIMEOUT_MS", 1000)),
            page_max_bytes: env.parse_or("PAGE_MAX_BYTES", 4 * 1024 * 1024),
            turn_wait: env.secs_or("TURN_WAIT_SECS", 30),
            chat_limits: crate::chatkit::ChatKitLimits {
                max_message_chars: env.parse_or("MAX_MESSAGE_CHARS", 32_000),
                max_title_chars: env.parse_or("MAX_TITLE_CHARS", 200),
                history_chars: env.parse_or("HISTORY_CHARS", 24_000),
            },
            http2_cleartext: env.bool("HTTP2_CLEARTEXT").unwrap_or(true),
            http2_keepalive,
            listen_backlog: env.parse_or("LISTEN_BACKLOG", 1024),
            reuse_port: env.bool("REUSE_PORT").unwrap_or(false),
        }
    }

    /// The production rules of this module: explicit origins, never `*`.
    pub fn validate_production(&self, env: &mut Env) {
        if self.allowed_origins.is_empty() {
            env.error(
                "ALLOWED_ORIGINS",
                "must list the allowed origins in production",
            );
        }
        if self.allowed_origins.iter().any(|o| o.contains('*')) {
            env.error("ALLOWED_ORIGINS", "`*` is not allowed in production");
        }
    }
}

fn allowed_origins(env: &mut Env, production: bool) -> Vec<String> {
    let default_origins = if production {
        Vec::new()
    } else {
        vec!["http://localhost:3000".to_owned()]
    };
    let origins: Vec<String> = env
        .string("ALLOWED_ORIGINS")
        .map(|v| {
            v.split(',')
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect()
        })
        .unwrap_or(default_origins);
    for origin in &origins {
        if origin != "*" && url::Url::parse(origin).is_err() {
            env.error(
                "ALLOWED_ORIGINS",
                format!("`{origin}` is not an origin like https://example.com"),
            );
        }
    }
    origins
}

//! Lesson content: lesson paths, sources (GitHub raw files, a local folder or the sample book
//! compiled into the binary), Markdown cleaning, the two-tier cache and lesson-aware
//! suggestions.
//!
//! Owns: `GITHUB_*`/`CONTENT_*` settings, everything between a lesson path and the cleaned
//! lesson text, the lesson index, the study modes ([`Mode`]), cache invalidation (admin and
//! push webhook policy), and the `warm-cache` command. Must not know ChatKit or HTTP.

mod index;
mod lesson;
mod loader;
mod markdown;
mod metrics;
mod mode;
mod source;
mod suggest;
pub mod warm;
pub mod webhook;

pub use index::LessonEntry;
pub use lesson::{Lesson, LessonPath, LessonPathError, MAX_LESSON_PATH_BYTES, Section};
pub use loader::{Content, Invalidated};
/// The MDX cleaner on its own, for the `markdown` fuzz target (idempotence check).
#[doc(hidden)]
pub use markdown::clean_mdx;
pub use markdown::parse_lesson;
pub use metrics::ContentMetrics;
pub use mode::{Mode, UnknownMode};
pub use source::{EXTENSIONS, Source, lesson_for_file};
pub use suggest::{Rendered, Suggestions, SuggestionsMemo, rendered, suggestions};

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use crate::config::{Env, SettingDoc};

/// Settings of the content subsystem.
#[derive(Debug, Clone)]
pub struct ContentSettings {
    pub github_repo: Option<String>,
    pub github_branch: String,
    pub github_docs_path: String,
    pub github_raw_base_url: String,
    pub github_api_base_url: String,
    pub github_token: Option<SecretString>,
    pub github_webhook_secret: Option<SecretString>,
    /// `None`: the sample book compiled into the binary.
    pub content_dir: Option<PathBuf>,
    pub cache_ttl: Duration,
    pub negative_ttl: Duration,
    pub l1_max_bytes: u64,
    pub connect_timeout: Duration,
    pub fetch_timeout: Duration,
}

/// Variables read by this module.
pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc::new(
        "GITHUB_REPO",
        "unset: `CONTENT_DIR`, else the bundled sample book",
        "`owner/name` of the repository holding the lessons.",
    ),
    SettingDoc::new(
        "GITHUB_BRANCH",
        "`main`",
        "Branch the lessons are read from; pushes to it invalidate the cache.",
    ),
    SettingDoc::new(
        "GITHUB_DOCS_PATH",
        "`apps/learn-app/docs`",
        "Folder of the lessons inside the repository.",
    ),
    SettingDoc::new(
        "GITHUB_RAW_BASE_URL",
        "`https://raw.githubusercontent.com`",
        "Base URL of raw files: `{base}/{repo}/{branch}/{docs_path}/{lesson}{ext}`.",
    ),
    SettingDoc::new(
        "GITHUB_API_BASE_URL",
        "`https://api.github.com`",
        "GitHub API (git trees), used by `warm-cache` to list lessons.",
    ),
    SettingDoc::new(
        "GITHUB_TOKEN",
        "unset",
        "Token sent as `Authorization: token …` to GitHub.",
    ),
    SettingDoc::new(
        "GITHUB_WEBHOOK_SECRET",
        "unset: `/webhooks/github` disabled",
        "Secret of the GitHub push webhook (`X-Hub-Signature-256`).",
    ),
    SettingDoc::new(
        "CONTENT_DIR",
        "unset: the sample book compiled into the binary",
        "Folder of lessons used when `GITHUB_REPO` is unset.",
    ),
    SettingDoc::new(
        "CONTENT_CACHE_TTL",
        "`86400`",
        "Seconds a loaded lesson stays cached (in-process copies at most 300 s when Redis is shared).",
    ),
    SettingDoc::new(
        "CONTENT_NEGATIVE_TTL",
        "`300`",
        "Seconds a lesson that does not exist is remembered as missing.",
    ),
    SettingDoc::new(
        "CONTENT_L1_MAX_BYTES",
        "`67108864`",
        "Size bound of the in-process lesson cache, in bytes.",
    ),
    SettingDoc::new(
        "CONTENT_FETCH_TIMEOUT_SECS",
        "`10`",
        "Deadline of one request to the lesson origin (connect deadline 3 s).",
    ),
];

impl ContentSettings {
    pub fn from_env(env: &mut Env) -> Self {
        let trim = |s: String| s.trim_end_matches('/').to_owned();
        let docs_path = env
            .string("GITHUB_DOCS_PATH")
            .unwrap_or_else(|| "apps/learn-app/docs".into());
        let settings = Self {
            github_repo: env
                .string("GITHUB_REPO")
                .map(|r| r.trim_matches('/').to_owned()),
            github_branch: env.string("GITHUB_BRANCH").unwrap_or_else(|| "main".into()),
            github_docs_path: docs_path.trim_matches('/').to_owned(),
            github_raw_base_url: trim(
                env.string("GITHUB_RAW_BASE_URL")
                    .unwrap_or_else(|| "https://raw.githubusercontent.com".into()),
            ),
            github_api_base_url: trim(
                env.string("GITHUB_API_BASE_URL")
                    .unwrap_or_else(|| "https://api.github.com".into()),
            ),
            github_token: env.secret("GITHUB_TOKEN"),
            github_webhook_secret: env.secret("GITHUB_WEBHOOK_SECRET"),
            content_dir: env.string("CONTENT_DIR").map(PathBuf::from),
            cache_ttl: env.secs_or("CONTENT_CACHE_TTL", 86_400),
            negative_ttl: env.secs_or("CONTENT_NEGATIVE_TTL", 300),
            l1_max_bytes: env.parse_or("CONTENT_L1_MAX_BYTES", 64 * 1024 * 1024),
            connect_timeout: Duration::from_secs(3),
            fetch_timeout: env.secs_or("CONTENT_FETCH_TIMEOUT_SECS", 10),
        };
        settings.validate(env);
        settings
    }

    fn validate(&self, env: &mut Env) {
        let repo_parts = self
            .github_repo
            .as_ref()
            .map(|r| r.split('/').filter(|s| !s.is_empty()).count());
        if repo_parts.is_some_and(|n| n != 2) {
            env.error("GITHUB_REPO", "must be `owner/name`");
        }
        for (name, url) in [
            ("GITHUB_RAW_BASE_URL", &self.github_raw_base_url),
            ("GITHUB_API_BASE_URL", &self.github_api_base_url),
        ] {
            if url::Url::parse(url).is_err() {
                env.error(name, format!("`{url}` is not a URL"));
            }
        }
        if self.fetch_timeout.is_zero() {
            env.error("CONTENT_FETCH_TIMEOUT_SECS", "must be at least 1");
        }
        if self.cache_ttl.is_zero() {
            env.error("CONTENT_CACHE_TTL", "must be at least 1");
        }
    }
}

/// Errors loading a lesson (not-found is `Ok(None)`, not an error).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ContentError {
    /// The origin failed or timed out and no earlier copy was available.
    #[error("lesson origin unavailable: {0}")]
    Origin(String),
}

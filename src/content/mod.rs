//! Lesson content: lesson paths, sources (GitHub raw files or a local folder), Markdown
//! cleaning, the two-tier cache and lesson-aware suggestions.
//!
//! Owns: everything between a lesson path and the cleaned lesson text. Must not know ChatKit.
//!
//! INTERIM (until the content issue lands): [`Content::lesson`] finds nothing and
//! [`LessonPath::parse`] only rejects the obvious. The types and signatures are final.

mod lesson;

pub use lesson::{Lesson, LessonPath, LessonPathError, Section};

use std::sync::Arc;

use prometheus_client::registry::Registry;

use crate::cache::Cache;
use crate::config::{Env, SettingDoc};

/// Settings of the content subsystem.
#[derive(Debug, Clone)]
pub struct ContentSettings {
    pub github_token: Option<String>,
    pub github_repo: Option<String>,
}

/// Variables read by this module.
pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc::new(
        "GITHUB_REPO",
        "(unset: local CONTENT_DIR)",
        "`owner/name` of the repository holding the lessons.",
    ),
    SettingDoc::new(
        "GITHUB_TOKEN",
        "(unset)",
        "Token sent as `Authorization: token …` to GitHub.",
    ),
];

impl ContentSettings {
    pub fn from_env(env: &mut Env) -> Self {
        Self {
            github_token: env.string("GITHUB_TOKEN"),
            github_repo: env.string("GITHUB_REPO"),
        }
    }
}

/// Errors loading a lesson (not-found is `Ok(None)`, not an error).
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("lesson origin unavailable: {0}")]
    Origin(String),
}

/// The lesson loader of one process: sources behind the two-tier cache. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Content {
    _cache: Cache,
}

impl Content {
    pub async fn new(_settings: &ContentSettings, cache: Cache, _registry: &mut Registry) -> Self {
        Self { _cache: cache }
    }

    /// The lesson at `path`, from cache or origin; `Ok(None)` when it does not exist.
    pub async fn lesson(&self, _path: &LessonPath) -> Result<Option<Arc<Lesson>>, ContentError> {
        Ok(None)
    }
}

//! Lesson content: lesson paths, sources (GitHub raw files or a local folder), Markdown
//! cleaning, the two-tier cache and lesson-aware suggestions.
//!
//! Owns: everything between a lesson path and the cleaned lesson text. Must not know ChatKit.

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

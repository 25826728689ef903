//! The lesson model: a validated [`LessonPath`] and a cleaned [`Lesson`] split into sections.

use serde::{Deserialize, Serialize};

/// A lesson path relative to the docs root, e.g. `01-Part/02-Chapter/03-lesson`.
/// Built only by [`LessonPath::parse`], so holders never re-check it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct LessonPath(String);

/// Why a lesson path was rejected (answered as 400 with this message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid lesson_path: {0}")]
pub struct LessonPathError(pub String);

impl LessonPath {
    /// Validates and normalises a client-supplied path.
    pub fn parse(raw: &str) -> Result<Self, LessonPathError> {
        let trimmed = raw.trim().trim_matches('/');
        if trimmed.is_empty() {
            return Err(LessonPathError("must not be empty".into()));
        }
        if trimmed.split('/').any(|s| s == ".." || s == ".") || trimmed.contains('\\') {
            return Err(LessonPathError("must not contain `..`, `.` or `\\`".into()));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for LessonPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One section of a lesson: a heading and the text under it (up to the next heading of any
/// level). Text before the first heading is a section with an empty heading and level 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    pub heading: String,
    pub level: u8,
    pub text: String,
}

/// A loaded lesson, cleaned for the tutor (frontmatter parsed, MDX imports/exports and JSX
/// component blocks removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lesson {
    /// The lesson path as requested.
    pub path: String,
    /// Frontmatter `title`, else the first `# ` heading, else the humanised last path segment.
    pub title: String,
    pub sidebar_label: Option<String>,
    pub description: Option<String>,
    /// The cleaned Markdown body (no frontmatter).
    pub body: String,
    pub sections: Vec<Section>,
}

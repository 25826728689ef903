//! The lesson model: a validated [`LessonPath`] and a cleaned [`Lesson`] split into sections.

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

use super::suggest::SuggestionsMemo;

/// Longest accepted lesson path, in bytes (the real book's longest is under 150).
pub const MAX_LESSON_PATH_BYTES: usize = 512;

/// A lesson path relative to the docs root, e.g. `01-Part/02-Chapter/03-lesson`.
/// Built only by [`LessonPath::parse`], so holders never re-check it: it is a non-empty list of
/// `/`-separated segments, none empty, `.` or `..`, with no backslash, control character, `%`,
/// `:`, `#`, `?` or `@`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct LessonPath(String);

/// Why a lesson path was rejected (answered as 400 with this message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid lesson_path: {0}")]
pub struct LessonPathError(pub String);

fn reject(message: &str) -> LessonPathError {
    LessonPathError(message.to_owned())
}

impl LessonPath {
    /// Validates and normalises a client-supplied path. Percent-encoding is decoded once and
    /// the decoded form is checked, so `%2e%2e%2f` is refused like `../`; a `%` left after
    /// decoding (double encoding) is refused too, so no later layer can decode it again.
    pub fn parse(raw: &str) -> Result<Self, LessonPathError> {
        if raw.len() > MAX_LESSON_PATH_BYTES {
            return Err(reject("longer than 512 bytes"));
        }
        let decoded = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| reject("percent-encoding does not decode to UTF-8"))?;
        check_characters(&decoded)?;
        if decoded.starts_with('/') {
            return Err(reject("must be relative (no leading `/`)"));
        }
        let trimmed = decoded.trim().trim_end_matches('/');
        // Every leading `docs/` goes, not just one: threads store the parsed path and the tutor
        // parses it again, so parsing must be idempotent (`docs/docs/x` once gave `docs/x`,
        // which re-parsed to `x`; found by the `lesson_path` fuzz target).
        let mut trimmed = trimmed;
        while let Some(rest) = trimmed.strip_prefix("docs/") {
            trimmed = rest;
        }
        if trimmed.is_empty() {
            return Err(reject("must not be empty"));
        }
        for segment in trimmed.split('/') {
            check_segment(segment)?;
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The path as a string, e.g. `01-Part/02-Chapter/03-lesson`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment (the lesson's file or folder name).
    pub fn last_segment(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// True when the path names a file directly (`.md` / `.mdx`), so no extension is tried.
    pub fn has_markdown_extension(&self) -> bool {
        self.0.ends_with(".md") || self.0.ends_with(".mdx")
    }
}

fn check_characters(decoded: &str) -> Result<(), LessonPathError> {
    if decoded.contains('\\') {
        return Err(reject("must not contain `\\`"));
    }
    if decoded.chars().any(char::is_control) {
        return Err(reject("must not contain control characters"));
    }
    if decoded.contains('%') {
        return Err(reject("must not contain `%` after decoding"));
    }
    if decoded.contains(':') {
        return Err(reject("must not contain `:`"));
    }
    // A fragment, query or userinfo marker would change what a URL built from the path names
    // (`notes/secret.txt#` served a non-lesson file, `..#` the docs folder's parent).
    if let Some(c) = decoded.chars().find(|c| matches!(c, '#' | '?' | '@')) {
        return Err(LessonPathError(format!("must not contain `{c}`")));
    }
    Ok(())
}

fn check_segment(segment: &str) -> Result<(), LessonPathError> {
    match segment {
        "" => Err(reject("must not contain empty segments (`//`)")),
        "." | ".." => Err(reject("must not contain `.` or `..` segments")),
        s if s.trim() != s => Err(reject("segments must not start or end with spaces")),
        _ => Ok(()),
    }
}

impl TryFrom<String> for LessonPath {
    type Error = LessonPathError;
    fn try_from(raw: String) -> Result<Self, LessonPathError> {
        LessonPath::parse(&raw)
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
    /// The start screen's suggestions of each mode, rendered on first use (a loaded lesson
    /// never changes; a new version is a new `Lesson`).
    #[serde(skip)]
    pub suggestions: SuggestionsMemo,
}

impl Lesson {
    /// Size used to bound the in-process cache.
    pub fn weight(&self) -> usize {
        self.path.len()
            + self.title.len()
            + self.body.len()
            + self
                .sections
                .iter()
                .map(|s| s.heading.len() + s.text.len() + 16)
                .sum::<usize>()
            + 64
    }

    /// True when there is nothing to teach from (only whitespace after cleaning).
    pub fn is_empty(&self) -> bool {
        self.body.trim().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_plain_path_is_accepted_and_kept() {
        let p = LessonPath::parse("01-Part/02-Chapter/03-lesson").expect("valid");
        assert_eq!(p.as_str(), "01-Part/02-Chapter/03-lesson");
        assert_eq!(p.last_segment(), "03-lesson");
    }

    #[test]
    fn a_docs_prefix_and_a_trailing_slash_are_removed() {
        let p = LessonPath::parse("docs/01-Part/intro/").expect("valid");
        assert_eq!(p.as_str(), "01-Part/intro");
    }

    #[test]
    fn a_repeated_docs_prefix_is_removed_whole_so_parsing_its_own_text_gives_the_same_path() {
        for raw in ["docs/docs/ni", "docs/docs/docs/a/b/", "docs/docs"] {
            let p = LessonPath::parse(raw).expect("valid");
            assert!(!p.as_str().starts_with("docs/"), "{raw:?} -> {p}");
            assert_eq!(LessonPath::parse(p.as_str()), Ok(p.clone()), "{raw:?}");
        }
        assert_eq!(
            LessonPath::parse("docs/docs/ni").map(|p| p.to_string()),
            Ok("ni".into())
        );
    }

    #[test]
    fn traversal_and_odd_characters_are_rejected() {
        for bad in [
            "",
            "/",
            "../etc/passwd",
            "a/../../b",
            "a/./b",
            "/etc/passwd",
            "a\\b",
            "a\0b",
            "a\nb",
            "a//b",
            "%2e%2e/secret",
            "a/%2E%2E/%2e%2e/b",
            "..%2fsecret",
            "%2fetc/passwd",
            "a%5cb",
            "%252e%252e/x",
            "a/%00",
            "C:/windows",
            "docs/..",
            "notes/secret.txt#",
            "..#",
            "01-a/lesson?x=1",
            "01-a/lesson%23frag",
            "01-a/lesson%3Fq",
            "user@host/lesson",
        ] {
            assert!(LessonPath::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn an_over_long_path_is_rejected_with_a_clear_message() {
        let err = LessonPath::parse(&"a".repeat(513)).expect_err("too long");
        assert!(err.to_string().contains("512"), "{err}");
        assert!(LessonPath::parse(&"a".repeat(512)).is_ok());
    }

    #[test]
    fn percent_encoded_ordinary_characters_are_decoded() {
        let p = LessonPath::parse("01-Part/my%20lesson").expect("valid");
        assert_eq!(p.as_str(), "01-Part/my lesson");
    }

    /// Joins `path` onto a root the way a file system would and reports whether the result
    /// stays inside the root.
    fn stays_inside_root(path: &str) -> bool {
        let mut depth: i64 = 0;
        for seg in path.split('/') {
            match seg {
                "" | "." => {}
                ".." => depth -= 1,
                _ => depth += 1,
            }
            if depth < 0 {
                return false;
            }
        }
        !path.starts_with('/')
    }

    proptest! {
        #[test]
        fn no_accepted_path_escapes_the_root(raw in "[a-zA-Z0-9./%\\\\:#?@_ -]{0,40}") {
            if let Ok(p) = LessonPath::parse(&raw) {
                prop_assert!(!p.as_str().contains(['#', '?', '@']), "{raw:?} -> {p}");
                prop_assert!(stays_inside_root(p.as_str()), "{raw:?} -> {p}");
                prop_assert!(!p.as_str().contains('\\') && !p.as_str().contains('%'));
                prop_assert!(!p.as_str().split('/').any(|s| s == ".." || s == "."));
            }
        }

        #[test]
        fn no_accepted_path_escapes_the_root_from_traversal_pieces(
            pieces in proptest::collection::vec(
                prop_oneof!["\\.\\.", "%2e%2e", "%2E%2e", "%2f", "%5c", "/", "\\.", "a", "docs/", "%00", "%25"],
                0..12,
            )
        ) {
            let raw = pieces.concat();
            if let Ok(p) = LessonPath::parse(&raw) {
                prop_assert!(stays_inside_root(p.as_str()), "{raw:?} -> {p}");
                prop_assert!(!p.as_str().split('/').any(|s| s == ".." || s == "."));
                prop_assert_eq!(LessonPath::parse(p.as_str()), Ok(p.clone()), "{:?}", raw);
            }
        }
    }
}

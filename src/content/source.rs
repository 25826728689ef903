//! Where lesson files come from: GitHub raw files, a local folder, or the sample book compiled
//! into the binary, chosen once from settings.
//!
//! Owns: turning a [`LessonPath`] into the raw text of its file (trying the extensions in the
//! order of the book's site generator) and listing every lesson (for `warm-cache`). Must not
//! cache: that is the loader's job.

use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};
use reqwest::StatusCode;
use serde::Deserialize;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use super::lesson::LessonPath;
use super::{ContentError, ContentSettings};
use crate::outbound::Outbound;

/// Suffixes tried, in order, for a path without a Markdown extension.
pub const EXTENSIONS: [&str; 4] = [".md", ".mdx", "/index.md", "/README.md"];

/// The sample book (`sample-book/` of the repository), compiled into the binary so that the
/// binary alone, copied anywhere, serves lessons with no settings at all.
static SAMPLE_BOOK: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/sample-book");

/// What is encoded in one URL path segment: everything but unreserved characters and the
/// sub-delimiters a file name may hold (RFC 3986 `pchar`, less `%`, `:`, `@`).
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b':')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The origin of lesson files.
#[derive(Debug, Clone)]
pub enum Source {
    GitHub(GitHubSource),
    Local(LocalSource),
    Embedded(EmbeddedSource),
}

impl Source {
    /// GitHub when `GITHUB_REPO` is set, else the folder `CONTENT_DIR` when set, else the
    /// sample book compiled into the binary.
    /// `outbound` builds the GitHub client.
    pub fn from_settings(settings: &ContentSettings, outbound: &Outbound) -> Self {
        match (&settings.github_repo, &settings.content_dir) {
            (Some(repo), _) => Source::GitHub(GitHubSource::new(settings, repo, outbound)),
            (None, Some(dir)) => Source::Local(LocalSource { root: dir.clone() }),
            (None, None) => Source::Embedded(EmbeddedSource { book: &SAMPLE_BOOK }),
        }
    }

    /// `github`, `local` or `embedded` (metric label).
    pub fn kind(&self) -> &'static str {
        match self {
            Source::GitHub(_) => "github",
            Source::Local(_) => "local",
            Source::Embedded(_) => "embedded",
        }
    }

    /// Identifies the content version in cache keys: `repo@branch`, `local`, or
    /// `embedded@{version}` (the compiled-in book changes only with the binary).
    pub fn id(&self) -> String {
        match self {
            Source::GitHub(g) => format!("{}@{}", g.repo, g.branch),
            Source::Local(_) => "local".to_owned(),
            Source::Embedded(_) => concat!("embedded@", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }

    /// The raw text of the lesson's file; `Ok(None)` when no candidate exists.
    pub async fn fetch(&self, path: &LessonPath) -> Result<Option<String>, ContentError> {
        match self {
            Source::GitHub(g) => g.fetch(path).await,
            Source::Local(l) => l.fetch(path).await,
            Source::Embedded(e) => e.fetch(path),
        }
    }

    /// Every lesson path of the book.
    pub async fn list(&self) -> Result<Vec<LessonPath>, ContentError> {
        match self {
            Source::GitHub(g) => g.list().await,
            Source::Local(l) => l.list().await,
            Source::Embedded(e) => Ok(e.list()),
        }
    }
}

/// The file names to try for `path`, relative to the docs root.
fn candidates(path: &LessonPath) -> Vec<String> {
    if path.has_markdown_extension() {
        return vec![path.as_str().to_owned()];
    }
    EXTENSIONS
        .iter()
        .map(|ext| format!("{}{ext}", path.as_str()))
        .collect()
}

/// Maps a file path relative to the docs root to its lesson path: `a/b.md` → `a/b`,
/// `a/index.md` / `a/README.md` → `a`; `None` for files that are not lessons.
pub fn lesson_for_file(relative: &str) -> Option<LessonPath> {
    if matches!(relative, "index.md" | "README.md") {
        return None;
    }
    let stem = ["/index.md", "/README.md", ".mdx", ".md"]
        .iter()
        .find_map(|ext| relative.strip_suffix(ext))?;
    LessonPath::parse(stem).ok()
}

/// The URL of a raw file: `base` then every `/`-separated segment of `parts` percent-encoded,
/// so no character of a path can turn into a query, a fragment or another folder.
fn raw_file_url(base: &str, parts: &[&str]) -> String {
    let mut url = base.trim_end_matches('/').to_owned();
    for segment in parts.iter().flat_map(|part| part.split('/')) {
        if !segment.is_empty() {
            url.push('/');
            url.extend(utf8_percent_encode(segment, PATH_SEGMENT));
        }
    }
    url
}

/// Lessons from raw files of a GitHub repository; one shared HTTP client.
#[derive(Debug, Clone)]
pub struct GitHubSource {
    client: reqwest::Client,
    repo: String,
    branch: String,
    docs_path: String,
    raw_base: String,
    api_base: String,
    token: Option<SecretString>,
    fetch_timeout: std::time::Duration,
}

impl GitHubSource {
    fn new(settings: &ContentSettings, repo: &str, outbound: &Outbound) -> Self {
        // Only fails when the TLS backend cannot initialise; the default client then still
        // works for plain HTTP, and the failure shows on the first fetch. Every request also
        // carries its own deadline (see `request`), so the fallback is never unbounded.
        let client = outbound
            .client_builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.fetch_timeout)
            .build()
            .unwrap_or_default();
        Self {
            client,
            repo: repo.to_owned(),
            branch: settings.github_branch.clone(),
            docs_path: settings.github_docs_path.clone(),
            raw_base: settings.github_raw_base_url.clone(),
            api_base: settings.github_api_base_url.clone(),
            token: settings.github_token.clone(),
            fetch_timeout: settings.fetch_timeout,
        }
    }

    fn request(&self, url: &str) -> reqwest::RequestBuilder {
        let req = self.client.get(url).timeout(self.fetch_timeout);
        match &self.token {
            Some(t) => req.header(
                reqwest::header::AUTHORIZATION,
                format!("token {}", t.expose_secret()),
            ),
            None => req,
        }
    }

    fn raw_url(&self, file: &str) -> String {
        raw_file_url(
            &self.raw_base,
            &[&self.repo, &self.branch, &self.docs_path, file],
        )
    }

    /// Tries each candidate in order: 404 moves on, any other failure stops the chain (a 500
    /// on `.md` must not be answered with "not found").
    async fn fetch(&self, path: &LessonPath) -> Result<Option<String>, ContentError> {
        for file in candidates(path) {
            let url = self.raw_url(&file);
            let resp = self
                .request(&url)
                .send()
                .await
                .map_err(|e| ContentError::Origin(format!("GET {file}: {e}")))?;
            match resp.status() {
                StatusCode::NOT_FOUND => continue,
                s if s.is_success() => {
                    let text = resp
                        .text()
                        .await
                        .map_err(|e| ContentError::Origin(format!("reading {file}: {e}")))?;
                    return Ok(Some(text));
                }
                s => return Err(ContentError::Origin(format!("GET {file}: status {s}"))),
            }
        }
        Ok(None)
    }

    /// Every lesson under the docs path, from the git trees API (one recursive call).
    async fn list(&self) -> Result<Vec<LessonPath>, ContentError> {
        let url = format!(
            "{}/repos/{}/git/trees/{}?recursive=1",
            self.api_base, self.repo, self.branch
        );
        let resp = self
            .request(&url)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .send()
            .await
            .map_err(|e| ContentError::Origin(format!("git trees: {e}")))?;
        if !resp.status().is_success() {
            return Err(ContentError::Origin(format!(
                "git trees: status {}",
                resp.status()
            )));
        }
        let tree: Tree = resp
            .json()
            .await
            .map_err(|e| ContentError::Origin(format!("git trees body: {e}")))?;
        if tree.truncated {
            tracing::warn!("git trees answer is truncated; some lessons will not be warmed");
        }
        let prefix = format!("{}/", self.docs_path);
        let files = tree
            .tree
            .iter()
            .filter(|e| e.kind == "blob")
            .filter_map(|e| e.path.strip_prefix(&prefix));
        Ok(dedup(files.filter_map(lesson_for_file)))
    }

    /// The docs folder inside the repository (webhook payloads name files from the repo root).
    pub fn docs_path(&self) -> &str {
        &self.docs_path
    }

    /// The branch whose pushes invalidate the cache.
    pub fn branch(&self) -> &str {
        &self.branch
    }
}

#[derive(Deserialize)]
struct Tree {
    tree: Vec<TreeEntry>,
    #[serde(default)]
    truncated: bool,
}

#[derive(Deserialize)]
struct TreeEntry {
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

fn dedup(paths: impl Iterator<Item = LessonPath>) -> Vec<LessonPath> {
    let mut v: Vec<LessonPath> = paths.collect();
    v.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    v.dedup();
    v
}

/// Lessons from a folder on disk (the embedded default: the sample book).
#[derive(Debug, Clone)]
pub struct LocalSource {
    root: PathBuf,
}

impl LocalSource {
    async fn fetch(&self, path: &LessonPath) -> Result<Option<String>, ContentError> {
        for file in candidates(path) {
            let full = self.root.join(&file);
            if !self.is_file_inside_root(&full).await {
                continue;
            }
            return tokio::fs::read_to_string(&full)
                .await
                .map(Some)
                .map_err(|e| ContentError::Origin(format!("reading {file}: {e}")));
        }
        Ok(None)
    }

    /// Defence in depth beside [`LessonPath`]: a symlink inside the book must not lead out.
    async fn is_file_inside_root(&self, full: &Path) -> bool {
        let (Ok(root), Ok(file)) = (
            tokio::fs::canonicalize(&self.root).await,
            tokio::fs::canonicalize(full).await,
        ) else {
            return false;
        };
        file.starts_with(&root) && tokio::fs::metadata(&file).await.is_ok_and(|m| m.is_file())
    }

    async fn list(&self) -> Result<Vec<LessonPath>, ContentError> {
        let root = self.root.clone();
        let files = tokio::task::spawn_blocking(move || walk(&root))
            .await
            .map_err(|e| ContentError::Origin(format!("listing: {e}")))?
            .map_err(|e| ContentError::Origin(format!("listing {}: {e}", self.root.display())))?;
        Ok(dedup(files.iter().filter_map(|f| lesson_for_file(f))))
    }
}

/// Lessons compiled into the binary (the default when neither `GITHUB_REPO` nor `CONTENT_DIR`
/// is set): no I/O, so it never fails.
#[derive(Clone)]
pub struct EmbeddedSource {
    book: &'static Dir<'static>,
}

impl std::fmt::Debug for EmbeddedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedSource")
            .field("files", &embedded_files(self.book).len())
            .finish()
    }
}

impl EmbeddedSource {
    fn fetch(&self, path: &LessonPath) -> Result<Option<String>, ContentError> {
        for file in candidates(path) {
            if let Some(found) = self.book.get_file(&file) {
                return found
                    .contents_utf8()
                    .map(|text| Some(text.to_owned()))
                    .ok_or_else(|| ContentError::Origin(format!("{file} is not UTF-8")));
            }
        }
        Ok(None)
    }

    fn list(&self) -> Vec<LessonPath> {
        let files = embedded_files(self.book);
        dedup(files.iter().filter_map(|f| lesson_for_file(f)))
    }
}

/// Relative paths (with `/`) of every file of an embedded folder.
fn embedded_files(dir: &Dir<'_>) -> Vec<String> {
    let mut out: Vec<String> = dir
        .files()
        .map(|f| f.path().to_string_lossy().replace('\\', "/"))
        .collect();
    for sub in dir.dirs() {
        out.extend(embedded_files(sub));
    }
    out
}

/// Relative paths (with `/`) of every file under `root`; symlinks are not followed.
fn walk(root: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                let path = entry.path();
                if let Ok(rel) = path.strip_prefix(root) {
                    out.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_map_to_their_lesson_paths() {
        let map = |f: &str| lesson_for_file(f).map(|p| p.as_str().to_owned());
        assert_eq!(map("01-a/02-b.md").as_deref(), Some("01-a/02-b"));
        assert_eq!(map("01-a/02-b.mdx").as_deref(), Some("01-a/02-b"));
        assert_eq!(map("01-a/index.md").as_deref(), Some("01-a"));
        assert_eq!(map("01-a/README.md").as_deref(), Some("01-a"));
        assert_eq!(map("01-a/img.png"), None);
        assert_eq!(map("index.md"), None, "the root index has no lesson path");
    }

    #[test]
    fn the_embedded_book_lists_and_serves_the_sample_lessons() {
        let book = EmbeddedSource { book: &SAMPLE_BOOK };
        let lessons = book.list();
        let names: Vec<&str> = lessons.iter().map(|p| p.as_str()).collect();
        assert!(names.contains(&"01-python-basics/01-values-and-variables/01-variables"));
        assert!(
            names.contains(&"01-python-basics/02-control-flow"),
            "index.md is a lesson"
        );
        assert!(
            names.len() >= 8,
            "every sample lesson is compiled in: {names:?}"
        );
        let mdx =
            LessonPath::parse("01-python-basics/01-values-and-variables/02-numbers-and-strings")
                .expect("valid");
        assert!(book.fetch(&mdx).expect("no I/O").is_some(), ".mdx found");
        let missing = LessonPath::parse("no/such/lesson").expect("valid");
        assert!(book.fetch(&missing).expect("no I/O").is_none());
    }

    #[test]
    fn a_path_with_an_extension_is_the_only_candidate() {
        let p = LessonPath::parse("a/b.mdx").expect("valid");
        assert_eq!(candidates(&p), ["a/b.mdx"]);
        let p = LessonPath::parse("a/b").expect("valid");
        assert_eq!(
            candidates(&p),
            ["a/b.md", "a/b.mdx", "a/b/index.md", "a/b/README.md"]
        );
    }

    #[test]
    fn raw_urls_are_built_from_percent_encoded_segments() {
        let url = raw_file_url(
            "http://raw.test/",
            &["org/book", "main", "docs", "01 a/b#c?d@e.md"],
        );
        assert_eq!(
            url,
            "http://raw.test/org/book/main/docs/01%20a/b%23c%3Fd%40e.md"
        );
    }
}

//! GitHub push webhooks: signature check (`X-Hub-Signature-256`, HMAC-SHA256 in constant time),
//! the mapping from the files a push touched to the lessons to invalidate, and the policy that
//! applies a push to the cache ([`Content::apply_push`]).

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::lesson::LessonPath;
use super::loader::{Content, Invalidated};
use super::source::lesson_for_file;

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PushOutcome {
    /// The push was to another branch: nothing changed.
    Ignored { ignored: String },
    /// The lessons the push added, modified or removed were dropped from the cache.
    Invalidated { invalidated: Invalidated },
}

impl Content {
    /// Invalidates exactly the lessons `push` touched, when it is to the configured branch.
    pub async fn apply_push(&self, push: &PushEvent) -> PushOutcome {
        let (branch, docs_path) = self.push_target();
        if !push.is_to_branch(branch) {
            return PushOutcome::Ignored {
                ignored: format!("push to {} is not to {branch}", push.git_ref),
            };
        }
        let paths = push.touched_lessons(docs_path);
        self.forget_listing().await;
        let done = self.invalidate(&paths).await;
        tracing::info!(
            paths = done.paths.len(),
            l1 = done.l1,
            l2 = done.l2,
            "push webhook invalidated lessons"
        );
        PushOutcome::Invalidated { invalidated: done }
    }
}

/// True when `signature` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under `secret`.
/// The comparison is constant-time (`Mac::verify_slice`).
pub fn signature_is_valid(secret: &str, body: &[u8], signature: &str) -> bool {
    let Some(hex_sig) = signature.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// `sha256=<hex>` for `body` (tests and tools sign with it).
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The parts of a `push` event payload we read.
#[derive(Debug, Deserialize)]
pub struct PushEvent {
    #[serde(rename = "ref")]
    pub git_ref: String,
    #[serde(default)]
    pub commits: Vec<PushCommit>,
}

/// One commit of a push: the files it touched, relative to the repository root.
#[derive(Debug, Deserialize)]
pub struct PushCommit {
    #[serde(default)]
    pub added: Vec<String>,
    #[serde(default)]
    pub modified: Vec<String>,
    #[serde(default)]
    pub removed: Vec<String>,
}

impl PushEvent {
    /// True when the push is to `branch`.
    pub fn is_to_branch(&self, branch: &str) -> bool {
        self.git_ref == format!("refs/heads/{branch}")
    }

    /// Every cache key naming a lesson whose file under `docs_path` was added, modified or
    /// removed: the lesson path, and the file path itself (clients may request `a/b.md`).
    pub fn touched_lessons(&self, docs_path: &str) -> Vec<LessonPath> {
        let prefix = format!("{}/", docs_path.trim_matches('/'));
        let mut out: Vec<LessonPath> = self
            .commits
            .iter()
            .flat_map(|c| c.added.iter().chain(&c.modified).chain(&c.removed))
            .filter_map(|f| f.strip_prefix(&prefix))
            .filter_map(|rel| {
                let lesson = lesson_for_file(rel)?;
                let file = LessonPath::parse(rel).ok()?;
                Some([lesson, file])
            })
            .flatten()
            .collect();
        out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_made_with_the_secret_is_valid_and_others_are_not() {
        let sig = sign("s3cret", b"{}");
        assert!(signature_is_valid("s3cret", b"{}", &sig));
        assert!(!signature_is_valid("other", b"{}", &sig));
        assert!(!signature_is_valid("s3cret", b"{ }", &sig));
        assert!(!signature_is_valid("s3cret", b"{}", "sha1=abc"));
        assert!(!signature_is_valid("s3cret", b"{}", "sha256=zz"));
    }

    #[test]
    fn only_lesson_files_under_the_docs_path_are_touched() {
        let event: PushEvent = serde_json::from_value(serde_json::json!({
            "ref": "refs/heads/main",
            "commits": [
                {"added": ["docs/01-a/02-b.md"], "modified": ["README.md", "docs/01-a/index.md"], "removed": []},
                {"added": [], "modified": [], "removed": ["docs/01-a/03-c.mdx", "other/x.md", "docs/img.png"]}
            ]
        }))
        .expect("payload");
        assert!(event.is_to_branch("main") && !event.is_to_branch("dev"));
        let got: Vec<_> = event
            .touched_lessons("docs")
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect();
        assert_eq!(
            got,
            [
                "01-a",
                "01-a/02-b",
                "01-a/02-b.md",
                "01-a/03-c",
                "01-a/03-c.mdx",
                "01-a/index.md"
            ]
        );
    }
}

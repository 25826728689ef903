//! A local stand-in for GitHub that speaks its wire format: raw files like
//! raw.githubusercontent.com (`200 text/plain`, or `404` with body `404: Not Found`) and the git
//! trees API JSON. It counts and records requests, and can be made slow or failing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::support::app::{Backend, TestApp, spawn_echo_app_with};

pub const REPO: &str = "acme/book";
pub const BRANCH: &str = "main";
pub const DOCS: &str = "docs";
pub const TOKEN: &str = "ghp_test_token";

/// A lesson with a title and two sections, for tests to publish on the fake.
pub const LESSON: &str =
    "---\ntitle: Loops\n---\n# Loops\n\nIntro.\n\n## for loops\n\nA.\n\n## while loops\n\nB.\n";

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The file path relative to the docs root (raw files), or the API path.
    pub path: String,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct State {
    files: Mutex<BTreeMap<String, String>>,
    tree_only: Mutex<Vec<String>>,
    seen: Mutex<Vec<Seen>>,
    delay_ms: AtomicU64,
    failing: AtomicBool,
}

/// A running fake GitHub.
#[derive(Clone)]
pub struct FakeGitHub {
    pub url: String,
    state: Arc<State>,
}

impl FakeGitHub {
    /// Starts the fake serving `files` (paths relative to the docs root).
    pub async fn start(files: &[(&str, &str)]) -> Self {
        let state = Arc::new(State::default());
        let fake_state = state.clone();
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let state = fake_state.clone();
            async move { answer(&state, &uri, &headers).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake github");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let fake = Self {
            url: format!("http://127.0.0.1:{port}"),
            state,
        };
        for (path, text) in files {
            fake.put(path, text);
        }
        fake
    }

    /// Adds or replaces a file (relative to the docs root).
    pub fn put(&self, path: &str, text: &str) {
        self.state
            .files
            .lock()
            .expect("lock")
            .insert(format!("{DOCS}/{path}"), text.to_owned());
    }

    /// Lists a file in the git tree without serving it (a lesson that vanished).
    pub fn list_without_serving(&self, path: &str) {
        self.state
            .tree_only
            .lock()
            .expect("lock")
            .push(format!("{DOCS}/{path}"));
    }

    /// Every later answer waits this long first.
    pub fn set_delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Every later answer is a 500.
    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("lock").clone()
    }

    /// Raw-file requests received so far.
    pub fn raw_requests(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| !s.path.starts_with("/repos/"))
            .count()
    }

    /// Settings pointing the service at this fake, plus `extra`.
    pub fn settings<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut vars = vec![
            ("GITHUB_REPO", REPO),
            ("GITHUB_BRANCH", BRANCH),
            ("GITHUB_DOCS_PATH", DOCS),
            ("GITHUB_RAW_BASE_URL", self.url.as_str()),
            ("GITHUB_API_BASE_URL", self.url.as_str()),
            ("GITHUB_TOKEN", TOKEN),
        ];
        vars.extend_from_slice(extra);
        vars
    }

    /// An echo app (see `spawn_echo_app_with`) whose lessons come from this fake.
    pub async fn spawn_echo_app(&self, backend: Backend, extra: &[(&str, &str)]) -> TestApp {
        spawn_echo_app_with(backend, &self.settings(extra)).await
    }
}

async fn answer(state: &State, uri: &Uri, headers: &HeaderMap) -> Response {
    let path = uri.path().to_owned();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if path.starts_with("/repos/") {
        state.seen.lock().expect("lock").push(Seen {
            path: path.clone(),
            authorization,
        });
        return tree(state, &path);
    }
    let raw_prefix = format!("/{REPO}/{BRANCH}/");
    let file = path.strip_prefix(&raw_prefix).map(str::to_owned);
    state.seen.lock().expect("lock").push(Seen {
        path: file
            .as_deref()
            .and_then(|f| f.strip_prefix(&format!("{DOCS}/")))
            .unwrap_or(&path)
            .to_owned(),
        authorization,
    });
    if state.failing.load(Ordering::SeqCst) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "500: Internal Server Error",
        )
            .into_response();
    }
    let text = file.and_then(|f| state.files.lock().expect("lock").get(&f).cloned());
    match text {
        Some(text) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "404: Not Found",
        )
            .into_response(),
    }
}

fn tree(state: &State, path: &str) -> Response {
    if path != format!("/repos/{REPO}/git/trees/{BRANCH}") {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "Not Found"})),
        )
            .into_response();
    }
    if state.failing.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "error").into_response();
    }
    let mut paths: Vec<String> = state.files.lock().expect("lock").keys().cloned().collect();
    paths.extend(state.tree_only.lock().expect("lock").iter().cloned());
    let mut entries = vec![json!({"path": DOCS, "mode": "040000", "type": "tree", "sha": "d0"})];
    entries.extend(paths.iter().enumerate().map(|(i, p)| {
        json!({"path": p, "mode": "100644", "type": "blob", "sha": format!("{i:040x}"), "size": 10})
    }));
    entries.push(
        json!({"path": "README.md", "mode": "100644", "type": "blob", "sha": "r0", "size": 5}),
    );
    axum::Json(json!({
        "sha": "0000000000000000000000000000000000000abc",
        "url": "http://example.invalid/tree",
        "tree": entries,
        "truncated": false
    }))
    .into_response()
}

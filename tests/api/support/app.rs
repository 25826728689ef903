//! Test harness: `spawn_echo_app(backend)` starts the real server on a free port against real
//! backends — `Embedded` (SQLite file in a temp dir + in-process cache) or `Production`
//! (a fresh PostgreSQL database per test run + Redis under a fresh key prefix per app).
//!
//! PostgreSQL and Redis URLs come from `TEST_DATABASE_URL` / `TEST_REDIS_URL` (default: the
//! local services). A missing service fails the test loudly; nothing is skipped.

#![allow(dead_code)] // shared harness: not every test module uses every helper

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use sqlx::Connection;
use study_mode_api::config::Env;
use study_mode_api::db::Database;
use study_mode_api::redis::RedisCache;
use study_mode_api::settings::Settings;
use study_mode_api::startup::Application;
use study_mode_api::state::AppState;
use study_mode_api::turn::Responder;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::echo::EchoResponder;

/// Which set of backends an app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite + in-process cache: the zero-settings mode.
    Embedded,
    /// PostgreSQL + Redis: the production mode.
    Production,
}

pub fn test_database_server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn test_redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Identifier of this test-binary run: unix seconds + pid.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        format!("{secs}_{}", std::process::id())
    })
}

/// The URL of this run's own PostgreSQL database, created on first use. Databases left by
/// runs older than two hours are dropped on the way (a crashed run cannot clean up itself).
pub fn test_database_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let server = test_database_server_url();
        let name = format!("study_mode_test_{}", run_id());
        let admin = server.clone();
        let db = name.clone();
        // Runs on its own runtime: each #[tokio::test] has a runtime of its own, and a
        // connection must not outlive the runtime that made it.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(create_database(&admin, &db));
        })
        .join()
        .expect("creating the test database failed (see above)");
        let mut url = url::Url::parse(&server).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        url.to_string()
    })
}

async fn create_database(server: &str, name: &str) {
    let mut conn = sqlx::PgConnection::connect(server)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is required for the tests; cannot connect to {server}: {e}")
        });
    drop_stale_databases(&mut conn).await;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
}

async fn drop_stale_databases(conn: &mut sqlx::PgConnection) {
    let names: Vec<(String,)> =
        sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'study_mode_test_%'")
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for (name,) in names {
        let created: u64 = name
            .trim_start_matches("study_mode_test_")
            .split('_')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(now);
        if now.saturating_sub(created) > 2 * 3600 {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut *conn)
                .await;
        }
    }
}

/// A unique suffix for keys, users and ids inside one run.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}{}_{}", run_id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A running server.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub state: AppState,
    /// The settings the app was built from.
    pub settings: Settings,
    /// Its database (tests inspect tables and pools).
    pub db: Database,
    /// Its Redis cache, when the app has `REDIS_URL`.
    pub cache: Option<RedisCache>,
    pub backend: Backend,
    pub redis_prefix: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request failed")
    }

    /// Sends SIGTERM-equivalent and waits for `run_until_stopped` to return.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.begin_shutdown().await.expect("server task panicked")
    }

    /// Starts the graceful shutdown; the returned handle resolves when the server has stopped.
    pub fn begin_shutdown(&mut self) -> JoinHandle<std::io::Result<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.handle.take().expect("running")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            h.abort();
        }
    }
}

/// The value of a metric line starting with `series` (0 when absent).
pub async fn metric(app: &TestApp, series: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    text.lines()
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.rsplit(' ').next())
        .filter_map(|v| v.parse::<f64>().ok())
        .sum()
}

/// Settings for `backend` plus `extra` variables (which win).
pub fn settings_for(
    backend: Backend,
    dir: &tempfile::TempDir,
    extra: &[(&str, &str)],
) -> (Settings, Option<String>) {
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("PORT".into(), "0".into());
    vars.insert("DATABASE_MIN_CONNECTIONS".into(), "1".into());
    vars.insert("DATABASE_MAX_CONNECTIONS".into(), "5".into());
    let mut prefix = None;
    match backend {
        Backend::Embedded => {
            let path = dir.path().join("store.db");
            vars.insert("DATABASE_URL".into(), format!("sqlite:{}", path.display()));
        }
        Backend::Production => {
            vars.insert("DATABASE_URL".into(), test_database_url().to_owned());
            vars.insert("REDIS_URL".into(), test_redis_url());
            let p = format!("{}:", unique("sm_test:"));
            vars.insert("REDIS_KEY_PREFIX".into(), p.clone());
            prefix = Some(p);
        }
    }
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let settings = Settings::from_env(&mut Env::from_map(vars)).expect("test settings are valid");
    (settings, prefix)
}

/// [`spawn_echo_app_with`] without extra variables.
pub async fn spawn_echo_app(backend: Backend) -> TestApp {
    spawn_echo_app_with(backend, &[]).await
}

/// An app whose replies come from the deterministic `EchoResponder`: protocol tests assert
/// exact reply text. Use [`spawn_tutor_app_with`] for the production default (the tutor).
pub async fn spawn_echo_app_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    spawn(backend, extra, Some(Arc::new(EchoResponder))).await
}

/// An app whose replies come from `responder` (slow, failing or scripted responders).
pub async fn spawn_app_with_responder(
    backend: Backend,
    extra: &[(&str, &str)],
    responder: Arc<dyn Responder>,
) -> TestApp {
    spawn(backend, extra, Some(responder)).await
}

/// [`spawn_tutor_app_with`] without extra variables.
pub async fn spawn_tutor_app(backend: Backend) -> TestApp {
    spawn_tutor_app_with(backend, &[]).await
}

/// An app exactly as `study-mode-api serve` builds it (replies from the tutor).
pub async fn spawn_tutor_app_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    spawn(backend, extra, None).await
}

async fn spawn(
    backend: Backend,
    extra: &[(&str, &str)],
    responder: Option<Arc<dyn Responder>>,
) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let (settings, redis_prefix) = settings_for(backend, &dir, extra);
    if backend == Backend::Production {
        assert_redis_is_up().await;
    }
    let app = match responder {
        Some(r) => Application::build_with(settings, r).await,
        None => Application::build(settings).await,
    }
    .unwrap_or_else(|e| panic!("the {backend:?} app failed to start: {e}"));
    let port = app.port();
    let state = app.state();
    let settings = app.settings().clone();
    let db = app.database();
    let cache = app.cache();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::new(),
        state,
        settings,
        db,
        cache,
        backend,
        redis_prefix,
        stop: Some(stop),
        handle: Some(handle),
        _dir: dir,
    }
}

/// Redis must be reachable for production-backend tests: fail loudly otherwise.
async fn assert_redis_is_up() {
    let url = test_redis_url();
    let client = redis::Client::open(url.as_str()).expect("TEST_REDIS_URL is a redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| {
            panic!("Redis is required for the tests; cannot connect to {url}: {e}")
        });
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .expect("redis PING");
    assert_eq!(pong, "PONG");
}

/// Declares one async test per backend: `per_backend!(name, body_fn)` where
/// `body_fn: async fn(Backend)`.
#[macro_export]
macro_rules! per_backend {
    ($($name:ident => $body:ident;)+) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn embedded() {
                    super::$body($crate::support::app::Backend::Embedded).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn production() {
                    super::$body($crate::support::app::Backend::Production).await
                }
            }
        )+
    };
}

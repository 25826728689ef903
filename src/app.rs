//! Application assembly: shared state, backends chosen once from settings, the listener, and
//! graceful shutdown.
//!
//! Owns: `App`/`AppState`, [`Application::build`] (binds its own listener, port 0 in tests),
//! and the shutdown sequence: stop accepting → let in-flight requests finish → at the deadline,
//! tell open streams to end → exit.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::cache::{Cache, MemoryCache, RedisCache, RedisPool};
use crate::chatkit::{ChatKit, ChatKitMetrics, ThreadStore};
use crate::config::Settings;
use crate::content::Content;
use crate::http::serve::{ConnectionLimits, serve};
use crate::ratelimit::RateLimiter;
use crate::store::Database;
use crate::telemetry::metrics::Metrics;
use crate::tutor::Tutor;
use crate::tutor::turn::Responder;

/// Size of the in-process cache when Redis is not configured.
const MEMORY_CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// Everything a request handler can reach.
#[derive(Debug)]
pub struct App {
    pub settings: Settings,
    pub db: Database,
    pub cache: Cache,
    /// Present when `REDIS_URL` is set; shared by the cache and the rate limiter.
    pub redis: Option<Arc<RedisPool>>,
    pub content: Content,
    pub auth: Auth,
    pub limiter: RateLimiter,
    /// The ChatKit server: thread store, responder, stream metrics.
    pub chatkit: ChatKit,
    pub metrics: Metrics,
    /// Cancelled when open streams must end (shutdown deadline reached).
    pub shutdown: CancellationToken,
    pub started_at: Instant,
}

/// Cheap-to-clone handle on [`App`], the state of every route.
#[derive(Debug, Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// Errors that stop the service from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store ({backend}): {source}")]
    Store {
        backend: &'static str,
        source: crate::store::StoreError,
    },
    #[error("invalid REDIS_URL: {0}")]
    Redis(redis::RedisError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl App {
    /// Connects every backend named by `settings`; replies come from the [`Tutor`] (a model
    /// when `OPENAI_API_KEY` is set, else the offline tutor).
    pub async fn new(settings: Settings) -> Result<Self, StartError> {
        Self::assemble(settings, None).await
    }

    /// As [`App::new`], with replies from `responder` (tests use the deterministic
    /// echo responder and slow or failing responders).
    pub async fn with_responder(
        settings: Settings,
        responder: Arc<dyn Responder>,
    ) -> Result<Self, StartError> {
        Self::assemble(settings, Some(responder)).await
    }

    async fn assemble(
        settings: Settings,
        responder: Option<Arc<dyn Responder>>,
    ) -> Result<Self, StartError> {
        let mut metrics = Metrics::new();
        let db = Database::connect(&settings.database)
            .await
            .map_err(|source| StartError::Store {
                backend: if settings.database.is_postgres() {
                    "postgres"
                } else {
                    "sqlite"
                },
                source,
            })?;
        let cache_metrics = Arc::new(metrics.cache.clone());
        let (cache, redis) = match &settings.redis {
            Some(redis_settings) => {
                let pool = RedisPool::connect(redis_settings)
                    .await
                    .map_err(StartError::Redis)?;
                (
                    Cache::Redis(RedisCache::new(pool.clone(), cache_metrics)),
                    Some(pool),
                )
            }
            None => (
                Cache::Memory(MemoryCache::new(MEMORY_CACHE_BYTES, cache_metrics)),
                None,
            ),
        };
        let registry = metrics.registry_mut();
        let content = Content::new(&settings.content, cache.clone(), registry).await;
        let auth = Auth::new(&settings.auth, settings.dev_mode, registry);
        let limiter = RateLimiter::new(&settings.ratelimit, redis.clone(), registry);
        let shutdown = CancellationToken::new();
        let responder = responder
            .unwrap_or_else(|| Arc::new(Tutor::new(&settings.tutor, content.clone(), registry)));
        let chatkit_metrics = ChatKitMetrics::register(registry);
        let store = ThreadStore::new(&db, &metrics.store);
        let chatkit = ChatKit::new(store, responder, chatkit_metrics, shutdown.clone());
        Ok(Self {
            settings,
            db,
            cache,
            redis,
            content,
            auth,
            limiter,
            chatkit,
            metrics,
            shutdown,
            started_at: Instant::now(),
        })
    }
}

/// A built application bound to its listener, ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Connects backends and binds `HOST:PORT` (port 0 = any free port).
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let addr = SocketAddr::new(settings.server.host, settings.server.port);
        Self::bind(App::new(settings).await?, addr).await
    }

    /// As [`Application::build`], with replies from `responder` (tests use slow or failing
    /// responders).
    pub async fn build_with(
        settings: Settings,
        responder: Arc<dyn Responder>,
    ) -> Result<Self, StartError> {
        let addr = SocketAddr::new(settings.server.host, settings.server.port);
        Self::bind(App::with_responder(settings, responder).await?, addr).await
    }

    async fn bind(app: App, addr: SocketAddr) -> Result<Self, StartError> {
        let server = &app.settings.server;
        let listener = listen(addr, server.listen_backlog, server.reuse_port)
            .map_err(|source| StartError::Bind { addr, source })?;
        Ok(Self {
            listener,
            state: AppState(Arc::new(app)),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The shared state (tests use it to reach backends).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until `signal` resolves, then shuts down gracefully within `SHUTDOWN_TIMEOUT_SECS`.
    pub async fn run_until_stopped(
        self,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        let deadline = state.settings.server.shutdown_timeout;
        let streams = state.shutdown.clone();
        let router = crate::http::router(state.clone());
        let limits = ConnectionLimits {
            header_read_timeout: state.settings.server.header_read_timeout,
        };
        let connections = serve(self.listener, router, limits, signal).await;
        tracing::info!(
            deadline_secs = deadline.as_secs(),
            "shutdown: no longer accepting connections"
        );
        tokio::spawn(async move {
            tokio::time::sleep(deadline).await;
            tracing::info!("shutdown deadline: ending open streams");
            streams.cancel();
        });
        // Connections finish their current request and close; streams end at the deadline.
        // The extra seconds are a last resort for a connection that ignores both (e.g. a
        // client that never reads its response).
        if tokio::time::timeout(deadline + Duration::from_secs(3), connections.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("shutdown: connections still open after the deadline; exiting");
        }
        state.chatkit.drain(Duration::from_secs(2)).await;
        state.db.close().await;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// A listener with our backlog (tokio's `TcpListener::bind` fixes it at 128, too short for
/// connection bursts) and, when asked, `SO_REUSEPORT` so several processes share one port.
fn listen(addr: SocketAddr, backlog: u32, reuse_port: bool) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    #[cfg(not(unix))]
    let _ = reuse_port;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    TcpListener::from_std(socket.into())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

//! The composition root: connects the backends chosen by the settings, builds every feature
//! and the [`AppState`], binds the listener, serves, and shuts down gracefully.
//!
//! Owns: [`Application::build`] (binds its own listener, port 0 in tests) and the shutdown
//! sequence: stop accepting → let in-flight requests finish → at the deadline, tell open
//! streams to end → let stream drivers finish their writes → close the pool. Imported only by
//! `main.rs` and the tests; nothing in the library imports it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::chatkit::{ChatKit, ChatKitMetrics, ThreadLocks, ThreadStore};
use crate::content::Content;
use crate::db::{Database, DbError, StoreMetrics};
use crate::health::Readiness;
use crate::http::serve::{ConnectionLimits, serve};
use crate::metering::Metering;
use crate::ratelimit::RateLimiter;
use crate::redis::{RedisCache, RedisPool};
use crate::settings::Settings;
use crate::state::{AppState, BodyLimits, Secrets};
use crate::telemetry::metrics::Metrics;
use crate::turn::Responder;
use crate::tutor::Tutor;

/// Errors that stop the service from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store ({backend}): {source}")]
    Store {
        backend: &'static str,
        source: DbError,
    },
    /// The database holds the Python service's threads, never imported (exit code 2).
    #[error("{0}")]
    LegacyNotImported(crate::legacy::NotImported),
    #[error("invalid REDIS_URL: {0}")]
    Redis(redis::RedisError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A built application bound to its listener, ready to run.
pub struct Application {
    listener: TcpListener,
    settings: Settings,
    db: Database,
    cache: Option<RedisCache>,
    state: AppState,
    metering: Option<Metering>,
}

impl Application {
    /// Connects backends and binds `HOST:PORT` (port 0 = any free port). Replies come from the
    /// [`Tutor`] (a model when `OPENAI_API_KEY` is set, else the offline tutor).
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        Self::assemble(settings, None).await
    }

    /// As [`Application::build`], with replies from `responder` (the tests' deterministic,
    /// slow or failing responders).
    pub async fn build_with(
        settings: Settings,
        responder: Arc<dyn Responder>,
    ) -> Result<Self, StartError> {
        Self::assemble(settings, Some(responder)).await
    }

    async fn assemble(
        settings: Settings,
        responder: Option<Arc<dyn Responder>>,
    ) -> Result<Self, StartError> {
        for warning in settings.warnings() {
            tracing::warn!(%warning, "production setting");
        }
        let mut metrics = Metrics::new();
        let db = Database::connect(&settings.database)
            .await
            .map_err(|source| StartError::Store {
                backend: settings.database.backend(),
                source,
            })?;
        let checked = crate::legacy::check(&db)
            .await
            .map_err(|e| StartError::Store {
                backend: settings.database.backend(),
                source: DbError::Database(e),
            })?;
        checked.map_err(StartError::LegacyNotImported)?;
        let registry = metrics.registry_mut();
        let (cache, redis) = connect_redis(&settings, registry).await?;
        let outbound = &settings.outbound;
        let content = Content::new(&settings.content, outbound, cache.clone(), registry).await;
        let auth = Arc::new(Auth::new(
            &settings.auth,
            settings.dev_mode,
            outbound,
            registry,
        ));
        let limiter = RateLimiter::new(&settings.ratelimit, redis, registry);
        let metering = Metering::new(&settings.metering, &db, outbound, registry);
        let responder = responder.unwrap_or_else(|| {
            let tutor = Tutor::new_metered(
                &settings.tutor,
                content.clone(),
                metering.clone(),
                outbound,
                registry,
            );
            Arc::new(tutor)
        });
        let store = ThreadStore::new(&db, &StoreMetrics::register(registry))
            .with_page_max_bytes(settings.server.page_max_bytes)
            .with_write_batch(settings.database.write_batch);
        let shutdown = CancellationToken::new();
        let chatkit = ChatKit::new(
            store,
            responder,
            ChatKitMetrics::register(registry),
            shutdown.clone(),
            settings.server.sse_keepalive,
        )
        .with_limits(settings.server.chat_limits)
        .with_thread_locks(ThreadLocks::new(
            &db,
            settings.server.turn_wait,
            shutdown.clone(),
        ));
        let state = AppState {
            auth,
            limiter,
            chatkit,
            content,
            readiness: Readiness::new(db.clone(), cache.clone(), settings.server.readiness_timeout),
            metrics: Arc::new(metrics),
            body: BodyLimits {
                max_bytes: settings.server.max_body_bytes,
                read_timeout: settings.server.body_read_timeout,
            },
            secrets: Secrets {
                admin: settings.admin_secret.clone().map(Arc::new),
                github_webhook: settings.content.github_webhook_secret.clone().map(Arc::new),
            },
            shutdown,
        };
        let addr = SocketAddr::new(settings.server.host, settings.server.port);
        let server = &settings.server;
        let listener = listen(addr, server.listen_backlog, server.reuse_port)
            .map_err(|source| StartError::Bind { addr, source })?;
        Ok(Self {
            listener,
            settings,
            db,
            cache,
            state,
            metering,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The shared state (tests use it to reach features).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// The settings it was built from.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The connected database (tests inspect it).
    pub fn database(&self) -> Database {
        self.db.clone()
    }

    /// The Redis cache, when `REDIS_URL` is set.
    pub fn cache(&self) -> Option<RedisCache> {
        self.cache.clone()
    }

    /// Serves until `signal` resolves, then shuts down gracefully within `SHUTDOWN_TIMEOUT_SECS`.
    pub async fn run_until_stopped(
        self,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let server = &self.settings.server;
        let deadline = server.shutdown_timeout;
        let streams = self.state.shutdown.clone();
        let chatkit = self.state.chatkit.clone();
        // The outbox worker runs as long as this future: dropped (a test's abort) or finished,
        // it stops; rows it has not delivered stay in the store for the next start.
        let worker_stop = CancellationToken::new();
        let _worker_guard = worker_stop.clone().drop_guard();
        let metering = self.metering.clone();
        if let Some(m) = &metering {
            tokio::spawn(m.clone().run_worker(worker_stop.clone()));
        }
        let router = crate::http::router(server, self.state);
        let limits = ConnectionLimits {
            header_read_timeout: server.header_read_timeout,
            http2_cleartext: server.http2_cleartext,
            http2_keepalive: server.http2_keepalive,
            response_send_timeout: server.response_send_timeout,
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
        chatkit.drain(Duration::from_secs(2)).await;
        if let Some(m) = &metering {
            worker_stop.cancel();
            m.drain(Duration::from_secs(2)).await;
        }
        self.db.close().await;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// The Redis cache and pool when `REDIS_URL` is set (the pool is shared with the limiter).
async fn connect_redis(
    settings: &Settings,
    registry: &mut Registry,
) -> Result<(Option<RedisCache>, Option<Arc<RedisPool>>), StartError> {
    let Some(redis) = &settings.redis else {
        return Ok((None, None));
    };
    let pool = RedisPool::connect(redis).await.map_err(StartError::Redis)?;
    pool.register_metrics(registry);
    Ok((Some(RedisCache::new(pool.clone(), registry)), Some(pool)))
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

//! The accept loop: turns TCP connections into HTTP/1.1 or HTTP/2 (prior knowledge)
//! connections served by the router.
//!
//! Owns: connection-level limits and graceful shutdown of connections. We run our own loop on
//! hyper-util rather than `axum::serve` because `axum::serve` gives hyper no timer, so a client
//! that opens a connection and sends its headers slowly (or not at all) would hold a socket and
//! a task forever. Here:
//! - a client must send its first bytes within `HEADER_READ_TIMEOUT_SECS` (checked before the
//!   HTTP version is sniffed, which hyper-util does without a deadline);
//! - HTTP/1 request heads must be complete within the same time (hyper's `header_read_timeout`,
//!   which also closes keep-alive connections idle for that long); an HTTP/2 connection that
//!   starts no request for as long gets a GOAWAY (its open streams finish), and one that does
//!   not answer the keep-alive ping is closed;
//! - request bodies have their own deadline, enforced where they are read
//!   ([`crate::http::body`]);
//! - an HTTP/1 response that is not an event stream must be taken by the client within
//!   `RESPONSE_SEND_TIMEOUT_SECS`, and hyper's own error answers get a JSON body
//!   ([`super::conn_io`]);
//! - accepted sockets get `TCP_NODELAY`, so a streamed event leaves as soon as it is written;
//! - accept errors (e.g. out of file descriptors) are logged, counted by the caller's logs, and
//!   retried after a pause instead of ending the server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::conn_io::{ConnIo, SendClock};

/// The HTTP/2 connection preface; a connection whose first bytes are a prefix of it may still
/// turn out to be HTTP/2.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Deadline for a client's first bytes and for each HTTP/1 request head; also the idle
    /// keep-alive timeout.
    pub header_read_timeout: Duration,
    /// Serve HTTP/2 with prior knowledge (h2c) at all (`HTTP2_CLEARTEXT`).
    pub http2_cleartext: bool,
    /// Interval of HTTP/2 keep-alive pings; a ping unanswered for as long closes the
    /// connection (`HTTP2_KEEPALIVE_SECS`), so silent h2c connections do not stay for ever.
    pub http2_keepalive: Duration,
    /// An HTTP/1 response that is not an event stream must reach the client within this
    /// (`RESPONSE_SEND_TIMEOUT_SECS`; `None`: no deadline).
    pub response_send_timeout: Option<Duration>,
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and returns
/// the open connections ([`Connections::shutdown`] closes them gracefully).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> Connections {
    let mut http1 = http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.http2_keepalive)
        .keep_alive_timeout(limits.http2_keepalive);
    // The version is sniffed below (`peek`), so each connection goes straight to hyper's
    // builder for it: hyper-util's own version read hands hyper the first 24 bytes alone, and
    // hyper then grows the read buffer of every HTTP/1 connection from 8 to 16 KiB to fit the
    // rest of the request head — 8 KiB more for as long as a held stream's connection lives
    // (docs/BENCHMARKS.md).
    let builders = Arc::new((http1, http2));
    let connections = Connections {
        stop: CancellationToken::new(),
        tracker: TaskTracker::new(),
    };
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // EMFILE/ENFILE/ENOBUFS and friends: the listener itself is fine, the
                    // process is out of something; pause so the loop does not spin.
                    tracing::error!(error = %err, "accept failed; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let clock = Arc::new(SendClock::default());
        let send_timeout = limits.response_send_timeout;
        let armed = clock.clone();
        let opened = Instant::now();
        let last_request = Arc::new(AtomicU64::new(0));
        let seen = last_request.clone();
        let service = router
            .clone()
            .map_request(move |mut req: hyper::Request<Incoming>| {
                seen.store(millis_since(opened), Ordering::Relaxed);
                req.extensions_mut().insert(ConnectInfo(peer));
                req.map(Body::new)
            })
            .map_response(move |res: Response| {
                if let Some(within) = send_timeout.filter(|_| !is_event_stream(&res)) {
                    armed.arm(within);
                }
                res
            });
        let builders = builders.clone();
        let stop = connections.stop.clone();
        let task = async move {
            // Boxed: its timers are dead space once the version is known.
            let sniffed = Box::pin(first_bytes_within(&stream, limits.header_read_timeout)).await;
            match sniffed {
                None => {
                    tracing::debug!(%peer, "closed a connection that sent no request in time");
                    return;
                }
                Some(Sniffed::Http2) if !limits.http2_cleartext => {
                    tracing::debug!(%peer, "closed an h2c connection (HTTP2_CLEARTEXT is off)");
                    return;
                }
                Some(_) => {}
            }
            // HTTP/1 idles out by hyper's header timeout; HTTP/2 gets the same deadline here.
            let idle_limit =
                (sniffed == Some(Sniffed::Http2)).then_some(limits.header_read_timeout);
            if idle_limit.is_some() {
                // HTTP/2 streams share the connection: no per-response deadline (h2 flow
                // control bounds what one stream buffers).
                clock.disable();
            }
            let io = TokioIo::new(ConnIo::new(stream, clock));
            let service = TowerToHyperService::new(service);
            let (http1, http2) = &*builders;
            match idle_limit {
                // Boxed: HTTP/2 (h2c) is the rare case and its connection state the larger;
                // inline, every HTTP/1 connection (every held stream) would carry its size.
                Some(_) => {
                    let conn = http2.serve_connection(io, service);
                    Box::pin(drive(conn, peer, &stop, opened, &last_request, idle_limit)).await;
                }
                None => {
                    let conn = http1.serve_connection(io, service);
                    drive(conn, peer, &stop, opened, &last_request, None).await;
                }
            }
        };
        connections.tracker.spawn(task);
    }
    drop(listener);
    connections
}

/// The connections of a server that stopped accepting.
#[derive(Debug)]
pub struct Connections {
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl Connections {
    /// Asks every connection to finish its current requests and close (HTTP/2: GOAWAY), and
    /// waits until all have.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

fn millis_since(opened: Instant) -> u64 {
    u64::try_from(opened.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Runs one connection until it ends: on `stop` (shutdown) or, with `idle_limit`, after that
/// long without a request, it is closed gracefully (open requests finish first).
async fn drive<C>(
    conn: C,
    peer: SocketAddr,
    stop: &CancellationToken,
    opened: Instant,
    last_request: &AtomicU64,
    idle_limit: Option<Duration>,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
                break;
            }
            () = stop.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = idle(opened, last_request, idle_limit), if !closing && idle_limit.is_some() => {
                // GOAWAY: streams still open finish, no new ones start.
                tracing::debug!(%peer, "closing an idle HTTP/2 connection");
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Resolves once the connection opened at `opened` has started no request for `limit`
/// (never when `limit` is `None`).
async fn idle(opened: Instant, last_request: &AtomicU64, limit: Option<Duration>) {
    let Some(limit) = limit else {
        return std::future::pending().await;
    };
    loop {
        let last = Duration::from_millis(last_request.load(Ordering::Relaxed));
        let due = opened + last + limit;
        if Instant::now() >= due {
            return;
        }
        tokio::time::sleep_until(due).await;
    }
}

/// A `text/event-stream` answer (a ChatKit stream): it may last as long as the reply, so it
/// gets no send deadline.
fn is_event_stream(res: &Response) -> bool {
    res.headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
}

/// What a connection's first bytes say it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sniffed {
    Http1,
    Http2,
}

/// Waits until the client has sent enough bytes for the HTTP version to be known (anything
/// that is not a prefix of the HTTP/2 preface, or the whole preface), at most `deadline`;
/// `None` when it did not.
async fn first_bytes_within(stream: &TcpStream, deadline: Duration) -> Option<Sniffed> {
    let wait = async {
        let mut buf = [0u8; H2_PREFACE.len()];
        loop {
            match stream.peek(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) if n == H2_PREFACE.len() && buf == *H2_PREFACE => {
                    return Some(Sniffed::Http2);
                }
                Ok(n) if buf[..n] != H2_PREFACE[..n] => return Some(Sniffed::Http1),
                // A partial HTTP/2 preface: `peek` would return the same bytes at once, so
                // poll again shortly (rare: only HTTP/2 clients whose preface is split).
                Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    };
    tokio::time::timeout(deadline, wait).await.ok().flatten()
}

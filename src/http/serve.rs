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
//!   which also closes keep-alive connections idle for that long);
//! - request bodies have their own deadline, enforced where they are read
//!   ([`crate::http::body`]);
//! - an HTTP/1 response that is not an event stream must be taken by the client within
//!   `RESPONSE_SEND_TIMEOUT_SECS`, and hyper's own error answers get a JSON body
//!   ([`super::conn_io`]);
//! - accepted sockets get `TCP_NODELAY`, so a streamed event leaves as soon as it is written;
//! - accept errors (e.g. out of file descriptors) are logged, counted by the caller's logs, and
//!   retried after a pause instead of ending the server.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
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

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and returns a
/// handle that resolves when every open connection has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> GracefulShutdown {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.http2_keepalive)
        .keep_alive_timeout(limits.http2_keepalive);
    let graceful = GracefulShutdown::new();
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
        let service = router
            .clone()
            .map_request(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.map(Body::new)
            })
            .map_response(move |res: Response| {
                if let Some(within) = send_timeout.filter(|_| !is_event_stream(&res)) {
                    armed.arm(within);
                }
                res
            });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let first_bytes = limits.header_read_timeout;
        tokio::spawn(async move {
            let sniffed = first_bytes_within(&stream, first_bytes).await;
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
            if sniffed != Some(Sniffed::Http1) {
                // HTTP/2 streams share the connection: no per-response deadline (h2 flow
                // control bounds what one stream buffers).
                clock.disable();
            }
            let conn = builder.serve_connection_with_upgrades(
                TokioIo::new(ConnIo::new(stream, clock)),
                TowerToHyperService::new(service),
            );
            if let Err(err) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful
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

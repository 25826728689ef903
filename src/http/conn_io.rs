//! The byte stream of one HTTP/1 connection, between the socket and hyper.
//!
//! Owns two things hyper offers no hook for:
//! - **hyper's own error answers** (400 for a malformed request head, 414 for a URI too long,
//!   431 for headers too large) are written before any of our code runs, with an empty body.
//!   [`ConnIo`] recognises such a head on its way out and writes it with a body in the JSON
//!   error shape instead (`{"error":{"code","message"}}`; no request id: there was no
//!   request). Our own answers never match: every one of them has a body and a content type.
//! - **the send deadline** (`RESPONSE_SEND_TIMEOUT_SECS`): a non-streaming response must reach
//!   the client within the deadline from the moment it was ready. hyper stops polling a body
//!   when the socket is not writable, so a deadline on the body alone never fires for a
//!   client that stops reading; here a write still unfinished at the deadline fails, hyper
//!   closes the connection, and the response's memory is freed. The deadline is armed per
//!   response by [`SendClock::arm`] (the accept loop does it for every response that is not
//!   an event stream) and dropped when the client sends its next request.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// When the response being sent must be sent by (shared by a connection's IO and the code
/// that hands hyper its responses).
#[derive(Debug, Default)]
pub struct SendClock {
    /// Milliseconds since [`epoch`] + 1; 0 when no deadline is armed.
    until: AtomicU64,
    /// Never armed (HTTP/2 connections).
    disabled: std::sync::atomic::AtomicBool,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn millis_since_epoch(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_millis()).unwrap_or(u64::MAX - 1) + 1
}

impl SendClock {
    /// The response handed to hyper now must be written within `within`.
    pub fn arm(&self, within: Duration) {
        if self.disabled.load(Ordering::Relaxed) {
            return;
        }
        let at = Instant::now() + within;
        self.until.store(millis_since_epoch(at), Ordering::Relaxed);
    }

    /// This connection gets no deadlines.
    pub fn disable(&self) {
        self.disabled.store(true, Ordering::Relaxed);
        self.disarm();
    }

    fn disarm(&self) {
        self.until.store(0, Ordering::Relaxed);
    }

    fn deadline(&self) -> Option<Instant> {
        match self.until.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(epoch() + Duration::from_millis(ms - 1)),
        }
    }
}

/// The socket of one connection, as hyper sees it.
pub struct ConnIo<S> {
    inner: S,
    clock: Arc<SendClock>,
    /// Wakes a write stalled on the socket at the deadline.
    sleep: Option<Pin<Box<Sleep>>>,
    /// A rewritten error answer being written: its bytes, how many are out, and how many
    /// bytes of hyper's buffer they stand for.
    rewrite: Option<(Vec<u8>, usize, usize)>,
}

impl<S> ConnIo<S> {
    pub fn new(inner: S, clock: Arc<SendClock>) -> Self {
        Self {
            inner,
            clock,
            sleep: None,
            rewrite: None,
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the client did not take the response within RESPONSE_SEND_TIMEOUT_SECS",
    )
}

impl<S: AsyncWrite + Unpin> ConnIo<S> {
    /// True once the armed deadline has passed. After an inner `Pending` (`stalled`), also
    /// arms the timer that wakes this task at the deadline.
    fn expired(&mut self, cx: &mut Context<'_>, stalled: bool) -> bool {
        let Some(deadline) = self.clock.deadline() else {
            self.sleep = None;
            return false;
        };
        if Instant::now() >= deadline {
            return true;
        }
        if stalled {
            let at = tokio::time::Instant::from_std(deadline);
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
            if sleep.deadline() != at {
                sleep.as_mut().reset(at);
            }
            return sleep.as_mut().poll(cx).is_ready();
        }
        false
    }

    /// `result` of an inner write or flush, failed when the deadline has passed.
    fn within_deadline<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match result {
            Poll::Pending if self.expired(cx, true) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn write_inner(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.expired(cx, false) {
            return Poll::Ready(Err(timed_out()));
        }
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.within_deadline(cx, result)
    }

    /// Writes `buf`, or the JSON-bodied version of it when it is one of hyper's own error
    /// answers; reports `buf`'s length once the replacement is out.
    fn write_or_rewrite(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.rewrite.is_none() {
            match rewritten(buf) {
                Some(bytes) => self.rewrite = Some((bytes, 0, buf.len())),
                None => return self.write_inner(cx, buf),
            }
        }
        loop {
            let Some((bytes, sent, stands_for)) = self.rewrite.take() else {
                return Poll::Ready(Ok(0));
            };
            if sent == bytes.len() {
                return Poll::Ready(Ok(stands_for));
            }
            match self.write_inner(cx, &bytes[sent..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.rewrite = Some((bytes, sent + n, stands_for)),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    self.rewrite = Some((bytes, sent, stands_for));
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ConnIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before && self.rewrite.is_none() {
            // The client sent its next request: the previous answer was taken.
            self.clock.disarm();
            self.sleep = None;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ConnIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_or_rewrite(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.rewrite.is_some() {
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
            return self.write_or_rewrite(cx, first);
        }
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            if rewritten(first).is_some() {
                return self.write_or_rewrite(cx, first);
            }
        }
        if self.expired(cx, false) {
            return Poll::Ready(Err(timed_out()));
        }
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.within_deadline(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.within_deadline(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// hyper's automatic answer to a request head it could not parse — `HTTP/1.1 400|414|431`,
/// `content-length: 0`, no content type — rewritten with a JSON error body; `None` for
/// anything else.
fn rewritten(head: &[u8]) -> Option<Vec<u8>> {
    let (code, message) = match head.get(..13)? {
        b"HTTP/1.1 400 " => ("bad_request", "the request line or a header is malformed"),
        b"HTTP/1.1 414 " => ("uri_too_long", "the request URI is too long"),
        b"HTTP/1.1 431 " => (
            "request_header_fields_too_large",
            "the request headers are too large",
        ),
        _ => return None,
    };
    if !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let lower = text.to_ascii_lowercase();
    if lower.contains("\r\ncontent-type:") {
        return None;
    }
    let at = lower.find("\r\ncontent-length: 0\r\n")?;
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    let mut out = Vec::with_capacity(head.len() + body.len() + 64);
    out.extend_from_slice(&head[..at]);
    out.extend_from_slice(b"\r\ncontent-type: application/json\r\ncontent-length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(&head[at + "\r\ncontent-length: 0".len()..]);
    out.extend_from_slice(body.as_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_error_heads_get_a_json_body() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Fri, 04 Dec 2026 10:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewritten(head).expect("rewritten")).expect("utf-8");
        let (head, body) = out.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 431 "));
        assert!(head.contains("\r\ncontent-type: application/json\r\n"));
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        assert!(head.contains("\r\ndate: "));
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON body");
        assert_eq!(json["error"]["code"], "request_header_fields_too_large");
    }

    #[test]
    fn our_own_answers_are_left_alone() {
        for head in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 57\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        ] {
            assert!(rewritten(head).is_none(), "{}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn a_deadline_is_armed_and_disarmed() {
        let clock = SendClock::default();
        assert!(clock.deadline().is_none());
        clock.arm(Duration::from_secs(30));
        let left = clock.deadline().expect("armed") - Instant::now();
        assert!(left > Duration::from_secs(29) && left <= Duration::from_secs(30));
        clock.disarm();
        assert!(clock.deadline().is_none());
    }
}

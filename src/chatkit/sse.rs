//! The SSE side of a stream: framing (`data: <compact JSON>\n\n`, nothing else, as the
//! reference), the bounded channel to the response body, and the ways a stream stops (client
//! gone, shutdown, thread deleted).

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::error::Stop;
use super::metrics::{ChatKitMetrics, EventLabels};
use super::types::Event;

/// One SSE frame on its way to the response body. Boxed: the channel's storage is blocks of 32
/// slots allocated up front, so a thin pointer keeps it at 32 × 8 bytes instead of 32 × 32 per
/// stream, for one small allocation per frame (docs/BENCHMARKS.md, "The stream driver's size").
pub type Frame = Box<Bytes>;

/// The body's end of a stream.
pub type Frames = mpsc::Receiver<Frame>;

/// Frames buffered between the driver and the response body. Small, so that a client that
/// stops reading stalls the driver (back-pressure) instead of growing memory.
pub const CHANNEL_CAPACITY: usize = 16;

/// One SSE frame.
pub fn frame(event: &Event) -> Result<Frame, Stop> {
    let json = serde_json::to_vec(event).map_err(Stop::Encode)?;
    let mut out = Vec::with_capacity(json.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&json);
    out.extend_from_slice(b"\n\n");
    Ok(Box::new(Bytes::from(out)))
}

/// The writing end of one stream.
#[derive(Debug)]
pub struct Sink {
    tx: mpsc::Sender<Frame>,
    shutdown: CancellationToken,
    /// Cancelled when the thread is deleted mid-reply.
    deleted: CancellationToken,
    metrics: ChatKitMetrics,
}

impl Sink {
    pub fn new(
        tx: mpsc::Sender<Frame>,
        shutdown: CancellationToken,
        deleted: CancellationToken,
        metrics: ChatKitMetrics,
    ) -> Self {
        Self {
            tx,
            shutdown,
            deleted,
            metrics,
        }
    }

    /// Sends one event; fails when the client is gone or the server is shutting down.
    pub async fn emit(&self, event: &Event) -> Result<(), Stop> {
        let bytes = frame(event)?;
        // The usual case first, without registering on the tokens: the same checks in the same
        // order as the `select!` below, which only runs when the buffer is full.
        if self.shutdown.is_cancelled() {
            return Err(Stop::Shutdown);
        }
        if self.deleted.is_cancelled() {
            return Err(Stop::Deleted);
        }
        match self.tx.try_send(bytes) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Stop::Disconnected),
            // Boxed: the waiting futures are most of this one's size, and every reply's
            // state keeps room for the `emit` it awaits.
            Err(mpsc::error::TrySendError::Full(bytes)) => {
                Box::pin(self.send_when_read(bytes)).await?
            }
        }
        self.count(event);
        Ok(())
    }

    /// Waits for room in the buffer (the client reading), unless the stream must stop first.
    async fn send_when_read(&self, bytes: Frame) -> Result<(), Stop> {
        tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => Err(Stop::Shutdown),
            _ = self.deleted.cancelled() => Err(Stop::Deleted),
            sent = self.tx.send(bytes) => sent.map_err(|_| Stop::Disconnected),
        }
    }

    /// Sends without waiting (last words on the way out); dropped when the buffer is full.
    pub fn try_emit(&self, event: &Event) {
        if let Ok(bytes) = frame(event) {
            if self.tx.try_send(bytes).is_ok() {
                self.count(event);
            }
        }
    }

    /// Resolves when the stream must stop without the driver sending anything.
    pub async fn stopped(&self) -> Stop {
        tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => Stop::Shutdown,
            _ = self.deleted.cancelled() => Stop::Deleted,
            _ = self.tx.closed() => Stop::Disconnected,
        }
    }

    fn count(&self, event: &Event) {
        self.metrics
            .events_sent
            .get_or_create(&EventLabels {
                event: event.type_name(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(capacity: usize) -> (Sink, Frames, CancellationToken, CancellationToken) {
        let (tx, rx) = mpsc::channel(capacity);
        let (shutdown, deleted) = (CancellationToken::new(), CancellationToken::new());
        let metrics = ChatKitMetrics::register(&mut Default::default());
        let sink = Sink::new(tx, shutdown.clone(), deleted.clone(), metrics);
        (sink, rx, shutdown, deleted)
    }

    fn event() -> Event {
        Event::error("x", false)
    }

    /// With room in the buffer: sent; shutdown wins over a deletion, which wins over sending;
    /// a gone client is `Disconnected`.
    #[tokio::test]
    async fn emit_checks_shutdown_then_deletion_then_the_client() {
        let (s, mut rx, shutdown, deleted) = sink(4);
        s.emit(&event()).await.expect("sent");
        assert_eq!(
            rx.recv().await.expect("frame"),
            frame(&event()).expect("frame")
        );
        deleted.cancel();
        assert!(matches!(s.emit(&event()).await, Err(Stop::Deleted)));
        shutdown.cancel();
        assert!(matches!(s.emit(&event()).await, Err(Stop::Shutdown)));
        let (s, rx, _, _) = sink(4);
        drop(rx);
        assert!(matches!(s.emit(&event()).await, Err(Stop::Disconnected)));
    }

    /// A full buffer waits for the client, and a shutdown or deletion ends that wait.
    #[tokio::test]
    async fn a_full_buffer_waits_until_read_or_stopped() {
        let (s, mut rx, shutdown, _) = sink(1);
        s.emit(&event()).await.expect("fills the buffer");
        let s = std::sync::Arc::new(s);
        let waiting = tokio::spawn({
            let s = s.clone();
            async move { s.emit(&event()).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a full buffer must wait");
        rx.recv().await.expect("read one");
        waiting.await.expect("task").expect("sent once read");
        let blocked = tokio::spawn({
            let s = s.clone();
            async move { s.emit(&event()).await }
        });
        tokio::task::yield_now().await;
        shutdown.cancel();
        assert!(matches!(blocked.await.expect("task"), Err(Stop::Shutdown)));
        let (s, _rx, _, deleted) = sink(1);
        s.emit(&event()).await.expect("fills the buffer");
        let s = std::sync::Arc::new(s);
        let blocked = tokio::spawn({
            let s = s.clone();
            async move { s.emit(&event()).await }
        });
        tokio::task::yield_now().await;
        deleted.cancel();
        assert!(matches!(blocked.await.expect("task"), Err(Stop::Deleted)));
    }
}

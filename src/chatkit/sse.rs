//! The SSE side of a stream: framing (`data: <compact JSON>\n\n`, nothing else, as the
//! reference), the bounded channel to the response body, and the ways a stream stops (client
//! gone, shutdown, thread deleted).

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::error::Stop;
use super::metrics::{ChatKitMetrics, EventLabels};
use super::types::Event;

/// Frames buffered between the driver and the response body. Small, so that a client that
/// stops reading stalls the driver (back-pressure) instead of growing memory.
pub const CHANNEL_CAPACITY: usize = 16;

/// One SSE frame.
pub fn frame(event: &Event) -> Result<Bytes, Stop> {
    let json = serde_json::to_vec(event).map_err(Stop::Encode)?;
    let mut out = Vec::with_capacity(json.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&json);
    out.extend_from_slice(b"\n\n");
    Ok(Bytes::from(out))
}

/// The writing end of one stream.
#[derive(Debug)]
pub struct Sink {
    tx: mpsc::Sender<Bytes>,
    shutdown: CancellationToken,
    /// Cancelled when the thread is deleted mid-reply.
    deleted: CancellationToken,
    metrics: ChatKitMetrics,
}

impl Sink {
    pub fn new(
        tx: mpsc::Sender<Bytes>,
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
        tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => return Err(Stop::Shutdown),
            _ = self.deleted.cancelled() => return Err(Stop::Deleted),
            sent = self.tx.send(bytes) => sent.map_err(|_| Stop::Disconnected)?,
        }
        self.count(event);
        Ok(())
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

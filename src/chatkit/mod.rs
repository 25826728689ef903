//! The ChatKit protocol server: request and event types (serde twins of `openai-chatkit`
//! 1.6.5), the dispatcher, the event stream and the thread store.
//!
//! Owns: the wire format of `POST /chatkit`, item ids, persistence order and event order.
//! Must not know how replies are produced (see [`crate::turn`]): the service uses the tutor,
//! the protocol tests a deterministic responder of their own. Must not know HTTP: the edge
//! (`crate::http::chatkit`) checks the rate limit, builds the [`RequestContext`] and maps
//! [`ChatKitError`] to a status.
//! Protocol notes and every divergence from the reference: `docs/PROTOCOL.md`.

pub mod context;
mod error;
mod history;
pub mod ids;
mod json;
pub mod limits;
pub mod metrics;
pub mod reply;
pub mod request;
mod sse;
pub mod store;
mod stream;
mod strict;
mod structured;
pub mod thread_lock;
pub mod trigger;
pub mod types;
pub mod widgets;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use context::RequestContext;
pub use error::{ChatKitError, Stop};
pub use limits::ChatKitLimits;
pub use metrics::ChatKitMetrics;
pub use request::Request;
pub use sse::Frames;
pub use store::ThreadStore;
pub use thread_lock::ThreadLocks;

use crate::turn::Responder;
use store::ThreadRecord;
use types::ThreadItem;

/// The ChatKit server of one process: store, responder, metrics and the shutdown signal that
/// ends open streams.
#[derive(Clone)]
pub struct ChatKit {
    pub store: ThreadStore,
    pub responder: Arc<dyn Responder>,
    pub metrics: ChatKitMetrics,
    shutdown: CancellationToken,
    /// The stream drivers, so shutdown can wait for their last writes before closing the pool.
    drivers: TaskTracker,
    /// A stream silent this long gets an SSE comment (`SSE_KEEPALIVE_SECS`; `None`: never).
    keepalive: Option<Duration>,
    /// Message, title and history limits.
    limits: ChatKitLimits,
    /// One turn at a time per thread (across instances on PostgreSQL).
    locks: ThreadLocks,
}

impl std::fmt::Debug for ChatKit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatKit")
            .field("store", &self.store)
            .field("responder", &self.responder.describe())
            .finish()
    }
}

/// What `POST /chatkit` answers.
pub enum Reply {
    /// `application/json` body.
    Json(Bytes),
    /// `text/event-stream`: SSE frames as they are produced.
    Stream(sse::Frames),
}

impl ChatKit {
    pub fn new(
        store: ThreadStore,
        responder: Arc<dyn Responder>,
        metrics: ChatKitMetrics,
        shutdown: CancellationToken,
        keepalive: Option<Duration>,
    ) -> Self {
        Self {
            store,
            responder,
            metrics,
            shutdown,
            drivers: TaskTracker::new(),
            keepalive,
            limits: ChatKitLimits::default(),
            locks: ThreadLocks::local(thread_lock::TURN_WAIT),
        }
    }

    /// The same server taking turns with `locks` (the composition root passes the
    /// database's; the default serialises turns inside this process only).
    pub fn with_thread_locks(mut self, locks: ThreadLocks) -> Self {
        self.locks = locks;
        self
    }

    /// The same server with `limits` instead of the defaults.
    pub fn with_limits(mut self, limits: ChatKitLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The message, title and history limits (the edge checks requests against them).
    pub fn limits(&self) -> &ChatKitLimits {
        &self.limits
    }

    /// How long a stream may stay silent before it gets an SSE comment.
    pub fn keepalive(&self) -> Option<Duration> {
        self.keepalive
    }

    /// Shutdown: waits (at most `deadline`) for stream drivers to finish their writes (partial
    /// replies, cancellation notes) so that closing the pool does not cut them off.
    pub async fn drain(&self, deadline: Duration) {
        self.drivers.close();
        if tokio::time::timeout(deadline, self.drivers.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.drivers.len(),
                "chatkit streams still writing at exit"
            );
        }
    }

    /// Handles one parsed request (its rate limit already checked by the caller): the JSON
    /// answer or the started stream.
    pub async fn process(
        &self,
        ctx: RequestContext,
        request: Request,
    ) -> Result<Reply, ChatKitError> {
        Ok(if request.is_streaming() {
            Reply::Stream(stream::start(self, ctx, request).await?)
        } else {
            Reply::Json(json::answer(self, &ctx, request).await?)
        })
    }

    /// The owner's thread, or 404.
    async fn thread(&self, ctx: &RequestContext, id: &str) -> Result<ThreadRecord, ChatKitError> {
        self.store
            .load_thread(ctx.owner(), id)
            .await?
            .ok_or_else(|| ChatKitError::NotFound(format!("params.thread_id: no thread {id:?}")))
    }

    /// A visible item of the owner's thread, or 404 (hidden items do not exist for clients).
    async fn item(
        &self,
        ctx: &RequestContext,
        thread_id: &str,
        item_id: &str,
    ) -> Result<ThreadItem, ChatKitError> {
        self.store
            .load_item(ctx.owner(), thread_id, item_id)
            .await?
            .filter(|i| !i.is_hidden())
            .ok_or_else(|| {
                ChatKitError::NotFound(format!(
                    "params.item_id: no item {item_id:?} in this thread"
                ))
            })
    }
}

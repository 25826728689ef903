//! The ChatKit protocol server: request and event types (serde twins of `openai-chatkit`
//! 1.6.5), the dispatcher, the event stream and the thread store.
//!
//! Owns: the wire format of `POST /chatkit`, item ids, persistence order and event order.
//! Must not know how replies are produced (see [`crate::tutor::turn`]): the service uses the
//! tutor; the protocol tests use a deterministic echo responder of their own.
//! Protocol notes and every divergence from the reference: `docs/PROTOCOL.md`.

// `ApiError` (the edge's one error type, owned by `crate::error`) is 176 bytes; it is built
// once per failed request, so its size does not matter here.
#![allow(clippy::result_large_err)]

pub mod context;
mod history;
pub mod ids;
mod json;
pub mod metrics;
pub mod reply;
pub mod request;
mod sse;
pub mod store;
mod stream;
mod strict;
mod structured;
pub mod types;

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use context::{RawContext, RequestContext};
pub use metrics::ChatKitMetrics;
pub use request::Request;
pub use store::{Store, ThreadStore};

use crate::error::ApiError;
use crate::ratelimit::{Policy, RateLimiter};
use crate::tutor::turn::Responder;
use store::{ThreadRecord, ThreadStoreError};
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
    Stream(mpsc::Receiver<Bytes>),
}

/// A reply plus headers to add (rate-limit headers).
pub struct Outcome {
    pub reply: Reply,
    pub headers: HeaderMap,
}

impl ChatKit {
    pub fn new(
        store: ThreadStore,
        responder: Arc<dyn Responder>,
        metrics: ChatKitMetrics,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            store,
            responder,
            metrics,
            shutdown,
            drivers: TaskTracker::new(),
        }
    }

    /// Shutdown: waits (at most `deadline`) for stream drivers to finish their writes (partial
    /// replies, cancellation notes) so that closing the pool does not cut them off.
    pub async fn drain(&self, deadline: std::time::Duration) {
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

    /// Handles one parsed request: the rate limit first (before any stream starts), then the
    /// JSON answer or the started stream.
    pub async fn process(
        &self,
        limiter: &RateLimiter,
        ctx: RequestContext,
        request: Request,
    ) -> Result<Outcome, ApiError> {
        let headers = if request.is_rate_limited() {
            limiter.check(Policy::Chat, ctx.owner()).await?
        } else {
            HeaderMap::new()
        };
        let reply = if request.is_streaming() {
            Reply::Stream(stream::start(self, ctx, request).await?)
        } else {
            Reply::Json(json::answer(self, &ctx, request).await?)
        };
        Ok(Outcome { reply, headers })
    }

    /// The owner's thread, or 404.
    async fn thread(&self, ctx: &RequestContext, id: &str) -> Result<ThreadRecord, ApiError> {
        self.store
            .load_thread(ctx.owner(), id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("params.thread_id: no thread {id:?}")))
    }

    /// A visible item of the owner's thread, or 404 (hidden items do not exist for clients).
    async fn item(
        &self,
        ctx: &RequestContext,
        thread_id: &str,
        item_id: &str,
    ) -> Result<ThreadItem, ApiError> {
        self.store
            .load_item(ctx.owner(), thread_id, item_id)
            .await?
            .filter(|i| !i.is_hidden())
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "params.item_id: no item {item_id:?} in this thread"
                ))
            })
    }
}

/// A request for a feature this server does not offer (documented in `docs/PROTOCOL.md`).
pub fn unsupported(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "unsupported", message)
}

impl From<ThreadStoreError> for ApiError {
    fn from(e: ThreadStoreError) -> Self {
        match e {
            ThreadStoreError::NoSuchThread => ApiError::not_found("no such thread"),
            // A database that is down or restarting is not a bug: 503 tells the client to
            // retry (found by the PostgreSQL fault test, which used to get opaque 500s).
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "thread store unavailable");
                ApiError::unavailable("the thread store is unavailable; please try again shortly")
            }
            other => ApiError::internal(format!("thread store: {other}")),
        }
    }
}

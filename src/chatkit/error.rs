//! Why a ChatKit request was refused before any stream started (the HTTP edge maps each to its
//! status); failures after the stream started are `error` events instead (see `sse::Stop`).

use super::store::ThreadStoreError;

/// A refused ChatKit request.
#[derive(Debug, thiserror::Error)]
pub enum ChatKitError {
    /// The body or a parameter is malformed; the message names the field (400).
    #[error("{0}")]
    BadRequest(String),
    /// A feature this server does not offer (400 `unsupported`; docs/PROTOCOL.md).
    #[error("{0}")]
    Unsupported(String),
    /// A thread or item that is missing or another user's (404).
    #[error("{0}")]
    NotFound(String),
    /// The thread store failed (503 while it is unreachable, else 500).
    #[error("thread store: {0}")]
    Store(#[from] ThreadStoreError),
    /// A bug: logged, answered with an opaque 500.
    #[error("{0}")]
    Internal(String),
}

/// Why a stream ended early.
#[derive(Debug)]
pub enum Stop {
    /// The client went away (the response body was dropped).
    Disconnected,
    /// The server is shutting down (`App::shutdown` fired).
    Shutdown,
    /// A store failure; answered with an `error` event when still possible.
    Store(ThreadStoreError),
    /// An event could not be encoded (a bug).
    Encode(serde_json::Error),
}

impl From<ThreadStoreError> for Stop {
    fn from(e: ThreadStoreError) -> Self {
        Stop::Store(e)
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Disconnected => f.write_str("the client disconnected"),
            Stop::Shutdown => f.write_str("the server is shutting down"),
            Stop::Store(e) => write!(f, "thread store: {e}"),
            Stop::Encode(e) => write!(f, "encoding an event: {e}"),
        }
    }
}

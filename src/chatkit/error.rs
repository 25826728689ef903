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
    /// Another turn held the thread for the whole `TURN_WAIT_SECS` (409; retry later).
    #[error("{0}")]
    Busy(String),
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
    /// The thread was deleted while its reply ran (here or on another instance).
    Deleted,
    /// A store failure; answered with an `error` event when still possible.
    Store(ThreadStoreError),
    /// An event could not be encoded (a bug).
    Encode(serde_json::Error),
}

impl From<ThreadStoreError> for Stop {
    /// A write aimed at a thread that is gone means it was deleted meanwhile.
    fn from(e: ThreadStoreError) -> Self {
        match e {
            ThreadStoreError::NoSuchThread => Stop::Deleted,
            e => Stop::Store(e),
        }
    }
}

impl From<super::thread_lock::LockError> for ChatKitError {
    fn from(e: super::thread_lock::LockError) -> Self {
        use super::thread_lock::LockError;
        match e {
            LockError::Busy => ChatKitError::Busy(
                "params.thread_id: another reply is being written in this thread; try again when it has ended".into(),
            ),
            LockError::Deleted => {
                ChatKitError::NotFound("params.thread_id: the thread was deleted".into())
            }
            LockError::Database(e) => ChatKitError::Store(ThreadStoreError::Database(e)),
        }
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Disconnected => f.write_str("the client disconnected"),
            Stop::Shutdown => f.write_str("the server is shutting down"),
            Stop::Deleted => f.write_str("the thread was deleted"),
            Stop::Store(e) => write!(f, "thread store: {e}"),
            Stop::Encode(e) => write!(f, "encoding an event: {e}"),
        }
    }
}

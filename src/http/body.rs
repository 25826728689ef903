//! Reading request bodies: one extractor for every route that takes a body, so all of them
//! share the size limit, the read deadline and the error shapes.
//!
//! Owns: [`RequestBody`]. A body larger than `MAX_BODY_BYTES` is 413; a body that does not
//! arrive within `BODY_READ_TIMEOUT_SECS` (a client trickling bytes to hold a connection) is
//! 408; a connection that fails while sending is 400. The deadline covers the whole body, not
//! each chunk, so sending one byte every few seconds does not keep a request alive.

use std::error::Error as StdError;

use axum::extract::{FromRef, FromRequest, Request};
use axum::http::StatusCode;
use bytes::Bytes;
use http_body_util::LengthLimitError;

use crate::error::ApiError;
use crate::state::BodyLimits;

/// The complete request body.
#[derive(Debug, Clone)]
pub struct RequestBody(pub Bytes);

impl<S> FromRequest<S> for RequestBody
where
    BodyLimits: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        read(req, BodyLimits::from_ref(state)).await.map(Self)
    }
}

/// Reads the whole body of `req` within `limits`: for handlers that check a header (a
/// secret) before they spend memory on the body.
pub async fn read(req: Request, limits: BodyLimits) -> Result<Bytes, ApiError> {
    let limit = limits.max_bytes;
    let read = axum::body::to_bytes(req.into_body(), limit);
    match tokio::time::timeout(limits.read_timeout, read).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(err)) if is_length_limit(&err) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
        )),
        Ok(Err(err)) => Err(ApiError::bad_request(format!(
            "the request body could not be read: {err}"
        ))),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body did not arrive within {} s",
                limits.read_timeout.as_secs_f64()
            ),
        )),
    }
}

fn is_length_limit(err: &axum::Error) -> bool {
    let mut cause: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(e) = cause {
        if e.is::<LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

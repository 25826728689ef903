//! `POST /chatkit`: the ChatKit protocol endpoint (JSON or Server-Sent Events).
//!
//! Thin: collects the user, query and headers into a [`RequestContext`], parses the body,
//! calls [`ChatKit::process`](crate::chatkit::ChatKit::process) and maps the outcome to a
//! response.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;

use super::body::RequestBody;
use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::chatkit::{Outcome, RawContext, Reply, RequestContext, request};
use crate::error::ApiError;
use crate::telemetry::request_id;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/chatkit", post(chatkit))
}

async fn chatkit(
    State(state): State<AppState>,
    user: CurrentUser,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    RequestBody(body): RequestBody,
) -> Result<Response, ApiError> {
    let raw = RawContext {
        query,
        user_name_header: header_text(&headers, "x-user-name"),
        organization_header: header_text(&headers, "x-organization-id"),
        request_id: request_id::current(),
    };
    let ctx = RequestContext::parse(user, raw)?;
    let request = request::parse(&body)?;
    let outcome = state.chatkit.process(&state.limiter, ctx, request).await?;
    Ok(respond(outcome, state.settings.server.sse_keepalive))
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// An SSE comment: ignored by clients, but it is traffic, so proxies and load balancers do not
/// close a stream that waits a long time for a model's first token as idle.
const KEEPALIVE: &[u8] = b": keep-alive\n\n";

fn respond(Outcome { reply, headers }: Outcome, keepalive: Option<Duration>) -> Response {
    let mut response = match reply {
        Reply::Json(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Reply::Stream(rx) => {
            let frames = futures::stream::unfold(rx, move |mut rx| async move {
                let frame = match keepalive {
                    Some(every) => match tokio::time::timeout(every, rx.recv()).await {
                        Ok(frame) => frame,
                        Err(_) => Some(Bytes::from_static(KEEPALIVE)),
                    },
                    None => rx.recv().await,
                };
                frame.map(|frame| (Ok::<_, Infallible>(frame), rx))
            });
            let mut response = Body::from_stream(frames).into_response();
            let h = response.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert("x-accel-buffering", HeaderValue::from_static("no"));
            response
        }
    };
    response.headers_mut().extend(headers);
    response
}

//! `POST /chatkit`: the ChatKit protocol endpoint (JSON or Server-Sent Events).
//!
//! Thin: collects the user, query and headers into a [`RequestContext`], parses the body,
//! checks the chat rate limit, calls [`ChatKit::process`] and maps the reply to a response.

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::{Bytes, BytesMut};

use serde::Deserialize;
use utoipa::IntoParams;

use super::body::RequestBody;
use super::query::{Query, QueryParams, empty_as_none};
use crate::auth::{AuthError, CurrentUser};
use crate::chatkit::{ChatKit, Frames, Reply, RequestContext, request};
use crate::content::{LessonPath, Mode};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::ratelimit::{ClientIp, Policy, RateLimiter};
use crate::state::AppState;
use crate::telemetry::request_id;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/chatkit", post(chatkit))
}

/// `POST /chatkit`'s query: the page's lesson and mode, and (dev mode, read by `auth`)
/// `user_id`. An empty value is absent; a `mode` that is none of the modes is not refused here:
/// the turn answers it with a non-retryable `error` event, as it does for the composer's.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ChatKitIn {
    /// Lesson path relative to the docs root, e.g. `01-python-basics/01-variables`; `..`, `.`
    /// and `\` are refused. An empty value is the same as none; a blank one is refused.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(value_type = Option<String>, max_length = 512)]
    lesson_path: Option<LessonPath>,
    /// Tutor mode when the composer sends no `inference_options.model`: `teach`, `ask` or
    /// `quiz`.
    #[serde(default)]
    mode: Option<String>,
    /// Text the student selected in the lesson.
    #[serde(default)]
    selected_text: Option<String>,
    /// Display name of the user.
    #[serde(default)]
    user_name: Option<String>,
}

impl QueryParams for ChatKitIn {}

/// Before the token is checked: a client IP over `RATE_LIMIT_AUTH_FAILURES` is 429 at once, so
/// replayed bad tokens cost no verification (no SSO call).
struct AuthGate(IpAddr);

impl FromRequestParts<AppState> for AuthGate {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        match RateLimiter::from_ref(state).still_refused(Policy::AuthFailures, &ip.to_string()) {
            Some(limited) => Err(limited.into()),
            None => Ok(Self(ip)),
        }
    }
}

/// A failed authentication counts against the client IP's failure budget; the one that spends
/// it is already answered 429. An unreachable SSO is not the client's failure.
async fn auth_failed(limiter: &RateLimiter, ip: IpAddr, error: AuthError) -> ApiError {
    if matches!(error, AuthError::Unavailable(_) | AuthError::BadDevUser(_)) {
        return error.into();
    }
    match limiter
        .record_failure(Policy::AuthFailures, &ip.to_string())
        .await
    {
        Some(limited) => limited.into(),
        None => error.into(),
    }
}

#[utoipa::path(post, path = "/chatkit", tag = "chatkit", operation_id = "chatkit",
    summary = "The ChatKit protocol (openai-chatkit 1.6.5): all 16 request types",
    description = "The user comes from the bearer token, or from `X-User-ID` in development mode. Failures after a stream started are `error` events. See docs/PROTOCOL.md.",
    params(ChatKitIn,
        ("user_id" = Option<String>, Query, description = "Development mode only: the user, when no `X-User-ID` header is sent."),
        ("X-User-ID" = Option<String>, Header, nullable = false, description = "Development mode only: the user id."),
        ("X-User-Name" = Option<String>, Header, nullable = false, description = "Display name of the user."),
        ("X-Organization-ID" = Option<String>, Header, nullable = false, description = "Organization of the request.")),
    request_body(content = request::Request, content_type = "application/json"),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "Streaming types (`threads.create`, `threads.add_user_message`, `threads.add_client_tool_output`, `threads.add_structured_input`, `threads.retry_after_item`, `threads.custom_action`) answer Server-Sent Events, one `data: {json}\\n\\n` frame per `ThreadStreamEvent`; the other ten answer JSON.",
            content((super::openapi::ThreadStreamFrame = "text/event-stream"), (super::openapi::ChatKitJsonResponse = "application/json"))),
        (status = 400, description = "Malformed request: the message names the offending field or parameter.", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials (`WWW-Authenticate: Bearer`).", body = ErrorBody),
        (status = 404, description = "Not found (or another user's).", body = ErrorBody),
        (status = 409, description = "The thread's previous reply (on any instance) was still being written after `TURN_WAIT_SECS`: turns of one thread never overlap.", body = ErrorBody),
        (status = 413, description = "Body larger than `MAX_BODY_BYTES`.", body = ErrorBody),
        (status = 415, description = "The body is not declared `application/json` (parameters such as `; charset=utf-8` allowed).", body = ErrorBody),
        (status = 429, description = "Rate limited. `Retry-After` says how many seconds to wait.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."),
                ("RateLimit" = String, description = "draft-ietf-httpapi-ratelimit-headers: remaining and reset, e.g. `\"chat\";r=3;t=12`."),
                ("RateLimit-Policy" = String, description = "The policy, e.g. `\"chat\";q=20;w=60`."))),
        (status = 503, description = "A dependency is unavailable, or the request timed out.", body = ErrorBody),
        (status = 500, description = "Internal error: an opaque message and the request id; details only in the log.", body = ErrorBody)))]
async fn chatkit(
    State(chatkit): State<ChatKit>,
    State(limiter): State<RateLimiter>,
    AuthGate(ip): AuthGate,
    user: Result<CurrentUser, AuthError>,
    Query(query): Query<ChatKitIn>,
    headers: HeaderMap,
    RequestBody(body): RequestBody,
) -> Result<Response, ApiError> {
    let user = match user {
        Ok(user) => user,
        Err(error) => return Err(auth_failed(&limiter, ip, error).await),
    };
    require_json(&headers)?;
    let user_name = header_text(&headers, "x-user-name")
        .or_else(|| non_blank(query.user_name))
        .or_else(|| user.name.clone());
    let ctx = RequestContext {
        user_name,
        organization_id: header_text(&headers, "x-organization-id"),
        lesson_path: query.lesson_path,
        mode: Mode::parse_optional(query.mode.as_deref()),
        selected_text: non_blank(query.selected_text),
        locale: locale(&headers),
        bearer: bearer(&headers),
        request_id: request_id::current(),
        user,
    };
    let request = request::parse(&body)?;
    chatkit.limits().check(&request)?;
    // The limit is checked before any stream starts, so a refusal is a plain 429.
    let limit_headers = if request.is_rate_limited() {
        limiter.check(Policy::Chat, ctx.owner()).await?
    } else {
        HeaderMap::new()
    };
    let reply = chatkit.process(ctx, request).await?;
    let mut response = respond(reply, chatkit.keepalive());
    response.headers_mut().extend(limit_headers);
    Ok(response)
}

/// A JSON body (`application/json`, parameters such as `; charset=utf-8` allowed), in every
/// mode: a cross-site `text/plain` form POST, which needs no preflight, must not act as the
/// user whose cookies or dev-mode identity the browser sends along.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    match essence {
        Some(t) if t.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type: send `application/json`",
        )),
    }
}

/// A header's text, trimmed; `None` when absent, not text, or blank.
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    non_blank(
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    )
}

/// The preferred language of `Accept-Language`: the tag with the highest `q` (the first on a
/// tie), `*` and malformed tags ignored (the tutor checks the tag again before using it).
fn locale(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    let mut best: Option<(f32, String)> = None;
    for part in raw.split(',') {
        let mut fields = part.split(';');
        let tag = fields.next().unwrap_or_default().trim();
        let q = fields
            .find_map(|f| f.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let valid = !tag.is_empty() && tag != "*" && tag.len() <= 35;
        if valid && q > 0.0 && best.as_ref().is_none_or(|(b, _)| q > *b) {
            best = Some((q, tag.to_owned()));
        }
    }
    best.map(|(_, tag)| tag)
}

/// The `Authorization: Bearer` token, kept secret.
fn bearer(headers: &HeaderMap) -> Option<secrecy::SecretString> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty())
        .then(|| secrecy::SecretString::from(token.to_owned()))
}

fn non_blank(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// An SSE comment: ignored by clients, but it is traffic, so proxies and load balancers do not
/// close a stream that waits a long time for a model's first token as idle.
const KEEPALIVE: &[u8] = b": keep-alive\n\n";

fn respond(reply: Reply, keepalive: Option<Duration>) -> Response {
    match reply {
        Reply::Json(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Reply::Stream(rx) => {
            let mut response = Body::from_stream(SseBody::new(rx, keepalive)).into_response();
            let h = response.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert("x-accel-buffering", HeaderValue::from_static("no"));
            response
        }
    }
}

/// Most bytes of frames joined into one chunk of the body.
const MAX_CHUNK: usize = 64 * 1024;

/// The body of a stream: the driver's frames as they come, every frame already waiting joined
/// into one chunk (one write for a burst of events, never a wait for more), and a keep-alive
/// comment after `keepalive` without a frame. The keep-alive timer is re-armed only when it
/// fires (from the time of the last frame), not once per frame.
struct SseBody {
    rx: Frames,
    keepalive: Option<(Duration, Pin<Box<tokio::time::Sleep>>)>,
    last_frame: tokio::time::Instant,
}

impl SseBody {
    fn new(rx: Frames, keepalive: Option<Duration>) -> Self {
        let now = tokio::time::Instant::now();
        Self {
            rx,
            keepalive: keepalive
                .map(|every| (every, Box::pin(tokio::time::sleep_until(now + every)))),
            last_frame: now,
        }
    }
}

impl futures::Stream for SseBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(first)) => {
                let first = *first;
                if this.keepalive.is_some() {
                    this.last_frame = tokio::time::Instant::now();
                }
                let mut chunk: Option<BytesMut> = None;
                while chunk.as_ref().map_or(first.len(), BytesMut::len) < MAX_CHUNK {
                    let Ok(next) = this.rx.try_recv() else { break };
                    let joined = chunk.get_or_insert_with(|| {
                        let mut b = BytesMut::with_capacity(first.len() + next.len());
                        b.extend_from_slice(&first);
                        b
                    });
                    joined.extend_from_slice(&next);
                }
                Poll::Ready(Some(Ok(chunk.map_or(first, BytesMut::freeze))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let Some((every, sleep)) = this.keepalive.as_mut() else {
                    return Poll::Pending;
                };
                loop {
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let due = this.last_frame + *every;
                    if tokio::time::Instant::now() >= due {
                        this.last_frame = tokio::time::Instant::now();
                        sleep.as_mut().reset(this.last_frame + *every);
                        return Poll::Ready(Some(Ok(Bytes::from_static(KEEPALIVE))));
                    }
                    // A frame went out since the timer was set: wait from that frame on.
                    sleep.as_mut().reset(due);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    /// Frames already waiting leave as one chunk, in order; the body ends with the driver.
    #[tokio::test]
    async fn waiting_frames_are_joined_and_the_body_ends_with_the_driver() {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let mut body = SseBody::new(rx, None);
        for n in 0..5 {
            tx.send(Box::new(Bytes::from(format!("data: {n}\n\n"))))
                .await
                .expect("send");
        }
        let chunk = body.next().await.expect("chunk").expect("ok");
        assert_eq!(
            chunk,
            "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n"
        );
        tx.send(Box::new(Bytes::from_static(b"data: 5\n\n")))
            .await
            .expect("send");
        drop(tx);
        let chunk = body.next().await.expect("chunk").expect("ok");
        assert_eq!(chunk, "data: 5\n\n");
        assert!(body.next().await.is_none());
    }

    /// The keep-alive comment comes after a silence, not between frames that keep coming.
    #[tokio::test]
    async fn a_keepalive_follows_silence_only() {
        let every = Duration::from_millis(400);
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let body = SseBody::new(rx, Some(every));
        let reader = tokio::spawn(body.collect::<Vec<_>>());
        let started = tokio::time::Instant::now();
        while started.elapsed() < every * 2 {
            tx.send(Box::new(Bytes::from_static(b"data: {}\n\n")))
                .await
                .expect("send");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let busy = started.elapsed();
        tokio::time::sleep(every * 3).await;
        drop(tx);
        let chunks: Vec<Bytes> = reader
            .await
            .expect("reader")
            .into_iter()
            .map(|c| c.expect("ok"))
            .collect();
        let first_keepalive = chunks
            .iter()
            .position(|c| c.as_ref() == KEEPALIVE)
            .expect("a keep-alive after the silence");
        assert!(
            chunks[..first_keepalive]
                .iter()
                .all(|c| c.starts_with(b"data: ")),
            "frames only before the silence (busy for {busy:?})"
        );
        assert!(
            chunks[first_keepalive..]
                .iter()
                .all(|c| c.as_ref() == KEEPALIVE),
            "nothing but keep-alives after the last frame"
        );
        let keepalives = chunks.len() - first_keepalive;
        assert!(
            (1..=3).contains(&keepalives),
            "{keepalives} keep-alives in a silence of 3 periods"
        );
    }

    fn with(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).expect("header"));
        h
    }

    #[test]
    fn the_preferred_locale_is_the_tag_with_the_highest_weight() {
        let l = |v| locale(&with(header::ACCEPT_LANGUAGE, v));
        assert_eq!(l("ur").as_deref(), Some("ur"));
        assert_eq!(l("en;q=0.5, ur-PK").as_deref(), Some("ur-PK"));
        assert_eq!(l("*, de;q=0.1").as_deref(), Some("de"));
        assert_eq!(l("fr;q=0"), None);
    }

    #[test]
    fn the_bearer_is_read_from_the_authorization_header() {
        use secrecy::ExposeSecret;
        let b = bearer(&with(header::AUTHORIZATION, "Bearer abc.def"));
        assert_eq!(
            b.map(|s| s.expose_secret().to_owned()).as_deref(),
            Some("abc.def")
        );
        assert!(bearer(&with(header::AUTHORIZATION, "Basic xyz")).is_none());
    }
}

//! `fake-model`: a local OpenAI-compatible model server for load runs. `POST
//! /v1/chat/completions` answers in the Chat Completions SSE wire format (`data:
//! {"choices":[{"delta":{"content":"…"}}]}` frames, a `finish_reason` frame, then `data:
//! [DONE]`) with `--tokens` tokens at `--tokens-per-sec`, so a reply lasts as long as a load run
//! needs its streams held. The first token is sent at once (the server's first-token timeout
//! does not fire); keep the gap between tokens under the server's `MODEL_IDLE_TIMEOUT_SECS`.
//! With `--stamp` the first token is `@<unix µs>`, the wall-clock time it was written, so the
//! `chat` client can measure the service's first-token overhead (same host, same clock).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use axum::routing::post;
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct FakeModelArgs {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 18900)]
    pub port: u16,
    /// Tokens per reply.
    #[arg(long, default_value_t = 20)]
    pub tokens: u64,
    /// Token rate of each reply (0.1 = one token every 10 s).
    #[arg(long, default_value_t = 50.0)]
    pub tokens_per_sec: f64,
    /// Make the first token the time it was written (`@<unix µs>`).
    #[arg(long)]
    pub stamp: bool,
    /// Exit after this many seconds (load runs are bounded).
    #[arg(long, default_value_t = 900.0)]
    pub exit_after: f64,
}

#[derive(Clone)]
struct Fake {
    tokens: u64,
    gap: Duration,
    stamp: bool,
    requests: Arc<AtomicU64>,
}

pub async fn run(args: FakeModelArgs) -> anyhow::Result<()> {
    if args.tokens_per_sec.is_nan() || args.tokens_per_sec <= 0.0 {
        anyhow::bail!("--tokens-per-sec must be positive");
    }
    let fake = Fake {
        tokens: args.tokens.max(1),
        gap: Duration::from_secs_f64(1.0 / args.tokens_per_sec),
        stamp: args.stamp,
        requests: Arc::new(AtomicU64::new(0)),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", args.port))?;
    eprintln!(
        "fake model on http://127.0.0.1:{}/v1 ({} tokens at {}/s)",
        listener.local_addr()?.port(),
        args.tokens,
        args.tokens_per_sec
    );
    let requests = fake.requests.clone();
    let app = router(fake);
    let stop = tokio::time::sleep(Duration::from_secs_f64(args.exit_after));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = stop => {},
                _ = tokio::signal::ctrl_c() => {},
            }
        })
        .await?;
    eprintln!("fake model: {} requests", requests.load(Ordering::Relaxed));
    Ok(())
}

fn router(fake: Fake) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(completions))
        .route("/chat/completions", post(completions))
        .with_state(fake)
}

async fn completions(State(fake): State<Fake>, _body: Bytes) -> Response {
    fake.requests.fetch_add(1, Ordering::Relaxed);
    let stream = futures::stream::unfold(0u64, move |k| {
        let fake = fake.clone();
        async move {
            let frame = if k == 0 {
                chunk(r#"{"role":"assistant","content":""}"#, "null")
            } else if k <= fake.tokens {
                if k > 1 {
                    tokio::time::sleep(fake.gap).await;
                }
                let word = if k == 1 && fake.stamp {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_micros())
                        .unwrap_or(0);
                    format!("\"@{now} \"")
                } else {
                    serde_json::to_string(&format!("tok{k} ")).unwrap_or_default()
                };
                chunk(&format!(r#"{{"content":{word}}}"#), "null")
            } else if k == fake.tokens + 1 {
                chunk("{}", r#""stop""#)
            } else if k == fake.tokens + 2 {
                "data: [DONE]\n\n".to_owned()
            } else {
                return None;
            };
            Some((Ok::<_, Infallible>(Bytes::from(frame)), k + 1))
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

fn chunk(delta: &str, finish: &str) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-load\",\"object\":\"chat.completion.chunk\",\"model\":\"fake\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reply_is_the_role_frame_n_tokens_a_stop_frame_and_done() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let fake = Fake {
            tokens: 3,
            gap: Duration::from_millis(5),
            stamp: false,
            requests: Arc::new(AtomicU64::new(0)),
        };
        tokio::spawn(async move { axum::serve(listener, router(fake)).await });
        let stream = crate::net::connect(([127, 0, 0, 1], port).into(), None)
            .await
            .expect("connect");
        let mut sender = crate::net::handshake(stream).await.expect("handshake");
        let req = hyper::Request::post("/v1/chat/completions")
            .header("host", "x")
            .body(http_body_util::Full::new(Bytes::from_static(b"{}")))
            .expect("request");
        let resp = sender.send_request(req).await.expect("response");
        use http_body_util::BodyExt;
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8_lossy(&body);
        let frames: Vec<&str> = text.split("\n\n").filter(|f| !f.is_empty()).collect();
        assert_eq!(frames.len(), 6, "{text}");
        let words: String = frames[1..4]
            .iter()
            .map(|f| {
                let v: serde_json::Value =
                    serde_json::from_str(f.trim_start_matches("data: ")).expect("json");
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .expect("content")
                    .to_owned()
            })
            .collect();
        assert_eq!(words, "tok1 tok2 tok3 ");
        assert!(frames[4].contains(r#""finish_reason":"stop""#));
        assert_eq!(frames[5], "data: [DONE]");
    }

    #[test]
    fn a_stamped_first_token_reads_back_as_the_time_it_was_written() {
        // The chat client's parser must accept what this server writes.
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_micros() as u64;
        let token = format!("@{before} ");
        assert_eq!(crate::chat::stamp_micros(&token), Some(before));
        assert_eq!(crate::chat::stamp_micros("tok1 "), None);
    }
}

//! `fake-model`: a local OpenAI-compatible model server for load runs. `POST
//! /v1/chat/completions` answers in the Chat Completions SSE wire format (`data:
//! {"choices":[{"delta":{"content":"…"}}]}` frames, a `finish_reason` frame, then `data:
//! [DONE]`) with `--tokens` tokens at `--tokens-per-sec`, so a reply lasts as long as a load run
//! needs its streams held. The first token is sent at once (the server's first-token timeout
//! does not fire), or after `--first-token-ms` (`N`, or `MIN-MAX` spread over the replies: a
//! model's time to first token); keep the gap between tokens under the server's
//! `MODEL_IDLE_TIMEOUT_SECS`.
//! With `--stamp` the first token is `@<unix µs>`, the wall-clock time it was written, so the
//! `chat` client can measure the service's first-token overhead (same host, same clock).
//! With `--tls-ca-out FILE` it serves HTTPS instead, HTTP/2 or HTTP/1.1 by ALPN, with a
//! certificate for `127.0.0.1` from a CA made at start, whose PEM it writes to FILE (the
//! service's `EXTRA_CA_FILE`); `--max-streams` is its HTTP/2 `MAX_CONCURRENT_STREAMS`.

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
    /// Serve HTTPS (HTTP/2 or HTTP/1.1 by ALPN) and write the CA certificate (PEM) here.
    #[arg(long)]
    pub tls_ca_out: Option<std::path::PathBuf>,
    /// HTTP/2 `MAX_CONCURRENT_STREAMS` per connection (with `--tls-ca-out`).
    #[arg(long, default_value_t = 100)]
    pub max_streams: u32,
    /// Wait before the first token, in milliseconds: `N`, or `MIN-MAX` spread evenly over
    /// the replies (a model's time to first token).
    #[arg(long, value_parser = parse_range, default_value = "0")]
    pub first_token_ms: (u64, u64),
}

/// `N` or `MIN-MAX` (milliseconds).
fn parse_range(raw: &str) -> Result<(u64, u64), String> {
    let parse = |v: &str| v.trim().parse::<u64>().map_err(|e| format!("{v:?}: {e}"));
    let (min, max) = match raw.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(raw)?, parse(raw)?),
    };
    if min > max {
        return Err(format!("{min} is more than {max}"));
    }
    Ok((min, max))
}

#[derive(Clone)]
struct Fake {
    tokens: u64,
    gap: Duration,
    stamp: bool,
    first_token_ms: (u64, u64),
    requests: Arc<AtomicU64>,
}

impl Fake {
    /// The wait before reply `n`'s first token: spread over the range by a multiplicative
    /// hash of `n`, so replies started together get their first tokens at different times.
    fn first_token_wait(&self, n: u64) -> Duration {
        let (min, max) = self.first_token_ms;
        let spread = n.wrapping_mul(2_654_435_761) % (max - min + 1);
        Duration::from_millis(min + spread)
    }
}

pub async fn run(args: FakeModelArgs) -> anyhow::Result<()> {
    if args.tokens_per_sec.is_nan() || args.tokens_per_sec <= 0.0 {
        anyhow::bail!("--tokens-per-sec must be positive");
    }
    let fake = Fake {
        tokens: args.tokens.max(1),
        gap: Duration::from_secs_f64(1.0 / args.tokens_per_sec),
        stamp: args.stamp,
        first_token_ms: args.first_token_ms,
        requests: Arc::new(AtomicU64::new(0)),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", args.port))?;
    let scheme = if args.tls_ca_out.is_some() {
        "https"
    } else {
        "http"
    };
    eprintln!(
        "fake model on {scheme}://127.0.0.1:{}/v1 ({} tokens at {}/s)",
        listener.local_addr()?.port(),
        args.tokens,
        args.tokens_per_sec
    );
    let requests = fake.requests.clone();
    let app = router(fake);
    let stop = tokio::time::sleep(Duration::from_secs_f64(args.exit_after));
    let stopped = async move {
        tokio::select! {
            _ = stop => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    };
    match &args.tls_ca_out {
        Some(ca_out) => {
            let tls = tls_config(ca_out)?;
            tokio::select! {
                r = serve_tls(listener, app, tls, args.max_streams) => r?,
                () = stopped => {},
            }
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await?
        }
    }
    eprintln!("fake model: {} requests", requests.load(Ordering::Relaxed));
    Ok(())
}

/// A CA made now (its PEM written to `ca_out`) and a server configuration with a certificate
/// for `127.0.0.1`/`localhost` signed by it, offering `h2` and `http/1.1`.
fn tls_config(ca_out: &std::path::Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "study-mode-load fake model CA");
    let ca = ca_params.self_signed(&ca_key)?;
    let key = rcgen::KeyPair::generate()?;
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?
        .signed_by(&key, &ca, &ca_key)?;
    std::fs::write(ca_out, ca.pem()).with_context(|| format!("writing {}", ca_out.display()))?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `app` over TLS, HTTP/2 with at most `max_streams` streams per connection.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Arc<rustls::ServerConfig>,
    max_streams: u32,
) -> anyhow::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let connections = Arc::new(AtomicU64::new(0));
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("fake model: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let n = connections.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            eprintln!("fake model: {n} connections");
        }
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let mut builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            builder.http2().max_concurrent_streams(max_streams);
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ = builder
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

fn router(fake: Fake) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(completions))
        .route("/chat/completions", post(completions))
        .with_state(fake)
}

async fn completions(State(fake): State<Fake>, _body: Bytes) -> Response {
    let n = fake.requests.fetch_add(1, Ordering::Relaxed);
    let first_wait = fake.first_token_wait(n);
    let stream = futures::stream::unfold(0u64, move |k| {
        let fake = fake.clone();
        async move {
            let frame = if k == 0 {
                chunk(r#"{"role":"assistant","content":""}"#, "null")
            } else if k <= fake.tokens {
                if k > 1 {
                    tokio::time::sleep(fake.gap).await;
                } else if !first_wait.is_zero() {
                    tokio::time::sleep(first_wait).await;
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

    #[test]
    fn first_token_waits_are_read_and_spread_over_their_range() {
        assert_eq!(parse_range("250"), Ok((250, 250)));
        assert_eq!(parse_range("200-500"), Ok((200, 500)));
        assert!(parse_range("500-200").is_err());
        assert!(parse_range("soon").is_err());
        let fake = Fake {
            tokens: 1,
            gap: Duration::ZERO,
            stamp: false,
            first_token_ms: (200, 500),
            requests: Arc::new(AtomicU64::new(0)),
        };
        let waits: Vec<u64> = (0..100)
            .map(|n| fake.first_token_wait(n).as_millis() as u64)
            .collect();
        assert!(waits.iter().all(|w| (200..=500).contains(w)), "{waits:?}");
        let (low, high) = (waits.iter().min(), waits.iter().max());
        assert!(low < Some(&260) && high > Some(&440), "{waits:?}");
    }

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
            first_token_ms: (0, 0),
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

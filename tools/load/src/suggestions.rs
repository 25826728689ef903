//! `suggestions`: GET requests (by default the cached `/chatkit/suggestions`) over a fixed set
//! of keep-alive connections, either at a fixed request rate (open loop: each request's
//! latency counts from its *intended* send time, so a stalled server cannot hide its queue —
//! no coordinated omission) or at fixed concurrency (closed loop: each connection sends its
//! next request when the previous answer arrives).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use serde_json::json;
use tokio::sync::mpsc;

use crate::net::{self, Target};
use crate::stats::{self, Latency};

#[derive(Args, Debug, Clone)]
pub struct SuggestionsArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// Path and query requested.
    #[arg(
        long,
        default_value = "/chatkit/suggestions?lesson_path=/docs/intro&mode=teach"
    )]
    pub path: String,
    /// `X-User-ID` header sent with every request.
    #[arg(long, default_value = "load")]
    pub user: String,
    /// Keep-alive connections.
    #[arg(long, short = 'c', default_value_t = 64)]
    pub connections: usize,
    /// Requests per second (open loop). Without it: fixed concurrency (closed loop).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Measured seconds.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    pub duration: f64,
    /// Unmeasured seconds before, at the same load (fills caches, opens connections).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Source addresses (round robin over connections), e.g. `127.0.0.2-127.0.0.9`.
    #[arg(long, default_value = "127.0.0.1")]
    pub sources: String,
}

#[derive(Default)]
struct Tally {
    latency: Latency,
    ok: u64,
    errors: BTreeMap<String, u64>,
}

struct Shared {
    target: Target,
    path: String,
    user: String,
    tally: Mutex<Tally>,
    /// Results before this instant are warm-up and not counted.
    measure_from: Instant,
}

pub async fn run(args: SuggestionsArgs, as_json: bool) -> anyhow::Result<()> {
    let tally = measure(&args).await?;
    let errors: u64 = tally.errors.values().sum();
    let report = json!({
        "url": format!("{}{}", args.url.trim_end_matches('/'), args.path),
        "mode": if args.rate.is_some() { "fixed rate (latency from the intended send time)" } else { "fixed concurrency" },
        "connections": args.connections,
        "target_rate_per_sec": args.rate,
        "measured_secs": args.duration,
        "ok": tally.ok,
        "errors": errors,
        "error_kinds": tally.errors,
        "throughput_per_sec": stats::round3(tally.ok as f64 / args.duration),
        "latency": tally.latency.summary(),
    });
    stats::print(&report, as_json);
    Ok(())
}

async fn measure(args: &SuggestionsArgs) -> anyhow::Result<Tally> {
    if args.connections == 0 || args.duration <= 0.0 || args.rate.is_some_and(|r| r <= 0.0) {
        bail!("--connections, --duration and --rate must be positive");
    }
    let target = Target::parse(&args.url).await?;
    let sources = net::parse_sources(&args.sources)?;
    let warmup = Duration::from_secs_f64(args.warmup.max(0.0));
    let measured = Duration::from_secs_f64(args.duration);
    let start = Instant::now();
    let shared = Arc::new(Shared {
        target,
        path: args.path.clone(),
        user: args.user.clone(),
        tally: Mutex::new(Tally::default()),
        measure_from: start + warmup,
    });
    let end = start + warmup + measured;
    let mut workers = tokio::task::JoinSet::new();
    let schedule = args.rate.map(|rate| spawn_schedule(rate, start, end));
    for i in 0..args.connections {
        let source = net::pick_source(&sources, i);
        let shared = shared.clone();
        let queue = schedule.as_ref().map(|(_, rx)| rx.clone());
        workers.spawn(async move { worker(shared, source, queue, end).await });
    }
    net::join_until(workers, end + Duration::from_secs(10)).await;
    if let Some((ticker, _)) = schedule {
        ticker.abort();
    }
    let tally = std::mem::take(&mut *shared.tally.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(tally)
}

type Queue = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Instant>>>;

/// Emits intended send times at `rate` per second from `start` to `end`. The queue is
/// unbounded on purpose: when every connection is busy, requests wait and their wait counts.
fn spawn_schedule(rate: f64, start: Instant, end: Instant) -> (tokio::task::JoinHandle<()>, Queue) {
    let (tx, rx) = mpsc::unbounded_channel();
    let ticker = tokio::spawn(async move {
        let mut i: u64 = 0;
        loop {
            let at = start + Duration::from_secs_f64(i as f64 / rate);
            if at >= end {
                break;
            }
            tokio::time::sleep_until(at.into()).await;
            if tx.send(at).is_err() {
                break;
            }
            i += 1;
        }
    });
    (ticker, Arc::new(tokio::sync::Mutex::new(rx)))
}

async fn worker(shared: Arc<Shared>, source: Option<IpAddr>, queue: Option<Queue>, end: Instant) {
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    loop {
        let intended = match &queue {
            Some(q) => match q.lock().await.recv().await {
                Some(at) => at,
                None => return,
            },
            None if Instant::now() >= end => return,
            None => Instant::now(),
        };
        let result = request(&shared, source, &mut conn).await;
        let done = Instant::now();
        if intended < shared.measure_from {
            continue;
        }
        let mut tally = shared.tally.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(()) => {
                tally.ok += 1;
                tally.latency.record(done - intended);
            }
            Err(kind) => *tally.errors.entry(kind).or_default() += 1,
        }
    }
}

/// One GET on the worker's connection (reopened after a failure); `Err` names the failure.
async fn request(
    shared: &Shared,
    source: Option<IpAddr>,
    conn: &mut Option<SendRequest<Full<Bytes>>>,
) -> Result<(), String> {
    if conn.as_ref().is_none_or(|c| c.is_closed()) {
        *conn = Some(
            net::open(&shared.target, source, Duration::from_secs(5))
                .await
                .map_err(|e| format!("connect: {}", e.root_cause()))?,
        );
    }
    let Some(sender) = conn.as_mut() else {
        return Err("no connection".into());
    };
    let req = hyper::Request::get(shared.path.as_str())
        .header(hyper::header::HOST, &shared.target.authority)
        .header("x-user-id", &shared.user)
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("request: {e}"))?;
    let outcome = async {
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        resp.into_body().collect().await?;
        Ok::<_, hyper::Error>(status)
    }
    .await;
    match outcome {
        Ok(status) if status.is_success() => Ok(()),
        Ok(status) => Err(format!("status {}", status.as_u16())),
        Err(e) => {
            *conn = None;
            Err(format!("io: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that takes 20 ms per request; status 503 for `/fail`.
    async fn slow_server() -> String {
        let app = axum::Router::new()
            .route(
                "/ok",
                axum::routing::get(|| async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    "[]"
                }),
            )
            .route(
                "/fail",
                axum::routing::get(|| async { axum::http::StatusCode::SERVICE_UNAVAILABLE }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://127.0.0.1:{port}")
    }

    fn args(url: String, path: &str, rate: Option<f64>) -> SuggestionsArgs {
        SuggestionsArgs {
            url,
            path: path.into(),
            user: "t".into(),
            connections: 1,
            rate,
            duration: 0.4,
            warmup: 0.0,
            sources: "127.0.0.1".into(),
        }
    }

    #[tokio::test]
    async fn at_a_rate_above_capacity_latency_counts_the_wait_from_the_intended_send_time() {
        let url = slow_server().await;
        // One connection serves ≤ 50 req/s; 100 req/s are offered for 0.4 s.
        let open = measure(&args(url.clone(), "/ok", Some(100.0)))
            .await
            .expect("run");
        let closed = measure(&args(url, "/ok", None)).await.expect("run");
        assert!(open.ok >= 30, "the queue is drained: {}", open.ok);
        // Closed loop sees only the service time; open loop sees the queue growing behind it.
        assert!(
            closed.latency.ms(0.99) < 100.0,
            "{}",
            closed.latency.ms(0.99)
        );
        assert!(open.latency.ms(0.99) > 150.0, "{}", open.latency.ms(0.99));
    }

    #[tokio::test]
    async fn non_success_answers_are_counted_as_errors_by_status() {
        let url = slow_server().await;
        let tally = measure(&args(url, "/fail", Some(50.0))).await.expect("run");
        assert_eq!(tally.ok, 0);
        assert!(
            tally.errors.get("status 503").copied().unwrap_or(0) >= 15,
            "{:?}",
            tally.errors
        );
    }
}

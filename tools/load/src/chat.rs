//! `chat`: N concurrent ChatKit streams (`threads.create` with a short message), ramped at a
//! fixed rate and spread over several source addresses. Measures connect time, time to the
//! first event and the first reply delta, gaps between events, completed/held/failed streams,
//! and the server's memory per open stream (RSS before vs at peak). Against `fake-model
//! --stamp`, whose first token is the wall-clock time it was written, it also reports the
//! first-token overhead: when the client read the first delta minus when the model wrote it.
//!
//! One process may hold only as many sockets as its file limit allows, so `--procs K` runs the
//! streams in K child processes (this binary with `--worker I`); the parent samples the
//! server's memory and merges the children's raw samples.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::net::{self, Target};
use crate::procfs;
use crate::sse::Splitter;
use crate::stats::{self, Latency};

#[derive(Args, Debug, Clone)]
pub struct ChatArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// Number of streams.
    #[arg(long, short = 'n', default_value_t = 100)]
    pub streams: u64,
    /// New streams per second (the ramp); stream i starts at i / rate.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Source addresses, e.g. `127.0.0.2-127.0.0.9` (one per stream, round robin).
    #[arg(long, default_value = "127.0.0.1")]
    pub sources: String,
    /// The user message.
    #[arg(long, default_value = "What is a closure?")]
    pub message: String,
    /// Every stream as this user (default: a distinct `X-User-ID` per stream).
    #[arg(long)]
    pub user: Option<String>,
    /// Prefix of the per-stream user ids (keeps runs apart in the store).
    #[arg(long, default_value = "load")]
    pub user_prefix: String,
    /// Keep every stream open until HOLD seconds after the last one started, then close it
    /// (needs a reply that lasts that long: a slow model, see `fake-model`).
    #[arg(long)]
    pub hold: Option<f64>,
    /// A stream that has not ended after this many seconds fails (not with --hold).
    #[arg(long, default_value_t = 120.0)]
    pub timeout: f64,
    /// Server process id(s) whose RSS is read before the run and at its peak.
    #[arg(long = "server-pid", value_delimiter = ',')]
    pub server_pids: Vec<u32>,
    /// Child processes that share the streams (each needs a file descriptor per stream).
    #[arg(long, default_value_t = 1)]
    pub procs: u32,
    /// Internal: run as child I of --procs.
    #[arg(long, hide = true)]
    pub worker: Option<u32>,
    /// Internal: common start time of the ramp (Unix ms).
    #[arg(long, hide = true)]
    pub start_unix_ms: Option<u64>,
}

/// One process's raw samples (µs), merged by the parent.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Raw {
    connect: Vec<u64>,
    first_event: Vec<u64>,
    first_delta: Vec<u64>,
    /// Client read the first delta − the model wrote it (stamped replies only).
    token_overhead: Vec<u64>,
    gaps: Vec<u64>,
    duration: Vec<u64>,
    completed: u64,
    held: u64,
    failed: u64,
    failures: BTreeMap<String, u64>,
    peak_open: u64,
    client_rss_kib: u64,
}

enum Outcome {
    Completed,
    Held,
    Failed(String),
}

pub async fn run(args: ChatArgs, as_json: bool) -> anyhow::Result<()> {
    if args.rate <= 0.0 || args.streams == 0 || args.procs == 0 {
        bail!("--streams, --rate and --procs must be positive");
    }
    if let Some(index) = args.worker {
        let raw = run_share(&args, index).await?;
        println!("{}", serde_json::to_string(&raw)?);
        return Ok(());
    }
    let per_proc = args.streams.div_ceil(u64::from(args.procs));
    if let Some(limit) = procfs::open_file_limit() {
        if per_proc + 64 > limit {
            bail!(
                "{per_proc} streams per process exceed the open-file limit ({limit}); raise --procs"
            );
        }
    }
    let baseline = procfs::total_rss_kib(&args.server_pids);
    let started = Instant::now();
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampler = spawn_rss_sampler(args.server_pids.clone(), peak.clone());
    let raws = if args.procs == 1 {
        vec![run_share(&args, 0).await?]
    } else {
        run_children(&args).await?
    };
    sampler.abort();
    let elapsed = started.elapsed();
    let peak_kib = peak
        .load(Ordering::Relaxed)
        .max(procfs::total_rss_kib(&args.server_pids));
    let report = merge(&args, raws, baseline, peak_kib, elapsed);
    stats::print(&report, as_json);
    Ok(())
}

/// Reads the servers' summed RSS every 200 ms and keeps the largest.
fn spawn_rss_sampler(pids: Vec<u32>, peak: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if pids.is_empty() {
            return;
        }
        loop {
            peak.fetch_max(procfs::total_rss_kib(&pids), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

async fn run_children(args: &ChatArgs) -> anyhow::Result<Vec<Raw>> {
    let exe = std::env::current_exe().context("locating this binary")?;
    // Children need a moment to start; the ramp begins for all at the same instant.
    let start = unix_ms() + 500;
    let mut children = Vec::new();
    for i in 0..args.procs {
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.arg("chat")
            .args(forward_args(args))
            .arg("--worker")
            .arg(i.to_string())
            .arg("--start-unix-ms")
            .arg(start.to_string())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        children.push(cmd.spawn().context("starting a worker")?);
    }
    let mut raws = Vec::new();
    for child in children {
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            bail!("a worker failed: {}", out.status);
        }
        raws.push(serde_json::from_slice(&out.stdout).context("reading a worker's samples")?);
    }
    Ok(raws)
}

fn forward_args(a: &ChatArgs) -> Vec<String> {
    let mut v = vec![
        "--url".into(),
        a.url.clone(),
        "--streams".into(),
        a.streams.to_string(),
        "--rate".into(),
        a.rate.to_string(),
        "--sources".into(),
        a.sources.clone(),
        "--message".into(),
        a.message.clone(),
        "--user-prefix".into(),
        a.user_prefix.clone(),
        "--timeout".into(),
        a.timeout.to_string(),
        "--procs".into(),
        a.procs.to_string(),
    ];
    if let Some(u) = &a.user {
        v.extend(["--user".into(), u.clone()]);
    }
    if let Some(h) = a.hold {
        v.extend(["--hold".into(), h.to_string()]);
    }
    v
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Shared state of the streams of one process.
struct Shared {
    target: Target,
    body: Bytes,
    raw: Mutex<Raw>,
    open: AtomicU64,
}

/// Runs the streams `i` with `i % procs == index`.
async fn run_share(args: &ChatArgs, index: u32) -> anyhow::Result<Raw> {
    let target = Target::parse(&args.url).await?;
    let sources = net::parse_sources(&args.sources)?;
    let start = match args.start_unix_ms {
        Some(ms) => {
            let now = unix_ms();
            Instant::now() + Duration::from_millis(ms.saturating_sub(now))
        }
        None => Instant::now(),
    };
    let ramp = Duration::from_secs_f64(args.streams as f64 / args.rate);
    let release = args.hold.map(|h| start + ramp + Duration::from_secs_f64(h));
    let timeout = Duration::from_secs_f64(args.timeout);
    let body = json!({"type": "threads.create", "params": {"input": {
        "content": [{"type": "input_text", "text": args.message}],
        "attachments": [], "inference_options": {}}}});
    let shared = Arc::new(Shared {
        target,
        body: Bytes::from(body.to_string()),
        raw: Mutex::new(Raw::default()),
        open: AtomicU64::new(0),
    });
    let mut tasks = tokio::task::JoinSet::new();
    let procs = u64::from(args.procs);
    for i in (u64::from(index)..args.streams).step_by(procs as usize) {
        let intended = start + Duration::from_secs_f64(i as f64 / args.rate);
        tokio::time::sleep_until(intended.into()).await;
        let user = match &args.user {
            Some(u) => u.clone(),
            None => format!("{}-{i}", args.user_prefix),
        };
        let source = net::pick_source(&sources, i as usize);
        let shared = shared.clone();
        tasks.spawn(async move {
            let deadline = release.unwrap_or(intended + timeout);
            let outcome = one_stream(&shared, source, user, deadline, release.is_some()).await;
            let mut raw = shared.raw.lock().unwrap_or_else(|p| p.into_inner());
            match outcome {
                Outcome::Completed => raw.completed += 1,
                Outcome::Held => raw.held += 1,
                Outcome::Failed(why) => {
                    raw.failed += 1;
                    *raw.failures.entry(why).or_default() += 1;
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let mut raw = std::mem::take(&mut *shared.raw.lock().unwrap_or_else(|p| p.into_inner()));
    raw.client_rss_kib = raw.client_rss_kib.max(procfs::own_rss_kib());
    Ok(raw)
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// One stream: connect, POST, read events until the end, the deadline, or an error.
async fn one_stream(
    shared: &Shared,
    source: Option<IpAddr>,
    user: String,
    deadline: Instant,
    hold: bool,
) -> Outcome {
    let t0 = Instant::now();
    let stream =
        match tokio::time::timeout_at(deadline.into(), net::connect(shared.target.addr, source))
            .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Outcome::Failed(format!("connect: {:?}", e.kind())),
            Err(_) => return Outcome::Failed("connect: timeout".into()),
        };
    let connected = t0.elapsed();
    let mut sender = match net::handshake(stream).await {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(format!("handshake: {e}")),
    };
    let request = net::chatkit_post(&shared.target, "/chatkit", &user, shared.body.clone());
    let request = match request {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(format!("request: {e}")),
    };
    let response =
        match tokio::time::timeout_at(deadline.into(), sender.send_request(request)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Outcome::Failed(format!("send: {}", short(&e))),
            Err(_) => return Outcome::Failed("timeout before the response".into()),
        };
    if response.status() != hyper::StatusCode::OK {
        return Outcome::Failed(format!("status {}", response.status().as_u16()));
    }
    shared
        .raw
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .connect
        .push(us(connected));
    let open_now = shared.open.fetch_add(1, Ordering::Relaxed) + 1;
    {
        let mut raw = shared.raw.lock().unwrap_or_else(|p| p.into_inner());
        raw.peak_open = raw.peak_open.max(open_now);
    }
    let outcome = read_events(shared, response.into_body(), t0, deadline, hold).await;
    shared.open.fetch_sub(1, Ordering::Relaxed);
    outcome
}

async fn read_events(
    shared: &Shared,
    mut body: hyper::body::Incoming,
    t0: Instant,
    deadline: Instant,
    hold: bool,
) -> Outcome {
    let mut splitter = Splitter::default();
    let mut last: Option<Instant> = None;
    let mut seen_delta = false;
    loop {
        let frame = match tokio::time::timeout_at(deadline.into(), body.frame()).await {
            Err(_) if hold && last.is_some() => return Outcome::Held,
            Err(_) if hold => return Outcome::Failed("no event before the release".into()),
            Err(_) => return Outcome::Failed("timeout".into()),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Outcome::Failed(format!("body: {}", short(&e))),
            Ok(Some(Ok(frame))) => frame,
        };
        let Some(data) = frame.data_ref() else {
            continue;
        };
        let now = Instant::now();
        for kind in splitter.feed(data) {
            let mut raw = shared.raw.lock().unwrap_or_else(|p| p.into_inner());
            match last {
                None => raw.first_event.push(us(now - t0)),
                Some(prev) => raw.gaps.push(us(now - prev)),
            }
            last = Some(now);
            if !seen_delta && kind.0.ends_with("text_delta") {
                seen_delta = true;
                raw.first_delta.push(us(now - t0));
                if let Some(written) = kind.1.as_deref().and_then(stamp_micros) {
                    raw.token_overhead
                        .push(unix_micros().saturating_sub(written));
                }
            }
            if kind.0 == "error" {
                return Outcome::Failed("error event".into());
            }
        }
    }
    if last.is_none() {
        return Outcome::Failed("stream ended with no event".into());
    }
    shared
        .raw
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .duration
        .push(us(t0.elapsed()));
    Outcome::Completed
}

/// The stamp of a `fake-model --stamp` first token: `@<unix µs>` (the server may trim
/// whitespace around it).
pub(crate) fn stamp_micros(delta: &str) -> Option<u64> {
    delta.trim().strip_prefix('@')?.parse().ok()
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// An error's message without its source chain (groups failures by kind).
fn short(e: &hyper::Error) -> String {
    let s = e.to_string();
    s.chars().take(60).collect()
}

fn histogram(samples: &[u64]) -> Latency {
    let mut h = Latency::new();
    for s in samples {
        h.record(Duration::from_micros(*s));
    }
    h
}

fn merge(
    args: &ChatArgs,
    raws: Vec<Raw>,
    baseline: u64,
    peak_kib: u64,
    elapsed: Duration,
) -> Value {
    let mut all = Raw::default();
    for r in raws {
        all.connect.extend(r.connect);
        all.first_event.extend(r.first_event);
        all.first_delta.extend(r.first_delta);
        all.token_overhead.extend(r.token_overhead);
        all.gaps.extend(r.gaps);
        all.duration.extend(r.duration);
        all.completed += r.completed;
        all.held += r.held;
        all.failed += r.failed;
        for (k, v) in r.failures {
            *all.failures.entry(k).or_default() += v;
        }
        all.peak_open += r.peak_open;
        all.client_rss_kib += r.client_rss_kib;
    }
    let mut report = json!({
        "url": args.url,
        "streams": args.streams,
        "rate_per_sec": args.rate,
        "sources": args.sources,
        "procs": args.procs,
        "hold_secs": args.hold,
        "completed": all.completed,
        "held": all.held,
        "failed": all.failed,
        "failures": all.failures,
        "peak_open_streams": all.peak_open,
        "elapsed_secs": stats::round3(elapsed.as_secs_f64()),
        "client_rss_kib": all.client_rss_kib,
        "connect": histogram(&all.connect).summary(),
        "first_event": histogram(&all.first_event).summary(),
        "first_delta": histogram(&all.first_delta).summary(),
        "first_token_overhead": histogram(&all.token_overhead).summary(),
        "event_gap": histogram(&all.gaps).summary(),
        "stream_duration": histogram(&all.duration).summary(),
    });
    if !args.server_pids.is_empty() {
        report["server_pids"] = json!(args.server_pids);
        report["server_rss_before_kib"] = json!(baseline);
        report["server_rss_peak_kib"] = json!(peak_kib);
        // Meaningful with --hold: every held stream was open at the same time.
        let open = if args.hold.is_some() {
            all.held
        } else {
            all.peak_open
        };
        if open > 0 {
            let per = peak_kib.saturating_sub(baseline) as f64 / open as f64;
            report["server_kib_per_open_stream"] = json!(stats::round3(per));
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::HeaderMap;
    use axum::routing::post;

    /// A ChatKit-shaped SSE server: users whose id ends in an odd number get an error event;
    /// `slow` replies never end (one keep-alive event every 50 ms).
    async fn serve(slow: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let handler = move |headers: HeaderMap| async move {
            let user = headers["x-user-id"].to_str().unwrap_or("").to_owned();
            let odd = user
                .rsplit('-')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
                % 2
                == 1;
            let frames = futures::stream::unfold(0u32, move |k| async move {
                if !slow && k == 3 {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(if k == 0 { 0 } else { 20 })).await;
                let data = match k {
                    0 => r#"{"type":"thread.created"}"#,
                    1 if odd && !slow => r#"{"type":"error","code":"x","allow_retry":false}"#,
                    1 => {
                        r#"{"type":"thread.item.updated","update":{"type":"assistant_message.content_part.text_delta","delta":"@1"}}"#
                    }
                    _ => r#"{"type":"thread.item.done"}"#,
                };
                Some((
                    Ok::<_, std::convert::Infallible>(format!("data: {data}\n\n")),
                    k + 1,
                ))
            });
            axum::response::Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(frames))
                .unwrap_or_default()
        };
        let app = axum::Router::new().route("/chatkit", post(handler));
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://127.0.0.1:{port}")
    }

    fn args(url: String, streams: u64, hold: Option<f64>) -> ChatArgs {
        ChatArgs {
            url,
            streams,
            rate: 1000.0,
            sources: "127.0.0.1".into(),
            message: "hi".into(),
            user: None,
            user_prefix: "t".into(),
            hold,
            timeout: 5.0,
            server_pids: vec![std::process::id()],
            procs: 1,
            worker: None,
            start_unix_ms: None,
        }
    }

    #[tokio::test]
    async fn error_events_fail_a_stream_and_the_others_complete_with_their_timings() {
        let url = serve(false).await;
        let raw = run_share(&args(url, 6, None), 0).await.expect("run");
        assert_eq!((raw.completed, raw.failed, raw.held), (3, 3, 0));
        assert_eq!(raw.failures.get("error event"), Some(&3));
        assert_eq!(raw.first_event.len(), 6);
        assert_eq!(
            raw.first_delta.len(),
            3,
            "only the healthy streams saw a delta"
        );
        // Their deltas carry the stamp `@1` (1 µs after the epoch): the overhead is now.
        assert_eq!(raw.token_overhead.len(), 3);
        assert!(
            raw.token_overhead
                .iter()
                .all(|o| *o > 1_700_000_000_000_000)
        );
        assert_eq!(raw.duration.len(), 3);
        // Each healthy stream has two gaps of ≈ 20 ms after its first event.
        assert!(
            raw.gaps.iter().filter(|g| **g >= 15_000).count() >= 6,
            "{:?}",
            raw.gaps
        );
    }

    #[tokio::test]
    async fn with_hold_every_stream_stays_open_until_the_release_then_counts_as_held() {
        let url = serve(true).await;
        let started = Instant::now();
        let raw = run_share(&args(url, 5, Some(0.3)), 0).await.expect("run");
        assert_eq!((raw.held, raw.failed, raw.completed), (5, 0, 0));
        assert_eq!(raw.peak_open, 5);
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_failed_stream_with_its_reason() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        drop(listener);
        let raw = run_share(&args(url, 2, None), 0).await.expect("run");
        assert_eq!(raw.failed, 2);
        assert!(
            raw.failures.keys().all(|k| k.starts_with("connect")),
            "{:?}",
            raw.failures
        );
    }
}

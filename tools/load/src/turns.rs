//! `turns`: chat turns per second, closed loop at fixed concurrency. Each of `--concurrency`
//! keep-alive HTTP/1.1 connections (its own `X-User-ID`) loops: POST `threads.create` with a
//! user message, read the whole SSE reply, send the next one. A turn is good when its stream
//! held a `thread.item.done` of an `assistant_message`, carried no `error` event and ended
//! cleanly. Only turns that finish inside the measured window count (after `--warmup`); the
//! servers' CPU time (`--server-pid`, with every descendant process, and `--cpu-comm` groups
//! such as all `postgres` processes, `--cpu-cmdline` groups such as one database's backends),
//! this process's and the whole machine's are read at the window's start and end.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use serde_json::{Value, json};

use crate::net::{self, Target};
use crate::procfs;
use crate::sse::{EventKind, Splitter};
use crate::stats::{self, Latency};

#[derive(Args, Debug, Clone)]
pub struct TurnsArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// Path of the ChatKit endpoint.
    #[arg(long, default_value = "/chatkit")]
    pub path: String,
    /// Keep-alive connections, one turn at a time each.
    #[arg(long, short = 'c', default_value_t = 64)]
    pub concurrency: usize,
    /// Measured seconds.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    pub duration: f64,
    /// Unmeasured seconds before, at the same load.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// The user message of every turn.
    #[arg(long, default_value = "What is a closure?")]
    pub message: String,
    /// Source addresses (round robin over connections), e.g. `127.0.0.2-127.0.0.9`.
    #[arg(long, default_value = "127.0.0.1")]
    pub sources: String,
    /// Prefix of the per-connection user ids (`PREFIX-I`).
    #[arg(long, default_value = "turns")]
    pub user_prefix: String,
    /// A turn that has not ended after this many seconds fails (its connection is reopened).
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
    /// Server process id(s): their CPU time and their descendants' over the measured window.
    #[arg(long = "server-pid", value_delimiter = ',')]
    pub server_pids: Vec<u32>,
    /// Also the CPU time of every process with this name (e.g. `postgres`); repeatable.
    #[arg(long = "cpu-comm")]
    pub cpu_comms: Vec<String>,
    /// Also the CPU time of every process whose command line contains this string (e.g. a
    /// database name: PostgreSQL's backends of that database); repeatable.
    #[arg(long = "cpu-cmdline")]
    pub cpu_cmdlines: Vec<String>,
}

/// How one turn ended.
#[derive(Debug, PartialEq, Eq)]
enum Turn {
    Good,
    Failed(String),
}

/// Tracks the events of one reply.
#[derive(Default)]
struct Verdict {
    assistant_done: bool,
    error: bool,
    events: u64,
}

impl Verdict {
    fn see(&mut self, kind: &EventKind) {
        self.events += 1;
        if kind.0 == "thread.item.done/assistant_message" {
            self.assistant_done = true;
        }
        if kind.0 == "error" {
            self.error = true;
        }
    }

    /// The turn's outcome once its body ended cleanly.
    fn finish(&self) -> Turn {
        if self.error {
            Turn::Failed("error event".into())
        } else if !self.assistant_done {
            Turn::Failed(if self.events == 0 {
                "no event".into()
            } else {
                "no assistant_message done".into()
            })
        } else {
            Turn::Good
        }
    }
}

#[derive(Default)]
struct Tally {
    latency: Latency,
    good: u64,
    errors: BTreeMap<String, u64>,
}

struct Shared {
    target: Target,
    path: String,
    body: Bytes,
    timeout: Duration,
    tally: Mutex<Tally>,
    measure_from: Instant,
    end: Instant,
}

pub async fn run(args: TurnsArgs, as_json: bool) -> anyhow::Result<()> {
    let (tally, cpu) = measure(&args).await?;
    let report = report(&args, &tally, cpu.as_ref());
    stats::print(&report, as_json);
    Ok(())
}

/// CPU time over the measured window, in ticks.
struct CpuWindow {
    start: procfs::CpuReading,
    end: procfs::CpuReading,
    ticks_per_sec: u64,
}

fn report(args: &TurnsArgs, tally: &Tally, cpu: Option<&CpuWindow>) -> Value {
    let errors: u64 = tally.errors.values().sum();
    let mut report = json!({
        "url": format!("{}{}", args.url.trim_end_matches('/'), args.path),
        "mode": "closed loop, fixed concurrency (threads.create, whole SSE reply)",
        "concurrency": args.concurrency,
        "measured_secs": args.duration,
        "warmup_secs": args.warmup,
        "turns": tally.good,
        "errors": errors,
        "error_kinds": tally.errors,
        "turns_per_sec": stats::round3(tally.good as f64 / args.duration),
        "latency": tally.latency.summary(),
    });
    if let Some(w) = cpu {
        let ms = |start: &procfs::Ticks, end: &procfs::Ticks| {
            procfs::window_ticks(start, end) as f64 * 1000.0 / w.ticks_per_sec as f64
        };
        let per_turn_us = |cpu_ms: f64| {
            (tally.good > 0).then(|| stats::round3(cpu_ms * 1000.0 / tally.good as f64))
        };
        if !args.server_pids.is_empty() {
            let server_ms = ms(&w.start.tree, &w.end.tree);
            report["server_cpu_ms"] = json!(stats::round3(server_ms));
            report["server_cores"] = json!(stats::round3(server_ms / 1000.0 / args.duration));
            report["server_cpu_us_per_turn"] = json!(per_turn_us(server_ms));
        }
        let group = |names: &[String], start: &[procfs::Ticks], end: &[procfs::Ticks]| {
            let mut map = serde_json::Map::new();
            for (i, name) in names.iter().enumerate() {
                let cpu_ms = ms(&start[i], &end[i]);
                map.insert(
                    name.clone(),
                    json!({"cpu_ms": stats::round3(cpu_ms), "cores": stats::round3(cpu_ms / 1000.0 / args.duration), "cpu_us_per_turn": per_turn_us(cpu_ms)}),
                );
            }
            map
        };
        let comms = group(&args.cpu_comms, &w.start.comms, &w.end.comms);
        if !comms.is_empty() {
            report["cpu_by_name"] = Value::Object(comms);
        }
        let cmdlines = group(&args.cpu_cmdlines, &w.start.cmdlines, &w.end.cmdlines);
        if !cmdlines.is_empty() {
            report["cpu_by_cmdline"] = Value::Object(cmdlines);
        }
        let own_ms = ms(&w.start.own, &w.end.own);
        report["client_cores"] = json!(stats::round3(own_ms / 1000.0 / args.duration));
        let ((busy0, total0, _), (busy1, total1, cpus)) = (w.start.machine, w.end.machine);
        let (busy, total) = (busy1.saturating_sub(busy0), total1.saturating_sub(total0));
        if total > 0 {
            // Cores busy over the window, everything included (server, client, other work).
            let cores = busy as f64 / total as f64 * cpus as f64;
            report["machine_cores_busy"] = json!(stats::round3(cores));
            report["machine_idle_pct"] =
                json!(stats::round3(100.0 * (total - busy) as f64 / total as f64));
        }
    }
    report
}

async fn measure(args: &TurnsArgs) -> anyhow::Result<(Tally, Option<CpuWindow>)> {
    if args.concurrency == 0 || args.duration <= 0.0 || args.timeout <= 0.0 {
        bail!("--concurrency, --duration and --timeout must be positive");
    }
    let target = Target::parse(&args.url).await?;
    let sources = net::parse_sources(&args.sources)?;
    let body = json!({"type": "threads.create", "params": {"input": {
        "content": [{"type": "input_text", "text": args.message}],
        "attachments": [], "inference_options": {}}}});
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup.max(0.0));
    let end = measure_from + Duration::from_secs_f64(args.duration);
    let shared = Arc::new(Shared {
        target,
        path: args.path.clone(),
        body: Bytes::from(body.to_string()),
        timeout: Duration::from_secs_f64(args.timeout),
        tally: Mutex::new(Tally::default()),
        measure_from,
        end,
    });
    let watch_cpu =
        !args.server_pids.is_empty() || !args.cpu_comms.is_empty() || !args.cpu_cmdlines.is_empty();
    let cpu = watch_cpu.then(|| {
        let groups = (
            args.server_pids.clone(),
            args.cpu_comms.clone(),
            args.cpu_cmdlines.clone(),
        );
        tokio::spawn(async move {
            let read = move || {
                let (pids, comms, cmdlines) = groups.clone();
                tokio::task::spawn_blocking(move || procfs::read_cpu(&pids, &comms, &cmdlines))
            };
            tokio::time::sleep_until(measure_from.into()).await;
            let a = read().await.unwrap_or_default();
            tokio::time::sleep_until(end.into()).await;
            let b = read().await.unwrap_or_default();
            (a, b)
        })
    });
    let ticks_per_sec = procfs::clock_ticks_per_sec();
    let mut workers = tokio::task::JoinSet::new();
    for i in 0..args.concurrency {
        let source = net::pick_source(&sources, i);
        let user = format!("{}-{i}", args.user_prefix);
        workers.spawn(worker(shared.clone(), source, user));
    }
    // Turns still running at the end do not count; wait for them a little, then drop them.
    net::join_until(workers, end + Duration::from_secs(5)).await;
    let cpu = match cpu {
        Some(handle) => {
            let (start, end) = handle.await?;
            Some(CpuWindow {
                start,
                end,
                ticks_per_sec,
            })
        }
        None => None,
    };
    let tally = std::mem::take(&mut *shared.tally.lock().unwrap_or_else(|p| p.into_inner()));
    Ok((tally, cpu))
}

async fn worker(shared: Arc<Shared>, source: Option<IpAddr>, user: String) {
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    while Instant::now() < shared.end {
        let t0 = Instant::now();
        let turn =
            match tokio::time::timeout(shared.timeout, one_turn(&shared, source, &user, &mut conn))
                .await
            {
                Ok(turn) => turn,
                Err(_) => {
                    conn = None;
                    Turn::Failed("timeout".into())
                }
            };
        let done = Instant::now();
        if matches!(&turn, Turn::Failed(why) if why.starts_with("connect")) {
            // A refused connection fails at once: do not spin on it.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if done < shared.measure_from || done > shared.end {
            continue;
        }
        let mut tally = shared.tally.lock().unwrap_or_else(|p| p.into_inner());
        match turn {
            Turn::Good => {
                tally.good += 1;
                tally.latency.record(done - t0);
            }
            Turn::Failed(why) => *tally.errors.entry(why).or_default() += 1,
        }
    }
}

/// One turn on the worker's connection (reopened after a failure).
async fn one_turn(
    shared: &Shared,
    source: Option<IpAddr>,
    user: &str,
    conn: &mut Option<SendRequest<Full<Bytes>>>,
) -> Turn {
    if conn.as_ref().is_none_or(|c| c.is_closed()) {
        match net::open(&shared.target, source, Duration::from_secs(5)).await {
            Ok(c) => *conn = Some(c),
            Err(e) => return Turn::Failed(format!("connect: {}", e.root_cause())),
        }
    }
    let Some(sender) = conn.as_mut() else {
        return Turn::Failed("no connection".into());
    };
    let request = net::chatkit_post(&shared.target, &shared.path, user, shared.body.clone());
    let request = match request {
        Ok(r) => r,
        Err(e) => return Turn::Failed(format!("request: {e}")),
    };
    let outcome = async {
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let mut body = response.into_body();
        let mut splitter = Splitter::default();
        let mut verdict = Verdict::default();
        while let Some(frame) = body.frame().await {
            if let Some(data) = frame?.data_ref() {
                for kind in splitter.feed(data) {
                    verdict.see(&kind);
                }
            }
        }
        Ok::<_, hyper::Error>((status, verdict))
    }
    .await;
    match outcome {
        Ok((status, _)) if status != hyper::StatusCode::OK => {
            Turn::Failed(format!("status {}", status.as_u16()))
        }
        Ok((_, verdict)) => verdict.finish(),
        Err(e) => {
            *conn = None;
            Turn::Failed(format!(
                "io: {}",
                e.to_string().chars().take(60).collect::<String>()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::HeaderMap;
    use axum::routing::post;

    fn kind(t: &str) -> EventKind {
        EventKind(t.into(), None)
    }

    #[test]
    fn a_turn_is_good_only_with_a_finished_assistant_message_and_no_error() {
        let mut v = Verdict::default();
        v.see(&kind("thread.created"));
        v.see(&kind("thread.item.done/user_message"));
        assert_eq!(v.finish(), Turn::Failed("no assistant_message done".into()));
        v.see(&kind("thread.item.done/assistant_message"));
        assert_eq!(v.finish(), Turn::Good);
        v.see(&kind("error"));
        assert_eq!(v.finish(), Turn::Failed("error event".into()));
        assert_eq!(Verdict::default().finish(), Turn::Failed("no event".into()));
    }

    /// A ChatKit-shaped SSE server taking ≈ 10 ms per turn; it answers user `t-1` with an
    /// error event, and remembers every `X-User-ID` it saw.
    async fn serve(users: Arc<Mutex<Vec<String>>>) -> String {
        let handler = move |headers: HeaderMap| {
            let users = users.clone();
            async move {
                let user = headers["x-user-id"].to_str().unwrap_or("").to_owned();
                users.lock().expect("lock").push(user.clone());
                tokio::time::sleep(Duration::from_millis(10)).await;
                let last = if user == "t-1" {
                    r#"{"type":"error","code":"x","allow_retry":false}"#
                } else {
                    r#"{"type":"thread.item.done","item":{"id":"m","type":"assistant_message","content":[]}}"#
                };
                let body = format!(
                    "data: {{\"type\":\"thread.created\"}}\n\ndata: {{\"type\":\"thread.item.done\",\"item\":{{\"type\":\"user_message\"}}}}\n\ndata: {last}\n\n"
                );
                axum::response::Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(Body::from(body))
                    .unwrap_or_default()
            }
        };
        let app = axum::Router::new().route("/chatkit", post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://127.0.0.1:{port}")
    }

    fn args(url: String) -> TurnsArgs {
        TurnsArgs {
            url,
            path: "/chatkit".into(),
            concurrency: 3,
            duration: 0.5,
            warmup: 0.1,
            message: "hi".into(),
            sources: "127.0.0.1".into(),
            user_prefix: "t".into(),
            timeout: 5.0,
            server_pids: vec![std::process::id()],
            cpu_comms: vec!["no-such-process-name".into()],
            cpu_cmdlines: vec!["no such command line".into()],
        }
    }

    #[tokio::test]
    async fn each_connection_loops_as_its_own_user_and_error_events_count_as_errors() {
        let users = Arc::new(Mutex::new(Vec::new()));
        let url = serve(users.clone()).await;
        let a = args(url);
        let (tally, cpu) = measure(&a).await.expect("run");
        // Two healthy connections at ≈ 10 ms per turn over 0.5 s; the third only errs.
        assert!((40..=110).contains(&tally.good), "{}", tally.good);
        let errors = tally.errors.get("error event").copied().unwrap_or(0);
        assert!((20..=55).contains(&errors), "{errors}");
        assert_eq!(tally.errors.len(), 1, "{:?}", tally.errors);
        let seen = users.lock().expect("lock").clone();
        for u in ["t-0", "t-1", "t-2"] {
            assert!(seen.iter().any(|s| s == u), "{u} missing");
        }
        assert!(
            seen.iter()
                .all(|s| ["t-0", "t-1", "t-2"].contains(&s.as_str()))
        );
        let r = report(&a, &tally, cpu.as_ref());
        assert_eq!(r["turns"], tally.good);
        assert!(r["turns_per_sec"].as_f64().unwrap_or(0.0) > 50.0, "{r}");
        assert!(
            r["latency"]["p50_ms"].as_f64().unwrap_or(0.0) >= 10.0,
            "{r}"
        );
        assert!(r.get("server_cpu_us_per_turn").is_some(), "{r}");
        assert_eq!(r["cpu_by_name"]["no-such-process-name"]["cpu_ms"], 0.0);
        assert_eq!(r["cpu_by_cmdline"]["no such command line"]["cpu_ms"], 0.0);
        assert!(r["machine_idle_pct"].as_f64().is_some(), "{r}");
        assert!(r["client_cores"].as_f64().is_some(), "{r}");
    }

    #[tokio::test]
    async fn a_refused_connection_counts_as_connect_errors() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        drop(listener);
        let mut a = args(url);
        a.duration = 0.2;
        a.warmup = 0.0;
        let (tally, _) = measure(&a).await.expect("run");
        assert_eq!(tally.good, 0);
        assert!(
            tally.errors.keys().all(|k| k.starts_with("connect")),
            "{:?}",
            tally.errors
        );
        assert!(tally.errors.values().sum::<u64>() > 0);
    }
}

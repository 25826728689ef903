//! `cold-start`: spawns the server binary N times with the given environment and measures
//! process start → first `200` from `/health/ready`, then SIGTERM → exit. Each run gets a free
//! port and, unless `DATABASE_URL` is given, a new SQLite file (start-up creates and migrates
//! it, as on a first deploy).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::stats;

#[derive(Args, Debug, Clone)]
pub struct ColdStartArgs {
    /// The server binary.
    pub binary: PathBuf,
    /// Counted runs (one more unmeasured warm-up run comes first).
    #[arg(long, short = 'n', default_value_t = 10)]
    pub runs: usize,
    /// `NAME=value` for the server (repeatable); the environment is otherwise empty.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Give up on a run after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
}

pub async fn run(args: ColdStartArgs, as_json: bool) -> anyhow::Result<()> {
    if args.runs == 0 {
        bail!("--runs must be positive");
    }
    let mut env = Vec::new();
    for pair in &args.env {
        let (k, v) = pair
            .split_once('=')
            .with_context(|| format!("`{pair}` is not NAME=VALUE"))?;
        env.push((k.to_owned(), v.to_owned()));
    }
    let mut ready = Vec::new();
    let mut stop = Vec::new();
    for i in 0..=args.runs {
        let (r, s) = one_run(&args, &env, i).await?;
        if i > 0 {
            ready.push(r.as_secs_f64() * 1000.0);
            stop.push(s.as_secs_f64() * 1000.0);
        }
    }
    let summary = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        // Nearest-rank p90.
        let p90 = s[((s.len() as f64 * 0.9).ceil() as usize).saturating_sub(1)];
        json!({
            "median_ms": stats::round3(stats::median(&s).unwrap_or(0.0)),
            "p90_ms": stats::round3(p90),
            "min_ms": stats::round3(s[0]),
            "max_ms": stats::round3(s[s.len() - 1]),
        })
    };
    let report = json!({
        "binary": args.binary.display().to_string(),
        "runs": args.runs,
        "env": args.env,
        "start_to_ready": summary(&ready),
        "sigterm_to_exit": summary(&stop),
    });
    if as_json {
        stats::print(&report, true);
    } else {
        println!(
            "binary {}  runs {}  env {:?}",
            report["binary"], args.runs, args.env
        );
        println!(
            "{:<18} {:>10} {:>10} {:>10} {:>10}",
            "(ms)", "median", "p90", "min", "max"
        );
        for key in ["start_to_ready", "sigterm_to_exit"] {
            let f = |n: &str| report[key][n].as_f64().unwrap_or(0.0);
            println!(
                "{key:<18} {:>10.3} {:>10.3} {:>10.3} {:>10.3}",
                f("median_ms"),
                f("p90_ms"),
                f("min_ms"),
                f("max_ms")
            );
        }
    }
    Ok(())
}

async fn free_port() -> anyhow::Result<u16> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(l.local_addr()?.port())
}

async fn one_run(
    args: &ColdStartArgs,
    env: &[(String, String)],
    run: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let port = free_port().await?;
    let dir = std::env::temp_dir().join(format!("study-mode-cold-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut cmd = tokio::process::Command::new(&args.binary);
    cmd.env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("LOG_LEVEL", "warn")
        .env(
            "DATABASE_URL",
            format!("sqlite:{}", dir.join("db.sqlite").display()),
        )
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", args.binary.display()))?;
    let deadline = t0 + Duration::from_secs_f64(args.timeout);
    let ready = loop {
        if ready_status(port).await == Some(200) {
            break t0.elapsed();
        }
        if Instant::now() > deadline {
            let _ = child.kill().await;
            bail!("run {run}: not ready after {} s", args.timeout);
        }
        if let Some(status) = child.try_wait()? {
            bail!("run {run}: the server exited early ({status})");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let pid = child.id().context("the server has no pid")?;
    let t1 = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .context("sending SIGTERM")?;
    tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .context("the server ignored SIGTERM")??;
    let stopped = t1.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    Ok((ready, stopped))
}

/// Status code of `GET /health/ready` on a fresh connection; `None` if not listening yet.
async fn ready_status(port: u16) -> Option<u16> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(b"GET /health/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .ok()?;
    let mut buf = [0u8; 32];
    let n = s.read(&mut buf).await.ok()?;
    let head = std::str::from_utf8(&buf[..n]).ok()?;
    head.split_whitespace().nth(1)?.parse().ok()
}

//! Measurements of the model client (run on demand, not in CI):
//! `cargo test --test api tutor::bench -- --ignored --nocapture --test-threads 1`.
//!
//! Overhead on time to first token = when our stream yields the first delta minus when the
//! local zero-latency upstream wrote it; and resident memory per open reply stream.

use std::time::Duration;

use futures::StreamExt;

use super::responder::{model_tutor, request};
use crate::support::model::{Answer, Step, Upstream, epoch};
use crate::support::transcripts::CHAT_PLAIN;
use study_mode_api::turn::TurnEvent;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn stamped_reply(hang: bool) -> Answer {
    let rest = if hang {
        Step::Hang
    } else {
        Step::Send(
            CHAT_PLAIN
                .split_once("\n\n")
                .map(|(_, r)| r.to_owned())
                .unwrap_or_default()
                .into(),
        )
    };
    Answer::Stream(vec![Step::Stamp, rest])
}

/// Overheads (µs) of `n` concurrent replies.
async fn overheads(n: usize) -> Vec<u128> {
    let upstream = Upstream::start((0..n).map(|_| stamped_reply(false)).collect()).await;
    let (tutor, _) = model_tutor(&upstream, "chat_completions", &[]).await;
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let tutor = tutor.clone();
            tokio::spawn(async move {
                let mut stream = tutor.respond_with_lesson(request(Some("x")), None);
                let first = stream.next().await;
                let now = epoch().elapsed().as_micros();
                let sent: u128 = match first {
                    Some(Ok(TurnEvent::Delta(t))) => t.parse().expect("stamp"),
                    other => panic!("unexpected first event {other:?}"),
                };
                while stream.next().await.is_some() {}
                now - sent
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out.sort_unstable();
    out
}

fn pct(sorted: &[u128], p: f64) -> u128 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run on demand"]
async fn first_token_overhead_at_1_100_and_1000_concurrent_replies() {
    for n in [1, 100, 1000] {
        let o = overheads(n).await;
        println!(
            "concurrency {n:>4}: first-token overhead p50 {} µs, p99 {} µs, max {} µs",
            pct(&o, 0.5),
            pct(&o, 0.99),
            o[o.len() - 1]
        );
        assert!(pct(&o, 0.5) < 1_000_000, "p50 overhead above a second");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run on demand"]
async fn memory_per_open_reply_stream() {
    let n = 1000;
    let upstream = Upstream::start((0..=n).map(|_| stamped_reply(true)).collect()).await;
    let (tutor, _) = model_tutor(
        &upstream,
        "chat_completions",
        &[("MODEL_IDLE_TIMEOUT_SECS", "600")],
    )
    .await;
    // One reply first, so that the client, runtime and allocator are warm.
    let mut warm = tutor.respond_with_lesson(request(Some("x")), None);
    assert!(matches!(warm.next().await, Some(Ok(TurnEvent::Delta(_)))));
    let before = rss_bytes();
    let mut open = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = tutor.respond_with_lesson(request(Some("x")), None);
        let first = tokio::time::timeout(Duration::from_secs(30), s.next()).await;
        assert!(matches!(first, Ok(Some(Ok(TurnEvent::Delta(_))))));
        open.push(s);
    }
    let after = rss_bytes();
    println!(
        "{n} open reply streams: {} KiB RSS each (client side plus the in-process fake server's connection)",
        (after.saturating_sub(before)) / n as u64 / 1024
    );
    drop(open);
    assert!(upstream.saw_early_close(Duration::from_secs(5)).await);
}

//! `study-mode-api warm-cache`: list every lesson of the configured source and load each
//! through the normal loader, so that Redis (shared by every instance) holds them all.
//!
//! The progress line is hand-written on stderr (one `\r`-rewritten line) rather than pulled in
//! from a progress-bar crate: it is one line of output and needs no terminal handling.

use std::io::Write;

use futures::StreamExt;
use prometheus_client::registry::Registry;

use super::{Content, ContentSettings, LessonPath};
use crate::outbound::Outbound;
use crate::redis::{RedisCache, RedisPool, RedisSettings};

/// Lessons loaded at the same time.
const CONCURRENCY: usize = 16;

/// The outcome of a warm-up.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WarmReport {
    pub total: usize,
    pub loaded: usize,
    pub missing: usize,
    pub failed: usize,
}

impl std::fmt::Display for WarmReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "warm-cache: {} lessons: loaded {}, missing {}, failed {}",
            self.total, self.loaded, self.missing, self.failed
        )
    }
}

/// Builds the loader from the settings (no store, no server) and warms every lesson.
pub async fn run(
    settings: &ContentSettings,
    outbound: &Outbound,
    redis: Option<&RedisSettings>,
) -> Result<WarmReport, String> {
    let mut registry = Registry::default();
    let l2 = match redis {
        Some(redis) => {
            let pool = RedisPool::connect(redis)
                .await
                .map_err(|e| format!("invalid REDIS_URL: {e}"))?;
            Some(RedisCache::new(pool, &mut registry))
        }
        None => {
            eprintln!("warm-cache: REDIS_URL is unset; lessons are checked but not kept");
            None
        }
    };
    let content = Content::new(settings, outbound, l2, &mut registry).await;
    let lessons = content
        .source()
        .list()
        .await
        .map_err(|e| format!("cannot list lessons: {e}"))?;
    Ok(warm(&content, lessons, progress).await)
}

/// Loads `lessons` concurrently, calling `on_progress(done, total)` after each.
pub async fn warm(
    content: &Content,
    lessons: Vec<LessonPath>,
    on_progress: impl Fn(usize, usize),
) -> WarmReport {
    let mut report = WarmReport {
        total: lessons.len(),
        ..WarmReport::default()
    };
    let mut loads = futures::stream::iter(lessons)
        .map(|path| async move { (content.lesson(&path).await, path) })
        .buffer_unordered(CONCURRENCY);
    while let Some((result, path)) = loads.next().await {
        match result {
            Ok(Some(_)) => report.loaded += 1,
            Ok(None) => report.missing += 1,
            Err(e) => {
                report.failed += 1;
                eprintln!("\nwarm-cache: {path}: {e}");
            }
        }
        on_progress(report.loaded + report.missing + report.failed, report.total);
    }
    report
}

fn progress(done: usize, total: usize) {
    const WIDTH: usize = 30;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    let bar: String = "#".repeat(filled) + &"-".repeat(WIDTH - filled);
    let mut err = std::io::stderr();
    let _ = write!(err, "\r[{bar}] {done}/{total}");
    if done == total {
        let _ = writeln!(err);
    }
    let _ = err.flush();
}

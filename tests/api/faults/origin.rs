//! The lesson origin (a fake GitHub) fails, then answers slower than the fetch deadline, while
//! clients keep reading the lesson and its suggestions with a one-second cache: every answer
//! is a 200 with the last good copy, within a bounded time; when the origin is healthy again
//! the new version arrives.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::load::{Client, Load, get, time_until};
use crate::support::app::{Backend, metric};
use crate::support::github::FakeGitHub;

const PATH: &str = "01-loops/01-for";
const V1: &str = "---\ntitle: For loops\n---\n# For loops\n\n## Ranges\n\nA for loop walks a range.\n\n## Break\n\nBreak leaves the loop.\n";
const V2: &str =
    "---\ntitle: For loops, revised\n---\n# For loops\n\n## Ranges\n\nStill a range.\n";
const CLIENTS: usize = 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(1);
/// The origin's delay in the slow phase: well past the fetch deadline.
const SLOW: Duration = Duration::from_millis(2500);
/// Generous bound of one answer: the fetch deadline plus room for a busy CI machine.
const LATENCY_BOUND: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_then_slow_lesson_origin_under_load_serves_the_stale_copy_within_a_bounded_time()
{
    let fake = FakeGitHub::start(&[(&format!("{PATH}.md"), V1)]).await;
    let app = fake
        .spawn_echo_app(
            Backend::Production,
            &[
                ("CONTENT_CACHE_TTL", "1"),
                ("CONTENT_FETCH_TIMEOUT_SECS", "1"),
                ("RATE_LIMIT_ANON", "1000000/minute"),
            ],
        )
        .await;
    let titles: Arc<Mutex<Vec<(Duration, String)>>> = Arc::default();
    let (base, seen) = (app.address.clone(), titles.clone());
    let load = Load::start(CLIENTS, move |client, i| {
        lesson_client(client, base.clone(), i % 2 == 0, seen.clone())
    });
    tokio::time::sleep(Duration::from_secs(1)).await;

    // V2 is published, but the origin fails: nobody may see it yet.
    fake.put(&format!("{PATH}.md"), V2);
    fake.set_failing(true);
    let failing_at = load.elapsed();
    let requests_before = fake.raw_requests();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let origin_tries = fake.raw_requests() - requests_before;
    fake.set_failing(false);
    fake.set_delay(SLOW);
    let slow_at = load.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    fake.set_delay(Duration::ZERO);
    let healthy_at = load.elapsed();
    let recovery = time_until(Duration::from_secs(10), || async {
        let seen = titles.lock().expect("lock");
        seen.iter()
            .any(|(at, t)| *at >= healthy_at && t == "For loops, revised")
    })
    .await;
    let report = load.finish().await;

    let titles = std::mem::take(&mut *titles.lock().expect("lock"));
    let in_fault: Vec<_> = report.sent_between(failing_at, healthy_at);
    let worst_in_fault = in_fault.iter().map(|s| s.latency).max().unwrap_or_default();
    println!(
        "faults::origin: {}; {} requests during the fault (failing {:?}, slow {:?}), worst {:?}; \
         {origin_tries} origin tries while failing; new version served {recovery:?} after the origin healed",
        report.summary(),
        in_fault.len(),
        slow_at - failing_at,
        healthy_at - slow_at,
        worst_in_fault,
    );
    report.assert_no_problems("bad answers");
    assert!(
        report.max_latency() < LATENCY_BOUND,
        "an answer took {:?} (fetch deadline {FETCH_TIMEOUT:?})",
        report.max_latency()
    );
    let early: Vec<_> = titles
        .iter()
        .filter(|(at, t)| *at < healthy_at && t != "For loops")
        .collect();
    assert!(
        early.is_empty(),
        "only the stale copy during the fault: {early:?}"
    );
    assert!(
        in_fault.len() >= CLIENTS * 2,
        "the load went on during the fault: {}",
        in_fault.len()
    );
    assert!(
        (1..=6).contains(&origin_tries),
        "the failing origin was retried about once a second, not by every request: \
         {origin_tries} tries"
    );
    let slow_phase = report.sent_between(slow_at, healthy_at);
    assert!(
        slow_phase
            .iter()
            .any(|s| s.latency >= FETCH_TIMEOUT * 9 / 10),
        "the slow origin was felt: some request waited for the fetch deadline"
    );
    assert!(
        metric(&app, "study_mode_content_stale_serves_total").await >= 2.0,
        "the stale copy was served in both phases"
    );
    assert!(
        recovery.is_some(),
        "the new version arrives once the origin is healthy"
    );
}

/// Reads the lesson (or its suggestions) again and again; each answer must be a 200 carrying
/// one of the two versions. Records which version it saw and when.
async fn lesson_client(
    client: Client,
    base: String,
    lesson: bool,
    titles: Arc<Mutex<Vec<(Duration, String)>>>,
) {
    let url = if lesson {
        format!("{base}/content/lesson?lesson_path={PATH}")
    } else {
        format!("{base}/chatkit/suggestions?lesson_path={PATH}&mode=teach")
    };
    let kind = if lesson { "lesson" } else { "suggestions" };
    while client.running() {
        let at = client.elapsed();
        let title = client
            .record(kind, async {
                match get(&client.http, &url).await {
                    Err(e) => (0, Err(e)),
                    Ok(a) if a.status != 200 => (a.status, Err(a.text)),
                    Ok(a) => (a.status, a.json().and_then(|b| title_of(&b, lesson))),
                }
            })
            .await;
        if let Some(title) = title {
            titles.lock().expect("lock").push((at, title));
        }
    }
}

fn title_of(body: &Value, lesson: bool) -> Result<String, String> {
    let title = if lesson {
        &body["title"]
    } else {
        &body["lesson"]["title"]
    };
    match title.as_str() {
        Some(t @ ("For loops" | "For loops, revised")) => Ok(t.to_owned()),
        _ => Err(format!("neither version: {body}")),
    }
}

//! Measurements for docs/BENCHMARKS.md (ignored by default; run with
//! `cargo test --release --test api measure_content -- --ignored --nocapture`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use study_mode_api::content::LessonPath;

use crate::support::app::Backend;
use crate::support::github::{FakeGitHub, LESSON};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, run by hand"]
async fn measure_content_single_flight_and_uncached_latency() {
    let files: Vec<(String, &str)> = (0..100)
        .map(|i| (format!("01-a/{i:03}-l.md"), LESSON))
        .collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), *t)).collect();
    let fake = FakeGitHub::start(&refs).await;
    fake.set_delay(Duration::from_millis(100));
    for backend in [Backend::Embedded, Backend::Production] {
        let lifted = [("RATE_LIMIT_ANON", "1000000/minute")];
        let app = Arc::new(fake.spawn_echo_app(backend, &lifted).await);
        let before = fake.raw_requests();
        let url = app.url("/chatkit/suggestions?lesson_path=01-a/000-l");
        let started = Instant::now();
        let calls = (0..1000).map(|_| {
            let (client, url) = (app.client.clone(), url.clone());
            tokio::spawn(async move { client.get(url).send().await.map(|r| r.status().as_u16()) })
        });
        let statuses = futures::future::join_all(calls).await;
        let ok = statuses.iter().filter(|s| matches!(s, Ok(Ok(200)))).count();
        println!(
            "{backend:?}: 1000 concurrent first requests: {ok} x 200 in {:?}, origin requests: {}",
            started.elapsed(),
            fake.raw_requests() - before
        );
        let mut took = Vec::new();
        for i in 1..100 {
            let p = LessonPath::parse(&format!("01-a/{i:03}-l")).expect("valid");
            let t = Instant::now();
            assert!(app.state.content.lesson(&p).await.expect("ok").is_some());
            took.push(t.elapsed());
        }
        took.sort();
        println!(
            "{backend:?}: uncached load (origin answers after 100 ms), 99 lessons: p50 {:?} p95 {:?} p99 {:?}",
            percentile(&took, 0.5),
            percentile(&took, 0.95),
            percentile(&took, 0.99)
        );
    }
}

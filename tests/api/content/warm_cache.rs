//! `study-mode-api warm-cache`: the real binary against a fake GitHub (with Redis) and against
//! the sample book.

use std::process::Command;

use crate::support::app::{test_redis_url, unique};
use crate::support::github::{FakeGitHub, LESSON};

fn owned(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn warm_cache(vars: &[(String, String)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_study-mode-api"));
    cmd.arg("warm-cache")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_LEVEL", "warn")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_cache_loads_every_lesson_listed_by_the_git_tree_into_redis() {
    let fake = FakeGitHub::start(&[
        ("01-a/01-one.md", LESSON),
        ("01-a/02-two.mdx", LESSON),
        ("01-a/index.md", LESSON),
        ("01-a/img.png", "binary"),
    ])
    .await;
    fake.list_without_serving("01-a/03-gone.md");
    let prefix = format!("{}:", unique("warm:"));
    let redis = test_redis_url();
    let vars = owned(&fake.settings(&[
        ("REDIS_URL", redis.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
    ]));
    let run = tokio::task::spawn_blocking(move || warm_cache(&vars));
    let (ok, stdout, stderr) = run.await.expect("join");
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("4 lessons: loaded 3, missing 1, failed 0"),
        "{stdout}\n{stderr}"
    );
    assert!(stderr.contains("4/4"), "progress shown: {stderr}");
    let tree_calls = fake
        .seen()
        .iter()
        .filter(|s| s.path.contains("/git/trees/"))
        .count();
    assert_eq!(tree_calls, 1);
    let client = redis::Client::open(redis.as_str()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let key = format!("{prefix}content:v1:acme/book@main:01-a/01-one");
    let stored: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("GET");
    assert!(stored.expect("warmed key present").contains("Loops"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_cache_fails_loudly_when_the_lessons_cannot_be_listed() {
    let fake = FakeGitHub::start(&[("01-a/01-one.md", LESSON)]).await;
    fake.set_failing(true);
    let vars = owned(&fake.settings(&[]));
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || warm_cache(&vars))
        .await
        .expect("join");
    assert!(!ok, "a failing origin is a failed run: {stdout}\n{stderr}");
    assert!(stderr.contains("cannot list lessons"), "{stderr}");
}

#[test]
fn warm_cache_loads_the_whole_sample_book() {
    let (ok, stdout, stderr) = warm_cache(&[]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("10 lessons: loaded 10, missing 0, failed 0"),
        "{stdout}\n{stderr}"
    );
}

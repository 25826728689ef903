//! Rate limits as a ChatKit client meets them on `POST /chatkit`: the chat limit is exact
//! across instances.

use serde_json::json;

use crate::support::app::{Backend, TestApp, spawn_echo_app_with, unique};
use crate::support::chatkit_client::{Chat, input};

/// Sends `n` concurrent `threads.create` for `user`, spread round-robin over `apps`;
/// answers (admitted, refused).
async fn burst(apps: &[TestApp], user: &str, n: usize) -> (usize, usize) {
    let body = json!({"type": "threads.create", "params": {"input": input("go")}}).to_string();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let chat = Chat::new(&apps[i % apps.len()].address, user);
            let body = body.clone();
            tokio::spawn(async move { chat.send_raw(&body).await })
        })
        .collect();
    let (mut admitted, mut refused) = (0, 0);
    for task in tasks {
        let answer = task.await.expect("task");
        match answer.status {
            200 => {
                assert_eq!(answer.header("content-type"), Some("text/event-stream"));
                assert!(
                    answer.header("ratelimit").is_some(),
                    "RateLimit header on 200"
                );
                admitted += 1;
            }
            429 => {
                // Refused before any stream: a JSON error with Retry-After.
                assert_eq!(answer.error_code(), "rate_limited", "{}", answer.text);
                let retry: u64 = answer
                    .header("retry-after")
                    .and_then(|v| v.parse().ok())
                    .expect("Retry-After seconds");
                assert!((1..=60).contains(&retry), "{retry}");
                assert_eq!(answer.json()["error"]["details"]["limit"], 20);
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    (admitted, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_sharing_redis_admit_exactly_the_chat_limit_over_http() {
    let prefix = format!("{}:", unique("sm_test_rl_http:"));
    let vars = [
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("RATE_LIMIT_CHAT", "20/minute"),
        ("DATABASE_MAX_CONNECTIONS", "10"),
    ];
    let mut apps = Vec::new();
    for _ in 0..3 {
        apps.push(spawn_echo_app_with(Backend::Production, &vars).await);
    }
    for round in 0..5 {
        let user = unique("burst");
        let (admitted, refused) = burst(&apps, &user, 200).await;
        assert_eq!(
            (admitted, refused),
            (20, 180),
            "round {round}: exactly the limit must be admitted"
        );
    }
}

//! The SSO goes down (its JWKS answers 503, then its listener closes) while clients with valid
//! tokens keep chatting: the cached keys keep verifying them past the JWKS cache TTL, and a
//! token naming an unknown key gets a prompt 401 (or 503), never a hang.

use std::time::{Duration, Instant};

use serde_json::json;

use super::load::{Client, Load, of_type, post_chatkit};
use crate::support::app::{Backend, metric, spawn_echo_app_with, unique};
use crate::support::chatkit_client::input;
use crate::support::sso::{FakeSso, Key, claims};

const CLIENTS: usize = 20;
const JWKS_TTL: Duration = Duration::from_secs(1);
/// Generous bound of a refused request (the SSO client's own timeout is 5 s).
const REFUSAL_BOUND: Duration = Duration::from_secs(6);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_sso_down_under_load_cached_keys_keep_verifying_tokens_and_unknown_kids_fail_fast()
{
    // Ed25519: signing a token per client stays fast in a debug build (RSA takes ~0.3 s).
    let key = Key::ed("ed-1", "ed25519.pem");
    let sso = FakeSso::start(&[&key]).await;
    let app = spawn_echo_app_with(
        Backend::Production,
        &[
            ("SSO_URL", sso.url.as_str()),
            ("DEV_MODE", "false"),
            ("JWKS_CACHE_TTL_SECS", "1"),
            ("RATE_LIMIT_CHAT", "1000000/minute"),
        ],
    )
    .await;
    let base = app.address.clone();
    let signer = key.clone();
    let load = Load::start(CLIENTS, move |client, i| {
        let token = signer.sign(&claims(&unique("sso-load-")));
        chat_client(client, base.clone(), token, i % 2 == 0)
    });
    tokio::time::sleep(Duration::from_secs(1)).await;

    sso.set_down(true);
    let down_at = load.elapsed();
    // Past the TTL: the keys go stale, a refresh fails, and they must keep working.
    tokio::time::sleep(JWKS_TTL * 2 + Duration::from_millis(500)).await;
    let jwks_hits = sso.jwks_hits();
    drop(sso); // the listener closes: connections are now refused
    let gone_at = load.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let unknown = unknown_kid_burst(&app.address).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let report = load.finish().await;

    let worst_refusal = unknown.iter().map(|(_, t)| *t).max().unwrap_or_default();
    println!(
        "faults::jwks: {}; SSO failing from {down_at:?}, closed from {gone_at:?}; {jwks_hits} \
         JWKS requests; {} unknown-kid requests answered {:?} within {worst_refusal:?}",
        report.summary(),
        unknown.len(),
        unknown
            .iter()
            .map(|(s, _)| *s)
            .collect::<std::collections::BTreeSet<_>>(),
    );
    report.assert_no_problems("valid tokens not served");
    let after_ttl = report.sent_between(down_at + JWKS_TTL * 2, Duration::from_secs(3600));
    assert!(
        after_ttl.len() >= CLIENTS,
        "the load went on past the TTL: {}",
        after_ttl.len()
    );
    assert!(
        jwks_hits >= 2,
        "the stale key set was refreshed (and failed): {jwks_hits} JWKS requests"
    );
    let refreshes_failed = metric(
        &app,
        r#"study_mode_auth_jwks_fetches_total{outcome="error"}"#,
    )
    .await;
    assert!(
        refreshes_failed >= 1.0,
        "JWKS fetch errors: {refreshes_failed}"
    );
    for (status, took) in &unknown {
        assert!(
            *status == 401 || *status == 503,
            "an unknown kid got {status}"
        );
        assert!(*took < REFUSAL_BOUND, "an unknown kid waited {took:?}");
    }
}

/// Valid-token traffic: `threads.list` (JSON) or a chat turn (stream); anything but a
/// complete 200 is a problem.
async fn chat_client(client: Client, base: String, token: String, list: bool) {
    let bearer = format!("Bearer {token}");
    let headers = [("authorization", bearer.as_str())];
    while client.running() {
        let (kind, body) = if list {
            (
                "threads.list",
                json!({"type": "threads.list", "params": {"limit": 5}}),
            )
        } else {
            (
                "threads.create",
                json!({"type": "threads.create", "params": {"input": input("hello")}}),
            )
        };
        client
            .record(kind, async {
                match post_chatkit(&client.http, &base, &headers, &body).await {
                    Err(e) => (0, Err(e)),
                    Ok(a) if a.status != 200 => (a.status, Err(a.text)),
                    Ok(a) if list => (200, a.json().map(drop)),
                    Ok(a) => (
                        200,
                        a.events().and_then(|e| {
                            if of_type(&e, "error").is_empty() {
                                Ok(())
                            } else {
                                Err(format!("error event: {e:?}"))
                            }
                        }),
                    ),
                }
            })
            .await;
    }
}

/// 20 concurrent requests whose token names a key the SSO never published: the status and
/// time of each.
async fn unknown_kid_burst(base: &str) -> Vec<(u16, Duration)> {
    let stranger = Key::ec("never-published", "ec.pem");
    let token = stranger.sign(&claims("intruder"));
    let bearer = format!("Bearer {token}");
    let http = reqwest::Client::new();
    let body = json!({"type": "threads.list", "params": {}});
    let requests = (0..20).map(|_| async {
        let sent = Instant::now();
        let answer = tokio::time::timeout(
            Duration::from_secs(20),
            post_chatkit(&http, base, &[("authorization", &bearer)], &body),
        )
        .await
        .expect("an unknown kid must not hang")
        .expect("answered");
        let code = answer.error_code().expect("the error shape");
        assert!(
            code == "unauthorized" || code == "service_unavailable",
            "{code}"
        );
        (answer.status, sent.elapsed())
    });
    futures::future::join_all(requests).await
}

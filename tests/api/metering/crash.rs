//! Settlements that outlive their process: a reply cut by SIGTERM is settled before the
//! process exits (and delivered by the next instance), and a process killed mid-reply leaves
//! its open call in the outbox, billed by the next instance once the call's horizon is past.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use sqlx::Connection;

use super::{BOOK, app_on};
use crate::support::app::{Backend, unique};
use crate::support::chatkit_client::{Chat, input};
use crate::support::metering::{MeteringApi, SettleMode};
use crate::support::model::{Answer, Step, Upstream};

const HEAD: &str = concat!(
    "event: response.output_text.delta\n",
    r#"data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Loops repeat a block of code "}"#,
    "\n\n",
);

/// A model that sends one delta, then nothing more.
async fn stalling_model() -> Upstream {
    Upstream::start(vec![Answer::Stream(vec![
        Step::Send(HEAD.into()),
        Step::Hang,
    ])])
    .await
}

/// Starts a turn and reads until the first delta arrived; the open response.
async fn turn_until_first_delta(chat: &Chat) -> reqwest::Response {
    let body = json!({"type": "threads.create", "params": {"input": input("Explain loops")}});
    let mut response = chat.request(body.to_string()).send().await.expect("send");
    let mut seen = String::new();
    while !seen.contains("Loops repeat") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .expect("first delta in time")
            .expect("read")
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_cut_by_sigterm_is_settled_before_exit_and_delivered_by_the_next_instance() {
    let metering = MeteringApi::start().await;
    metering.set_settle(SettleMode::Fail(503));
    let upstream = stalling_model().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite:{}", dir.path().join("shared.db").display());
    let extra = [
        ("DATABASE_URL", db.as_str()),
        ("SHUTDOWN_TIMEOUT_SECS", "1"),
    ];
    let mut first = app_on(&upstream, "responses", &metering, Backend::Embedded, &extra).await;
    let chat = Chat::new(&first.address, &unique("student")).with_query("mode=ask");
    let response = turn_until_first_delta(&chat).await;
    // SIGTERM: the open stream is ended at the deadline; the process must settle it first.
    let stopped = first.begin_shutdown();
    tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .expect("shut down in time")
        .expect("join")
        .expect("clean exit");
    drop(response);
    drop(first);
    // Settled before the process ended: the row is the deduct, not the open call.
    let mut conn = sqlx::SqliteConnection::connect(&db)
        .await
        .expect("open the store");
    let (kind, body): (String, String) = sqlx::query_as("SELECT kind, body FROM metering_outbox")
        .fetch_one(&mut conn)
        .await
        .expect("one row");
    drop(conn);
    assert_eq!(kind, "deduct", "{body}");
    assert!(
        metering.deducted().is_empty(),
        "the API refused it meanwhile"
    );

    metering.set_settle(SettleMode::Normal);
    let tried = metering.calls("deduct").len();
    let _second = app_on(&upstream, "responses", &metering, Backend::Embedded, &extra).await;
    // When the first instance's last pass claimed the row and was cut before sending it, the
    // claim's lease (METERING_TIMEOUT_SECS 2 + 5 s) holds the row back from the next instance
    // (so that two workers never send it at once): allow for it.
    assert_eq!(
        metering
            .wait_for("deduct", tried + 1, Duration::from_secs(12))
            .await,
        tried + 1
    );
    let deduct = metering.calls("deduct").pop().expect("deduct");
    assert_eq!(
        deduct.body["request_id"],
        metering.calls("check")[0].body["request_id"]
    );
    assert_eq!(deduct.body["usage_details"]["estimated"], true);
    assert_eq!(
        deduct.body["output_tokens"], 8,
        "the streamed text, estimated"
    );
    assert_eq!(metering.deducted().len(), 1);
    assert!(
        metering.violations().is_empty(),
        "{:?}",
        metering.violations()
    );
}

/// A free local port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn serve(vars: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_study-mode-api"));
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_LEVEL", "warn")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start the binary")
}

async fn wait_healthy(base: &str) {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{base}/health")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server at {base} never became healthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_reply_is_billed_by_the_next_instance_from_its_open_call() {
    let metering = MeteringApi::start().await;
    let upstream = stalling_model().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shared.db");
    let db = format!("sqlite:{}", path.display());
    let port = free_port().to_string();
    let mut child = serve(&[
        ("PORT", port.as_str()),
        ("DATABASE_URL", db.as_str()),
        ("CONTENT_DIR", BOOK),
        ("OPENAI_API_KEY", "sk-test"),
        ("OPENAI_BASE_URL", upstream.base_url.as_str()),
        ("MODEL_API", "responses"),
        ("METERING_ENABLED", "true"),
        ("METERING_API_URL", metering.url.as_str()),
    ]);
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base).await;
    let chat = Chat::new(&base, &unique("student")).with_query("mode=ask");
    let response = turn_until_first_delta(&chat).await;
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    drop(response);
    assert!(metering.calls("deduct").is_empty() && metering.calls("release").is_empty());

    // Its call is still open in the outbox, due after the model's total timeout (180 s) and
    // some: let that time pass.
    let mut conn = sqlx::SqliteConnection::connect(&db)
        .await
        .expect("open the store");
    let (kind, due): (String, i64) =
        sqlx::query_as("SELECT kind, next_attempt_ms FROM metering_outbox")
            .fetch_one(&mut conn)
            .await
            .expect("one open call");
    assert_eq!(kind, "open");
    let now = chrono::Utc::now().timestamp_millis();
    assert!(
        due > now + 180_000,
        "due only after the call's horizon: {due} vs {now}"
    );
    sqlx::query("UPDATE metering_outbox SET next_attempt_ms = 0")
        .execute(&mut conn)
        .await
        .expect("time passes");
    drop(conn);

    let _next = app_on(
        &upstream,
        "responses",
        &metering,
        Backend::Embedded,
        &[("DATABASE_URL", db.as_str())],
    )
    .await;
    assert_eq!(
        metering.wait_for("deduct", 1, Duration::from_secs(5)).await,
        1
    );
    let deduct = &metering.calls("deduct")[0];
    let check = &metering.calls("check")[0];
    assert_eq!(deduct.body["request_id"], check.body["request_id"]);
    assert_eq!(deduct.body["usage_details"]["estimated"], true);
    assert_eq!(
        deduct.body["output_tokens"], 0,
        "what was streamed died with the process"
    );
    let prompt = upstream.requests()[0].prompt_tokens();
    let input = deduct.body["input_tokens"].as_u64().expect("input");
    assert!(
        input.abs_diff(prompt) <= 2,
        "the prompt: {input} vs {prompt}"
    );
    assert!(
        metering.violations().is_empty(),
        "{:?}",
        metering.violations()
    );
}

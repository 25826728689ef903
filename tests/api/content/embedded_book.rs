//! The binary alone: copied into an empty folder and started with no settings at all, it
//! serves the sample book compiled into it (`/study`, the lesson index, a lesson) and teaches
//! a lesson of it through `POST /chatkit`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::chatkit_client::{Chat, input, of_type};

const LESSON: &str = "01-python-basics/01-values-and-variables/01-variables";

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// Copies the binary into `dir` and starts it there with nothing in its environment but
/// `PORT` (so no `CONTENT_DIR`, no `.env`, no `sample-book/` beside it).
fn start_alone(dir: &Path, port: u16) -> Child {
    let bin = dir.join("study-mode-api");
    std::fs::copy(env!("CARGO_BIN_EXE_study-mode-api"), &bin).expect("copy the binary");
    Command::new(&bin)
        .env_clear()
        .env("PORT", port.to_string())
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary")
}

async fn wait_for_health(client: &reqwest::Client, base: &str, child: &mut Child) {
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{base}/health")).send().await
            && r.status() == 200
        {
            return;
        }
        assert!(
            child.try_wait().expect("status").is_none(),
            "the binary exited at start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the binary did not answer /health within 30 s");
}

#[tokio::test]
async fn the_binary_alone_in_an_empty_folder_serves_and_teaches_the_sample_book() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = start_alone(dir.path(), port);
    let client = reqwest::Client::new();
    wait_for_health(&client, &base, &mut child).await;

    let study = client
        .get(format!("{base}/study"))
        .send()
        .await
        .expect("study");
    assert_eq!(study.status(), 200);
    let index: serde_json::Value = client
        .get(format!("{base}/content/lessons"))
        .send()
        .await
        .expect("lessons")
        .json()
        .await
        .expect("JSON");
    let paths: Vec<&str> = index["lessons"]
        .as_array()
        .expect("lessons array")
        .iter()
        .filter_map(|l| l["path"].as_str())
        .collect();
    assert_eq!(paths.len(), 10, "the whole sample book: {paths:?}");
    assert!(paths.contains(&LESSON), "{paths:?}");
    let lesson: serde_json::Value = client
        .get(format!("{base}/content/lesson?lesson_path={LESSON}"))
        .send()
        .await
        .expect("lesson")
        .json()
        .await
        .expect("JSON");
    assert!(
        !lesson["title"].as_str().unwrap_or_default().is_empty(),
        "{lesson}"
    );

    let chat = Chat::new(&base, "alone").with_query(&format!("lesson_path={LESSON}&mode=teach"));
    let body =
        json!({"type": "threads.create", "params": {"input": input("Teach me this lesson")}});
    let answer = chat.send_raw(&body.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let done = of_type(&answer.events(), "thread.item.done");
    let reply = done
        .iter()
        .find(|e| e["item"]["type"] == "assistant_message")
        .unwrap_or_else(|| panic!("an assistant reply: {}", answer.text));
    let text = reply["item"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(!text.trim().is_empty(), "the tutor said something: {reply}");

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    let status = child.wait().expect("wait");
    assert!(status.success(), "exit status 0 after SIGTERM: {status}");
    assert!(
        dir.path().join("data/study_mode.db").exists(),
        "the SQLite file lands beside the binary"
    );
}

//! Client-supplied values in the text log format are escaped: a newline cannot forge a line.

use std::sync::{Arc, Mutex};

use serde_json::json;

use super::post_chatkit_as;
use crate::support::app::{Backend, spawn_echo_app, unique};

/// Collects log output in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_newline_in_a_client_value_cannot_forge_a_text_log_line() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = spawn_echo_app(Backend::Embedded).await;
    let forged = "x\nFORGED level=ERROR admin logged in";
    let input = json!({"content": [{"type": "input_text", "text": "hi"}], "attachments": [],
                       "inference_options": {"model": forged}});
    let create = json!({"type": "threads.create", "params": {"input": input}});
    let res = post_chatkit_as(&app, &unique("log"), &create).await;
    assert_eq!(res.status(), 200);
    let events = res.text().await.expect("stream");
    assert!(events.contains("unknown mode"), "{events}");
    let logs = String::from_utf8_lossy(&captured.0.lock().expect("lock")).into_owned();
    assert!(
        logs.contains("reply failed"),
        "the refusal was logged: {logs}"
    );
    assert!(
        !logs.lines().any(|line| line.starts_with("FORGED")),
        "a forged line: {logs}"
    );
}

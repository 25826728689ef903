//! Credit metering (issue #16) through `POST /chatkit`, against the stand-in metering API
//! (`support::metering`, which rejects any body not matching ../shared/real-client.md §4) and
//! the fake model server: a metered run (`runs`), refusals (`refusals`), the API down, slow
//! or losing answers, and the outbox across a restart (`outages`).

mod crash;
mod outages;
mod refusals;
mod runs;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use study_mode_api::db::Database;

use crate::support::app::{Backend, TestApp, spawn_tutor_app_with, unique};
use crate::support::chatkit_client::{Chat, of_type};
use crate::support::metering::MeteringApi;
use crate::support::model::{Handler, Recorded, Upstream, stream_reply, whole_reply};

const BOOK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sample-book");
const LOOPS: &str = "01-python-basics/02-control-flow/02-loops";

/// A model that teaches with a check, judges answers containing "right" correct, and
/// answers anything else directly.
fn model(api: &'static str) -> Handler {
    Arc::new(move |r: &Recorded| {
        let input = r.prompt_tokens();
        if !r.streamed() {
            let verdict = if r.last_user().contains("right") {
                "correct"
            } else {
                "incorrect"
            };
            let body = json!({"verdict": verdict, "expected": "infinite loop", "feedback": "Yes."});
            return whole_reply(api, &body.to_string(), input);
        }
        if r.instructions().contains("Teach the current section") {
            return stream_reply(
                api,
                &[
                    "A loop repeats a block.",
                    "\n\n**Check:** Which loop never ends?",
                ],
                input,
            );
        }
        stream_reply(api, &["A direct ", "answer."], input)
    })
}

/// An app metered against `metering`, its model `upstream` speaking `api`.
async fn app_on(
    upstream: &Upstream,
    api: &str,
    metering: &MeteringApi,
    backend: Backend,
    extra: &[(&str, &str)],
) -> TestApp {
    let mut vars = vec![
        ("CONTENT_DIR", BOOK),
        ("OPENAI_API_KEY", "sk-test"),
        ("OPENAI_BASE_URL", upstream.base_url.as_str()),
        ("MODEL_API", api),
        ("MODEL_FIRST_TOKEN_TIMEOUT_SECS", "5"),
        ("MODEL_RETRY_BACKOFF_MS", "10"),
        ("MODEL_MAX_RETRIES", "0"),
        ("METERING_ENABLED", "true"),
        ("METERING_API_URL", metering.url.as_str()),
        ("METERING_TIMEOUT_SECS", "2"),
    ];
    vars.extend_from_slice(extra);
    spawn_tutor_app_with(backend, &vars).await
}

/// A student with their own bearer (dev mode: the user is `X-User-ID`, the token is
/// forwarded as it came).
fn student(app: &TestApp, query: &str) -> (Chat, String, String) {
    let user = unique("student");
    let token = format!("tok-{user}");
    let chat = Chat::new(&app.address, &user)
        .with_query(query)
        .with_header("authorization", &format!("Bearer {token}"));
    (chat, user, token)
}

fn reply_text(events: &[Value]) -> String {
    of_type(events, "thread.item.updated")
        .iter()
        .filter(|e| e["update"]["type"] == "assistant_message.content_part.text_delta")
        .map(|e| e["update"]["delta"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn stored_replies(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter(|i| i["type"] == "assistant_message")
        .map(|i| {
            i["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// Rows of `metering`'s API in the app's outbox, by kind.
async fn outbox(app: &TestApp, metering: &MeteringApi) -> Vec<(String, String)> {
    let sql = "SELECT request_id, kind FROM metering_outbox WHERE api_url = $1 ORDER BY request_id";
    match &app.db {
        Database::Postgres(p) => sqlx::query_as(sql).bind(&metering.url).fetch_all(p).await,
        Database::Sqlite(p) => sqlx::query_as(sql).bind(&metering.url).fetch_all(p).await,
    }
    .expect("outbox readable")
}

/// Waits until the app's outbox holds nothing for `metering` but open calls; false when it
/// still does after `within`.
async fn outbox_drained(app: &TestApp, metering: &MeteringApi, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let rows = outbox(app, metering).await;
        if rows.is_empty() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

//! Security: hostile input and slow clients against the running server, each answered with a
//! 4xx in the JSON error shape, never a 5xx, a panic or a hang; and the attacks of issue 17,
//! one module per defect, each asserting the fixed behaviour (each failed before its fix).

mod content_origin;
mod content_type;
mod dev_user;
mod feedback;
mod h2c;
mod hostile_input;
mod hyper_answers;
mod lesson_urls;
mod log_injection;
mod metric_labels;
mod model_cost;
mod nul;
mod page_bytes;
mod secrets_first;
mod send_deadline;
mod sso_amplification;
mod subject;
mod turn_races;

use serde_json::Value;

use crate::support::app::TestApp;

/// The error body of a `status` answer, checked to be in the JSON error shape.
async fn client_error(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status);
    let body: Value = res.json().await.expect("JSON error body");
    assert!(body["error"]["code"].is_string(), "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body
}

/// `POST /chatkit` with a JSON `body` as the dev-mode user `user`.
async fn post_chatkit_as(app: &TestApp, user: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/chatkit"))
        .header("x-user-id", user)
        .json(body)
        .send()
        .await
        .expect("send")
}

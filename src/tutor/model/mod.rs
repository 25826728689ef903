//! The model tutor: an OpenAI-compatible client (Responses or Chat Completions API) that
//! streams one reply as [`TurnEvent`]s.
//!
//! Owns: the HTTP request, retries before the first token, the four timeouts (connect, first
//! token, gap between chunks, total), error mapping, usage. The reply is a stream driven by
//! its consumer (no spawned task), so dropping it drops the response and closes the upstream
//! connection.

mod reply;
pub mod sse;
pub mod wire;

use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use self::reply::{Failure, Reply};
use super::context::Context;
use super::metrics::TutorMetrics;
use super::settings::{ModelApi, ModelSettings};
use crate::turn::TurnStream;

/// Longest `Retry-After` we honour before the first token.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// A client of one model endpoint. Cheap to share.
#[derive(Debug)]
pub struct ModelClient {
    http: reqwest::Client,
    settings: ModelSettings,
    url: String,
    metrics: TutorMetrics,
}

impl ModelClient {
    /// A client for `settings` (connect timeout applied to every connection).
    pub fn new(settings: &ModelSettings, metrics: TutorMetrics) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .user_agent(concat!("study-mode-api/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|e| {
                // Only a broken TLS setup fails here; the default client still works.
                tracing::error!(error = %e, "model client builder failed; using defaults");
                reqwest::Client::new()
            });
        let path = match settings.api {
            ModelApi::Responses => "responses",
            ModelApi::ChatCompletions => "chat/completions",
        };
        Self {
            http,
            url: format!("{}/{path}", settings.base_url),
            settings: settings.clone(),
            metrics,
        }
    }

    /// e.g. `openai-responses:gpt-4.1-mini @ https://api.openai.com/v1`.
    pub fn describe(&self) -> String {
        format!(
            "openai-{}:{} @ {}",
            self.settings.api.name().replace('_', "-"),
            self.settings.model,
            without_credentials(&self.settings.base_url)
        )
    }

    /// Streams the reply for `ctx`.
    pub fn reply(self: &Arc<Self>, ctx: &Context) -> TurnStream {
        let body = wire::request_body(self.settings.api, &self.settings.model, ctx);
        let reply = Reply::new(self.clone(), Bytes::from(body.to_string()), ctx.mode.name());
        futures::stream::unfold(reply, |mut r| async move {
            let item = r.next().await?;
            Some((item, r))
        })
        .boxed()
    }

    fn request(&self, body: &Bytes) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .body(body.clone());
        if let Some(key) = &self.settings.api_key {
            req = req.bearer_auth(key.expose_secret());
        }
        req
    }
}

/// The URL as safe to show on `/health`: a `user:password@` part is removed.
fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.as_str().trim_end_matches('/').to_owned()
        }
        _ => url.to_owned(),
    }
}

/// A non-success status as a failure: 429 and 5xx may be retried, other 4xx may not.
async fn status_failure(resp: reqwest::Response) -> Failure {
    let status = resp.status();
    let body = tokio::time::timeout(Duration::from_secs(2), resp.bytes())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let detail = error_message(&body)
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    let code = status.as_u16();
    if code == 429 {
        Failure::new(
            "upstream_unavailable",
            format!("the model API is rate-limiting us (HTTP 429){detail}; try again shortly"),
            true,
        )
    } else if status.is_server_error() {
        Failure::new(
            "upstream_unavailable",
            format!("the model API failed (HTTP {code}){detail}"),
            true,
        )
    } else {
        Failure::new(
            "upstream_rejected",
            format!("the model API rejected the request (HTTP {code}){detail}"),
            false,
        )
    }
}

/// `{"error":{"message":…}}` (OpenAI and most compatible servers) or `{"error":"…"}` (Ollama).
fn error_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let m = v["error"]["message"]
        .as_str()
        .or(v["error"].as_str())
        .or(v["message"].as_str())?;
    Some(crate::tutor::text::truncate_chars(m, 300).to_owned())
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let secs: f64 = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

/// reqwest's top-level message hides the cause ("error sending request"); show the chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_base_url_are_not_described() {
        assert_eq!(
            without_credentials("https://user:pw@llm.example.com/v1"),
            "https://llm.example.com/v1"
        );
        assert_eq!(
            without_credentials("http://localhost:11434/v1"),
            "http://localhost:11434/v1"
        );
    }

    #[test]
    fn upstream_error_messages_are_read_from_the_usual_shapes() {
        assert_eq!(
            error_message(
                br#"{"error":{"message":"Incorrect API key","type":"invalid_request_error"}}"#
            ),
            Some("Incorrect API key".into())
        );
        assert_eq!(
            error_message(br#"{"error":"model not found"}"#),
            Some("model not found".into())
        );
        assert_eq!(error_message(b"<html>bad gateway</html>"), None);
    }
}

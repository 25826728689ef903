//! The model tutor: an OpenAI-compatible client (Responses or Chat Completions API).
//!
//! Owns: the HTTP request, retries, the four timeouts (connect, first token, gap between
//! chunks, total), error mapping, usage. **Every model call of the service goes through one of
//! two functions here**, each given its mode's model settings: [`ModelClient::reply`] (a
//! streamed reply for the student, as [`TurnEvent`]s ending with its [`Usage`]) and
//! [`ModelClient::judge`] (one non-streamed JSON object for the service — a verdict, an answer
//! key — with its [`Usage`], never shown to the student). Credit metering wraps exactly these
//! two ([`super::metered`]). The streamed reply is driven by its consumer (no spawned task), so
//! dropping it drops the response and closes the upstream connection.

mod pool;
mod reply;
pub mod sse;
pub mod wire;

use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use self::pool::{InFlight, Pool};
use self::reply::{Failure, Reply};
use self::wire::{Prompt, Shape};
use super::metrics::TutorMetrics;
use super::settings::{ModelApi, ModelSettings};
use crate::content::Mode;
use crate::outbound::Outbound;
use crate::turn::{TurnError, TurnStream, Usage};

/// Largest judge answer we read.
const MAX_JUDGE_BODY: usize = 1 << 20;

/// Longest `Retry-After` we honour before the first token.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// A client of one model endpoint. Cheap to share.
#[derive(Debug)]
pub struct ModelClient {
    /// HTTP/2 over TLS where the server offers it; more connections as replies need them.
    http: Pool,
    settings: ModelSettings,
    mode: Mode,
    url: String,
    metrics: TutorMetrics,
}

impl ModelClient {
    /// A client for `mode`'s `settings` (connect timeout applied to every connection), its
    /// connections built from `outbound` (extra roots).
    pub fn new(
        settings: &ModelSettings,
        mode: Mode,
        outbound: &Outbound,
        metrics: TutorMetrics,
    ) -> Self {
        let http = Pool::new(
            outbound,
            settings.connect_timeout,
            settings.streams_per_connection,
        );
        let path = match settings.api {
            ModelApi::Responses => "responses",
            ModelApi::ChatCompletions => "chat/completions",
        };
        Self {
            http,
            url: format!("{}/{path}", settings.base_url),
            settings: settings.clone(),
            mode,
            metrics,
        }
    }

    /// The settings this client calls with.
    pub fn settings(&self) -> &ModelSettings {
        &self.settings
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

    /// Call kind 1: the streamed reply to `prompt` (deltas, parts, then its usage).
    pub fn reply(self: &Arc<Self>, prompt: &Prompt) -> TurnStream {
        let body = wire::request_body(&self.settings, prompt, Shape::Stream);
        let reply = Reply::new(
            self.clone(),
            Bytes::from(body.to_string()),
            self.mode.name(),
        );
        futures::stream::unfold(reply, |mut r| async move {
            let item = r.next().await?;
            Some((item, r))
        })
        .boxed()
    }

    /// Call kind 2: one JSON object answering `prompt`, not streamed (the judge of a check
    /// answer, an answer key). Retried like a reply before its answer; the whole call is
    /// bounded by the first-token timeout per attempt and the total timeout.
    pub async fn judge(&self, prompt: &Prompt) -> Result<(serde_json::Value, Usage), TurnError> {
        let started = tokio::time::Instant::now();
        let body = Bytes::from(wire::request_body(&self.settings, prompt, Shape::Json).to_string());
        let deadline = started + self.settings.total_timeout;
        let mut retries = 0;
        let outcome = loop {
            match self.judge_once(&body, deadline).await {
                Ok(v) => break Ok(v),
                Err((f, after)) => {
                    let wait = after
                        .unwrap_or(self.settings.retry_backoff * 2u32.saturating_pow(retries))
                        .min(MAX_RETRY_AFTER);
                    let retry = f.retryable()
                        && retries < self.settings.max_retries
                        && tokio::time::Instant::now() + wait < deadline;
                    if !retry {
                        break Err(f);
                    }
                    retries += 1;
                    self.metrics.retries.inc();
                    tokio::time::sleep(wait).await;
                }
            }
        };
        let api = self.settings.api.name();
        self.metrics
            .upstream_duration
            .observe(started.elapsed().as_secs_f64());
        match outcome {
            Ok((value, usage)) => {
                self.metrics.reply(api, "judge", "ok");
                self.metrics.usage(&usage);
                Ok((value, usage))
            }
            Err(f) => {
                tracing::warn!(outcome = f.outcome(), error = %f.message(), "model judge call failed");
                self.metrics.reply(api, "judge", f.outcome());
                Err(f.into_error())
            }
        }
    }

    async fn judge_once(
        &self,
        body: &Bytes,
        deadline: tokio::time::Instant,
    ) -> Result<(serde_json::Value, Usage), (Failure, Option<Duration>)> {
        let attempt =
            (tokio::time::Instant::now() + self.settings.first_token_timeout).min(deadline);
        let timeout = || {
            let limit = self.settings.first_token_timeout.as_secs_f64();
            Failure::new(
                "timeout_first_token",
                format!("the model did not answer within {limit:.1} s"),
                true,
            )
        };
        let (request, _in_flight) = self.request(body, "application/json");
        let send = request.send();
        let resp = match tokio::time::timeout_at(attempt, send).await {
            Err(_) => return Err((timeout(), None)),
            Ok(Err(e)) => {
                let message = format!("cannot reach the model API: {}", error_chain(&e));
                return Err((Failure::new("upstream_unavailable", message, true), None));
            }
            Ok(Ok(resp)) if !resp.status().is_success() => {
                let after = retry_after(&resp);
                return Err((status_failure(resp).await, after));
            }
            Ok(Ok(resp)) => resp,
        };
        let mut bytes = Vec::new();
        let mut stream = resp.bytes_stream();
        loop {
            match tokio::time::timeout_at(attempt, stream.next()).await {
                Err(_) => return Err((timeout(), None)),
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    let message = format!("the model answer broke: {}", error_chain(&e));
                    return Err((Failure::new("stream_error", message, true), None));
                }
                Ok(Some(Ok(chunk))) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > MAX_JUDGE_BODY {
                        let f =
                            Failure::new("stream_error", "the model's answer is too large", false);
                        return Err((f, None));
                    }
                }
            }
        }
        let (text, usage) = wire::whole_text(self.settings.api, &bytes)
            .map_err(|m| (Failure::new("stream_error", m, true), None))?;
        match json_object(&text) {
            Some(value) => Ok((value, usage.unwrap_or_default())),
            None => {
                let m = format!(
                    "the model's answer is not a JSON object: {}",
                    crate::tutor::text::truncate_chars(&text, 80)
                );
                Err((Failure::new("stream_error", m, true), None))
            }
        }
    }

    /// The request on the least busy connection; the call is in flight while the guard lives.
    fn request(&self, body: &Bytes, accept: &'static str) -> (reqwest::RequestBuilder, InFlight) {
        let (http, in_flight) = self.http.pick();
        let mut req = http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, accept)
            .body(body.clone());
        if let Some(key) = &self.settings.api_key {
            req = req.bearer_auth(key.expose_secret());
        }
        (req, in_flight)
    }
}

/// The JSON object in a model's text: the whole text, else the outermost `{…}` in it (models
/// without a JSON mode wrap it in prose or a code fence).
pub fn json_object(text: &str) -> Option<serde_json::Value> {
    let text = text.trim();
    if let Ok(v @ serde_json::Value::Object(_)) = serde_json::from_str(text) {
        return Some(v);
    }
    let (start, end) = (text.find('{')?, text.rfind('}')?);
    match serde_json::from_str(text.get(start..=end)?) {
        Ok(v @ serde_json::Value::Object(_)) => Some(v),
        _ => None,
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
    fn a_json_object_is_found_bare_fenced_or_in_prose() {
        let want = serde_json::json!({"verdict": "correct"});
        assert_eq!(json_object(r#"{"verdict": "correct"}"#), Some(want.clone()));
        assert_eq!(
            json_object("```json\n{\"verdict\": \"correct\"}\n```"),
            Some(want.clone())
        );
        assert_eq!(
            json_object("Sure! {\"verdict\": \"correct\"} Done."),
            Some(want)
        );
        assert_eq!(json_object("no json"), None);
        assert_eq!(json_object("[1, 2]"), None);
    }

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

//! One model reply as a stream: the request with retries before the first token, the
//! chunk-reading loop under the first-token, idle and total deadlines, and the bookkeeping
//! (metrics, usage) at its end — whichever way it ends, including being dropped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::time::Instant;

use super::sse::SseParser;
use super::wire::{self, Decoder, WireEvent};
use super::{MAX_RETRY_AFTER, ModelClient, error_chain, retry_after, status_failure};
use crate::turn::{TurnError, TurnEvent, Usage};

/// Largest non-streamed (JSON) reply we accept.
const MAX_JSON_BODY: usize = 4 << 20;

fn is_json(resp: &reqwest::Response) -> bool {
    resp.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Why a reply ended badly: the metric outcome and what the student is told.
pub(super) struct Failure {
    outcome: &'static str,
    error: TurnError,
}

impl Failure {
    pub(super) fn new(
        outcome: &'static str,
        message: impl Into<String>,
        allow_retry: bool,
    ) -> Self {
        Self {
            outcome,
            error: TurnError {
                message: message.into(),
                allow_retry,
            },
        }
    }

    pub(super) fn retryable(&self) -> bool {
        self.error.allow_retry && !self.outcome.starts_with("timeout")
    }

    pub(super) fn outcome(&self) -> &'static str {
        self.outcome
    }

    pub(super) fn message(&self) -> &str {
        &self.error.message
    }

    pub(super) fn into_error(self) -> TurnError {
        self.error
    }
}

/// One reply in progress.
pub(super) struct Reply {
    client: Arc<ModelClient>,
    body: Bytes,
    mode: &'static str,
    started: Instant,
    total_deadline: Instant,
    /// Deadline for the first token of the current attempt.
    first_token_deadline: Instant,
    last_chunk: Instant,
    upstream: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
    parser: SseParser,
    decoder: Decoder,
    /// The whole body, when the server answered with one JSON document instead of a stream
    /// (servers that ignore `stream: true`).
    json_body: Option<Vec<u8>>,
    pending: VecDeque<Result<TurnEvent, TurnError>>,
    got_token: bool,
    /// Retries used so far (all before the first token).
    retries: u32,
    text_in_part: bool,
    usage: Option<Usage>,
    finished: bool,
}

impl Reply {
    pub(super) fn new(client: Arc<ModelClient>, body: Bytes, mode: &'static str) -> Self {
        let now = Instant::now();
        let s = &client.settings;
        Self {
            total_deadline: now + s.total_timeout,
            first_token_deadline: now + s.first_token_timeout,
            client,
            body,
            mode,
            started: now,
            last_chunk: now,
            upstream: None,
            parser: SseParser::new(),
            decoder: Decoder::default(),
            json_body: None,
            pending: VecDeque::new(),
            got_token: false,
            retries: 0,
            text_in_part: false,
            usage: None,
            finished: false,
        }
    }

    pub(super) async fn next(&mut self) -> Option<Result<TurnEvent, TurnError>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.finished {
                return None;
            }
            if self.upstream.is_none() {
                // Boxed: the request future (reqwest's, retries, backoff) is large and lives
                // only until the response head; inline it would size every held reply.
                match Box::pin(self.connect()).await {
                    Ok(stream) => self.upstream = Some(stream),
                    Err(f) => self.fail(f),
                }
                continue;
            }
            if let Err(f) = self.read().await {
                // A stream that breaks before its first token is retried like a 5xx: the
                // student has seen nothing yet.
                if self.got_token || f.outcome != "stream_error" {
                    self.fail(f);
                } else if let Err(f) = self.before_retry(f, None).await {
                    self.fail(f);
                } else {
                    self.upstream = None;
                    self.parser = SseParser::new();
                    self.decoder = Decoder::default();
                    self.json_body = None;
                }
            }
        }
    }

    /// Sends the request, retrying 429, 5xx and connection failures with backoff.
    async fn connect(&mut self) -> Result<BoxStream<'static, reqwest::Result<Bytes>>, Failure> {
        loop {
            match self.send().await {
                Ok(stream) => return Ok(stream),
                Err((failure, retry_after)) => self.before_retry(failure, retry_after).await?,
            }
        }
    }

    /// One request: the body stream, or why not (with the server's `Retry-After`).
    async fn send(
        &mut self,
    ) -> Result<BoxStream<'static, reqwest::Result<Bytes>>, (Failure, Option<Duration>)> {
        let first_token = self.client.settings.first_token_timeout;
        self.first_token_deadline = (Instant::now() + first_token).min(self.total_deadline);
        let (request, in_flight) = self.client.request(&self.body, "text/event-stream");
        match tokio::time::timeout_at(self.first_token_deadline, request.send()).await {
            Err(_) => Err((self.timeout(), None)),
            Ok(Ok(resp)) if resp.status().is_success() => {
                self.last_chunk = Instant::now();
                self.json_body = is_json(&resp).then(Vec::new);
                // In flight on its connection until the body is dropped.
                let body = resp.bytes_stream().map(move |chunk| {
                    let _call = &in_flight;
                    chunk
                });
                Ok(body.boxed())
            }
            Ok(Ok(resp)) => {
                let retry_after = retry_after(&resp);
                Err((status_failure(resp).await, retry_after))
            }
            Ok(Err(e)) => Err((
                Failure::new(
                    "upstream_unavailable",
                    format!("cannot reach the model API: {}", error_chain(&e)),
                    true,
                ),
                None,
            )),
        }
    }

    /// Waits before the next attempt, or gives `failure` back when it may not be retried
    /// (not retryable, a timeout, retries used up, or no time left).
    async fn before_retry(
        &mut self,
        failure: Failure,
        retry_after: Option<Duration>,
    ) -> Result<(), Failure> {
        let s = &self.client.settings;
        let wait = retry_after
            .unwrap_or(s.retry_backoff * 2u32.saturating_pow(self.retries))
            .min(MAX_RETRY_AFTER);
        if !failure.error.allow_retry
            || failure.outcome.starts_with("timeout")
            || self.retries >= s.max_retries
            || Instant::now() + wait >= self.total_deadline
        {
            return Err(failure);
        }
        self.retries += 1;
        self.client.metrics.retries.inc();
        tracing::info!(
            retry = self.retries,
            wait_ms = wait.as_millis() as u64,
            reason = %failure.error.message,
            "retrying the model request"
        );
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Reads one chunk (within the first-token, idle and total deadlines) and decodes it.
    async fn read(&mut self) -> Result<(), Failure> {
        let deadline = if self.got_token {
            self.last_chunk + self.client.settings.idle_timeout
        } else {
            self.first_token_deadline
        }
        .min(self.total_deadline);
        let Some(upstream) = self.upstream.as_mut() else {
            return Ok(());
        };
        let chunk = match tokio::time::timeout_at(deadline, upstream.next()).await {
            Err(_) => return Err(self.timeout()),
            Ok(None) => return self.end_of_body(),
            Ok(Some(Err(e))) => {
                return Err(Failure::new(
                    "stream_error",
                    format!("the model stream broke: {}", error_chain(&e)),
                    true,
                ));
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        self.last_chunk = Instant::now();
        if let Some(body) = self.json_body.as_mut() {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_JSON_BODY {
                return Err(Failure::new(
                    "stream_error",
                    "the model's reply is too large",
                    false,
                ));
            }
            return Ok(());
        }
        let events = self
            .parser
            .push(&chunk)
            .map_err(|_| Failure::new("stream_error", "the model sent an endless line", true))?;
        for event in events {
            for w in self.decoder.decode(self.client.settings.api, &event) {
                self.handle(w)?;
                if self.finished {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn handle(&mut self, event: WireEvent) -> Result<(), Failure> {
        match event {
            WireEvent::Delta(text) => {
                if !self.got_token {
                    self.got_token = true;
                    self.client.metrics.first_token(self.started.elapsed());
                    // No retry after the first token: the request body (instructions, lesson
                    // context, history) is not needed for the rest of a long reply.
                    self.body = Bytes::new();
                }
                self.text_in_part = true;
                self.pending.push_back(Ok(TurnEvent::Delta(text)));
            }
            WireEvent::NewPart if self.text_in_part => {
                self.text_in_part = false;
                self.pending.push_back(Ok(TurnEvent::NewPart));
            }
            WireEvent::NewPart => {}
            WireEvent::Usage(u) => self.usage = Some(u),
            WireEvent::Done => self.complete(),
            WireEvent::Error { message, retryable } => {
                return Err(Failure::new("stream_error", message, retryable));
            }
        }
        Ok(())
    }

    /// The body ended: complete for a Chat Completions server that omits `[DONE]`, else cut off.
    fn end_of_body(&mut self) -> Result<(), Failure> {
        if let Some(body) = self.json_body.take() {
            for w in wire::decode_whole(self.client.settings.api, &body) {
                self.handle(w)?;
            }
        }
        if self.finished {
            return Ok(());
        }
        if self.decoder.finished {
            self.complete();
            return Ok(());
        }
        Err(Failure::new(
            "stream_error",
            "the model's reply ended before it was complete",
            true,
        ))
    }

    fn complete(&mut self) {
        if let Some(usage) = self.usage {
            self.client.metrics.usage(&usage);
            self.pending.push_back(Ok(TurnEvent::Usage(usage)));
        }
        self.finish("ok");
    }

    fn timeout(&self) -> Failure {
        let s = &self.client.settings;
        let (outcome, what, limit) = if Instant::now() >= self.total_deadline {
            ("timeout_total", "finish its reply", s.total_timeout)
        } else if self.got_token {
            ("timeout_idle", "send more of its reply", s.idle_timeout)
        } else {
            (
                "timeout_first_token",
                "start answering",
                s.first_token_timeout,
            )
        };
        Failure::new(
            outcome,
            format!(
                "the model did not {what} within {:.1} s",
                limit.as_secs_f64()
            ),
            true,
        )
    }

    fn fail(&mut self, failure: Failure) {
        tracing::warn!(outcome = failure.outcome, error = %failure.error.message, "model reply failed");
        self.pending.push_back(Err(failure.error));
        self.finish(failure.outcome);
    }

    fn finish(&mut self, outcome: &'static str) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.upstream = None; // closes the connection now, not when the consumer drops us
        let m = &self.client.metrics;
        m.reply(self.client.settings.api.name(), self.mode, outcome);
        m.upstream_duration
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for Reply {
    /// The consumer went away (client disconnect): count it; dropping `upstream` cancels it.
    fn drop(&mut self) {
        self.finish("cancelled");
    }
}

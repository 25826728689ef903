//! The model client as one run uses it: with metering on, each of its two calls is checked
//! before the model is called and settled after it (../../metering). A refused check means the
//! model is not called: the refusal's text is the reply.

use std::sync::Arc;

use futures::StreamExt;

use super::model::ModelClient;
use super::model::wire::Prompt;
use crate::metering::{Call, Caller, Metering, Outcome, Refusal, Ticket};
use crate::turn::{TurnError, TurnEvent, TurnStream, Usage};

/// Output tokens reserved for a judge call (a short JSON object; the mode's cap if smaller).
/// A streamed reply reserves its mode's `MAX_OUTPUT_TOKENS`, the most the model may write.
pub const JUDGE_OUTPUT_BUDGET: u64 = 300;

/// Why a metered call gave no result.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// Not admitted: the student is told why, as an ordinary reply.
    Refused(Refusal),
    /// The model call failed.
    Failed(TurnError),
}

impl From<TurnError> for CallError {
    fn from(e: TurnError) -> Self {
        CallError::Failed(e)
    }
}

/// A model client and, with metering on, the run it is metered for. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Metered {
    client: Arc<ModelClient>,
    meter: Option<(Metering, Arc<Caller>)>,
}

impl Metered {
    pub fn new(client: Arc<ModelClient>, meter: Option<(Metering, Arc<Caller>)>) -> Self {
        Self { client, meter }
    }

    /// The client's calls, unmetered.
    pub fn unmetered(client: Arc<ModelClient>) -> Self {
        Self::new(client, None)
    }

    /// The mode's `MAX_OUTPUT_TOKENS`: the most a call can be billed for on the output side.
    fn output_cap(&self) -> u64 {
        u64::from(self.client.settings().max_output_tokens)
    }

    fn call(&self, prompt: &Prompt, output_budget: u64) -> Call {
        let s = self.client.settings();
        Call {
            model: s.model.clone(),
            prompt_tokens: prompt_tokens(prompt),
            output_budget,
            horizon: s.total_timeout,
        }
    }

    async fn admit(&self, prompt: &Prompt, budget: u64) -> Result<Option<Ticket>, Refusal> {
        match &self.meter {
            None => Ok(None),
            Some((metering, caller)) => metering
                .admit(caller, &self.call(prompt, budget))
                .await
                .map(Some),
        }
    }

    /// [`ModelClient::judge`], metered.
    pub async fn judge(&self, prompt: &Prompt) -> Result<(serde_json::Value, Usage), CallError> {
        let ticket = self
            .admit(prompt, JUDGE_OUTPUT_BUDGET.min(self.output_cap()))
            .await
            .map_err(CallError::Refused)?;
        let result = self.client.judge(prompt).await;
        if let Some(ticket) = ticket {
            let outcome = match &result {
                Ok((_, usage)) => Outcome::Used(*usage),
                Err(_) => Outcome::Unreported,
            };
            ticket.settle(outcome).await;
        }
        Ok(result?)
    }

    /// [`ModelClient::reply`] once admitted: the stream settles its ticket when the model's
    /// usage arrives, when it fails or ends without one, or (dropped) in the background.
    pub async fn open_reply(&self, prompt: &Prompt) -> Result<TurnStream, Refusal> {
        // The model may not write more than its cap, so the cap is the reply's worst case.
        let ticket = self.admit(prompt, self.output_cap()).await?;
        let stream = self.client.reply(prompt);
        Ok(match ticket {
            None => stream,
            Some(ticket) => settled(stream, ticket),
        })
    }

    /// [`Self::open_reply`] as one stream: a refusal becomes the reply's text.
    pub fn reply(&self, prompt: &Prompt) -> TurnStream {
        let this = self.clone();
        let prompt = prompt.clone();
        // Boxed, so that the admission's state is freed once the reply streams.
        futures::stream::once(Box::pin(async move {
            match this.open_reply(&prompt).await {
                Ok(stream) => stream,
                Err(refusal) => refusal_reply(&refusal),
            }
        }))
        .flatten()
        .boxed()
    }
}

/// The reply of a refused call: the refusal's message, nothing else.
pub fn refusal_reply(refusal: &Refusal) -> TurnStream {
    futures::stream::iter([Ok(TurnEvent::Delta(refusal.message()))]).boxed()
}

/// The prompt's tokens by the usual rule of thumb (4 characters a token), rounded up.
pub fn prompt_tokens(prompt: &Prompt) -> u64 {
    (prompt.chars() as u64).div_ceil(4)
}

fn settled(stream: TurnStream, ticket: Ticket) -> TurnStream {
    futures::stream::unfold(
        (stream, Some(ticket)),
        |(mut stream, mut ticket)| async move {
            let item = stream.next().await;
            match &item {
                Some(Ok(TurnEvent::Delta(d))) => {
                    if let Some(t) = ticket.as_mut() {
                        t.saw_text(d);
                    }
                }
                Some(Ok(TurnEvent::Usage(u))) => {
                    if let Some(t) = ticket.take() {
                        t.settle(Outcome::Used(*u)).await;
                    }
                }
                Some(Err(_)) | None => {
                    if let Some(t) = ticket.take() {
                        t.settle(Outcome::Unreported).await;
                    }
                }
                Some(Ok(_)) => {}
            }
            item.map(|i| (i, (stream, ticket)))
        },
    )
    .boxed()
}

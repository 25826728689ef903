//! One assistant reply: asks the [`Responder`] for a turn and turns its [`TurnEvent`]s into
//! ChatKit events as they arrive (`thread.item.added` → `content_part.added` → `text_delta`… →
//! `content_part.done` → `thread.item.done`), owning the item id and persistence.
//!
//! The reply is committed before its `thread.item.done`, in one transaction with what it changed
//! of the thread (a generated title, the responder's state): one commit per reply. When the client disconnects or the
//! server shuts down mid-reply, the responder stream is dropped (cancelling its work), the
//! partial reply is saved when it has text, and an `sdk_hidden_context` item records the
//! cancellation, as the reference's `handle_stream_cancelled` does.

use chrono::{DateTime, Utc};
use futures::StreamExt;

use super::error::Stop;
use super::ids;
use super::metrics::{ChatKitMetrics, KindLabels};
use super::sse::Sink;
use super::store::{ThreadChanges, ThreadRecord, ThreadStore};
use super::types::{AssistantContent, Event, ItemKind, ItemUpdate, Page, ThreadItem};
use crate::turn::{Choice, TurnError, TurnEvent, TurnStream, Usage};

/// The key of the thread metadata under which the responder's state is kept.
pub const STATE_KEY: &str = "tutor";

/// Hidden note stored when the client stops a reply (the reference's exact text).
pub const CANCELLED_BY_USER: &str =
    "The user cancelled the stream. Stop responding to the prior request.";
/// Hidden note stored when the server ends a reply because it is shutting down.
pub const CANCELLED_BY_SHUTDOWN: &str = "The server restarted before the prior response was complete. Do not repeat it; continue from where it stopped.";

/// Everything one reply needs besides the request.
pub struct ReplyContext<'a> {
    pub owner: &'a str,
    pub store: &'a ThreadStore,
    pub sink: &'a Sink,
    pub metrics: &'a ChatKitMetrics,
    pub limits: &'a super::ChatKitLimits,
}

/// The assistant message being streamed.
struct Pending {
    id: String,
    thread_id: String,
    created_at: DateTime<Utc>,
    parts: Vec<String>,
}

impl Pending {
    fn item(&self) -> ThreadItem {
        ThreadItem {
            id: self.id.clone(),
            thread_id: self.thread_id.clone(),
            created_at: self.created_at,
            kind: ItemKind::AssistantMessage {
                content: self.parts.iter().map(AssistantContent::text).collect(),
            },
        }
    }

    fn has_text(&self) -> bool {
        self.parts.iter().any(|p| !p.trim().is_empty())
    }

    fn last(&self) -> usize {
        self.parts.len().saturating_sub(1)
    }

    fn update(&self, update: ItemUpdate) -> Event {
        Event::ItemUpdated {
            item_id: self.id.clone(),
            update,
        }
    }

    fn part_done(&self) -> Event {
        let i = self.last();
        self.update(ItemUpdate::PartDone {
            content_index: i,
            content: AssistantContent::text(self.parts[i].clone()),
        })
    }
}

/// State of one reply.
struct Reply<'a> {
    cx: &'a ReplyContext<'a>,
    thread: ThreadRecord,
    pending: Option<Pending>,
    title_changed: bool,
    /// The responder's state changed (metadata to commit with the reply).
    state_changed: bool,
    /// Answer buttons to show after the message.
    choices: Option<Vec<Choice>>,
}

/// Streams one reply from `stream` on `thread`. Returns `Err` only when the stream must end
/// (client gone, shutdown, store failure); a responder failure becomes an `error` event.
///
/// A held stream waits in this future for the whole reply, so it is kept small (it is most of
/// a stream driver's size; docs/BENCHMARKS.md, "The stream driver's size"): a plain `fn`
/// returning a block that owns `reply` and `stream` (an `async fn` keeps a second copy of its
/// arguments), and what runs per event or once at the end boxed, each freed when it is done.
pub fn run<'a>(
    cx: &'a ReplyContext<'a>,
    thread: ThreadRecord,
    stream: TurnStream,
) -> impl Future<Output = Result<(), Stop>> + 'a {
    let mut reply = Reply {
        cx,
        thread,
        pending: None,
        title_changed: false,
        state_changed: false,
        choices: None,
    };
    let mut stream = stream;
    async move {
        let outcome = loop {
            let next = tokio::select! {
                biased;
                stop = cx.sink.stopped() => Err(stop),
                next = stream.next() => Ok(next),
            };
            let step = match next {
                Err(stop) => Err(stop),
                Ok(None) => break Ok(None),
                Ok(Some(Err(e))) => break Ok(Some(e)),
                Ok(Some(Ok(event))) => Box::pin(reply.apply(event)).await,
            };
            if let Err(stop) = step {
                break Err(stop);
            }
        };
        // Dropping the responder's stream cancels the work behind it (e.g. the model request).
        drop(stream);
        match outcome {
            Ok(failure) => Box::pin(reply.finish(failure)).await,
            Err(stop) => {
                Box::pin(reply.cancelled(&stop)).await;
                Err(stop)
            }
        }
    }
}

impl Reply<'_> {
    async fn apply(&mut self, event: TurnEvent) -> Result<(), Stop> {
        match event {
            TurnEvent::Delta(delta) if delta.is_empty() => Ok(()),
            TurnEvent::Delta(delta) => self.delta(delta).await,
            TurnEvent::NewPart => self.new_part().await,
            TurnEvent::Title(title) => self.title(title).await,
            TurnEvent::Usage(usage) => {
                self.usage(&usage);
                Ok(())
            }
            TurnEvent::State(state) => self.state(state).await,
            TurnEvent::Progress(text) => {
                let event = Event::ProgressUpdate { icon: None, text };
                self.cx.sink.emit(&event).await
            }
            TurnEvent::Choices(choices) => {
                self.choices = (!choices.is_empty()).then_some(choices);
                Ok(())
            }
        }
    }

    /// The responder's new state goes to the thread's metadata, committed with the reply
    /// (before its final events, so a reply the student has seen always has its state saved;
    /// a cancelled or failed reply saves it too).
    async fn state(&mut self, state: serde_json::Value) -> Result<(), Stop> {
        self.thread.metadata.insert(STATE_KEY.to_owned(), state);
        self.thread.updated_at = ids::now();
        self.state_changed = true;
        Ok(())
    }

    /// What the reply changed of the thread, if anything.
    fn changes(&self) -> Option<ThreadChanges<'_>> {
        (self.title_changed || self.state_changed).then_some(ThreadChanges {
            thread: &self.thread,
            title: self.title_changed,
            metadata: self.state_changed,
        })
    }

    /// Starts the assistant item on its first content; true when it was just started.
    async fn start(&mut self) -> Result<bool, Stop> {
        if self.pending.is_some() {
            return Ok(false);
        }
        let pending = Pending {
            id: ids::message_id(),
            thread_id: self.thread.id.clone(),
            created_at: ids::now(),
            parts: vec![String::new()],
        };
        let mut empty = pending.item();
        empty.kind = ItemKind::AssistantMessage { content: vec![] };
        self.cx.sink.emit(&Event::ItemAdded { item: empty }).await?;
        let added = pending.update(ItemUpdate::PartAdded {
            content_index: 0,
            content: AssistantContent::text(""),
        });
        self.pending = Some(pending);
        self.cx.sink.emit(&added).await?;
        Ok(true)
    }

    async fn delta(&mut self, delta: String) -> Result<(), Stop> {
        self.start().await?;
        let Some(p) = self.pending.as_mut() else {
            return Ok(());
        };
        let i = p.last();
        p.parts[i].push_str(&delta);
        let event = p.update(ItemUpdate::TextDelta {
            content_index: i,
            delta,
        });
        self.cx.sink.emit(&event).await
    }

    async fn new_part(&mut self) -> Result<(), Stop> {
        if self.start().await? {
            return Ok(()); // the part just opened is the new part
        }
        let Some(p) = self.pending.as_mut() else {
            return Ok(());
        };
        let done = p.part_done();
        p.parts.push(String::new());
        let added = p.update(ItemUpdate::PartAdded {
            content_index: p.last(),
            content: AssistantContent::text(""),
        });
        self.cx.sink.emit(&done).await?;
        self.cx.sink.emit(&added).await
    }

    /// Committed with the reply; announced with `thread.updated` at the end of the reply, where
    /// the reference announces a title set during `respond`.
    async fn title(&mut self, title: String) -> Result<(), Stop> {
        let title = self.cx.limits.cut_title(title);
        if self.thread.title.as_deref() == Some(title.as_str()) {
            return Ok(()); // unchanged: nothing to save or announce, as the reference
        }
        self.thread.title = Some(title);
        self.thread.updated_at = ids::now();
        self.title_changed = true;
        Ok(())
    }

    fn usage(&self, usage: &Usage) {
        tracing::info!(
            input_tokens = usage.input_tokens,
            output_tokens = usage.output_tokens,
            cached_tokens = usage.cached_tokens,
            reasoning_tokens = usage.reasoning_tokens,
            thread_id = ?self.thread.id,
            "reply usage"
        );
        let tokens = &self.cx.metrics.reply_tokens;
        tokens
            .get_or_create(&KindLabels { kind: "input" })
            .inc_by(usage.input_tokens);
        tokens
            .get_or_create(&KindLabels { kind: "output" })
            .inc_by(usage.output_tokens);
    }

    /// The answer buttons, as a widget item after the message (saved and announced by the
    /// caller with the rest of the reply).
    fn buttons(&self, choices: &[Choice], after: DateTime<Utc>) -> ThreadItem {
        ThreadItem {
            id: ids::message_id(),
            thread_id: self.thread.id.clone(),
            // Strictly after the message, so pages list the buttons under it.
            created_at: ids::now().max(after + chrono::TimeDelta::microseconds(1)),
            kind: ItemKind::Widget {
                widget: super::widgets::answer_buttons(choices),
                copy_text: Some(
                    choices
                        .iter()
                        .map(|c| c.label.as_str())
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
            },
        }
    }

    /// Completes the reply: the item (and its buttons) are committed, then `content_part.done`
    /// and `thread.item.done`; a failure of the responder keeps the text so far (or withdraws
    /// an empty item) and ends with `error`.
    async fn finish(mut self, failure: Option<TurnError>) -> Result<(), Stop> {
        if let Some(p) = self.pending.take() {
            if failure.is_none() || p.has_text() {
                // Saved before any send: a send fails when the client is gone, and a reply
                // the model completed must be in the thread whether or not anyone watched.
                let item = p.item();
                let buttons = self
                    .choices
                    .take()
                    .filter(|_| failure.is_none())
                    .map(|choices| self.buttons(&choices, p.created_at));
                let mut items = vec![&item];
                items.extend(buttons.as_ref());
                self.cx
                    .store
                    .save_reply(self.cx.owner, self.changes().as_ref(), &items)
                    .await?;
                self.cx.sink.emit(&p.part_done()).await?;
                self.cx.sink.emit(&Event::ItemDone { item }).await?;
                if let Some(item) = buttons {
                    self.cx.sink.emit(&Event::ItemDone { item }).await?;
                }
            } else {
                self.save_changes().await?;
                self.cx
                    .sink
                    .emit(&Event::ItemRemoved { item_id: p.id })
                    .await?;
            }
        } else {
            self.save_changes().await?;
        }
        if self.title_changed {
            let thread = self.thread.to_wire(Page::empty());
            self.cx.sink.emit(&Event::ThreadUpdated { thread }).await?;
        }
        if let Some(e) = failure {
            // `?`: the message may quote client input (an unknown mode), which must not forge lines.
            tracing::warn!(error = ?e.message, allow_retry = e.allow_retry, "reply failed");
            self.cx
                .sink
                .emit(&Event::error(e.message, e.allow_retry))
                .await?;
        }
        Ok(())
    }

    /// Commits what the reply changed of the thread when it saves no item.
    async fn save_changes(&self) -> Result<(), Stop> {
        if let Some(changes) = self.changes() {
            self.cx
                .store
                .save_reply(self.cx.owner, Some(&changes), &[])
                .await?;
        }
        Ok(())
    }

    /// The stream ended early: keep what the student saw (and what the reply changed of the
    /// thread) and note the cancellation, in one transaction.
    async fn cancelled(self, stop: &Stop) {
        let note = match stop {
            Stop::Disconnected => CANCELLED_BY_USER,
            Stop::Shutdown => CANCELLED_BY_SHUTDOWN,
            // A deleted thread keeps nothing; a broken store cannot.
            Stop::Deleted | Stop::Store(_) | Stop::Encode(_) => return,
        };
        tracing::info!(thread_id = ?self.thread.id, reason = ?stop, "reply cancelled");
        let partial = self
            .pending
            .as_ref()
            .filter(|p| p.has_text())
            .map(Pending::item);
        let hidden = ThreadItem {
            id: ids::hidden_id(),
            thread_id: self.thread.id.clone(),
            created_at: ids::now(),
            kind: ItemKind::SdkHiddenContext {
                content: note.to_owned(),
            },
        };
        let mut items: Vec<&ThreadItem> = partial.iter().collect();
        items.push(&hidden);
        if let Err(e) = self
            .cx
            .store
            .save_reply(self.cx.owner, self.changes().as_ref(), &items)
            .await
        {
            tracing::error!(error = %e, "saving the partial reply and cancellation note failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::Poll;

    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::chatkit::request::Order;
    use crate::chatkit::store::{Hidden, PageQuery};
    use crate::config::Env;
    use crate::db::{Database, DatabaseSettings, StoreMetrics};

    #[tokio::test]
    async fn a_client_gone_at_content_part_done_still_finds_the_whole_reply_saved() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let settings = DatabaseSettings::from_env(&mut Env::from_map([("DATABASE_URL", url)]));
        let db = Database::connect(&settings).await.expect("db");
        let store = ThreadStore::new(&db, &StoreMetrics::register(&mut Default::default()));
        let thread = ThreadRecord::new(ids::thread_id(), None, None);
        store.save_thread("u", &thread).await.expect("thread");
        let metrics = ChatKitMetrics::register(&mut Default::default());
        let (tx, rx) = mpsc::channel(super::super::sse::CHANNEL_CAPACITY);
        let sink = Sink::new(
            tx,
            CancellationToken::new(),
            CancellationToken::new(),
            metrics.clone(),
        );
        let limits = super::super::ChatKitLimits::default();
        let cx = ReplyContext {
            owner: "u",
            store: &store,
            sink: &sink,
            metrics: &metrics,
            limits: &limits,
        };
        // The client leaves exactly when the model's stream ends (the end of the stream drops
        // the receiving side), so `content_part.done` is the first send that fails.
        let mut rx = Some(rx);
        let end = futures::stream::poll_fn(move |_| {
            drop(rx.take());
            Poll::Ready(None)
        });
        let stream = futures::stream::iter(["Hello, ", "world."])
            .map(|d| Ok(TurnEvent::Delta(d.into())))
            .chain(end)
            .boxed();
        let reply = run(&cx, thread.clone(), stream);
        // A held stream waits in this future for the whole reply: what runs per event or at
        // the end must stay boxed (672 bytes in a debug build, 1,544 with `apply` inline).
        let size = std::mem::size_of_val(&reply);
        assert!(size <= 1024, "a reply in flight takes {size} bytes");
        let result = reply.await;
        assert!(matches!(result, Err(Stop::Disconnected)), "{result:?}");
        let page = PageQuery::first(10, Order::Asc);
        let items = store
            .load_items("u", &thread.id, &page, Hidden::Include)
            .await
            .expect("items")
            .data;
        let texts: Vec<_> = items
            .iter()
            .map(|i| match &i.kind {
                ItemKind::AssistantMessage { content } => {
                    serde_json::to_value(content).expect("json")[0]["text"].clone()
                }
                other => serde_json::Value::from(other.type_name()),
            })
            .collect();
        assert_eq!(texts, [serde_json::json!("Hello, world.")]);
        db.close().await;
    }
}

//! The six streaming requests. Everything that can make the request fail as a whole (unknown
//! thread or item, unsupported attachments) is checked before the `200`, so such requests get
//! a JSON 4xx; then a spawned driver writes events into a bounded channel that the response
//! body reads. The driver notices a dropped body (client gone), `App::shutdown` and a delete of
//! its thread.
//!
//! Every streaming request takes its thread's turn ([`super::thread_lock`]) before it reads the
//! thread and keeps it until its driver ends: turns of one thread never overlap, on any
//! instance, so a retry deletes exactly the items that were there when it got the turn and no
//! reply is saved after its message was deleted.

use std::time::Instant;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::context::RequestContext;
use super::error::ChatKitError;
use super::error::Stop;
use super::reply::{self, ReplyContext};
use super::request::{
    Action, ActionParams, Request, StructuredSubmission, ThreadItemParams, UserInput,
};
use super::sse::{CHANNEL_CAPACITY, Frames, Sink};
use super::store::{Hidden, PageQuery, ThreadRecord};
use super::types::{Event, ItemKind, Page, StreamOptions, ThreadItem, UserMessage};
use super::{ChatKit, history, ids, structured};
use crate::content::LessonPath;
use crate::turn::{Turn, TurnError, TurnRequest, TurnStream};

/// What a validated streaming request will do.
enum Plan {
    /// A new thread of the given id.
    Create(String, UserInput),
    Message(ThreadRecord, UserInput),
    ToolOutput(ThreadRecord, Option<ThreadItem>, Value),
    Structured(ThreadRecord, ThreadItem, StructuredSubmission),
    Retry(ThreadRecord, ThreadItem),
    /// A custom action on the thread, from `sender` when it names an item.
    Action(ThreadRecord, Option<ThreadItem>, Action),
}

/// Validates `request` and starts its stream; the receiver yields SSE frames.
pub async fn start(
    chatkit: &ChatKit,
    ctx: RequestContext,
    request: Request,
) -> Result<Frames, ChatKitError> {
    // `threads.create` gets its id here, so its turn is taken like any other.
    let thread_id = request
        .thread_id()
        .map_or_else(ids::thread_id, str::to_owned);
    let turn = chatkit.locks.acquire(&thread_id).await?;
    let plan = prepare(chatkit, &ctx, request, thread_id).await?;
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let span = tracing::info_span!(
        "chatkit_stream",
        request_id = ctx.request_id.as_deref().unwrap_or("")
    );
    let sink = Sink::new(
        tx,
        chatkit.shutdown.clone(),
        turn.deleted(),
        chatkit.metrics.clone(),
    );
    let driver = Driver {
        chatkit: chatkit.clone(),
        ctx,
        sink,
        _turn: turn,
    };
    let fut = driver.run(Box::new(plan)).instrument(span);
    chatkit.drivers.spawn(fut);
    Ok(rx)
}

async fn prepare(
    chatkit: &ChatKit,
    ctx: &RequestContext,
    request: Request,
    thread_id: String,
) -> Result<Plan, ChatKitError> {
    Ok(match request {
        Request::ThreadsCreate(p) => Plan::Create(thread_id, no_attachments(p.input)?),
        Request::AddUserMessage(p) => {
            let thread = chatkit.thread(ctx, &p.thread_id).await?;
            Plan::Message(thread, no_attachments(p.input)?)
        }
        Request::AddClientToolOutput(p) => {
            let thread = chatkit.thread(ctx, &p.thread_id).await?;
            let call = pending_tool_call(chatkit, ctx, &thread).await?;
            Plan::ToolOutput(thread, call, p.result)
        }
        Request::AddStructuredInput(p) => {
            let thread = chatkit.thread(ctx, &p.thread_id).await?;
            let item = chatkit.item(ctx, &p.thread_id, &p.item_id).await?;
            Plan::Structured(thread, item, p.input)
        }
        Request::RetryAfterItem(ThreadItemParams { thread_id, item_id }) => {
            let thread = chatkit.thread(ctx, &thread_id).await?;
            Plan::Retry(thread, chatkit.item(ctx, &thread_id, &item_id).await?)
        }
        Request::CustomAction(ActionParams {
            thread_id,
            item_id,
            action,
        }) => {
            let thread = chatkit.thread(ctx, &thread_id).await?; // 404 before the stream
            let sender = match item_id {
                Some(id) => Some(chatkit.item(ctx, &thread_id, &id).await?),
                None => None,
            };
            Plan::Action(thread, sender, action)
        }
        other => {
            return Err(ChatKitError::Internal(format!(
                "not a streaming request: {other:?}"
            )));
        }
    })
}

/// Attachments need an upload store, which this server does not have.
fn no_attachments(input: UserInput) -> Result<UserInput, ChatKitError> {
    if input.attachments.is_empty() {
        Ok(input)
    } else {
        Err(ChatKitError::Unsupported(
            "params.input.attachments: attachments are not supported (no upload store is configured)"
                .into(),
        ))
    }
}

/// The newest visible item, when it is a pending client tool call.
async fn pending_tool_call(
    chatkit: &ChatKit,
    ctx: &RequestContext,
    thread: &ThreadRecord,
) -> Result<Option<ThreadItem>, ChatKitError> {
    let page = PageQuery::first(1, super::request::Order::Desc);
    let newest = chatkit
        .store
        .load_items(ctx.owner(), &thread.id, &page, Hidden::Exclude)
        .await?;
    Ok(newest.data.into_iter().next().filter(
        |item| matches!(&item.kind, ItemKind::ClientToolCall { status, .. } if status == "pending"),
    ))
}

/// What a stream does after its setup.
enum Next {
    /// Nothing: the setup said all there was to say.
    Done,
    /// Reply on the thread: the responder's stream (or why there is none).
    Reply(ThreadRecord, TurnStream),
}

/// The spawned task behind one stream.
struct Driver {
    chatkit: ChatKit,
    ctx: RequestContext,
    sink: Sink,
    /// The thread's turn, given back when the driver ends (after its last write).
    _turn: super::thread_lock::TurnGuard,
}

impl Driver {
    /// The whole stream. Kept small, as a held stream waits in it for the whole reply: `plan`
    /// comes boxed and goes into the setup, which runs boxed; both are freed before the reply
    /// (inline, their larger state would stay allocated with the task; an `async fn` would
    /// also keep a second copy of its arguments; docs/BENCHMARKS.md, "The stream driver's
    /// size").
    fn run(self, plan: Box<Plan>) -> impl Future<Output = ()> {
        let metrics = self.chatkit.metrics.clone();
        async move {
            metrics.active_streams.inc();
            let started = Instant::now();
            let outcome = match Box::pin(self.execute(plan)).await {
                Ok(Next::Reply(thread, stream)) => {
                    let cx = ReplyContext {
                        owner: self.owner(),
                        store: &self.chatkit.store,
                        sink: &self.sink,
                        metrics: &self.chatkit.metrics,
                        limits: self.chatkit.limits(),
                    };
                    reply::run(&cx, thread, stream).await
                }
                Ok(Next::Done) => Ok(()),
                Err(stop) => Err(stop),
            };
            match outcome {
                Ok(()) | Err(Stop::Disconnected) => {}
                Err(Stop::Shutdown) => self.sink.try_emit(&Event::error(
                    "The server is restarting. Please try again in a moment.",
                    true,
                )),
                Err(Stop::Deleted) => self
                    .sink
                    .try_emit(&Event::error("This conversation was deleted.", false)),
                Err(e @ (Stop::Store(_) | Stop::Encode(_))) => {
                    tracing::error!(error = %e, "chatkit stream failed");
                    self.sink.try_emit(&Event::error(
                        "Something went wrong. Please try again.",
                        true,
                    ));
                }
            }
            metrics.active_streams.dec();
            metrics
                .stream_duration
                .observe(started.elapsed().as_secs_f64());
        }
    }

    /// The setup; takes the box so that it is freed with the setup (a box moved out of stays
    /// allocated until it goes out of scope).
    async fn execute(&self, plan: Box<Plan>) -> Result<Next, Stop> {
        match *plan {
            Plan::Create(id, input) => self.create(id, input).await,
            Plan::Message(thread, input) => self.user_turn(thread, input).await,
            Plan::ToolOutput(thread, call, result) => self.tool_output(thread, call, result).await,
            Plan::Structured(thread, item, input) => self.structured(thread, item, input).await,
            Plan::Retry(thread, item) => self.retry(thread, item).await,
            Plan::Action(thread, sender, action) => self.action(thread, sender, action).await,
        }
    }

    fn owner(&self) -> &str {
        self.ctx.owner()
    }

    async fn emit(&self, event: Event) -> Result<(), Stop> {
        self.sink.emit(&event).await
    }

    /// Sends `event` as the stream's last word.
    async fn say(&self, event: Event) -> Result<Next, Stop> {
        self.emit(event).await?;
        Ok(Next::Done)
    }

    async fn stream_options(&self) -> Result<(), Stop> {
        self.emit(Event::StreamOptions {
            stream_options: StreamOptions { allow_cancel: true },
        })
        .await
    }

    /// A new thread and its first message are committed together: a message the store
    /// refuses leaves no empty thread behind.
    async fn create(&self, id: String, input: UserInput) -> Result<Next, Stop> {
        let lesson = self.ctx.lesson_path.as_ref().map(|l| l.as_str().to_owned());
        let thread = ThreadRecord::new(id, lesson, self.ctx.organization_id.clone());
        let item = user_item(&thread, &input);
        let store = &self.chatkit.store;
        match &item {
            Some(item) => {
                store
                    .save_thread_with_item(self.owner(), &thread, item)
                    .await?
            }
            None => store.save_thread(self.owner(), &thread).await?,
        }
        self.emit(Event::ThreadCreated {
            thread: thread.to_wire(Page::empty()),
        })
        .await?;
        self.answer(thread, input, Vec::new(), item).await
    }

    /// Stores the message (unless it is a start trigger), then replies to it.
    async fn user_turn(&self, thread: ThreadRecord, input: UserInput) -> Result<Next, Stop> {
        let history = self.history(&thread, None).await?;
        let item = user_item(&thread, &input);
        if let Some(item) = &item {
            // Committed before the client hears of it.
            self.chatkit.store.save_item(self.owner(), item).await?;
        }
        self.answer(thread, input, history, item).await
    }

    /// Announces the stored message `item` (none for a start trigger) and replies to it.
    async fn answer(
        &self,
        thread: ThreadRecord,
        input: UserInput,
        history: Vec<Turn>,
        item: Option<ThreadItem>,
    ) -> Result<Next, Stop> {
        let message = item.is_some().then(|| input.text());
        if let Some(item) = item {
            self.emit(Event::ItemDone { item }).await?;
        }
        self.stream_options().await?;
        let mode = input.inference_options.model.as_deref();
        let request = self
            .turn_request(&thread, history, mode)
            .map(|mut request| {
                request.message = message;
                request.selected_text = request.selected_text.or(input.quoted_text);
                request
            });
        Ok(self.reply(thread, request))
    }

    async fn tool_output(
        &self,
        thread: ThreadRecord,
        call: Option<ThreadItem>,
        result: Value,
    ) -> Result<Next, Stop> {
        let Some(mut call) = call else {
            return self
                .say(Event::error(
                    "There is no pending client tool call in this thread.",
                    false,
                ))
                .await;
        };
        if let ItemKind::ClientToolCall { status, output, .. } = &mut call.kind {
            *status = "completed".to_owned();
            *output = Some(result);
        }
        self.chatkit.store.save_item(self.owner(), &call).await?;
        self.stream_options().await?;
        let history = self.history(&thread, None).await?;
        let request = self.turn_request(&thread, history, None);
        Ok(self.reply(thread, request))
    }

    async fn structured(
        &self,
        thread: ThreadRecord,
        item: ThreadItem,
        input: StructuredSubmission,
    ) -> Result<Next, Stop> {
        let Some(updated) = structured::apply(&item, &input) else {
            let message = format!("Item {} is not a pending structured input.", item.id);
            return self.say(Event::error(message, false)).await;
        };
        self.stream_options().await?;
        self.chatkit.store.save_item(self.owner(), &updated).await?;
        self.emit(Event::ItemReplaced { item: updated }).await?;
        let history = self.history(&thread, None).await?;
        let request = self.turn_request(&thread, history, None);
        Ok(self.reply(thread, request))
    }

    /// Deletes everything after the user message (announcing each visible deletion) and
    /// answers the message again.
    async fn retry(&self, thread: ThreadRecord, item: ThreadItem) -> Result<Next, Stop> {
        let ItemKind::UserMessage(message) = &item.kind else {
            let text = format!("Item {} is not a user message.", item.id);
            return self.say(Event::error(text, false)).await;
        };
        let deleted = self
            .chatkit
            .store
            .delete_items_after(self.owner(), &item)
            .await?;
        self.stream_options().await?;
        for gone in deleted.iter().filter(|i| !i.is_hidden()) {
            self.emit(Event::ItemRemoved {
                item_id: gone.id.clone(),
            })
            .await?;
        }
        let history = self.history(&thread, Some(&item.id)).await?;
        let mode = message.inference_options.model.as_deref();
        let request = self
            .turn_request(&thread, history, mode)
            .map(|mut request| {
                let text: Vec<&str> = message.content.iter().map(|c| c.text()).collect();
                request.message = Some(text.join(" "));
                request.selected_text = request.selected_text.or(message.quoted_text.clone());
                request
            });
        Ok(self.reply(thread, request))
    }

    /// An answer button (a widget's [`crate::turn::ANSWER_ACTION`]) is answered as if its
    /// answer had been typed: stored as the student's message, then replied to. Any other
    /// action from a widget gets a documented `error` event; an action from another sender
    /// the reference's bare `stream.error`.
    async fn action(
        &self,
        thread: ThreadRecord,
        sender: Option<ThreadItem>,
        action: Action,
    ) -> Result<Next, Stop> {
        let from_widget = sender
            .as_ref()
            .is_some_and(|s| matches!(s.kind, ItemKind::Widget { .. }));
        if let Some(answer) =
            super::widgets::answer_of(&action.kind, &action.payload).filter(|_| from_widget)
        {
            let input = UserInput {
                content: vec![super::types::UserContent::InputText { text: answer }],
                attachments: Vec::new(),
                quoted_text: None,
                // Answer buttons belong to the teach walk.
                inference_options: super::types::InferenceOptions {
                    model: Some("teach".into()),
                    ..Default::default()
                },
            };
            return self.user_turn(thread, input).await;
        }
        if sender.is_some() && !from_widget {
            return self
                .say(Event::Error {
                    code: "stream.error".into(),
                    message: None,
                    allow_retry: false,
                })
                .await;
        }
        self.stream_options().await?;
        let text = format!(
            "The action {:?} is not supported by this tutor.",
            action.kind
        );
        self.say(Event::error(text, false)).await
    }

    /// The past turns the responder asked for, oldest first.
    async fn history(
        &self,
        thread: &ThreadRecord,
        exclude: Option<&str>,
    ) -> Result<Vec<Turn>, Stop> {
        let limit = self.chatkit.responder.history_items();
        let turns = history::load(
            &self.chatkit.store,
            self.owner(),
            &thread.id,
            limit,
            exclude,
        )
        .await?;
        Ok(self.chatkit.limits().budget_history(turns))
    }

    /// The turn to ask for; an unknown mode is answered with a non-retryable error instead.
    fn turn_request(
        &self,
        thread: &ThreadRecord,
        history: Vec<Turn>,
        composer_mode: Option<&str>,
    ) -> Result<TurnRequest, TurnError> {
        let mode = self.ctx.mode_for(composer_mode).map_err(|e| TurnError {
            message: e.to_string(),
            allow_retry: false,
        })?;
        // A thread keeps the lesson it was started on; the stored path was checked when it
        // was written, and one that no longer parses is no lesson.
        let lesson = match &thread.lesson_path {
            Some(stored) => LessonPath::parse(stored).ok(),
            None => self.ctx.lesson_path.clone(),
        };
        Ok(TurnRequest {
            user_id: self.ctx.user.id.clone(),
            user_name: self.ctx.user_name.clone(),
            lesson,
            mode,
            selected_text: self.ctx.selected_text.clone(),
            message: None,
            history,
            needs_title: thread.title.is_none(),
            state: thread.metadata.get(super::reply::STATE_KEY).cloned(),
            locale: self.ctx.locale.clone(),
            bearer: self.ctx.bearer.clone(),
            thread_id: Some(thread.id.clone()),
        })
    }

    /// The responder's stream for `request`, or the refusal as a one-event stream.
    fn reply(&self, thread: ThreadRecord, request: Result<TurnRequest, TurnError>) -> Next {
        let stream: TurnStream = match request {
            Ok(request) => self.chatkit.responder.respond(request),
            Err(refused) => futures::stream::iter([Err(refused)]).boxed(),
        };
        Next::Reply(thread, stream)
    }
}

/// The stored form of the user's message, or `None` for a start trigger (the panel's
/// `"\u200B"` …), which is neither stored nor shown.
fn user_item(thread: &ThreadRecord, input: &UserInput) -> Option<ThreadItem> {
    if super::trigger::is_start_trigger(&input.text()) {
        return None;
    }
    Some(ThreadItem {
        id: ids::message_id(),
        thread_id: thread.id.clone(),
        created_at: ids::now(),
        kind: ItemKind::UserMessage(UserMessage {
            content: input.content.clone(),
            attachments: Vec::new(),
            quoted_text: input.quoted_text.clone(),
            inference_options: input.inference_options.clone(),
        }),
    })
}

//! The contract between the ChatKit server and whatever produces replies, owned by neither.
//!
//! The ChatKit server builds a [`TurnRequest`] from the thread and the request context, calls
//! [`Responder::respond`], and turns the [`TurnEvent`]s into ChatKit events (it owns item ids,
//! persistence and event order). Dropping the returned stream must cancel the work behind it
//! (e.g. the upstream model request): that is how a client disconnect stops a reply.
//! Imports only the content types a request carries (`LessonPath`, `Mode`).
//!
//! Per-thread responder state travels through this contract: the ChatKit server hands the
//! thread's saved state to the responder ([`TurnRequest::state`], an opaque versioned JSON
//! value the responder owns) and commits the [`TurnEvent::State`] it gets back to the thread
//! store before the reply's final events. The responder never touches the store.

use futures::stream::BoxStream;
use secrecy::SecretString;
use serde_json::Value;

use crate::content::{LessonPath, Mode};

/// How many past items a responder sees unless it asks for another number.
pub const DEFAULT_HISTORY_ITEMS: usize = 30;

/// Who said a past turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
    /// Context the student never saw (e.g. "the user cancelled the stream").
    Hidden,
}

/// One past turn of the thread, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub role: Role,
    pub text: String,
}

/// Everything a responder may use to answer.
#[derive(Debug, Clone)]
pub struct TurnRequest {
    pub user_id: String,
    /// Student's display name (`X-User-Name`, `user_name` query, later the token's name).
    pub user_name: Option<String>,
    /// The thread's lesson (the responder loads it).
    pub lesson: Option<LessonPath>,
    /// `inference_options.model`, else the `mode` query parameter, else teach.
    pub mode: Mode,
    /// Text the student selected in the lesson (`selected_text` query or `quoted_text`).
    pub selected_text: Option<String>,
    /// The student's message; `None` for a start trigger (empty or `__START_TEACHING__`) or a
    /// continuation after tool output.
    pub message: Option<String>,
    /// Earlier turns, oldest first, not including `message`.
    pub history: Vec<Turn>,
    /// True when the thread has no title yet: the responder may emit [`TurnEvent::Title`].
    pub needs_title: bool,
    /// The responder's saved state for this thread (the last [`TurnEvent::State`] it emitted
    /// here), `None` for a thread it never saved state in.
    pub state: Option<Value>,
    /// The client's active locale (`Accept-Language`, first tag, e.g. `ur` or `en-US`).
    pub locale: Option<String>,
    /// The student's own bearer token, for calls made on their behalf (the learner profile).
    /// A secret: `Debug` never prints it.
    pub bearer: Option<SecretString>,
    /// The thread being answered (credit metering records it with each deduct).
    pub thread_id: Option<String>,
}

/// One answer button under a reply (a ChatKit widget button; a click comes back as a
/// `threads.custom_action` of type [`ANSWER_ACTION`] whose payload `answer` is `value`, and is
/// answered as if the student had typed `value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub label: String,
    pub value: String,
}

/// The custom action type of an answer button.
pub const ANSWER_ACTION: &str = "tutor.answer";

/// Token usage of one model call (credit metering deducts each call from these figures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Input tokens served from the provider's prompt cache (part of `input_tokens`).
    pub cached_tokens: u64,
    /// Output tokens spent on reasoning (part of `output_tokens`).
    pub reasoning_tokens: u64,
}

/// What a responder streams back.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEvent {
    /// Text appended to the current content part (sent to the client as soon as it exists).
    Delta(String),
    /// Close the current content part and start a new one.
    NewPart,
    /// Title for the thread (persisted, then announced with `thread.updated`).
    Title(String),
    /// Token usage of one model call of the reply, for the record and metrics (a reply that
    /// needed several calls emits one per call).
    Usage(Usage),
    /// The responder's new state for this thread: committed to the thread store before the
    /// reply's final events, handed back as [`TurnRequest::state`] on the next turn.
    State(Value),
    /// A short progress line shown while the reply is being prepared (ChatKit
    /// `progress_update`), e.g. "Section 3 of 12: while loops".
    Progress(String),
    /// Answer buttons shown under the reply (a widget item after the message).
    Choices(Vec<Choice>),
}

/// A failure of the reply: becomes a ChatKit `error` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnError {
    pub message: String,
    pub allow_retry: bool,
}

/// The stream of one reply.
pub type TurnStream = BoxStream<'static, Result<TurnEvent, TurnError>>;

impl Default for TurnRequest {
    fn default() -> Self {
        Self {
            user_id: String::new(),
            user_name: None,
            lesson: None,
            mode: Mode::Teach,
            selected_text: None,
            message: None,
            history: Vec::new(),
            needs_title: false,
            state: None,
            locale: None,
            bearer: None,
            thread_id: None,
        }
    }
}

/// Produces replies. Implemented by the tutor (and by the tests' deterministic responders).
pub trait Responder: Send + Sync + 'static {
    fn respond(&self, request: TurnRequest) -> TurnStream;

    /// A short description for `/health` (e.g. `offline` or `openai:gpt-4.1-mini`).
    fn describe(&self) -> String;

    /// What answers in `mode` (`/health`'s `tutors`); the same for every mode by default.
    fn describe_mode(&self, mode: Mode) -> String {
        let _ = mode;
        self.describe()
    }

    /// How many past items of the thread [`TurnRequest::history`] should hold (the tutor's
    /// `HISTORY_ITEMS`): the ChatKit server loads exactly that many.
    fn history_items(&self) -> usize {
        DEFAULT_HISTORY_ITEMS
    }
}

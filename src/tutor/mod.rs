//! The tutor: teach, ask and quiz modes over an OpenAI-compatible model, or the offline tutor.
//!
//! Owns: WHAT is said — modes, prompts ([`prompts`]), the conversation context ([`context`]),
//! the model client ([`model`]), the offline tutor ([`offline`]), thread titles — behind the
//! [`turn`] contract through which the ChatKit server asks for a reply. Must not touch the
//! store or know ChatKit's wire format: item ids, persistence and event order are the
//! ChatKit server's.

pub mod context;
mod metrics;
pub mod model;
pub mod offline;
pub mod prompts;
mod settings;
pub mod text;

use std::sync::Arc;

use futures::StreamExt;
use prometheus_client::registry::Registry;

pub use self::metrics::TutorMetrics;
pub use self::settings::{ModelApi, ModelSettings, SETTINGS, TutorSettings};

use self::context::Context;
use self::model::ModelClient;
use crate::content::{Content, Lesson};
use crate::turn::{Responder, Role, TurnEvent, TurnRequest, TurnStream};

/// Most words of a first message used as a thread title.
const TITLE_WORDS: usize = 6;
/// Longest title made from a message, "…" included.
const TITLE_CHARS: usize = 50;

/// Which tutor answers.
#[derive(Debug)]
enum Engine {
    Offline,
    Model(Arc<ModelClient>),
}

/// The tutor of one process. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Tutor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: TutorSettings,
    content: Content,
    engine: Engine,
    metrics: TutorMetrics,
}

impl Tutor {
    /// The model tutor when `OPENAI_API_KEY` is set, else the offline tutor.
    pub fn new(settings: &TutorSettings, content: Content, registry: &mut Registry) -> Self {
        let metrics = TutorMetrics::register(registry);
        let engine = match settings.model.api_key {
            Some(_) => Engine::Model(Arc::new(ModelClient::new(&settings.model, metrics.clone()))),
            None => Engine::Offline,
        };
        let tutor = Self {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                content,
                engine,
                metrics,
            }),
        };
        tracing::info!(tutor = %tutor.describe(), "tutor ready");
        tutor
    }

    /// The reply to `request` given its already-loaded `lesson` (`None`: no lesson context).
    pub fn respond_with_lesson(
        &self,
        request: TurnRequest,
        lesson: Option<Arc<Lesson>>,
    ) -> TurnStream {
        let mode = request.mode;
        let title = title(&request, lesson.as_deref()).map(|t| Ok(TurnEvent::Title(t)));
        let ctx = Context::build(request, mode, lesson, &self.inner.settings);
        let body = match &self.inner.engine {
            Engine::Offline => {
                self.inner.metrics.reply("offline", ctx.mode.name(), "ok");
                offline::reply(&ctx)
            }
            Engine::Model(client) => client.reply(&ctx),
        };
        futures::stream::iter(title).chain(body).boxed()
    }

    /// The lesson of `request`; a missing, invalid or unloadable lesson is no lesson.
    async fn lesson(&self, request: &TurnRequest) -> Option<Arc<Lesson>> {
        let path = request.lesson.as_ref()?;
        match self.inner.content.lesson(path).await {
            Ok(lesson) => lesson,
            Err(e) => {
                tracing::warn!(error = %e, lesson = %path, "tutor: lesson unavailable; answering without it");
                None
            }
        }
    }
}

impl Responder for Tutor {
    fn respond(&self, request: TurnRequest) -> TurnStream {
        let tutor = self.clone();
        futures::stream::once(async move {
            // Boxed: loading a lesson (cache tiers, origin fetch) is a large future; inline,
            // its space would stay allocated in this stream for the whole reply.
            let lesson = Box::pin(tutor.lesson(&request)).await;
            tutor.respond_with_lesson(request, lesson)
        })
        .flatten()
        .boxed()
    }

    fn describe(&self) -> String {
        match &self.inner.engine {
            Engine::Offline => "offline".to_owned(),
            Engine::Model(client) => client.describe(),
        }
    }

    fn history_items(&self) -> usize {
        self.inner.settings.history_items
    }
}

/// The thread title, when one is needed, by the book's rule: `📚 {lesson title}` for a thread
/// opened by a start trigger (no message yet), else the first six words of the student's first
/// message, at most [`TITLE_CHARS`] characters ("…" when that cuts it). A thread whose title was
/// set (or renamed) is never retitled: `needs_title` is false then.
pub fn title(request: &TurnRequest, lesson: Option<&Lesson>) -> Option<String> {
    if !request.needs_title {
        return None;
    }
    let first = request
        .history
        .iter()
        .find(|t| t.role == Role::User)
        .map(|t| t.text.as_str())
        .or(request.message.as_deref());
    let Some(first) = first else {
        return lesson.map(|lesson| format!("📚 {}", lesson.title));
    };
    let words: Vec<&str> = first.split_whitespace().take(TITLE_WORDS).collect();
    let words = words.join(" ");
    let title = if words.chars().count() > TITLE_CHARS {
        let cut = text::truncate_chars(&words, TITLE_CHARS - 1).trim_end();
        format!("{cut}…")
    } else {
        words
    };
    (!title.is_empty()).then_some(title)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tutor::context::tests::lesson;

    fn request(message: &str) -> TurnRequest {
        TurnRequest {
            message: Some(message.into()),
            needs_title: true,
            ..TurnRequest::default()
        }
    }

    #[test]
    fn trigger_threads_are_titled_with_the_lesson_and_others_with_their_message() {
        let l = lesson("Ownership", &[("A", "b c d.")]);
        let trigger = TurnRequest {
            needs_title: true,
            ..TurnRequest::default()
        };
        assert_eq!(title(&trigger, Some(&l)).as_deref(), Some("📚 Ownership"));
        // A thread of a lesson opened with a message: the message, not a column of twins.
        assert_eq!(
            title(&request("what is a borrow?"), Some(&l)).as_deref(),
            Some("what is a borrow?")
        );
    }

    #[test]
    fn a_long_first_message_is_cut_at_fifty_characters_with_an_ellipsis() {
        let r =
            request("Supercalifragilistic expialidocious antidisestablishmentarianism words here");
        let t = title(&r, None).expect("title");
        assert_eq!(t.chars().count(), 50, "{t}");
        assert!(t.ends_with('…'), "{t}");
        assert_eq!(t, "Supercalifragilistic expialidocious antidisestabl…");
    }

    #[test]
    fn other_threads_are_titled_with_the_first_six_words_of_the_first_message() {
        let r = request("how  do closures capture variables from their scope?");
        assert_eq!(
            title(&r, None).as_deref(),
            Some("how do closures capture variables from")
        );
        let mut r = request("later message");
        r.history.push(crate::turn::Turn {
            role: Role::User,
            text: "first one".into(),
        });
        assert_eq!(title(&r, None).as_deref(), Some("first one"));
    }

    #[test]
    fn no_title_is_made_when_the_thread_has_one_or_nothing_was_said() {
        let mut r = request("hello");
        r.needs_title = false;
        assert_eq!(title(&r, None), None);
        let r = TurnRequest {
            needs_title: true,
            ..TurnRequest::default()
        };
        assert_eq!(title(&r, None), None);
    }
}

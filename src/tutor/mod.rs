//! The tutor: teach, ask and quiz modes, each over its own OpenAI-compatible model or the
//! offline tutor.
//!
//! Owns: WHAT is said — modes, the teach walk ([`walk`], [`teach`]), prompts ([`prompts`]),
//! the conversation context ([`context`]), the model client ([`model`]) and its metering per run
//! ([`metered`], over [`crate::metering`]), the offline tutor ([`offline`]), the learner
//! profile ([`profile`]), thread titles — behind the [`turn`]
//! contract through which the ChatKit server asks for a reply. Must not touch the store or
//! know ChatKit's wire format: item ids, persistence and event order are the ChatKit
//! server's; the walk's state goes out as a [`TurnEvent::State`] and comes back in the next
//! [`TurnRequest`].

pub mod bm25;
pub mod context;
pub mod metered;
mod metrics;
pub mod model;
pub mod offline;
pub mod profile;
pub mod prompts;
pub mod redact;
mod settings;
pub mod teach;
pub mod text;
pub mod walk;

use std::sync::Arc;

use futures::StreamExt;
use prometheus_client::registry::Registry;

pub use self::metrics::TutorMetrics;
pub use self::settings::{ModelApi, ModelSettings, ReasoningEffort, SETTINGS, TutorSettings};

use self::context::Context;
use self::metered::Metered;
use self::model::ModelClient;
use self::profile::Profiles;
use self::teach::Voice;
use crate::content::{Content, Lesson, Mode};
use crate::metering::{Caller, Metering};
use crate::outbound::Outbound;
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
    /// Teach, ask, quiz.
    engines: [Engine; 3],
    profiles: Option<Profiles>,
    /// Credit metering of every model call (`None`: off).
    metering: Option<Metering>,
    metrics: TutorMetrics,
}

fn index(mode: Mode) -> usize {
    match mode {
        Mode::Teach => 0,
        Mode::Ask => 1,
        Mode::Quiz => 2,
    }
}

impl Tutor {
    /// Each mode on its model when it has an API key, else on the offline tutor; unmetered.
    /// Every outbound client (model, learner profiles) is built from `outbound`.
    pub fn new(
        settings: &TutorSettings,
        content: Content,
        outbound: &Outbound,
        registry: &mut Registry,
    ) -> Self {
        Self::new_metered(settings, content, None, outbound, registry)
    }

    /// As [`Tutor::new`], each model call metered by `metering` (the offline tutor never is).
    pub fn new_metered(
        settings: &TutorSettings,
        content: Content,
        metering: Option<Metering>,
        outbound: &Outbound,
        registry: &mut Registry,
    ) -> Self {
        let metrics = TutorMetrics::register(registry);
        let engines = Mode::ALL.map(|mode| {
            let s = settings.for_mode(mode);
            match s.api_key {
                Some(_) => {
                    let client = ModelClient::new(s, mode, outbound, metrics.clone());
                    Engine::Model(Arc::new(client))
                }
                None => Engine::Offline,
            }
        });
        let tutor = Self {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                content,
                engines,
                profiles: (settings.profile_url.as_deref()).map(|u| Profiles::new(u, outbound)),
                metering,
                metrics,
            }),
        };
        tracing::info!(
            tutor = %tutor.describe(),
            teach = %tutor.describe_mode(Mode::Teach),
            ask = %tutor.describe_mode(Mode::Ask),
            quiz = %tutor.describe_mode(Mode::Quiz),
            "tutor ready"
        );
        tutor
    }

    fn engine(&self, mode: Mode) -> &Engine {
        &self.inner.engines[index(mode)]
    }

    /// The reply to `request` given its already-loaded `lesson` (`None`: no lesson context).
    pub fn respond_with_lesson(
        &self,
        request: TurnRequest,
        lesson: Option<Arc<Lesson>>,
    ) -> TurnStream {
        self.respond_in_context(request, lesson, None)
    }

    fn respond_in_context(
        &self,
        request: TurnRequest,
        lesson: Option<Arc<Lesson>>,
        profile: Option<profile::Profile>,
    ) -> TurnStream {
        let mode = request.mode;
        let title = title(&request, lesson.as_deref()).map(|t| Ok(TurnEvent::Title(t)));
        let meter = self
            .inner
            .metering
            .clone()
            .map(|m| (m, Arc::new(caller(&request))));
        let mut ctx = Context::build(request, mode, lesson, &self.inner.settings);
        ctx.profile = profile;
        let engine = self.engine(ctx.mode);
        if ctx.mode == Mode::Teach && ctx.lesson.is_some() {
            let voice = match engine {
                Engine::Offline => {
                    self.inner.metrics.reply("offline", "teach", "ok");
                    Voice::Offline
                }
                Engine::Model(client) => Voice::Model(Metered::new(client.clone(), meter)),
            };
            let cap = self.inner.settings.teach_context_chars;
            return futures::stream::iter(title)
                .chain(teach::run(ctx, voice, cap))
                .boxed();
        }
        let body = match engine {
            Engine::Offline => {
                self.inner.metrics.reply("offline", ctx.mode.name(), "ok");
                offline_reply(ctx)
            }
            Engine::Model(client) => {
                Metered::new(client.clone(), meter).reply(&model::wire::prompt_of(&ctx))
            }
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

/// Who a run is metered for.
fn caller(request: &TurnRequest) -> Caller {
    Caller {
        user_id: request.user_id.clone(),
        bearer: request.bearer.clone(),
        thread_id: request.thread_id.clone(),
        lesson_path: request.lesson.as_ref().map(ToString::to_string),
    }
}

/// An offline reply outside the walk; a student reading another language is told once that
/// the offline tutor answers in English.
fn offline_reply(ctx: Context) -> TurnStream {
    if !ctx.wants_other_language() || ctx.state.english_noted {
        return offline::reply(&ctx);
    }
    let mut state = ctx.state.clone();
    state.english_noted = true;
    let note = "*(The offline tutor answers in English only.)*\n\n";
    futures::stream::iter([Ok(TurnEvent::Delta(note.to_owned()))])
        .chain(offline::reply(&ctx))
        .chain(futures::stream::iter([Ok(TurnEvent::State(
            state.to_value(),
        ))]))
        .boxed()
}

impl Responder for Tutor {
    fn respond(&self, request: TurnRequest) -> TurnStream {
        let tutor = self.clone();
        // The whole setup boxed, so it is freed once the reply starts (inline, its space, the
        // request's among it, would stay allocated in this stream for the whole reply).
        futures::stream::once(Box::pin(async move {
            // Boxed: loading a lesson (cache tiers, origin fetch) is a large future. The
            // profile is fetched at the same time (at most `profile::TIMEOUT`).
            let profile = async {
                match (&tutor.inner.profiles, &request.bearer) {
                    (Some(p), Some(bearer)) => Some((*p.get(bearer).await).clone()),
                    _ => None,
                }
            };
            let (lesson, profile) =
                futures::future::join(Box::pin(tutor.lesson(&request)), Box::pin(profile)).await;
            tutor.respond_in_context(request, lesson, profile)
        }))
        .flatten()
        .boxed()
    }

    /// Teach's tutor (`/health`'s `tutor`, as before per-mode models).
    fn describe(&self) -> String {
        self.describe_mode(Mode::Teach)
    }

    fn describe_mode(&self, mode: Mode) -> String {
        match self.engine(mode) {
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

//! The request context carried from the HTTP edge to the responder: who asks, from which
//! lesson, in which mode. Built by the edge from typed parts; nothing here parses HTTP.

use crate::auth::CurrentUser;
use crate::content::{LessonPath, Mode, UnknownMode};

/// Everything about a `POST /chatkit` request besides its body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub user: CurrentUser,
    /// `X-User-Name` header, else the `user_name` query parameter, else the token's name.
    pub user_name: Option<String>,
    /// `X-Organization-ID` header (stored on new threads).
    pub organization_id: Option<String>,
    /// `lesson_path` query parameter (stored on new threads).
    pub lesson_path: Option<LessonPath>,
    /// `mode` query parameter (`inference_options.model` wins when set). An unknown mode is
    /// not a 4xx: the turn answers it with a non-retryable `error` event (docs/PROTOCOL.md).
    pub mode: Result<Option<Mode>, UnknownMode>,
    /// `selected_text` query parameter.
    pub selected_text: Option<String>,
    /// The client's active locale: the first tag of `Accept-Language` (ChatKit sends one).
    pub locale: Option<String>,
    /// The request's bearer token, handed to the responder for calls on the student's behalf.
    pub bearer: Option<secrecy::SecretString>,
    pub request_id: Option<String>,
}

impl RequestContext {
    /// The store owner of everything this request touches.
    pub fn owner(&self) -> &str {
        &self.user.id
    }

    /// The mode of one turn: the composer's `inference_options.model` when it sent one (blank
    /// = teach), else the query's `mode`, else teach.
    pub fn mode_for(&self, composer: Option<&str>) -> Result<Mode, UnknownMode> {
        let chosen = match composer {
            Some(model) => Mode::parse_optional(Some(model))?,
            None => self.mode.clone()?,
        };
        Ok(chosen.unwrap_or(Mode::Teach))
    }
}

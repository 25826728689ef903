//! The tutor: teach, ask and quiz modes over an OpenAI-compatible model, or the offline tutor.
//!
//! Owns: prompts, conversation context, model clients. Must not touch the store directly.

use crate::config::{Env, SettingDoc};

/// Settings of the tutor.
#[derive(Debug, Clone, Default)]
pub struct TutorSettings {}

/// Variables read by this module.
pub const SETTINGS: &[SettingDoc] = &[];

impl TutorSettings {
    pub fn from_env(_env: &mut Env) -> Self {
        Self {}
    }
}

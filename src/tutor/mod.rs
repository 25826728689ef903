//! The tutor: teach, ask and quiz modes over an OpenAI-compatible model, or the offline tutor.
//!
//! Owns: prompts, conversation context, model clients, and the [`turn`] contract through
//! which the ChatKit server asks for a reply. Must not touch the store directly.

pub mod turn;

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

//! The tutor's per-thread state: an opaque, versioned JSON value to the ChatKit server, which
//! keeps it in the thread row's `metadata` (under `tutor`) and hands it back on every turn.
//! Never sent to the client: the pending check's answer key lives here.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The state format written now; a value of another version is discarded (a new walk).
pub const VERSION: u32 = 1;

/// Everything the tutor remembers about one thread.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TutorState {
    pub v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub walk: Option<WalkState>,
    /// The offline tutor said once that it answers in English only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub english_noted: bool,
}

/// Where the student is in the teach walk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalkState {
    /// The lesson walked (a thread keeps its lesson; a different one starts a new walk).
    pub lesson: String,
    /// Sections when the walk began (a lesson edited since is clamped to).
    pub total: usize,
    /// The current section, 0-based.
    pub current: usize,
    /// Wrong answers to the current check.
    pub attempts: u32,
    /// The pending check question, if one was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Check>,
    /// How each finished section ended, in order.
    #[serde(default)]
    pub results: Vec<Outcome>,
    #[serde(default)]
    pub complete: bool,
}

/// A check question and what the service knows about its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub question: String,
    /// Answer options (shown as `A) …` and as buttons); empty = a typed answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// The expected answer: known to the offline tutor when it asks, to the model tutor once
    /// its judge has answered. Hidden from the student until revealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Hints given so far.
    #[serde(default)]
    pub hints: u32,
}

impl Check {
    /// A question answered in words, key unknown yet.
    pub fn typed(question: impl Into<String>) -> Self {
        Self {
            question: question.into(),
            options: Vec::new(),
            key: None,
            hints: 0,
        }
    }
}

/// How a section of the walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Correct,
    /// Three wrong answers: the answer was shown.
    Revealed,
    Skipped,
}

impl TutorState {
    /// The state saved in a thread (`None`, another version or a broken value: a fresh one).
    pub fn load(saved: Option<&Value>) -> Self {
        let Some(value) = saved else {
            return Self::fresh();
        };
        match serde_json::from_value::<TutorState>(value.clone()) {
            Ok(state) if state.v == VERSION => state,
            Ok(state) => {
                tracing::info!(
                    version = state.v,
                    "tutor state of another version; starting anew"
                );
                Self::fresh()
            }
            Err(e) => {
                tracing::warn!(error = %e, "tutor state unreadable; starting anew");
                Self::fresh()
            }
        }
    }

    pub fn fresh() -> Self {
        Self {
            v: VERSION,
            ..Self::default()
        }
    }

    /// The JSON the ChatKit server stores.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The walk of `lesson` with `total` sections: the saved one when it is that lesson's.
    pub fn walk_of(&self, lesson: &str, total: usize) -> Option<WalkState> {
        let mut walk = self.walk.clone().filter(|w| w.lesson == lesson)?;
        if walk.total != total {
            // The lesson was edited: keep the place, within the new length.
            walk.total = total;
            if walk.current >= total {
                walk.current = total.saturating_sub(1);
                walk.check = None;
            }
        }
        Some(walk)
    }
}

impl WalkState {
    /// A walk at the first of `total` sections.
    pub fn new(lesson: &str, total: usize) -> Self {
        Self {
            lesson: lesson.to_owned(),
            total,
            current: 0,
            attempts: 0,
            check: None,
            results: Vec::new(),
            complete: false,
        }
    }

    /// Closes the current section with `outcome` and moves to the next (or completes).
    pub fn advance(&mut self, outcome: Outcome) {
        self.results.push(outcome);
        self.attempts = 0;
        self.check = None;
        if self.current + 1 >= self.total {
            self.complete = true;
        } else {
            self.current += 1;
        }
    }

    /// Sections answered right.
    pub fn correct(&self) -> usize {
        self.results
            .iter()
            .filter(|o| **o == Outcome::Correct)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_round_trips_and_other_versions_start_anew() {
        let mut s = TutorState::fresh();
        let mut w = WalkState::new("a/b", 4);
        w.check = Some(Check {
            question: "Q?".into(),
            options: vec!["x".into(), "y".into()],
            key: Some("x".into()),
            hints: 1,
        });
        s.walk = Some(w);
        let back = TutorState::load(Some(&s.to_value()));
        assert_eq!(back, s);
        let other = serde_json::json!({"v": 99, "walk": null});
        assert_eq!(TutorState::load(Some(&other)), TutorState::fresh());
        let broken = serde_json::json!({"v": "one"});
        assert_eq!(TutorState::load(Some(&broken)), TutorState::fresh());
    }

    #[test]
    fn advancing_past_the_last_section_completes_the_walk() {
        let mut w = WalkState::new("a/b", 2);
        w.attempts = 2;
        w.advance(Outcome::Correct);
        assert_eq!((w.current, w.attempts, w.complete), (1, 0, false));
        w.advance(Outcome::Skipped);
        assert!(w.complete);
        assert_eq!(w.correct(), 1);
    }

    #[test]
    fn a_walk_of_another_lesson_is_not_resumed_and_an_edited_one_is_clamped() {
        let mut s = TutorState::fresh();
        let mut w = WalkState::new("a/b", 5);
        w.current = 4;
        s.walk = Some(w);
        assert!(s.walk_of("c/d", 5).is_none());
        assert_eq!(
            s.walk_of("a/b", 3).map(|w| (w.current, w.total)),
            Some((2, 3))
        );
    }
}

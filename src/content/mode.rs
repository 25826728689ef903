//! The study modes: the one `Mode` every layer uses, from the query or the composer's
//! `inference_options.model` to suggestions and the tutor.

use serde::Serialize;

/// How the tutor answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Socratic: a walk through the lesson, one checking question at a time.
    Teach,
    /// Direct answers in 1–3 sentences.
    Ask,
    /// One question at a time from the lesson, graded, with a running score.
    Quiz,
}

impl TryFrom<String> for Mode {
    type Error = UnknownMode;
    fn try_from(raw: String) -> Result<Mode, UnknownMode> {
        Mode::parse(&raw)
    }
}

/// A mode name that is none of [`Mode::ALL`]; its message names the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode `{given}`; use one of: teach, ask, quiz")]
pub struct UnknownMode {
    /// What was sent, cut to 40 characters.
    pub given: String,
}

impl Mode {
    /// Every mode, in the order they are offered.
    pub const ALL: [Mode; 3] = [Mode::Teach, Mode::Ask, Mode::Quiz];

    /// The name clients send (`teach`, `ask`, `quiz`).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Teach => "teach",
            Mode::Ask => "ask",
            Mode::Quiz => "quiz",
        }
    }

    /// A mode name, case-insensitively and ignoring surrounding whitespace.
    pub fn parse(raw: &str) -> Result<Mode, UnknownMode> {
        let raw = raw.trim();
        Mode::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(raw))
            .ok_or_else(|| UnknownMode {
                given: raw.chars().take(40).collect(),
            })
    }

    /// An optional mode name: absent or blank is `None` (the caller's default).
    pub fn parse_optional(raw: Option<&str>) -> Result<Option<Mode>, UnknownMode> {
        match raw.map(str::trim).filter(|r| !r.is_empty()) {
            Some(r) => Mode::parse(r).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_blank_mode_is_none_and_names_match_case_insensitively() {
        assert_eq!(Mode::parse_optional(None), Ok(None));
        assert_eq!(Mode::parse_optional(Some("  ")), Ok(None));
        assert_eq!(Mode::parse("ASK"), Ok(Mode::Ask));
        assert_eq!(Mode::parse(" quiz "), Ok(Mode::Quiz));
    }

    #[test]
    fn an_unknown_mode_names_the_valid_ones() {
        let e = Mode::parse("review").expect_err("unknown");
        let message = e.to_string();
        assert!(message.contains("`review`"), "{message}");
        assert!(message.contains("teach, ask, quiz"), "{message}");
    }
}

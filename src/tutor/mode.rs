//! The tutor's modes and how a request's mode string becomes one.

use super::turn::TurnError;

/// How the tutor answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Socratic: one idea, one checking question, build on the answer.
    Teach,
    /// Direct answers in 1–3 sentences.
    Ask,
    /// One question at a time from the lesson, graded, with a running score.
    Quiz,
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

    /// `None` or blank = teach; unknown = a non-retryable error naming the valid modes.
    pub fn resolve(raw: Option<&str>) -> Result<Mode, TurnError> {
        let raw = raw.map(str::trim).unwrap_or_default();
        if raw.is_empty() {
            return Ok(Mode::Teach);
        }
        Mode::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(raw))
            .ok_or_else(|| TurnError {
                message: format!(
                    "unknown mode `{}`; use one of: {}",
                    raw.chars().take(40).collect::<String>(),
                    Mode::ALL.map(Mode::name).join(", ")
                ),
                allow_retry: false,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_blank_mode_means_teach_and_names_match_case_insensitively() {
        assert_eq!(Mode::resolve(None), Ok(Mode::Teach));
        assert_eq!(Mode::resolve(Some("  ")), Ok(Mode::Teach));
        assert_eq!(Mode::resolve(Some("ASK")), Ok(Mode::Ask));
        assert_eq!(Mode::resolve(Some("quiz")), Ok(Mode::Quiz));
    }

    #[test]
    fn an_unknown_mode_is_a_non_retryable_error_naming_the_valid_ones() {
        let e = Mode::resolve(Some("review")).expect_err("unknown");
        assert!(!e.allow_retry);
        assert!(e.message.contains("`review`"));
        assert!(e.message.contains("teach, ask, quiz"), "{}", e.message);
    }
}

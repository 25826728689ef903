//! The teach walk: a lesson taught section by section, each with one check question, judged,
//! with `hint`, `skip` / `next` and a summary at the end — the same state machine for the model
//! tutor and the offline tutor.
//!
//! Owns: the walk's sections ([`sections`]), its per-thread state ([`state`], saved by the
//! ChatKit server through the [`crate::turn`] contract, never touched here), the service's own
//! commands, and the decision of what one turn does ([`plan`]). Saying it is the tutors' job.

pub mod sections;
pub mod state;

pub use sections::{WalkSection, split};
pub use state::{Check, Outcome, TutorState, WalkState};

/// Attempts on one check before its answer is revealed and the walk moves on.
pub const MAX_ATTEMPTS: u32 = 3;

/// A message the service handles itself, with any model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `skip`, `next`, `next section`: reveal the answer and move on.
    Skip,
    /// `hint`: a clue for the current check.
    Hint,
}

impl Command {
    /// The command `message` is: case-insensitively and ignoring surrounding whitespace and
    /// punctuation, exactly `skip`, `next`, `next section` or `hint`. Anything else ("ok what
    /// next?") is not a command.
    pub fn parse(message: &str) -> Option<Command> {
        let core = message
            .trim_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation())
            .to_lowercase();
        let words: Vec<&str> = core.split_whitespace().collect();
        match words.as_slice() {
            ["skip"] | ["next"] | ["next", "section"] => Some(Command::Skip),
            ["hint"] => Some(Command::Hint),
            _ => None,
        }
    }
}

/// What one teach turn does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Teach the current section (the walk just began).
    Start,
    /// The panel was reopened: show where the student is and the pending check again.
    Resume,
    /// Judge this answer to the pending check.
    Answer(String),
    Hint,
    Skip,
    /// The walk is over: answer a free question.
    Free(String),
    /// The walk is over and nothing was asked: say so.
    Finished,
}

/// The plan of a turn: `walk` is the thread's walk (`None`: none began yet), `message` the
/// student's (`None` for a start trigger or a reopened panel).
pub fn plan(walk: Option<&WalkState>, message: Option<&str>) -> Plan {
    let Some(walk) = walk else {
        return Plan::Start;
    };
    let message = message.map(str::trim).filter(|m| !m.is_empty());
    match (message, walk.complete) {
        (None, false) if walk.check.is_none() => Plan::Start,
        (None, false) => Plan::Resume,
        (None, true) => Plan::Finished,
        (Some(m), true) => Plan::Free(m.to_owned()),
        (Some(m), false) => match Command::parse(m) {
            Some(Command::Skip) => Plan::Skip,
            Some(Command::Hint) => Plan::Hint,
            None if walk.check.is_none() => Plan::Start,
            None => Plan::Answer(m.to_owned()),
        },
    }
}

/// How the judge of an answer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Correct,
    Incorrect,
    /// Not an answer: a question or a remark ("ok what next?"). The walk stays.
    NotAnAnswer,
}

impl Verdict {
    /// `correct`, `incorrect`, `not_an_answer` (the judge's JSON).
    pub fn parse(raw: &str) -> Option<Verdict> {
        match raw
            .trim()
            .to_ascii_lowercase()
            .replace([' ', '-'], "_")
            .as_str()
        {
            "correct" | "right" | "yes" => Some(Verdict::Correct),
            "incorrect" | "wrong" | "partly_correct" | "partially_correct" | "no" => {
                Some(Verdict::Incorrect)
            }
            "not_an_answer" | "question" | "off_topic" => Some(Verdict::NotAnAnswer),
            _ => None,
        }
    }
}

/// "Section 3 of 12: while loops".
pub fn progress_line(walk: &WalkState, section: &WalkSection) -> String {
    format!(
        "Section {} of {}: {}",
        walk.current + 1,
        walk.total,
        section.title()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_commands_are_commands() {
        for m in [
            "skip",
            " Skip! ",
            "NEXT",
            "next section",
            "Next Section.",
            "hint",
            "hint?",
        ] {
            assert!(Command::parse(m).is_some(), "{m:?}");
        }
        for m in [
            "ok what next?",
            "skip this please",
            "next time",
            "a hint of salt",
            "hints",
        ] {
            assert_eq!(Command::parse(m), None, "{m:?}");
        }
        assert_eq!(Command::parse("next section"), Some(Command::Skip));
        assert_eq!(Command::parse("...hint..."), Some(Command::Hint));
    }

    fn walk(check: bool, complete: bool) -> WalkState {
        let mut w = WalkState::new("a/b", 3);
        if check {
            w.check = Some(Check::typed("Q?"));
        }
        w.complete = complete;
        w
    }

    #[test]
    fn the_plan_follows_the_walk_and_the_message() {
        assert_eq!(plan(None, None), Plan::Start);
        assert_eq!(plan(None, Some("hi")), Plan::Start);
        let w = walk(true, false);
        assert_eq!(plan(Some(&w), None), Plan::Resume);
        assert_eq!(plan(Some(&w), Some("skip")), Plan::Skip);
        assert_eq!(plan(Some(&w), Some("hint")), Plan::Hint);
        assert_eq!(
            plan(Some(&w), Some("ok what next?")),
            Plan::Answer("ok what next?".into()),
            "anything else is judged, never a skip"
        );
        let done = walk(false, true);
        assert_eq!(plan(Some(&done), None), Plan::Finished);
        assert_eq!(plan(Some(&done), Some("why?")), Plan::Free("why?".into()));
    }

    #[test]
    fn verdicts_are_read_leniently() {
        assert_eq!(Verdict::parse("Correct"), Some(Verdict::Correct));
        assert_eq!(Verdict::parse("not an answer"), Some(Verdict::NotAnAnswer));
        assert_eq!(Verdict::parse("partly-correct"), Some(Verdict::Incorrect));
        assert_eq!(Verdict::parse("maybe"), None);
    }
}

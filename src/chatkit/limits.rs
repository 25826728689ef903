//! What one request may put in front of the model: the length of a message and of a title,
//! and the characters of history a turn carries.
//!
//! Owns: [`ChatKitLimits`], the check of a parsed request against it (a 400 naming the field)
//! and the history budget. Must not know where the numbers come from (settings are the edge's).

use super::error::ChatKitError;
use super::request::{Request, UserInput};
use crate::turn::Turn;

/// The limits, from `MAX_MESSAGE_CHARS`, `MAX_TITLE_CHARS` and `HISTORY_CHARS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatKitLimits {
    /// Longest message (its text parts and quoted text together), in characters.
    pub max_message_chars: usize,
    /// Longest thread title, in characters (renames; generated titles are cut).
    pub max_title_chars: usize,
    /// Characters of past turns a reply is given; the oldest are dropped or cut first.
    pub history_chars: usize,
}

impl Default for ChatKitLimits {
    fn default() -> Self {
        Self {
            max_message_chars: 32_000,
            max_title_chars: 200,
            history_chars: 24_000,
        }
    }
}

impl ChatKitLimits {
    /// Refuses a request whose message or title is over its limit, naming the field.
    pub fn check(&self, request: &Request) -> Result<(), ChatKitError> {
        match request {
            Request::ThreadsCreate(p) => self.check_input(&p.input),
            Request::AddUserMessage(p) => self.check_input(&p.input),
            Request::UpdateThread(p) => over("params.title", &p.title, self.max_title_chars),
            _ => Ok(()),
        }
    }

    fn check_input(&self, input: &UserInput) -> Result<(), ChatKitError> {
        let max = self.max_message_chars;
        let text: usize = input.text().chars().count();
        let quoted = input
            .quoted_text
            .as_deref()
            .map_or(0, |q| q.chars().count());
        if text + quoted > max {
            return Err(ChatKitError::BadRequest(format!(
                "params.input.content: a message is at most {max} characters (with its quoted text), got {}",
                text + quoted
            )));
        }
        Ok(())
    }

    /// `title` cut to [`Self::max_title_chars`] (a responder's generated title).
    pub fn cut_title(&self, title: String) -> String {
        match title.char_indices().nth(self.max_title_chars) {
            Some((end, _)) => title[..end].to_owned(),
            None => title,
        }
    }

    /// The newest turns (given oldest first) within [`Self::history_chars`]: older turns are
    /// dropped, and the oldest one kept is cut to its last characters when it straddles the
    /// budget.
    pub fn budget_history(&self, turns: Vec<Turn>) -> Vec<Turn> {
        let mut left = self.history_chars;
        let mut kept = Vec::new();
        for mut turn in turns.into_iter().rev() {
            if left == 0 {
                break;
            }
            let chars = turn.text.chars().count();
            if chars > left {
                let skip = chars - left;
                let start = turn.text.char_indices().nth(skip).map_or(0, |(i, _)| i);
                turn.text = turn.text[start..].to_owned();
                left = 0;
            } else {
                left -= chars;
            }
            kept.push(turn);
        }
        kept.reverse();
        kept
    }
}

fn over(field: &str, value: &str, max: usize) -> Result<(), ChatKitError> {
    let chars = value.chars().count();
    if chars > max {
        return Err(ChatKitError::BadRequest(format!(
            "{field}: at most {max} characters, got {chars}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::turn::Role;

    fn turn(text: &str) -> Turn {
        Turn {
            role: Role::User,
            text: text.to_owned(),
        }
    }

    #[test]
    fn history_keeps_the_newest_turns_and_cuts_the_oldest_kept_one_from_its_start() {
        let limits = ChatKitLimits {
            history_chars: 10,
            ..ChatKitLimits::default()
        };
        let kept = limits.budget_history(vec![turn("oldest"), turn("abcdefgh"), turn("newé")]);
        let texts: Vec<&str> = kept.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["cdefgh", "newé"]);
        let all = limits.budget_history(vec![turn("ab"), turn("cd")]);
        assert_eq!(all.len(), 2, "within the budget nothing changes");
    }

    #[test]
    fn titles_are_cut_at_a_character_boundary() {
        let limits = ChatKitLimits {
            max_title_chars: 3,
            ..ChatKitLimits::default()
        };
        assert_eq!(limits.cut_title("ééééé".into()), "ééé");
        assert_eq!(limits.cut_title("ab".into()), "ab");
    }
}

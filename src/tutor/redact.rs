//! Keeps an answer key out of a streamed reply: every occurrence of the key (case-insensitive)
//! is replaced, also when it arrives split across deltas — the tail of each delta that could
//! be the start of the key is held back until the next delta decides.
//!
//! Defence in depth: the key is never in a streamed request (the model that streams does not
//! know it); this stops a model that guesses it, or an echo of the student's own words, from
//! printing it while the check is still open.

use futures::StreamExt;

use crate::turn::{TurnEvent, TurnStream};

/// What the key becomes.
pub const MASK: &str = "▒▒▒";
/// Keys shorter than this are not masked: a word like `for` is everywhere in a lesson.
pub const MIN_KEY_CHARS: usize = 4;

/// A streaming find-and-mask of one key.
#[derive(Debug)]
pub struct Redactor {
    key: Vec<char>,
    held: Vec<char>,
}

impl Redactor {
    /// `None` when `key` is too short to mask.
    pub fn new(key: &str) -> Option<Self> {
        let key: Vec<char> = key.trim().to_lowercase().chars().collect();
        (key.len() >= MIN_KEY_CHARS).then_some(Self {
            key,
            held: Vec::new(),
        })
    }

    /// The part of `delta` (with what was held) that can be shown now.
    pub fn push(&mut self, delta: &str) -> String {
        self.held.extend(delta.chars());
        let mut out = String::new();
        let mut i = 0;
        while i < self.held.len() {
            let rest = &self.held[i..];
            let matched = rest
                .iter()
                .zip(&self.key)
                .take_while(|(a, b)| a.to_lowercase().eq(b.to_lowercase()))
                .count();
            if matched == self.key.len() {
                out.push_str(MASK);
                i += matched;
            } else if matched == rest.len() {
                break; // a possible start of the key: wait for more
            } else {
                out.push(self.held[i]);
                i += 1;
            }
        }
        self.held.drain(..i);
        out
    }

    /// What is still held at the end of the reply (it was not the key).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held).into_iter().collect()
    }
}

/// `stream` with `key` masked in its deltas (unchanged when the key is too short).
pub fn redacted(stream: TurnStream, key: Option<&str>) -> TurnStream {
    let Some(redactor) = key.and_then(Redactor::new) else {
        return stream;
    };
    futures::stream::unfold(
        (stream, redactor, false),
        |(mut inner, mut r, done)| async move {
            if done {
                return None;
            }
            loop {
                match inner.next().await {
                    Some(Ok(TurnEvent::Delta(d))) => {
                        let shown = r.push(&d);
                        if !shown.is_empty() {
                            return Some((vec![Ok(TurnEvent::Delta(shown))], (inner, r, false)));
                        }
                    }
                    Some(other) => {
                        // Held text goes out before whatever ends or splits the text.
                        let held = r.finish();
                        let mut out = Vec::new();
                        if !held.is_empty() {
                            out.push(Ok(TurnEvent::Delta(held)));
                        }
                        out.push(other);
                        return Some((out, (inner, r, false)));
                    }
                    None => {
                        let held = r.finish();
                        let out = if held.is_empty() {
                            vec![]
                        } else {
                            vec![Ok(TurnEvent::Delta(held))]
                        };
                        return Some((out, (inner, r, true)));
                    }
                }
            }
        },
    )
    .flat_map(futures::stream::iter)
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(key: &str, deltas: &[&str]) -> String {
        let mut r = Redactor::new(key).expect("long key");
        let mut out: String = deltas.iter().map(|d| r.push(d)).collect();
        out.push_str(&r.finish());
        out
    }

    #[test]
    fn a_key_split_across_deltas_is_masked() {
        assert_eq!(
            run("infinite loop", &["It is an infi", "nite LO", "op, yes."]),
            format!("It is an {MASK}, yes.")
        );
        assert_eq!(run("range(n)", &["r", "a", "n", "g", "e", "(n)"]), MASK);
    }

    #[test]
    fn text_that_only_starts_like_the_key_is_shown_whole() {
        assert_eq!(run("infinite loop", &["an infin", "ity"]), "an infinity");
        assert_eq!(
            run("infinite loop", &["ends with infin"]),
            "ends with infin"
        );
    }

    #[test]
    fn short_keys_are_not_masked() {
        assert!(Redactor::new("for").is_none());
    }

    proptest::proptest! {
        #[test]
        fn any_split_of_any_text_never_shows_the_key(
            before in "[a-z ]{0,20}", after in "[a-z ]{0,20}", cuts in proptest::collection::vec(0usize..60, 0..6)
        ) {
            let text = format!("{before}secret key{after}");
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(text.len())).collect();
            points.sort_unstable();
            let mut pieces = Vec::new();
            let mut last = 0;
            for p in points { pieces.push(&text[last..p]); last = p; }
            pieces.push(&text[last..]);
            let shown = run("secret key", &pieces);
            proptest::prop_assert!(!shown.contains("secret key"), "{shown}");
            proptest::prop_assert!(shown.contains(MASK));
        }
    }
}

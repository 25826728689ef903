//! The start trigger: what the book's panel sends to open a lesson in Teach mode. A trigger
//! starts the tutor and is never stored nor shown (no `thread.item.done` of a user message).
//!
//! Exactly the old service's rule (docs/PROTOCOL.md): after stripping zero-width spaces
//! (`U+200B`), byte-order marks (`U+FEFF`), no-break spaces (`U+00A0`) and whitespace, the text is
//! empty, `👋`, `Teach me` or `Teach me!` — or it contains `__START_TEACHING__` anywhere.

/// Marker the panel (and older clients) put in a message to start teaching.
const START_MARKER: &str = "__START_TEACHING__";

/// Whole messages that mean "start", after stripping.
const START_WORDS: [&str; 3] = ["👋", "Teach me", "Teach me!"];

/// True when `text` is a start trigger rather than a message.
pub fn is_start_trigger(text: &str) -> bool {
    if text.contains(START_MARKER) {
        return true;
    }
    let stripped =
        text.trim_matches(|c: char| c.is_whitespace() || matches!(c, '\u{200B}' | '\u{FEFF}'));
    // `char::is_whitespace` covers U+00A0, tabs and newlines; U+200B and U+FEFF are not
    // whitespace to Rust (nor to `str::trim`), which is how the panel's trigger got stored.
    stripped.is_empty() || START_WORDS.contains(&stripped)
}

#[cfg(test)]
mod tests {
    use super::is_start_trigger;

    #[test]
    fn the_panels_triggers_start_teaching() {
        for text in [
            "",
            "\u{200B}",
            " \u{200B}\u{FEFF}\u{00A0}\t\n ",
            "👋",
            " 👋\u{200B}",
            "Teach me",
            "Teach me!",
            "\u{00A0}Teach me!\n",
            "__START_TEACHING__",
            "please __START_TEACHING__ now",
        ] {
            assert!(is_start_trigger(text), "{text:?} is a trigger");
        }
    }

    #[test]
    fn messages_are_not_triggers() {
        for text in [
            "hi",
            "teach me",
            "Teach me more",
            "Teach me!!",
            "👋 hello",
            "\u{200B}x",
            "START_TEACHING",
        ] {
            assert!(!is_start_trigger(text), "{text:?} is a message");
        }
    }
}

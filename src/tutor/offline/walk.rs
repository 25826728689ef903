//! The offline tutor's half of the teach walk: a section taught by its substance (its key
//! sentences, a list, its first example), a check built from the section's own facts with
//! its key, the deterministic judge, hints and the lesson summary.

use std::collections::HashSet;

use crate::tutor::text::{Block, blocks, plain, sentences, tokens, truncate_chars};
use crate::tutor::walk::{Check, Verdict, WalkSection, WalkState};

/// Prose of one taught section, in characters (the rest is in the lesson itself).
const TEACH_PROSE_CHARS: usize = 700;
/// Lines of the one example shown.
const MAX_EXAMPLE_LINES: usize = 14;
/// List items shown.
const MAX_ITEMS: usize = 6;
/// The blank of a fill-in-the-blank question.
pub const BLANK: &str = "\\_\\_\\_\\_\\_";

/// The section taught: its sentences in order (soft-wrapped lines joined), its list items, and
/// its first code example, within a budget.
pub fn teach(section: &WalkSection) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut prose = 0;
    let mut items = 0;
    let mut example = false;
    for block in blocks(&section.text) {
        match block {
            Block::Paragraph(p) if prose < TEACH_PROSE_CHARS => {
                let p = whole_sentences(&p, TEACH_PROSE_CHARS - prose);
                if !p.is_empty() {
                    prose += p.chars().count();
                    out.push(p);
                }
            }
            Block::Item(i) if items < MAX_ITEMS && prose < TEACH_PROSE_CHARS => {
                items += 1;
                prose += i.chars().count();
                match out.last_mut() {
                    Some(last) if last.starts_with("- ") => {
                        last.push_str(&format!("\n- {i}"));
                    }
                    _ => out.push(format!("- {i}")),
                }
            }
            Block::Code(code) if !example => {
                example = true;
                let lines: Vec<&str> = code.lines().collect();
                if lines.len() <= MAX_EXAMPLE_LINES + 2 {
                    out.push(code);
                } else {
                    let mut cut = lines[..=MAX_EXAMPLE_LINES].join("\n");
                    cut.push_str("\n…\n");
                    cut.push_str(lines[lines.len() - 1]);
                    out.push(cut);
                }
            }
            _ => {}
        }
    }
    if out.is_empty() {
        return "This part of the lesson is mostly an example to read on the page.".to_owned();
    }
    out.join("\n\n")
}

/// The leading whole sentences of `p` within `budget` characters (at least one).
fn whole_sentences(p: &str, budget: usize) -> String {
    let mut out = String::new();
    for s in sentences(p) {
        if !out.is_empty() && out.chars().count() + s.chars().count() + 1 > budget {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&s);
    }
    out
}

/// A term a check can ask about: bold text, or an inline code span.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    /// As written, with its marks (`**loop**`, `` `for` ``).
    marked: String,
    /// Without marks, for matching answers.
    bare: String,
}

fn terms_in(sentence: &str) -> Vec<Term> {
    let mut out = Vec::new();
    for (open, close) in [("**", "**"), ("`", "`")] {
        let mut rest = sentence;
        while let Some(start) = rest.find(open) {
            let after = &rest[start + open.len()..];
            let Some(len) = after.find(close) else { break };
            let bare = after[..len].trim();
            if bare.chars().filter(|c| c.is_alphabetic()).count() >= 2 && !bare.contains('`') {
                out.push(Term {
                    marked: format!("{open}{bare}{close}"),
                    bare: bare.to_owned(),
                });
            }
            rest = &after[len + close.len()..];
        }
    }
    out
}

/// A sentence fit for a question or a summary: whole (a capital, code or bold start; a full stop, `!` or
/// `?` end; balanced brackets), long enough to say something, not an exercise.
pub fn self_contained(s: &str) -> bool {
    let first = s.chars().next().unwrap_or(' ');
    let starts = first.is_uppercase() || first == '`' || first == '*' || first.is_ascii_digit();
    let ends = s.ends_with(['.', '!']) && !s.ends_with("..");
    let balanced = s.matches('(').count() == s.matches(')').count()
        && s.matches('`').count() % 2 == 0
        && s.matches("**").count() % 2 == 0;
    starts && ends && balanced && plain(s).split_whitespace().count() >= 6
}

/// The term `t` is inside brackets in `s` (a blank there reads like a fragment).
fn in_brackets(s: &str, t: &Term) -> bool {
    let Some(at) = s.find(&t.marked) else {
        return true;
    };
    let before = &s[..at];
    before.matches('(').count() > before.matches(')').count()
}

/// Every term of the lesson, for wrong options.
fn lesson_terms(sections: &[WalkSection]) -> Vec<(usize, Term)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, s) in sections.iter().enumerate() {
        for sentence in sentences(&s.text) {
            for t in terms_in(&sentence) {
                if seen.insert(t.bare.to_lowercase()) {
                    out.push((i, t));
                }
            }
        }
    }
    out
}

/// The check of section `at`: fill in the blank of one of its own whole sentences, with the
/// blanked term and two other terms of the lesson as options; else "which statement belongs
/// to this section" with other sections' statements as the wrong options; else a typed
/// question on its first sentence.
pub fn check(sections: &[WalkSection], at: usize) -> Check {
    let section = &sections[at];
    let own = sentences(&section.text);
    let all_terms = lesson_terms(sections);
    for sentence in own.iter().filter(|s| self_contained(s)) {
        for term in terms_in(sentence) {
            if in_brackets(sentence, &term) || sentence.matches(&term.marked).count() != 1 {
                continue;
            }
            let lower = sentence.to_lowercase();
            let mut wrong: Vec<&Term> = all_terms
                .iter()
                .map(|(_, t)| t)
                .filter(|t| t.bare.to_lowercase() != term.bare.to_lowercase())
                .filter(|t| !lower.contains(&t.bare.to_lowercase()))
                .filter(|t| t.marked.starts_with('`') == term.marked.starts_with('`'))
                .collect();
            // Nearest sections' terms first: they are the plausible confusions.
            wrong.sort_by_key(|t| {
                let i = all_terms.iter().position(|(_, x)| x == *t).unwrap_or(0);
                let sec = all_terms[i].0;
                (sec.abs_diff(at), i)
            });
            if wrong.len() < 2 {
                continue;
            }
            let mut options = vec![
                term.marked.clone(),
                wrong[0].marked.clone(),
                wrong[1].marked.clone(),
            ];
            options.sort_by_key(|o| plain(o).to_lowercase());
            let blanked = sentence.replacen(&term.marked, BLANK, 1);
            return Check {
                question: format!("Fill in the blank: {blanked}"),
                options,
                key: Some(term.marked.clone()),
                hints: 0,
            };
        }
    }
    if let Some(check) = statement_check(sections, at) {
        return check;
    }
    let first = own
        .first()
        .cloned()
        .unwrap_or_else(|| section.title().to_owned());
    Check {
        question: format!(
            "In a sentence of your own: what does this section say about *{}*?",
            section.title()
        ),
        options: Vec::new(),
        key: Some(first),
        hints: 0,
    }
}

/// "Which of these statements is from *{heading}*?" with two other sections' statements.
fn statement_check(sections: &[WalkSection], at: usize) -> Option<Check> {
    let pick = |i: usize| {
        sentences(&sections[i].text)
            .into_iter()
            .find(|s| self_contained(s) && s.chars().count() <= 200)
    };
    let right = pick(at)?;
    let mut others: Vec<usize> = (0..sections.len()).filter(|&i| i != at).collect();
    others.sort_by_key(|&i| (i.abs_diff(at), i));
    let wrong: Vec<String> = others.into_iter().filter_map(pick).take(2).collect();
    if wrong.len() < 2 {
        return None;
    }
    let mut options = vec![right.clone(), wrong[0].clone(), wrong[1].clone()];
    options.sort_by_key(|o| plain(o).to_lowercase());
    Some(Check {
        question: format!(
            "Which of these statements comes from *{}*?",
            sections[at].title()
        ),
        options,
        key: Some(right),
        hints: 0,
    })
}

/// The letter of option `i` (`A`, `B`, …).
pub fn letter(i: usize) -> char {
    char::from(b'A' + u8::try_from(i.min(25)).unwrap_or(0))
}

/// The option an answer names: its letter (`b`, `B)`, `(b)`, `option b`) or its text.
pub fn chosen_option(check: &Check, answer: &str) -> Option<usize> {
    let a = answer.trim().to_lowercase();
    let a = a.trim_start_matches("option").trim();
    let core = a.trim_matches(|c: char| !c.is_alphanumeric());
    if core.len() == 1 {
        let c = core.chars().next()?;
        let i = (c as usize).checked_sub('a' as usize)?;
        return (i < check.options.len()).then_some(i);
    }
    // "B) while loops" (the button's text) or the option's text itself.
    if let Some((head, _)) = a.split_once(')') {
        let head = head.trim_matches(|c: char| !c.is_alphanumeric());
        if head.len() == 1 {
            let i = (head.chars().next()? as usize).checked_sub('a' as usize)?;
            if i < check.options.len() {
                return Some(i);
            }
        }
    }
    let said = plain(a).to_lowercase();
    check
        .options
        .iter()
        .position(|o| plain(o).to_lowercase() == said)
}

/// The deterministic judge: an option named by letter or text, else the key's words.
pub fn judge(check: &Check, answer: &str) -> Verdict {
    let key = check.key.as_deref().unwrap_or_default();
    if !check.options.is_empty() {
        if let Some(i) = chosen_option(check, answer) {
            return if check.options[i] == key {
                Verdict::Correct
            } else {
                Verdict::Incorrect
            };
        }
        let bare = plain(key).to_lowercase();
        let said = plain(answer).to_lowercase();
        if bare.chars().count() <= 40 && !bare.is_empty() && contains_phrase(&said, &bare) {
            return Verdict::Correct;
        }
        return if looks_like_question(answer) {
            Verdict::NotAnAnswer
        } else {
            Verdict::Incorrect
        };
    }
    if looks_like_question(answer) {
        return Verdict::NotAnAnswer;
    }
    let expected: HashSet<String> = tokens(&plain(key)).into_iter().collect();
    let hits = tokens(answer)
        .into_iter()
        .collect::<HashSet<_>>()
        .intersection(&expected)
        .count();
    if hits >= 2 || (hits >= 1 && expected.len() <= 2) {
        Verdict::Correct
    } else {
        Verdict::Incorrect
    }
}

fn contains_phrase(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + phrase.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// A question or a request rather than an answer ("ok what next?", "why is that?").
pub fn looks_like_question(message: &str) -> bool {
    let m = message.trim().to_lowercase();
    const STARTS: &[&str] = &[
        "what ",
        "why ",
        "how ",
        "when ",
        "where ",
        "which ",
        "who ",
        "can you",
        "could you",
        "explain",
        "tell me",
        "show me",
        "give me",
        "i don't",
        "i dont",
        "idk",
        "ok",
        "okay",
        "what's",
        "whats",
    ];
    m.ends_with('?') || STARTS.iter().any(|s| m.starts_with(s))
}

/// A clue that does not give the answer: the first hint rules out one wrong option (or, for
/// a typed answer, names the word it starts with); the second rules out another.
pub fn hint(check: &Check) -> String {
    let key = check.key.as_deref().unwrap_or_default();
    let wrong: Vec<(usize, &String)> = check
        .options
        .iter()
        .enumerate()
        .filter(|(_, o)| o.as_str() != key)
        .collect();
    let n = usize::try_from(check.hints).unwrap_or(0);
    if let Some((i, o)) = wrong.get(n.min(wrong.len().saturating_sub(1))) {
        if n < wrong.len() {
            return format!("It is not {}) {o}.", letter(*i));
        }
    }
    let bare = plain(key);
    let first: String = bare
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    if check.options.is_empty() && !first.is_empty() {
        return format!("A good answer starts the way the section does: “{first} …”.");
    }
    format!(
        "The answer has {} characters; read the section's sentences again.",
        bare.chars().count()
    )
}

/// The check as the student sees it: the question and its lettered options.
pub fn render_check(check: &Check, attempt: Option<(u32, u32)>) -> String {
    let label = match attempt {
        Some((n, of)) if n > 1 => format!("**Check (try {n} of {of}):**"),
        _ => "**Check:**".to_owned(),
    };
    let mut out = format!("{label} {}", check.question);
    for (i, o) in check.options.iter().enumerate() {
        out.push_str(&format!("\n{}) {o}", letter(i)));
    }
    out
}

/// The end of the walk: each section's first statement, and the score.
pub fn summary(title: &str, sections: &[WalkSection], walk: &WalkState) -> String {
    let mut out = format!("Here is **{title}** in short:\n");
    for s in sections {
        let first = sentences(&s.text)
            .into_iter()
            .find(|x| self_contained(x))
            .unwrap_or_default();
        let line = truncate_chars(&first, 220);
        out.push_str(&format!("\n- **{}**: {line}", s.title()));
    }
    out.push_str(&format!(
        "\n\nYou answered {} of {} checks right.",
        walk.correct(),
        walk.total
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(heading: &str, text: &str) -> WalkSection {
        WalkSection {
            heading: heading.into(),
            text: text.into(),
        }
    }

    fn loops() -> Vec<WalkSection> {
        vec![
            section(
                "for loops",
                "```python\nfor i in range(3):\n    print(i)\n```\n\n`range(n)` produces the numbers `0` to `n - 1`. Use `for` whenever you know *what* to go\nthrough, even if you do not know how many items there are.",
            ),
            section(
                "while loops",
                "A `while` loop must change something that its condition depends on; otherwise it never ends\n(an **infinite loop** — press Ctrl+C to stop it).",
            ),
            section(
                "break and continue",
                "- `break` leaves the loop at once.\n- `continue` skips the rest of this round and starts the next one.",
            ),
        ]
    }

    #[test]
    fn a_section_is_taught_with_whole_sentences_and_its_example() {
        let t = teach(&loops()[0]);
        assert!(t.contains("```python\nfor i in range(3):"), "{t}");
        assert!(
            !t.contains("*what* to go\nthrough") && t.contains("*what* to go through, even"),
            "joined, not cut: {t}"
        );
        assert!(!t.contains("go. through"), "{t}");
    }

    #[test]
    fn checks_blank_a_term_of_a_whole_sentence_with_options_from_the_lesson() {
        let c = check(&loops(), 0);
        assert!(c.question.starts_with("Fill in the blank: "), "{c:?}");
        assert_eq!(c.options.len(), 3);
        let key = c.key.clone().expect("key");
        assert!(c.options.contains(&key));
        assert!(
            !c.question.contains(&key),
            "the key is not in the question: {c:?}"
        );
        assert_eq!(judge(&c, &key), Verdict::Correct);
        let right = c.options.iter().position(|o| *o == key).expect("pos");
        assert_eq!(judge(&c, &letter(right).to_string()), Verdict::Correct);
        let wrong = (right + 1) % 3;
        assert_eq!(
            judge(&c, &format!("{})", letter(wrong))),
            Verdict::Incorrect
        );
        assert_eq!(judge(&c, "ok what next?"), Verdict::NotAnAnswer);
        assert_eq!(judge(&c, "no idea"), Verdict::Incorrect);
    }

    #[test]
    fn a_blank_is_never_cut_from_inside_brackets() {
        let c = check(&loops(), 1);
        assert!(!c.question.contains("(an \\_"), "{c:?}");
    }

    #[test]
    fn hints_rule_out_wrong_options_without_naming_the_answer() {
        let mut c = check(&loops(), 0);
        let key = c.key.clone().expect("key");
        let h1 = hint(&c);
        assert!(h1.starts_with("It is not"), "{h1}");
        assert!(!h1.contains(&key));
        c.hints = 1;
        let h2 = hint(&c);
        assert_ne!(h1, h2);
        assert!(!h2.contains(&key));
    }
}

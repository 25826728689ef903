//! Lesson-aware prompt suggestions for the chat start screen: built from the lesson's own title
//! and section headings, or generic ones when there is no lesson to read.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::lesson::Lesson;
use super::mode::Mode;

/// The lesson a set of suggestions was built from.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct LessonRef {
    pub path: String,
    pub title: String,
}

/// The body of `GET /chatkit/suggestions`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Suggestions {
    pub suggestions: Vec<String>,
    /// `null` when the lesson is missing or empty (the suggestions are then generic).
    pub lesson: Option<LessonRef>,
}

/// A [`Suggestions`] answer serialised once: the JSON body and a strong validator of it.
#[derive(Debug)]
pub struct Rendered {
    pub json: Bytes,
    /// `"<first 128 bits of the body's SHA-256, hex>"`, quoted as an `ETag` value.
    pub etag: String,
}

impl Rendered {
    fn of(suggestions: &Suggestions) -> Self {
        // Strings and a list of strings: serialising them cannot fail.
        let json = serde_json::to_vec(suggestions).unwrap_or_default();
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&json))[..32]);
        Self {
            json: Bytes::from(json),
            etag,
        }
    }
}

/// Per-lesson memo of the rendered suggestions of each mode, filled on first use. Cloning a
/// lesson gives an empty memo; two memos always compare equal (it is a cache, not content).
#[derive(Default)]
pub struct SuggestionsMemo([OnceLock<Arc<Rendered>>; 3]);

impl Clone for SuggestionsMemo {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for SuggestionsMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for SuggestionsMemo {}

impl std::fmt::Debug for SuggestionsMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SuggestionsMemo")
    }
}

fn slot(mode: Mode) -> usize {
    match mode {
        Mode::Teach => 0,
        Mode::Ask => 1,
        Mode::Quiz => 2,
    }
}

/// [`suggestions`] serialised, built once per lesson and mode (the answer of every later
/// request for it is a reference count).
pub fn rendered(lesson: Option<&Lesson>, mode: Mode) -> Arc<Rendered> {
    static GENERIC: [OnceLock<Arc<Rendered>>; 3] = [const { OnceLock::new() }; 3];
    let memo = match lesson.filter(|l| !l.is_empty()) {
        Some(l) => &l.suggestions.0[slot(mode)],
        None => &GENERIC[slot(mode)],
    };
    memo.get_or_init(|| Arc::new(Rendered::of(&suggestions(lesson, mode))))
        .clone()
}

/// Headings that name a lesson's scaffolding rather than a concept worth asking about.
const SCAFFOLDING: [&str; 14] = [
    "summary",
    "key takeaways",
    "takeaways",
    "exercises",
    "exercise",
    "practice",
    "try it",
    "try it yourself",
    "next steps",
    "what's next",
    "further reading",
    "references",
    "quiz",
    "recap",
];

/// Three or four suggestions for `mode`, from `lesson` when it has content.
pub fn suggestions(lesson: Option<&Lesson>, mode: Mode) -> Suggestions {
    let Some(lesson) = lesson.filter(|l| !l.is_empty()) else {
        return Suggestions {
            suggestions: generic(mode),
            lesson: None,
        };
    };
    let title = clean(&lesson.title);
    let topics = topics(lesson);
    let suggestions = match mode {
        Mode::Teach => teach(&title, &topics),
        Mode::Ask => ask(&title, &topics),
        Mode::Quiz => quiz(&title, &topics),
    };
    Suggestions {
        suggestions,
        lesson: Some(LessonRef {
            path: lesson.path.clone(),
            title: lesson.title.clone(),
        }),
    }
}

fn generic(mode: Mode) -> Vec<String> {
    let list: &[&str] = match mode {
        Mode::Teach => &[
            "What should I understand on this page?",
            "Walk me through it step by step",
            "Quiz me on this page",
        ],
        Mode::Ask => &[
            "Summarise this page",
            "What are the key takeaways?",
            "Define the key terms",
        ],
        Mode::Quiz => &[
            "Quiz me on this page",
            "Ask me one question at a time",
            "Test me on the key terms",
        ],
    };
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Section headings below the title (levels 2–3), cleaned, scaffolding skipped, first two.
fn topics(lesson: &Lesson) -> Vec<String> {
    let title = clean(&lesson.title).to_lowercase();
    lesson
        .sections
        .iter()
        .filter(|s| (2..=3).contains(&s.level))
        .map(|s| clean(&s.heading))
        .filter(|h| !h.is_empty() && h.to_lowercase() != title)
        .filter(|h| !SCAFFOLDING.contains(&h.to_lowercase().as_str()))
        .take(2)
        .collect()
}

fn teach(title: &str, topics: &[String]) -> Vec<String> {
    let mut out = vec![format!("Walk me through \"{title}\"")];
    match topics {
        [] => out.push(format!("Why does \"{title}\" matter?")),
        [one] => out.push(format!("Explain {one} with an example")),
        [one, two, ..] => {
            out.push(format!("Explain {one} with an example"));
            out.push(format!("How does {two} work?"));
        }
    }
    out.push(format!("Quiz me on \"{title}\""));
    out
}

fn ask(title: &str, topics: &[String]) -> Vec<String> {
    let mut out = vec![format!("Summarise \"{title}\" in three sentences")];
    for topic in topics {
        out.push(format!("What is {topic}?"));
    }
    if out.len() < 3 {
        out.push("What are the key takeaways?".to_owned());
    }
    out.push("Define the key terms".to_owned());
    out.truncate(4);
    out
}

fn quiz(title: &str, topics: &[String]) -> Vec<String> {
    let mut out = vec![format!("Quiz me on \"{title}\"")];
    for topic in topics {
        out.push(format!("Ask me a question about {topic}"));
    }
    out.push("Test me on the key terms".to_owned());
    out.truncate(4);
    out
}

/// Heading text without Markdown emphasis, code ticks, numbering or trailing punctuation.
fn clean(heading: &str) -> String {
    let text: String = heading
        .chars()
        .filter(|c| !matches!(c, '*' | '`'))
        .collect();
    let text = text.trim();
    let text = strip_numbering(text);
    text.trim_end_matches([':', '.', '?', '!'])
        .trim()
        .to_owned()
}

/// `1. Lists` / `Step 2: Loops` → `Lists` / `Loops`.
fn strip_numbering(text: &str) -> &str {
    let rest = text.strip_prefix("Step ").unwrap_or(text);
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 {
        return text;
    }
    let after = &rest[digits..];
    match after.strip_prefix(['.', ':', ')']) {
        Some(r) if r.starts_with(' ') => r.trim_start(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{LessonPath, parse_lesson};

    fn lesson(raw: &str) -> Lesson {
        parse_lesson(&LessonPath::parse("01-a/02-lists").expect("valid"), raw)
    }

    const RAW: &str = "---\ntitle: Lists\n---\n# Lists\n\nIntro.\n\n## 1. **Indexing**\n\nA.\n\n## Slicing:\n\nB.\n\n## `append` and friends\n\nC.\n\n## Summary\n\nD.\n";

    #[test]
    fn rendered_is_the_serialised_answer_built_once_per_lesson_and_mode() {
        let l = lesson(RAW);
        let teach = rendered(Some(&l), Mode::Teach);
        let expected = serde_json::to_vec(&suggestions(Some(&l), Mode::Teach)).expect("json");
        assert_eq!(teach.json.as_ref(), expected.as_slice());
        assert_eq!(teach.etag.len(), 34, "{}", teach.etag);
        assert!(Arc::ptr_eq(&teach, &rendered(Some(&l), Mode::Teach)));
        let quiz = rendered(Some(&l), Mode::Quiz);
        assert_ne!(quiz.json, teach.json);
        assert_ne!(quiz.etag, teach.etag);
        // A copy of the lesson (e.g. read back from Redis) renders the same bytes afresh.
        let copy = l.clone();
        let again = rendered(Some(&copy), Mode::Teach);
        assert!(!Arc::ptr_eq(&teach, &again));
        assert_eq!(again.json, teach.json);
        let generic = rendered(None, Mode::Ask);
        let expected = serde_json::to_vec(&suggestions(None, Mode::Ask)).expect("json");
        assert_eq!(generic.json.as_ref(), expected.as_slice());
    }

    #[test]
    fn teach_suggestions_use_the_title_and_the_first_section_headings() {
        let s = suggestions(Some(&lesson(RAW)), Mode::Teach);
        assert_eq!(
            s.suggestions,
            [
                "Walk me through \"Lists\"",
                "Explain Indexing with an example",
                "How does Slicing work?",
                "Quiz me on \"Lists\""
            ]
        );
        assert_eq!(s.lesson.map(|l| l.title).as_deref(), Some("Lists"));
    }

    #[test]
    fn quiz_suggestions_offer_questions_on_the_lesson_topics() {
        let s = suggestions(Some(&lesson(RAW)), Mode::Quiz);
        assert_eq!(
            s.suggestions,
            [
                "Quiz me on \"Lists\"",
                "Ask me a question about Indexing",
                "Ask me a question about Slicing",
                "Test me on the key terms"
            ]
        );
    }

    #[test]
    fn ask_suggestions_are_short_lookups() {
        let s = suggestions(Some(&lesson(RAW)), Mode::Ask);
        assert_eq!(
            s.suggestions,
            [
                "Summarise \"Lists\" in three sentences",
                "What is Indexing?",
                "What is Slicing?",
                "Define the key terms"
            ]
        );
    }

    #[test]
    fn scaffolding_headings_are_not_suggested() {
        let l = lesson("# Loops\n\n## Summary\n\nx\n\n## Exercises\n\ny\n");
        let s = suggestions(Some(&l), Mode::Teach);
        assert_eq!(s.suggestions.len(), 3);
        assert!(s.suggestions.iter().all(|x| !x.contains("Summary")));
    }

    #[test]
    fn a_missing_or_empty_lesson_gets_generic_suggestions_and_no_lesson() {
        let empty = lesson("---\ntitle: Empty\n---\n\n");
        for l in [None, Some(&empty)] {
            let s = suggestions(l, Mode::Teach);
            assert_eq!(s.lesson, None);
            assert_eq!(s.suggestions, generic(Mode::Teach));
        }
        assert_eq!(Mode::parse("ASK"), Ok(Mode::Ask));
        assert_eq!(Mode::parse("Quiz"), Ok(Mode::Quiz));
        assert!(Mode::parse("review").is_err());
    }
}

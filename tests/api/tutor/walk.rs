//! The offline tutor walks every lesson of the sample book through the `Responder` contract,
//! as a student would (wrong answers, a hint, "ok what next?", right answers, skips), and none
//! of the artefacts of the old offline tutor appear: lines joined with a full stop, one-sentence
//! sections, "in your own words" checks accepted whatever the answer, a walk that moves on
//! unasked, comparisons answered one-sided, quiz blanks cut from fragments.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use prometheus_client::registry::Registry;
use serde_json::Value;
use study_mode_api::config::Env;
use study_mode_api::content::{Content, LessonPath, Mode};
use study_mode_api::settings::Settings;
use study_mode_api::turn::{Responder, Role, Turn, TurnEvent, TurnRequest};
use study_mode_api::tutor::Tutor;
use study_mode_api::tutor::walk::TutorState;

pub const BOOK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sample-book");
pub const LONG: &str = "02-working-with-data/01-collections/03-tuples-sets-and-choosing";
const LOOPS: &str = "01-python-basics/02-control-flow/02-loops";

pub async fn offline_tutor() -> (Tutor, Content) {
    let settings = Settings::from_env(&mut Env::from_map([("PORT", "0"), ("CONTENT_DIR", BOOK)]))
        .expect("settings");
    let mut registry = Registry::default();
    let outbound = &settings.outbound;
    let content = Content::new(&settings.content, outbound, None, &mut registry).await;
    let tutor = Tutor::new(&settings.tutor, content.clone(), outbound, &mut registry);
    (tutor, content)
}

/// One turn's outcome.
#[derive(Debug, Default, Clone)]
pub struct Reply {
    pub text: String,
    pub state: Option<Value>,
    pub progress: Vec<String>,
    pub choices: Vec<String>,
}

/// A thread as the ChatKit server keeps it: history and saved state.
pub struct Student {
    pub tutor: Arc<dyn Responder>,
    pub lesson: String,
    pub mode: Mode,
    pub history: Vec<Turn>,
    pub state: Option<Value>,
    pub locale: Option<String>,
}

impl Student {
    pub fn new(tutor: Arc<dyn Responder>, lesson: &str) -> Self {
        Self {
            tutor,
            lesson: lesson.to_owned(),
            mode: Mode::Teach,
            history: Vec::new(),
            state: None,
            locale: None,
        }
    }

    pub async fn say(&mut self, message: Option<&str>) -> Reply {
        let request = TurnRequest {
            user_id: "u".into(),
            user_name: Some("Ada".into()),
            lesson: Some(LessonPath::parse(&self.lesson).expect("path")),
            mode: self.mode,
            message: message.map(Into::into),
            history: self.history.clone(),
            state: self.state.clone(),
            locale: self.locale.clone(),
            ..TurnRequest::default()
        };
        let events: Vec<_> = tokio::time::timeout(
            Duration::from_secs(20),
            self.tutor.respond(request).collect::<Vec<_>>(),
        )
        .await
        .expect("the reply ends");
        let mut reply = Reply::default();
        for e in events {
            match e.expect("no error") {
                TurnEvent::Delta(d) => reply.text.push_str(&d),
                TurnEvent::State(s) => reply.state = Some(s),
                TurnEvent::Progress(p) => reply.progress.push(p),
                TurnEvent::Choices(c) => reply.choices = c.into_iter().map(|c| c.value).collect(),
                _ => {}
            }
        }
        if let Some(m) = message {
            self.history.push(Turn {
                role: Role::User,
                text: m.into(),
            });
        }
        self.history.push(Turn {
            role: Role::Assistant,
            text: reply.text.clone(),
        });
        if reply.state.is_some() {
            self.state = reply.state.clone();
        }
        reply
    }

    pub fn walk(&self) -> study_mode_api::tutor::walk::WalkState {
        TutorState::load(self.state.as_ref())
            .walk
            .expect("a walk is saved")
    }

    /// The hidden key of the pending check (tests read the saved state, as the server does).
    pub fn key(&self) -> String {
        self.walk()
            .check
            .and_then(|c| c.key)
            .expect("the offline tutor knows its key")
    }
}

/// Lines of the lesson's paragraphs that continue on the next line: `(last word, next word)`.
fn soft_wraps(markdown: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut fence = false;
    let lines: Vec<&str> = markdown.lines().collect();
    for pair in lines.windows(2) {
        let (a, b) = (pair[0].trim(), pair[1].trim());
        if a.starts_with("```") {
            fence = !fence;
        }
        if fence || a.is_empty() || b.is_empty() || b.starts_with(['-', '#', '`', '|', '<', '*']) {
            continue;
        }
        if a.ends_with(['.', '!', '?', ':']) || !b.starts_with(|c: char| c.is_lowercase()) {
            continue;
        }
        let last = a.split_whitespace().last().unwrap_or_default().to_owned();
        let next = b.split_whitespace().next().unwrap_or_default().to_owned();
        out.push((last, next));
    }
    out
}

fn assert_no_artefacts(lesson: &str, raw: &str, text: &str) {
    for (last, next) in soft_wraps(raw) {
        let joined = format!("{last}. {next}");
        assert!(
            !text.contains(&joined),
            "{lesson}: a soft-wrapped line was joined with a full stop ({joined:?}) in:\n{text}"
        );
    }
    assert!(
        !text.contains("in your own words, what is"),
        "{lesson}: the old any-answer check is back:\n{text}"
    );
    for line in text.lines().filter(|l| l.contains("Fill in the blank:")) {
        let sentence = line.split("Fill in the blank:").nth(1).unwrap_or("").trim();
        let first = sentence.chars().next().unwrap_or(' ');
        assert!(
            first.is_uppercase() || first == '`' || first == '*' || first == '\\',
            "{lesson}: a blank cut from a fragment: {line}"
        );
        assert_eq!(
            sentence.matches('(').count(),
            sentence.matches(')').count(),
            "{lesson}: unbalanced: {line}"
        );
    }
}

fn lessons() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(BOOK)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("dir") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if !(name.ends_with(".md") || name.ends_with(".mdx")) || name == "README.md" {
                continue;
            }
            let rel = p
                .strip_prefix(BOOK)
                .expect("in book")
                .to_string_lossy()
                .to_string();
            let path = rel
                .trim_end_matches(".mdx")
                .trim_end_matches(".md")
                .trim_end_matches("/index")
                .to_owned();
            out.push((path, std::fs::read_to_string(&p).expect("read")));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn every_lesson_of_the_sample_book_is_walked_to_the_end_without_artefacts() {
    let (tutor, _) = offline_tutor().await;
    let tutor: Arc<dyn Responder> = Arc::new(tutor);
    let all = lessons();
    assert!(all.len() >= 10, "{all:?}");
    for (path, raw) in &all {
        let mut s = Student::new(tutor.clone(), path);
        let start = s.say(None).await;
        assert_no_artefacts(path, raw, &start.text);
        let total = s.walk().total;
        assert!(
            start.text.contains(&format!("Section 1 of {total}")),
            "{path}: {}",
            start.text
        );
        assert_eq!(
            start
                .progress
                .first()
                .map(|p| p.starts_with("Section 1 of")),
            Some(true)
        );
        for n in 0..total {
            assert_eq!(s.walk().current, n, "{path}: the walk moved on unasked");
            // Not an answer: the walk stays where it is.
            let stay = s.say(Some("ok what next?")).await;
            assert_eq!(
                s.walk().current,
                n,
                "{path}: 'ok what next?' moved the walk:\n{}",
                stay.text
            );
            assert!(
                stay.text.contains("**Check"),
                "{path}: the check is asked again:\n{}",
                stay.text
            );
            // A wrong answer is judged wrong.
            let wrong = s.say(Some("zebra xylophone quantum")).await;
            assert!(
                wrong.text.starts_with("**Not quite.**"),
                "{path} §{n}: nonsense accepted:\n{}",
                wrong.text
            );
            assert_eq!(s.walk().current, n);
            let hint = s.say(Some("hint")).await;
            assert!(hint.text.starts_with("**Hint:**"), "{path}: {}", hint.text);
            assert!(!hint.text.contains(&format!("The answer: {}", s.key())));
            let key = s.key();
            let right = s.say(Some(&key)).await;
            assert!(
                right.text.starts_with("**Correct!**"),
                "{path} §{n}: the key {key:?} was not accepted:\n{}",
                right.text
            );
            for text in [&stay.text, &wrong.text, &hint.text, &right.text] {
                assert_no_artefacts(path, raw, text);
            }
            if n + 1 < total {
                assert!(
                    right
                        .text
                        .contains(&format!("Section {} of {total}", n + 2)),
                    "{path}: {}",
                    right.text
                );
            } else {
                assert!(
                    right.text.contains("Lesson complete"),
                    "{path}: {}",
                    right.text
                );
                assert!(
                    right
                        .text
                        .contains(&format!("You answered {total} of {total} checks right")),
                    "{}",
                    right.text
                );
            }
        }
        assert!(s.walk().complete);
    }
}

#[tokio::test]
async fn each_section_is_taught_by_its_substance_not_one_sentence() {
    let (tutor, _) = offline_tutor().await;
    let mut s = Student::new(Arc::new(tutor), LOOPS);
    let intro = s.say(None).await;
    assert!(
        intro
            .text
            .contains("A **loop** runs the same block several times."),
        "{}",
        intro.text
    );
    assert!(!intro.choices.is_empty(), "answer buttons are offered");
    let key = s.key();
    let start = s.say(Some(&key)).await;
    // "for loops": its example and both of its sentences, whole.
    assert!(
        start.text.contains("**Section 2 of 6: for loops**"),
        "{}",
        start.text
    );
    assert!(
        start
            .text
            .contains("for name in [\"Ada\", \"Grace\", \"Linus\"]:"),
        "{}",
        start.text
    );
    assert!(
        start
            .text
            .contains("`range(n)` produces the numbers `0` to `n - 1`."),
        "{}",
        start.text
    );
    assert!(
        start.text.contains("what* to go through, even if"),
        "{}",
        start.text
    );
}

#[tokio::test]
async fn a_comparison_question_is_answered_from_both_sides() {
    let (tutor, _) = offline_tutor().await;
    let mut s = Student::new(Arc::new(tutor), LOOPS);
    s.mode = Mode::Ask;
    let reply = s
        .say(Some(
            "What is the difference between a for loop and a while loop?",
        ))
        .await;
    assert!(reply.text.contains("**for loop**:"), "{}", reply.text);
    assert!(reply.text.contains("**while loop**:"), "{}", reply.text);
    assert!(
        reply
            .text
            .contains("`for` goes through the items of a sequence"),
        "{}",
        reply.text
    );
    assert!(reply.text.matches("`while`").count() >= 1, "{}", reply.text);
}

#[tokio::test]
async fn quiz_blanks_come_from_whole_sentences_in_every_lesson() {
    let (tutor, content) = offline_tutor().await;
    for (path, raw) in lessons() {
        let lesson = content
            .lesson(&LessonPath::parse(&path).expect("path"))
            .await
            .expect("loads")
            .expect("exists");
        let prepared = study_mode_api::tutor::offline::Prepared::new(&lesson);
        for q in study_mode_api::tutor::offline::quiz::questions(&prepared) {
            assert_no_artefacts(&path, &raw, &q.prompt);
            assert!(!q.prompt.contains("(an \\_"), "{path}: {}", q.prompt);
        }
    }
    drop(tutor);
}

#[tokio::test]
async fn three_wrong_answers_reveal_the_answer_and_move_on_and_skip_does_too() {
    let (tutor, _) = offline_tutor().await;
    let mut s = Student::new(Arc::new(tutor), LOOPS);
    s.say(None).await;
    let key = s.key();
    s.say(Some("wrong one")).await;
    let second = s.say(Some("wrong two")).await;
    assert!(
        second.text.contains("**Check (try 3 of 3):**"),
        "{}",
        second.text
    );
    let third = s.say(Some("wrong three")).await;
    assert!(
        third
            .text
            .starts_with("**Not quite.** That was the last try"),
        "{}",
        third.text
    );
    assert!(
        third.text.contains(&key),
        "the answer is revealed: {}",
        third.text
    );
    assert_eq!(s.walk().current, 1);
    let key = s.key();
    let skipped = s.say(Some("  Next Section! ")).await;
    assert!(
        skipped.text.starts_with("Skipping ahead. The answer was:"),
        "{}",
        skipped.text
    );
    assert!(skipped.text.contains(&key));
    assert_eq!(s.walk().current, 2);
    let w = s.walk();
    use study_mode_api::tutor::walk::Outcome;
    assert_eq!(w.results, vec![Outcome::Revealed, Outcome::Skipped]);
}

#[tokio::test]
async fn a_free_question_mid_walk_is_answered_and_the_place_is_kept() {
    let (tutor, _) = offline_tutor().await;
    let mut s = Student::new(Arc::new(tutor), LOOPS);
    s.say(None).await;
    let before = s.walk();
    let reply = s.say(Some("what does break do?")).await;
    assert!(
        reply.text.contains("`break` leaves the loop at once"),
        "{}",
        reply.text
    );
    assert!(
        reply.text.contains("We're still on section 1"),
        "{}",
        reply.text
    );
    assert_eq!(s.walk(), before, "nothing changed");
}

#[tokio::test]
async fn the_offline_tutor_says_once_that_it_answers_in_english() {
    let (tutor, _) = offline_tutor().await;
    let mut s = Student::new(Arc::new(tutor), LOOPS);
    s.locale = Some("ur".into());
    let first = s.say(None).await;
    assert!(
        first
            .text
            .starts_with("*(The offline tutor answers in English only.)*"),
        "{}",
        first.text
    );
    let second = s.say(Some("hint")).await;
    assert!(!second.text.contains("English only"), "{}", second.text);
}

#[tokio::test]
async fn the_long_lesson_has_over_ten_sections_and_30_kb() {
    let raw = std::fs::read_to_string(format!("{BOOK}/{LONG}.md")).expect("long lesson");
    assert!(raw.len() >= 30 * 1024, "{} bytes", raw.len());
    let (tutor, _) = offline_tutor().await;
    let mut s = Student::new(Arc::new(tutor), LONG);
    s.say(None).await;
    assert!(s.walk().total >= 10, "{}", s.walk().total);
}

use std::sync::Arc;

use super::*;
use crate::turn::{Role, Turn, TurnRequest};
use crate::tutor::context::tests::lesson;
use crate::tutor::settings::TutorSettings;

fn ownership() -> Arc<Lesson> {
    lesson(
        "Ownership in Rust",
        &[
            (
                "",
                "This lesson explains how Rust manages memory without a garbage collector.",
            ),
            (
                "Owners",
                "**Ownership** is a set of rules that govern how a program manages memory. \
                 Each value has exactly one owner. When the owner goes out of scope, the value is dropped.",
            ),
            (
                "Moves",
                "Assigning a value to another variable moves it. After a **move**, the old variable \
                 can no longer be used. Copy types like integers are copied instead of moved.",
            ),
            (
                "Borrowing",
                "A reference borrows a value without taking ownership. The **borrow checker** makes \
                 sure references never outlive the value they point to.",
            ),
        ],
    )
}

fn ctx(mode: &str, message: Option<&str>, history: Vec<Turn>) -> Context {
    let request = TurnRequest {
        user_name: Some("Ada".into()),
        message: message.map(Into::into),
        history,
        ..TurnRequest::default()
    };
    let mode = Mode::parse(mode).expect("mode");
    Context::build(request, mode, Some(ownership()), &TutorSettings::default())
}

fn tutor(text: &str) -> Turn {
    Turn {
        role: Role::Assistant,
        text: text.into(),
    }
}

fn student(text: &str) -> Turn {
    Turn {
        role: Role::User,
        text: text.into(),
    }
}

#[test]
fn ask_answers_with_one_to_three_relevant_sentences_and_no_question() {
    let reply = reply_text(&ctx(
        "ask",
        Some("What happens when the owner goes out of scope?"),
        vec![],
    ));
    assert!(reply.contains("the value is dropped"), "{reply}");
    let sentences = crate::tutor::text::sentences(&reply).len();
    assert!((1..=3).contains(&sentences), "{reply}");
    assert!(!reply.contains('?'), "no follow-up question: {reply}");
    assert!(!reply.contains("Ada"), "no filler: {reply}");
}

#[test]
fn ask_uses_the_selected_text_as_the_question() {
    let mut c = ctx("ask", Some("explain this"), vec![]);
    c.selected_text = Some("Copy types like integers".into());
    let reply = reply_text(&c);
    assert!(reply.contains("copied instead of moved"), "{reply}");
}

#[test]
fn ask_says_so_when_the_lesson_does_not_cover_the_question() {
    let reply = reply_text(&ctx("ask", Some("how do I bake bread?"), vec![]));
    assert!(
        reply.starts_with("The lesson **Ownership in Rust** doesn't cover that."),
        "{reply}"
    );
}

#[test]
fn quiz_asks_one_question_grades_answers_and_keeps_a_running_score() {
    let q1 = reply_text(&ctx("quiz", Some("Quiz me"), vec![]));
    assert!(q1.contains("**Question 1 of "), "{q1}");
    assert!(q1.contains("What is Ownership?"), "{q1}");
    let mut history = vec![student("Quiz me"), tutor(&q1)];
    let r1 = reply_text(&ctx(
        "quiz",
        Some("rules that govern how programs manage memory"),
        history.clone(),
    ));
    assert!(r1.starts_with("✅ Correct!"), "{r1}");
    assert!(r1.contains("\nScore: 1/1\n"), "{r1}");
    assert!(r1.contains("**Question 2 of "), "{r1}");
    history.extend([student("rules…"), tutor(&r1)]);
    let r2 = reply_text(&ctx("quiz", Some("something about cats"), history));
    assert!(r2.starts_with("❌ Not quite."), "{r2}");
    assert!(r2.contains("\nScore: 1/2\n"), "{r2}");
    assert!(r2.contains("**Question 3 of "), "{r2}");
}

#[test]
fn quiz_questions_come_from_definitions_bold_terms_and_headings() {
    let qs = quiz::questions(&Prepared::new(&ownership()));
    let prompts: Vec<&str> = qs.iter().map(|q| q.prompt.as_str()).collect();
    assert!(prompts.contains(&"What is Ownership?"), "{prompts:?}");
    assert!(
        qs.iter().any(|q| q.answer == "borrow checker"),
        "{prompts:?}"
    );
    assert!(qs.iter().any(|q| q.answer == "move"), "{prompts:?}");
}

#[test]
fn the_last_quiz_answer_ends_the_round_with_the_final_score() {
    let total = quiz::questions(&Prepared::new(&ownership())).len();
    let last = tutor(&format!(
        "Score: 2/{}\n\n**Question {total} of {total}:** …",
        total - 1
    ));
    let reply = reply_text(&ctx("quiz", Some("whatever"), vec![last]));
    assert!(reply.contains(&format!("Score: 2/{total}")), "{reply}");
    assert!(reply.contains("That was the last question, Ada"), "{reply}");
}

#[test]
fn replies_are_deterministic_and_streamed_in_small_deltas() {
    let a = reply_text(&ctx(
        "ask",
        Some("what is a move and what is a borrow?"),
        vec![],
    ));
    let b = reply_text(&ctx(
        "ask",
        Some("what is a move and what is a borrow?"),
        vec![],
    ));
    assert_eq!(a, b);
    let parts = crate::tutor::text::deltas(&a, WORDS_PER_DELTA);
    assert!(parts.len() > 3, "{a}");
    assert!(
        parts
            .iter()
            .all(|p| p.split_whitespace().count() <= WORDS_PER_DELTA)
    );
}

#[test]
fn without_a_lesson_the_offline_tutor_says_it_cannot_see_it() {
    let mut c = ctx("ask", Some("what is ownership?"), vec![]);
    c.lesson = None;
    assert!(reply_text(&c).contains("can't see this lesson's text"));
}

#[test]
fn a_comparison_is_answered_from_both_sides() {
    let l = lesson(
        "Loops",
        &[
            (
                "",
                "A **loop** runs the same block several times. Python has two: `for` goes through \
                 the items of a sequence, `while` repeats as long as a condition stays true.",
            ),
            (
                "for loops",
                "Use `for` whenever you know what to go through.",
            ),
            (
                "while loops",
                "A `while` loop must change something that its condition depends on.",
            ),
        ],
    );
    let request = TurnRequest {
        message: Some("What is the difference between a for loop and a while loop?".into()),
        ..TurnRequest::default()
    };
    let c = Context::build(request, Mode::Ask, Some(l), &TutorSettings::default());
    let reply = reply_text(&c);
    assert!(reply.contains("**for loop**:"), "{reply}");
    assert!(reply.contains("**while loop**:"), "{reply}");
    assert!(reply.contains("`for` goes through"), "{reply}");
    assert!(reply.contains("`while`"), "{reply}");
    assert_eq!(
        comparison("compare lists with tuples"),
        Some(("lists".into(), "tuples".into()))
    );
    assert_eq!(
        comparison("for vs while?"),
        Some(("for".into(), "while".into()))
    );
    assert_eq!(comparison("what is a loop?"), None);
}

mod properties {
    use super::*;
    use crate::content::Section;
    use proptest::prelude::*;

    fn any_lesson() -> impl Strategy<Value = Arc<Lesson>> {
        let text = "[a-zA-Zé🦀 *`_\\[\\]().,!?:#>\n-]{0,200}";
        prop::collection::vec(("[a-zA-Z ?*]{0,20}", text, 0u8..4), 0..6).prop_map(|raw| {
            let sections: Vec<Section> = raw
                .into_iter()
                .map(|(heading, text, level)| Section {
                    heading,
                    level,
                    text,
                })
                .collect();
            Arc::new(Lesson {
                path: "p".into(),
                title: "T".into(),
                sidebar_label: None,
                description: None,
                body: sections.iter().map(|s| s.text.as_str()).collect(),
                sections,
                suggestions: Default::default(),
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn any_lesson_message_and_mode_gets_a_deterministic_non_empty_reply(
            lesson in any_lesson(),
            message in prop::option::of("[a-zA-Zé*?!. ]{0,40}"),
            previous in prop::option::of("[a-zA-Z*:0-9/\n ]{0,80}"),
            mode in prop::sample::select(vec!["teach", "ask", "quiz"]),
        ) {
            let history: Vec<Turn> = previous.into_iter().map(|p| tutor(&p)).collect();
            let request = TurnRequest {
                message,
                history,
                ..TurnRequest::default()
            };
            let mode = Mode::parse(mode).expect("mode");
            let ctx = Context::build(request, mode, Some(lesson), &TutorSettings::default());
            let a = reply_text(&ctx);
            prop_assert!(!a.trim().is_empty());
            prop_assert_eq!(a, reply_text(&ctx));
        }
    }
}

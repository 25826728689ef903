use std::sync::Arc;

use super::*;
use crate::turn::{Turn, TurnRequest};
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
fn the_start_trigger_greets_by_name_names_the_lesson_and_asks_one_question() {
    let reply = reply_text(&ctx("teach", None, vec![]));
    assert!(
        reply.starts_with("Hi Ada! Let's work through **Ownership in Rust**"),
        "{reply}"
    );
    assert!(
        reply.contains("without a garbage collector"),
        "intro sentence: {reply}"
    );
    assert!(
        reply.contains("**Owners**\n\n**Ownership** is a set of rules"),
        "first idea: {reply}"
    );
    assert_eq!(
        reply.matches('?').count(),
        1,
        "one checking question: {reply}"
    );
}

#[test]
fn teach_explains_the_section_the_question_is_about_and_bolds_its_term() {
    let reply = reply_text(&ctx(
        "teach",
        Some("what does the borrow checker do?"),
        vec![],
    ));
    assert!(reply.contains("**Borrowing**\n\n"), "{reply}");
    assert!(reply.contains("outlive"), "{reply}");
    assert!(reply.contains("what is **borrow checker**?"), "{reply}");
    assert!(reply.contains("Ada"), "{reply}");
}

#[test]
fn teach_gives_feedback_on_an_answer_and_builds_the_next_idea_on_it() {
    let first = reply_text(&ctx("teach", Some("explain owners"), vec![]));
    assert!(first.contains("**Owners**"), "{first}");
    let history = vec![student("explain owners"), tutor(&first)];
    let good = reply_text(&ctx(
        "teach",
        Some("rules for how a program manages memory"),
        history.clone(),
    ));
    assert!(good.starts_with("Yes, Ada, that's the idea."), "{good}");
    assert!(
        good.contains("**Moves**"),
        "moves on to the next section: {good}"
    );
    let echo = reply_text(&ctx(
        "teach",
        Some("it is about ownership"),
        history.clone(),
    ));
    assert!(
        echo.starts_with("Not quite"),
        "repeating the asked term is not an answer: {echo}"
    );
    let bad = reply_text(&ctx("teach", Some("no clue honestly"), history));
    assert!(
        bad.starts_with("Not quite, Ada. The key point: **Ownership** is a set of rules"),
        "{bad}"
    );
}

#[test]
fn teach_steers_back_to_the_lesson_when_the_question_is_off_topic() {
    let reply = reply_text(&ctx(
        "teach",
        Some("what is the capital of France?"),
        vec![],
    ));
    assert!(
        reply.starts_with("**Ownership in Rust** doesn't cover that directly"),
        "{reply}"
    );
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
fn teach_quotes_the_selected_passage_before_explaining_it() {
    let mut c = ctx("teach", Some("what does this mean?"), vec![]);
    c.selected_text = Some("the old variable\n can no longer be used".into());
    let reply = reply_text(&c);
    assert!(
        reply.starts_with("> the old variable can no longer be used\n\n**Moves**"),
        "{reply}"
    );
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
    let a = reply_text(&ctx("teach", Some("what is a move?"), vec![]));
    let b = reply_text(&ctx("teach", Some("what is a move?"), vec![]));
    assert_eq!(a, b);
    let parts = crate::tutor::text::deltas(&a, WORDS_PER_DELTA);
    assert!(parts.len() > 5);
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
fn a_resumed_teach_thread_goes_on_with_the_next_section() {
    let first = reply_text(&ctx("teach", Some("explain owners"), vec![]));
    let history = vec![student("explain owners"), tutor(&first)];
    let resumed = reply_text(&ctx("teach", None, history));
    assert!(
        resumed.starts_with("Hi Ada! Let's pick up where we left off."),
        "{resumed}"
    );
    assert!(resumed.contains("**Moves**"), "{resumed}");
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

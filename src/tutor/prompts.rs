//! Every instruction the model receives, in one place: the mode prompts, the lesson and
//! selected-text blocks, and the stand-in message of a start trigger.
//!
//! Owns: wording. Must not decide anything (the mode, budgets and history are in the
//! [`Context`] already).

use super::context::Context;
use crate::content::Mode;

/// The user turn sent upstream for a start trigger (the trigger itself is not in the thread,
/// but both APIs need at least one input message).
pub const START_MESSAGE: &str = "Hi! I just opened this lesson. Please start teaching me.";

/// The user turn sent upstream when the thread is resumed without a new message (the last
/// turn is the tutor's own, and a chat model needs a user turn to answer).
pub const CONTINUE_MESSAGE: &str = "Please go on.";

/// The system instructions of one reply.
pub fn instructions(ctx: &Context) -> String {
    let name = ctx.student_name.as_deref();
    let mut out = match ctx.mode {
        Mode::Teach => teach(name),
        Mode::Ask => ask(),
        Mode::Quiz => quiz(ctx.score()),
    };
    out.push_str(&student(name));
    if ctx.start {
        out.push_str(&start(ctx.title()));
    }
    out.push_str(&lesson_block(ctx));
    if let Some(selected) = &ctx.selected_text {
        out.push_str(&selected_block(selected));
    }
    out
}

fn teach(name: Option<&str>) -> String {
    let who = name.unwrap_or("the student");
    format!(
        "You are a warm, patient Socratic tutor for the lesson below.\n\
         Rules:\n\
         - Explain ONE idea at a time, in two or three short sentences of plain language.\n\
         - Then ask exactly ONE short question that checks understanding, and stop there: \
           wait for {who}'s answer.\n\
         - When {who} answers, say briefly what was right, gently correct what was not, and \
           build the next idea on that answer.\n\
         - Stay on this lesson. If asked about something else, say so in one sentence and \
           steer back to the lesson.\n\
         - Put **key terms** in bold the first time they appear.\n\
         - Never dump the whole lesson, and never ask more than one question per reply.\n"
    )
}

fn ask() -> String {
    "You answer questions about the lesson below, like a precise reference.\n\
     Rules:\n\
     - Answer directly in one to three sentences.\n\
     - No greeting, no praise, no filler, and no follow-up question.\n\
     - Base the answer on the lesson. If the lesson does not cover it, say so in one sentence.\n"
        .to_owned()
}

fn quiz(score: Option<(u32, u32)>) -> String {
    let running = match score {
        Some((right, asked)) => format!("The score so far in this thread is {right}/{asked}."),
        None => "No question has been graded yet: the score starts at 0/0.".to_owned(),
    };
    format!(
        "You are quizzing the student on the lesson below.\n\
         Rules:\n\
         - Ask ONE question at a time, drawn from the lesson; never reveal its answer.\n\
         - When the student answers, grade it: begin with \"Correct\", \"Partly correct\" or \
           \"Not quite\", then explain the right answer in one or two sentences.\n\
         - Keep a running score of graded questions (partly correct counts as not correct) and \
           end every graded reply's grading with a line exactly like `Score: 2/3` \
           (correct/asked).\n\
         - Then ask the next question. Do not repeat a question already asked in this thread.\n\
         - {running}\n"
    )
}

fn student(name: Option<&str>) -> String {
    match name {
        Some(name) => format!(
            "The student's name is {name}. Address them by name now and then, not in every \
             sentence.\n"
        ),
        None => "You do not know the student's name; do not invent one.\n".to_owned(),
    }
}

fn start(title: Option<&str>) -> String {
    let lesson = title.map_or("this lesson".to_owned(), |t| format!("\"{t}\""));
    format!(
        "The student has just opened the lesson and asked you to start. Greet them in one \
         sentence that names {lesson}, then teach its first idea and ask your first checking \
         question.\n"
    )
}

fn lesson_block(ctx: &Context) -> String {
    let Some(title) = ctx.title() else {
        return "\nNo lesson text is available for this conversation. Help with general \
                questions, and say that you cannot see the lesson when that matters.\n"
            .to_owned();
    };
    let mut out = format!(
        "\nLesson title: {title}\nLesson content:\n<lesson>\n{}\n</lesson>\n",
        ctx.lesson_text
    );
    if !ctx.omitted_sections.is_empty() {
        out.push_str(&format!(
            "(Later sections not shown above: {}.)\n",
            ctx.omitted_sections.join("; ")
        ));
    }
    out
}

fn selected_block(selected: &str) -> String {
    let quoted: String = selected.lines().map(|l| format!("> {l}\n")).collect();
    format!(
        "\nThe student selected this passage of the lesson; it is the thing to explain:\n{quoted}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::turn::{Role, Turn, TurnRequest};
    use crate::tutor::context::tests::lesson;
    use crate::tutor::settings::TutorSettings;

    fn ctx(mode: &str, message: Option<&str>, history: Vec<Turn>) -> Context {
        let request = TurnRequest {
            user_name: Some("Ada".into()),
            message: message.map(Into::into),
            history,
            selected_text: None,
            ..TurnRequest::default()
        };
        let mode = crate::content::Mode::parse(mode).expect("mode");
        let l = lesson(
            "Ownership in Rust",
            &[("Owners", "Each value has one owner.")],
        );
        Context::build(request, mode, Some(l), &TutorSettings::default())
    }

    #[test]
    fn teach_is_socratic_one_idea_one_question_bold_terms_and_uses_the_name() {
        let p = instructions(&ctx("teach", Some("hi"), vec![]));
        for needle in [
            "ONE idea",
            "exactly ONE short question",
            "wait for Ada's answer",
            "build the next idea",
            "Stay on this lesson",
            "**key terms**",
            "The student's name is Ada",
        ] {
            assert!(p.contains(needle), "teach prompt lacks {needle:?}:\n{p}");
        }
    }

    #[test]
    fn ask_is_direct_without_filler_or_follow_up() {
        let p = instructions(&ctx("ask", Some("what?"), vec![]));
        for needle in [
            "one to three sentences",
            "no filler",
            "no follow-up question",
        ] {
            assert!(p.contains(needle), "ask prompt lacks {needle:?}:\n{p}");
        }
        assert!(!p.contains("Socratic"));
    }

    #[test]
    fn quiz_asks_one_question_grades_and_carries_the_score_from_the_thread() {
        let history = vec![Turn {
            role: Role::Assistant,
            text: "Correct.\nScore: 2/3\nNext question: …".into(),
        }];
        let p = instructions(&ctx("quiz", Some("an answer"), history));
        for needle in [
            "ONE question at a time",
            "Not quite",
            "`Score: 2/3`",
            "so far in this thread is 2/3",
        ] {
            assert!(p.contains(needle), "quiz prompt lacks {needle:?}:\n{p}");
        }
        let fresh = instructions(&ctx("quiz", Some("quiz me"), vec![]));
        assert!(fresh.contains("starts at 0/0"));
    }

    #[test]
    fn the_lesson_title_and_text_are_in_the_instructions() {
        let p = instructions(&ctx("ask", Some("q"), vec![]));
        assert!(p.contains("Lesson title: Ownership in Rust"));
        assert!(p.contains("<lesson>\n## Owners\n\nEach value has one owner.\n</lesson>"));
    }

    #[test]
    fn a_start_trigger_asks_for_a_greeting_naming_the_lesson() {
        let p = instructions(&ctx("teach", None, vec![]));
        assert!(p.contains("Greet them in one sentence that names \"Ownership in Rust\""));
    }

    #[test]
    fn selected_text_is_quoted_as_the_thing_to_explain() {
        let mut c = ctx("ask", Some("explain"), vec![]);
        c.selected_text = Some("line one\nline two".into());
        let p = instructions(&c);
        assert!(
            p.contains("the thing to explain:\n> line one\n> line two\n"),
            "{p}"
        );
    }

    #[test]
    fn without_a_lesson_the_tutor_is_told_it_cannot_see_one() {
        let mut c = ctx("teach", Some("hi"), vec![]);
        c.lesson = None;
        let p = instructions(&c);
        assert!(p.contains("No lesson text is available"));
        assert!(!p.contains("<lesson>"));
    }
}

//! The offline quiz: questions built from the lesson's definitions (`X is …` sentences),
//! bold key terms and headings; answers graded by word overlap; the running score carried in
//! the thread as a `Score: a/b` line.

use std::collections::HashSet;

use super::Prepared;
use crate::turn::Role;
use crate::tutor::context::{Context, parse_score};
use crate::tutor::text::{plain, tokens};

/// Most questions in one round, and per section.
const MAX_QUESTIONS: usize = 8;
const PER_SECTION: usize = 2;

/// Stands for the hidden term until Markdown is stripped (`plain` would eat underscores).
const BLANK: &str = "⟦blank⟧";

/// Words that cannot be the subject of a definition.
const NOT_SUBJECTS: &[&str] = &[
    "it",
    "this",
    "that",
    "there",
    "these",
    "those",
    "they",
    "he",
    "she",
    "which",
    "what",
    "here",
    "who",
    "one",
    "each",
    "every",
    "all",
    "something",
    "everything",
];

/// One quiz question and what a good answer contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub prompt: String,
    pub answer: String,
    /// Shown after grading: the lesson's own sentence.
    pub explanation: String,
}

/// The questions of a lesson, in lesson order.
pub fn questions(lesson: &Prepared) -> Vec<Question> {
    let mut out: Vec<Question> = Vec::new();
    let mut seen = HashSet::new();
    for section in &lesson.sections {
        let mut found: Vec<Question> = section
            .sentences
            .iter()
            .filter_map(|s| definition(s).or_else(|| cloze(s)))
            .filter(|q| seen.insert(q.answer.to_lowercase()))
            .take(PER_SECTION)
            .collect();
        if found.is_empty() && !section.heading.is_empty() {
            if let Some(first) = section.sentences.first() {
                found.push(Question {
                    prompt: format!("What is the main point of “{}”?", section.heading),
                    answer: plain(first),
                    explanation: plain(first),
                });
            }
        }
        out.extend(found);
    }
    out.truncate(MAX_QUESTIONS);
    out
}

/// `X is/are/means/refers to Y.` → "What is X?" with answer Y.
fn definition(sentence: &str) -> Option<Question> {
    let text = plain(sentence);
    let words: Vec<&str> = text.split_whitespace().collect();
    let verb_at = words
        .iter()
        .take(7)
        .position(|w| matches!(*w, "is" | "are" | "means" | "refers"))?;
    let mut subject = &words[..verb_at];
    if subject
        .first()
        .is_some_and(|w| matches!(w.to_lowercase().as_str(), "the" | "a" | "an"))
    {
        subject = &subject[1..];
    }
    let first = subject.first()?.to_lowercase();
    if subject.len() > 5 || NOT_SUBJECTS.contains(&first.as_str()) {
        return None;
    }
    let verb = words[verb_at];
    let rest_at = if verb == "refers" && words.get(verb_at + 1) == Some(&"to") {
        verb_at + 2
    } else {
        verb_at + 1
    };
    let answer = words[rest_at..].join(" ");
    let answer = answer.trim_end_matches(['.', '!', ':', ';']).to_owned();
    if answer.split_whitespace().count() < 3 || !defines(sentence, verb, &answer) {
        return None;
    }
    let subject = subject.join(" ");
    let prompt = match verb {
        "is" | "are" => format!("What {verb} {subject}?"),
        _ => format!("What does “{subject}” mean?"),
    };
    Some(Question {
        prompt,
        answer,
        explanation: text,
    })
}

/// True when the sentence reads as a definition rather than a remark ("Closures are one of
/// Rust's best features"): the predicate names a kind of thing (`a`, `an`, `the`), the verb is
/// `means`/`refers to`, or the author bolded the subject.
fn defines(sentence: &str, verb: &str, answer: &str) -> bool {
    let lower = answer.to_lowercase();
    matches!(verb, "means" | "refers")
        || ["a ", "an ", "the "].iter().any(|a| lower.starts_with(a))
        || sentence.trim_start().starts_with("**")
        || sentence.trim_start().starts_with("A **")
        || sentence.trim_start().starts_with("The **")
}

/// A whole sentence with a **bold term** → "Fill in the blank" with the term as the answer
/// (never a fragment, never a term inside brackets).
fn cloze(sentence: &str) -> Option<Question> {
    if !super::walk::self_contained(sentence) {
        return None;
    }
    let start = sentence.find("**")?;
    let len = sentence[start + 2..].find("**")?;
    let term = sentence[start + 2..start + 2 + len].trim();
    let before = &sentence[..start];
    if term.is_empty() || before.matches('(').count() > before.matches(')').count() {
        return None;
    }
    let blanked = format!(
        "{}{BLANK}{}",
        &sentence[..start],
        &sentence[start + 4 + len..]
    );
    Some(Question {
        prompt: format!(
            "Fill in the blank: {}",
            // Markdown kept (code stays code); only the blanked term's marks go with it.
            blanked.replace(BLANK, "\\_\\_\\_\\_\\_")
        ),
        answer: plain(term),
        explanation: plain(sentence),
    })
}

/// True when `answer` shares enough content words with `expected`: half of them, but never
/// more than three, and at least one.
pub fn grade(answer: &str, expected: &str) -> bool {
    let expected: HashSet<String> = tokens(expected).into_iter().collect();
    let answer: HashSet<String> = tokens(answer).into_iter().collect();
    let hits = expected.intersection(&answer).count();
    hits >= 1 && hits * 2 >= expected.len().min(6)
}

/// The quiz reply: grade the pending question (if any), update the score, ask the next one.
pub fn reply(ctx: &Context, lesson: &Prepared) -> String {
    let questions = questions(lesson);
    if questions.is_empty() {
        return "I couldn't find anything in this lesson to build quiz questions from. \
                Try teach mode instead."
            .to_owned();
    }
    let total = questions.len();
    let last = last_tutor_turn(ctx);
    let pending = last
        .and_then(pending_question)
        .filter(|&n| n >= 1 && n <= total);
    let (Some(n), Some(answer)) = (pending, ctx.message.as_deref()) else {
        return intro(ctx, lesson, &questions[0], total);
    };
    let (mut right, mut asked) = if n > 1 {
        last.and_then(|t| t.lines().rev().find_map(parse_score))
            .unwrap_or((0, 0))
    } else {
        (0, 0)
    };
    let q = &questions[n - 1];
    let correct = grade(answer, &q.answer);
    asked += 1;
    right += u32::from(correct);
    let verdict = if correct {
        "✅ Correct!"
    } else {
        "❌ Not quite."
    };
    let mut out = format!("{verdict} {}\n\nScore: {right}/{asked}\n\n", q.explanation);
    match questions.get(n) {
        Some(next) => out.push_str(&ask_line(n + 1, total, next)),
        None => out.push_str(&format!(
            "That was the last question{}: you got {right} of {asked}. Send any message to start a new round.",
            ctx.student_name.as_deref().map(|n| format!(", {n}")).unwrap_or_default()
        )),
    }
    out
}

fn intro(ctx: &Context, lesson: &Prepared, first: &Question, total: usize) -> String {
    let name = ctx
        .student_name
        .as_deref()
        .map(|n| format!(", {n}"))
        .unwrap_or_default();
    format!(
        "Let's see what you remember about **{}**{name}. {total} questions, one at a time.\n\n{}",
        lesson.title,
        ask_line(1, total, first)
    )
}

fn ask_line(n: usize, total: usize, q: &Question) -> String {
    format!("**Question {n} of {total}:** {}", q.prompt)
}

fn last_tutor_turn(ctx: &Context) -> Option<&str> {
    ctx.history
        .iter()
        .rev()
        .find(|t| t.role == Role::Assistant)
        .map(|t| t.text.as_str())
}

/// The number of the question asked in `text` (`Question 3 of 8:`), if any.
fn pending_question(text: &str) -> Option<usize> {
    text.lines().rev().find_map(|line| {
        let line = line.replace('*', "");
        let rest = line.trim().strip_prefix("Question ")?;
        let (n, _) = rest.split_once(" of ")?;
        n.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_become_what_is_questions() {
        let q = definition("**Ownership** is a set of rules that govern memory.").expect("q");
        assert_eq!(q.prompt, "What is Ownership?");
        assert_eq!(q.answer, "a set of rules that govern memory");
        let q = definition("A closure refers to an anonymous function with captures.").expect("q");
        assert_eq!(q.prompt, "What does “closure” mean?");
        assert_eq!(q.answer, "an anonymous function with captures");
        assert!(definition("It is very important to read.").is_none());
        assert!(
            definition("Rust is fast.").is_none(),
            "answer too short to grade"
        );
    }

    #[test]
    fn bold_terms_become_fill_in_the_blank_questions() {
        let q = cloze("The compiler's **borrow checker** enforces these rules.").expect("q");
        assert_eq!(q.answer, "borrow checker");
        assert!(
            q.prompt.contains("The compiler's \\_\\_\\_\\_\\_ enforces"),
            "{}",
            q.prompt
        );
        assert!(!q.prompt.contains("borrow"));
    }

    #[test]
    fn no_blank_is_cut_from_a_fragment_or_from_inside_brackets() {
        assert!(cloze("(an **infinite loop** — press Ctrl+C to stop it).").is_none());
        assert!(
            cloze("A loop that never ends (an **infinite loop**) must be stopped by hand.")
                .is_none()
        );
        assert!(cloze("An **infinite loop** never ends unless you stop it.").is_some());
    }

    #[test]
    fn grading_needs_enough_overlap_with_the_expected_answer() {
        assert!(grade("the borrow checker", "borrow checker"));
        assert!(grade("Borrow Checkers!", "borrow checker"));
        assert!(!grade("the garbage collector", "borrow checker"));
        let long = "a set of rules that govern how a program manages memory";
        assert!(grade("rules about managing memory in a program", long));
        assert!(!grade("no idea", long));
    }

    #[test]
    fn the_pending_question_number_is_read_from_the_tutor_turn() {
        assert_eq!(
            pending_question("✅ Correct!\n\nScore: 1/1\n\n**Question 2 of 5:** What?"),
            Some(2)
        );
        assert_eq!(pending_question("no question here"), None);
    }
}

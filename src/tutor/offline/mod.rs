//! The offline tutor: answers from the lesson itself, with no model. The embedded default
//! (no `OPENAI_API_KEY`) and what load tests use.
//!
//! Owns: ranking sections against the student's message (BM25), the teach / ask / quiz
//! replies built from lesson sentences, and streaming them in small deltas. Deterministic:
//! the same request always gets the same reply.

mod bm25;
pub mod quiz;

use std::collections::HashSet;

use futures::StreamExt;

use self::bm25::Bm25;
use super::context::Context;
use super::text::{deltas, plain, sentences, tokens};
use crate::content::Lesson;
use crate::content::Mode;
use crate::turn::{Role, TurnEvent, TurnStream};

/// Words per streamed delta.
const WORDS_PER_DELTA: usize = 4;
/// Longest explanation or answer, in characters (a few sentences).
const MAX_ANSWER_CHARS: usize = 450;

/// A lesson section ready for the offline tutor.
#[derive(Debug)]
pub struct PreparedSection {
    pub heading: String,
    /// Sentences as written (Markdown kept, so bold key terms stay bold).
    pub sentences: Vec<String>,
}

/// A lesson split into sections of sentences, with a BM25 index over them.
#[derive(Debug)]
pub struct Prepared {
    pub title: String,
    pub sections: Vec<PreparedSection>,
    index: Bm25,
}

impl Prepared {
    /// Splits `lesson` into sentences and indexes its sections.
    pub fn new(lesson: &Lesson) -> Self {
        let raw: Vec<(String, String)> = if lesson.sections.is_empty() {
            vec![(String::new(), lesson.body.clone())]
        } else {
            lesson
                .sections
                .iter()
                .map(|s| (s.heading.clone(), s.text.clone()))
                .collect()
        };
        let sections: Vec<PreparedSection> = raw
            .into_iter()
            .map(|(heading, text)| PreparedSection {
                heading,
                sentences: sentences(&text),
            })
            .filter(|s| !s.sentences.is_empty())
            .collect();
        // Headings count twice: they say what a section is about.
        let docs: Vec<Vec<String>> = sections
            .iter()
            .map(|s| {
                let mut t = tokens(&s.heading);
                t.extend(tokens(&s.heading));
                t.extend(s.sentences.iter().flat_map(|x| tokens(x)));
                t
            })
            .collect();
        Self {
            title: lesson.title.clone(),
            index: Bm25::new(&docs),
            sections,
        }
    }
}

/// The whole reply for `ctx`, as text.
pub fn reply_text(ctx: &Context) -> String {
    let Some(lesson) = ctx.lesson.as_deref() else {
        return no_lesson(ctx);
    };
    let lesson = Prepared::new(lesson);
    if lesson.sections.is_empty() {
        return format!(
            "The lesson **{}** has no text I can work with yet.",
            lesson.title
        );
    }
    match ctx.mode {
        Mode::Teach => teach(ctx, &lesson),
        Mode::Ask => ask(ctx, &lesson),
        Mode::Quiz => quiz::reply(ctx, &lesson),
    }
}

/// The reply streamed in deltas of a few words.
pub fn reply(ctx: &Context) -> TurnStream {
    let text = reply_text(ctx);
    futures::stream::iter(
        deltas(&text, WORDS_PER_DELTA)
            .into_iter()
            .map(|d| Ok(TurnEvent::Delta(d))),
    )
    .boxed()
}

fn no_lesson(ctx: &Context) -> String {
    let hello = greeting(ctx);
    match ctx.mode {
        Mode::Teach if ctx.start => format!(
            "{hello} I can't see this lesson's text right now, so I can't walk you through it. \
             Ask me about anything on the page and I'll help as best I can."
        ),
        _ => "I can't see this lesson's text right now, so I can't answer from it. \
              Try reopening the lesson."
            .to_owned(),
    }
}

fn greeting(ctx: &Context) -> String {
    match &ctx.student_name {
        Some(name) => format!("Hi {name}!"),
        None => "Hi!".to_owned(),
    }
}

/// Teach: explain one section and ask one checking question; treat a reply to a checking
/// question as an answer, give feedback and move on to the next section.
fn teach(ctx: &Context, lesson: &Prepared) -> String {
    if ctx.start {
        return start(ctx, lesson);
    }
    let Some(message) = ctx.message.as_deref() else {
        return resume(ctx, lesson);
    };
    let answering = ctx.selected_text.is_none() && !looks_like_question(message);
    if let (true, Some(taught)) = (answering, last_taught(ctx, lesson)) {
        return feedback_and_next(ctx, lesson, taught, message);
    }
    let mut query = tokens(message);
    query.extend(ctx.selected_text.as_deref().map(tokens).unwrap_or_default());
    match lesson.index.best(&query) {
        Some((i, _)) => format!("{}{}", quote(ctx), lesson_step(ctx, lesson, i, &query)),
        None => format!(
            "**{}** doesn't cover that directly, so let's stay with the lesson.\n\n{}",
            lesson.title,
            lesson_step(ctx, lesson, 0, &[])
        ),
    }
}

/// The passage the student selected, quoted (shortened), so the reply says what it explains.
fn quote(ctx: &Context) -> String {
    let Some(selected) = &ctx.selected_text else {
        return String::new();
    };
    let one_line = selected.split_whitespace().collect::<Vec<_>>().join(" ");
    let short = super::text::truncate_chars(&one_line, 160);
    let ellipsis = if short.len() < one_line.len() {
        "…"
    } else {
        ""
    };
    format!("> {short}{ellipsis}\n\n")
}

/// The greeting: the lesson's title, the first sentence of its introduction (text before the
/// first heading), then its first idea.
fn start(ctx: &Context, lesson: &Prepared) -> String {
    let first = &lesson.sections[0];
    let has_intro = first.heading.is_empty() && lesson.sections.len() > 1;
    let intro = if has_intro {
        format!(" {}", first.sentences[0])
    } else {
        String::new()
    };
    format!(
        "{} Let's work through **{}** together, one idea at a time.{intro}\n\n{}",
        greeting(ctx),
        lesson.title,
        lesson_step(ctx, lesson, usize::from(has_intro), &[])
    )
}

/// No new message in a thread that has begun (the panel was reopened): go on from the
/// section after the one taught last.
fn resume(ctx: &Context, lesson: &Prepared) -> String {
    let next = last_taught(ctx, lesson).map_or(0, |i| i + 1);
    if next >= lesson.sections.len() {
        return format!(
            "We've covered all of **{}**. Ask me about any part of it, or switch to quiz mode to \
             test yourself.",
            lesson.title
        );
    }
    format!(
        "{} Let's pick up where we left off.\n\n{}",
        greeting(ctx),
        lesson_step(ctx, lesson, next, &[])
    )
}

fn feedback_and_next(ctx: &Context, lesson: &Prepared, taught: usize, answer: &str) -> String {
    let section = &lesson.sections[taught];
    let expected = section.sentences.join(" ");
    let name = ctx
        .student_name
        .as_deref()
        .map(|n| format!(", {n}"))
        .unwrap_or_default();
    // Words of the question itself ("what is **closure**?") prove nothing.
    let asked: HashSet<String> = tokens(&term_of(section).unwrap_or_default())
        .into_iter()
        .collect();
    let hits = overlap(answer, &expected, &asked);
    let right = hits >= 2 || (hits == 1 && tokens(answer).len() <= 2);
    let (feedback, bridge) = if right {
        (format!("Yes{name}, that's the idea."), "Building on that:")
    } else {
        (
            format!("Not quite{name}. The key point: {}", section.sentences[0]),
            "Let's keep going:",
        )
    };
    match lesson.sections.get(taught + 1) {
        Some(_) => format!(
            "{feedback}\n\n{bridge}\n\n{}",
            lesson_step(ctx, lesson, taught + 1, &[])
        ),
        None => format!(
            "{feedback}\n\nThat was the last idea of **{}**. Switch to quiz mode to test \
             yourself, or ask me about any part of it.",
            lesson.title
        ),
    }
}

/// One idea (a few sentences of section `i`, the most relevant to `query`) and one question.
fn lesson_step(ctx: &Context, lesson: &Prepared, i: usize, query: &[String]) -> String {
    let section = &lesson.sections[i];
    let explanation = prose(&pick_sentences(&section.sentences, query, 3));
    let head = if section.heading.is_empty() {
        String::new()
    } else {
        format!("**{}**\n\n", section.heading)
    };
    format!("{head}{explanation}\n\n{}", checking_question(ctx, section))
}

fn checking_question(ctx: &Context, section: &PreparedSection) -> String {
    let who = ctx
        .student_name
        .as_deref()
        .map(|n| format!("{n}, "))
        .unwrap_or_default();
    match section.sentences.iter().find_map(|s| bold_term(s)) {
        Some(term) => format!("**Check:** {who}in your own words, what is **{term}**?"),
        None if !section.heading.is_empty() => format!(
            "**Check:** {who}how would you explain **{}** in your own words?",
            section.heading
        ),
        None => format!("**Check:** {who}what is the main idea here, in your own words?"),
    }
}

/// What the checking question of `section` asks about: its first bold term, else its heading.
fn term_of(section: &PreparedSection) -> Option<String> {
    section
        .sentences
        .iter()
        .find_map(|s| bold_term(s))
        .or_else(|| (!section.heading.is_empty()).then(|| section.heading.clone()))
}

fn bold_term(sentence: &str) -> Option<String> {
    let start = sentence.find("**")? + 2;
    let len = sentence[start..].find("**")?;
    let term = sentence[start..start + len].trim();
    (!term.is_empty()).then(|| term.to_owned())
}

/// Ask: the 1–3 sentences of the lesson most relevant to the question.
fn ask(ctx: &Context, lesson: &Prepared) -> String {
    let message = ctx.query().unwrap_or_default();
    let mut query = tokens(message);
    if let Some(selected) = &ctx.selected_text {
        query.extend(tokens(selected));
    }
    let scores = lesson.index.scores(&query);
    let mut ranked: Vec<usize> = (0..scores.len()).filter(|&i| scores[i] > 0.0).collect();
    ranked.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let pool: Vec<String> = ranked
        .iter()
        .take(2)
        .flat_map(|&i| lesson.sections[i].sentences.clone())
        .collect();
    let picked = pick_sentences(&pool, &query, 3);
    if picked.is_empty() || ranked.is_empty() {
        return format!(
            "The lesson **{}** doesn't cover that. {}",
            lesson.title, lesson.sections[0].sentences[0]
        );
    }
    prose(&picked)
}

/// Sentences joined as a paragraph; list items without a full stop get one.
fn prose(sentences: &[String]) -> String {
    sentences
        .iter()
        .map(|s| {
            if s.ends_with(['.', '!', '?', ':']) {
                s.clone()
            } else {
                format!("{s}.")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Up to `max` sentences sharing the most words with `query` (the first ones when nothing
/// matches), in their original order, within [`MAX_ANSWER_CHARS`].
fn pick_sentences(sentences: &[String], query: &[String], max: usize) -> Vec<String> {
    let query: HashSet<&String> = query.iter().collect();
    let score = |s: &String| {
        let words: HashSet<String> = tokens(s).into_iter().collect();
        words.iter().filter(|w| query.contains(w)).count()
    };
    let mut order: Vec<usize> = (0..sentences.len()).collect();
    if !query.is_empty() && sentences.iter().any(|s| score(s) > 0) {
        order.retain(|&i| score(&sentences[i]) > 0);
        order.sort_by_key(|&i| (std::cmp::Reverse(score(&sentences[i])), i));
    }
    let mut chosen: Vec<usize> = Vec::new();
    let mut chars = 0;
    for i in order.into_iter().take(max) {
        let len = sentences[i].chars().count();
        if !chosen.is_empty() && chars + len > MAX_ANSWER_CHARS {
            break;
        }
        chars += len;
        chosen.push(i);
    }
    chosen.sort_unstable();
    chosen.into_iter().map(|i| sentences[i].clone()).collect()
}

/// The section the tutor explained last: the one whose sentence appears latest in the
/// previous tutor turn.
fn last_taught(ctx: &Context, lesson: &Prepared) -> Option<usize> {
    let last = ctx
        .history
        .iter()
        .rev()
        .find(|t| t.role == Role::Assistant)?;
    lesson
        .sections
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let at = s
                .sentences
                .iter()
                .filter_map(|x| last.text.rfind(x.as_str()))
                .max()?;
            Some((at, i))
        })
        .max()
        .map(|(_, i)| i)
}

fn looks_like_question(message: &str) -> bool {
    let m = message.trim().to_lowercase();
    const STARTS: &[&str] = &[
        "what",
        "why",
        "how",
        "when",
        "where",
        "which",
        "who",
        "can you",
        "could you",
        "explain",
        "tell me",
        "teach",
        "show me",
        "give me",
        "is ",
        "are ",
        "does ",
        "do ",
    ];
    m.ends_with('?') || STARTS.iter().any(|s| m.starts_with(s))
}

/// Distinct words of `answer` found in `expected`, not counting `ignored` ones.
fn overlap(answer: &str, expected: &str, ignored: &HashSet<String>) -> usize {
    let expected: HashSet<String> = tokens(&plain(expected)).into_iter().collect();
    tokens(answer)
        .into_iter()
        .collect::<HashSet<_>>()
        .iter()
        .filter(|w| expected.contains(*w) && !ignored.contains(*w))
        .count()
}

#[cfg(test)]
mod tests;

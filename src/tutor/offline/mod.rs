//! The offline tutor: answers from the lesson itself, with no model. The embedded default
//! (no `OPENAI_API_KEY`) and what load tests use.
//!
//! Owns: ranking sections against the student's message (BM25), the ask and quiz replies
//! built from lesson sentences, its half of the teach walk ([`walk`]: the section taught by
//! its substance, checks from the section's own facts, the judge, hints, the summary), and
//! streaming text in small deltas. Deterministic: the same request always gets the same reply.

pub mod quiz;
pub mod walk;

use std::collections::HashSet;

use futures::StreamExt;

use super::bm25::Bm25;
use super::context::Context;
use super::text::{deltas, sentences, tokens};
use crate::content::Lesson;
use crate::content::Mode;
use crate::turn::{TurnEvent, TurnStream};

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
        // Teach with a lesson is the walk (`tutor::teach`); here only when it has no sections.
        Mode::Teach | Mode::Ask => ask(ctx, &lesson),
        Mode::Quiz => quiz::reply(ctx, &lesson),
    }
}

/// The reply streamed in deltas of a few words.
pub fn reply(ctx: &Context) -> TurnStream {
    stream_text(&reply_text(ctx))
}

/// `text` streamed in deltas of a few words.
pub fn stream_text(text: &str) -> TurnStream {
    futures::stream::iter(
        deltas(text, WORDS_PER_DELTA)
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

/// Ask: the 1–3 sentences of the lesson most relevant to the question (and the selected
/// text); a comparison ("the difference between X and Y", "X vs Y") is answered from both
/// sides.
fn ask(ctx: &Context, lesson: &Prepared) -> String {
    let message = ctx.query().unwrap_or_default();
    answer(lesson, message, ctx.selected_text.as_deref())
}

/// The lesson's answer to `question` (with the `selected` passage as extra context).
pub fn answer(lesson: &Prepared, question: &str, selected: Option<&str>) -> String {
    if let Some((a, b)) = comparison(question) {
        if let Some(both) = compare(lesson, &a, &b) {
            return both;
        }
    }
    let mut query = tokens(question);
    if let Some(selected) = selected {
        query.extend(tokens(selected));
    }
    let ranked = ranked(lesson, &query);
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

/// True when some section of the lesson is about `question` at all (a positive BM25 score).
pub fn answer_covers(lesson: &Prepared, question: &str) -> bool {
    !ranked(lesson, &tokens(question)).is_empty()
}

/// Sections with a positive score for `query`, best first.
fn ranked(lesson: &Prepared, query: &[String]) -> Vec<usize> {
    let scores = lesson.index.scores(query);
    let mut ranked: Vec<usize> = (0..scores.len()).filter(|&i| scores[i] > 0.0).collect();
    ranked.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    ranked
}

/// The two things a comparison question compares: "difference(s) between X and Y", "compare
/// X and/with/to Y", "X vs(.) Y", "X versus Y".
pub fn comparison(question: &str) -> Option<(String, String)> {
    let q = question
        .trim()
        .trim_end_matches(['?', '.', '!'])
        .to_lowercase();
    let split = |rest: &str, seps: &[&str]| -> Option<(String, String)> {
        seps.iter().find_map(|sep| {
            let (a, b) = rest.split_once(sep)?;
            let (a, b) = (clean_side(a), clean_side(b));
            (!a.is_empty() && !b.is_empty()).then_some((a, b))
        })
    };
    for marker in ["differences between ", "difference between ", "compare "] {
        if let Some(at) = q.find(marker) {
            return split(
                &q[at + marker.len()..],
                &[" and ", " with ", " to ", " vs ", " versus "],
            );
        }
    }
    split(&q, &[" vs. ", " vs ", " versus "])
}

/// Lower-cased, lightly stemmed words of `text`, articles dropped.
fn words(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| !w.is_empty() && !matches!(w.as_str(), "a" | "an" | "the" | "of" | "in"))
        .map(|w| match w.strip_suffix('s') {
            Some(stem) if stem.len() > 2 && !w.ends_with("ss") => stem.to_owned(),
            _ => w,
        })
        .collect()
}

fn clean_side(s: &str) -> String {
    let s = s.trim();
    let s = ["a ", "an ", "the ", "what is ", "what's "]
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .unwrap_or(s);
    s.trim().to_owned()
}

/// One line per side: the sentence of the lesson that says most about each, distinct ones.
fn compare(lesson: &Prepared, a: &str, b: &str) -> Option<String> {
    let all: Vec<&String> = lesson.sections.iter().flat_map(|s| &s.sentences).collect();
    // Stopwords are kept here: "for" is what tells a for loop from a while loop.
    let (wa, wb) = (words(a), words(b));
    let best = |own: &HashSet<String>, other: &HashSet<String>, not: Option<&String>| {
        let mut scored: Vec<(usize, usize, &String)> = all
            .iter()
            .enumerate()
            .filter(|(_, s)| Some(**s) != not)
            .map(|(i, s)| {
                let w = words(s);
                // A word only this side has counts double: it is what is being compared; a
                // sentence that also names the other side compares them, worth one more.
                let score: usize = own
                    .iter()
                    .filter(|x| w.contains(*x))
                    .map(|x| if other.contains(x) { 1 } else { 2 })
                    .sum();
                let compares = other.iter().any(|x| !own.contains(x) && w.contains(x));
                let score = if score > 1 && compares {
                    score + 1
                } else {
                    score
                };
                (score, i, *s)
            })
            .filter(|(score, _, _)| *score > 1)
            .collect();
        // Most of the side's words, then the earliest (where the lesson introduces it).
        scored.sort_by_key(|(hits, i, _)| (std::cmp::Reverse(*hits), *i));
        scored.first().map(|(_, _, s)| (*s).clone())
    };
    let first = best(&wa, &wb, None)?;
    let second = best(&wb, &wa, Some(&first))?;
    Some(format!(
        "**{}**: {}\n\n**{}**: {}",
        a,
        prose(&[first]),
        b,
        prose(&[second])
    ))
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

#[cfg(test)]
mod tests;

//! Teach mode with a lesson: one turn of the walk ([`super::walk`]) said by either voice —
//! the offline tutor or the model.
//!
//! What the service decides and writes itself, whatever the voice: the section header
//! ("Section 3 of 12: …"), the verdict ("**Correct!**", "**Not quite.**"), a revealed answer,
//! the re-asked check and its answer buttons, "Lesson complete", the progress line and the new
//! state. What the model writes: the teaching of a section and its check question, a nudge, a
//! hint, the answer to a free question, the summary — each from a streamed call that never
//! carries the answer key (the judge, a separate non-streamed call, is the only one that sees
//! it), and each passed through [`super::redact`] while a key is known.

use std::sync::{Arc, Mutex};

use futures::StreamExt;

use super::context::Context;
use super::metered::{CallError, Metered, refusal_reply};
use super::model::wire::Prompt;
use super::offline::{self, walk as offline_walk};
use super::prompts::{self, WalkPrompt};
use super::redact::redacted;
use super::text::{plain, tokens};
use super::walk::{
    self, Check, MAX_ATTEMPTS, Outcome, Plan, TutorState, Verdict, WalkSection, WalkState,
};
use crate::turn::{Choice, TurnError, TurnEvent, TurnStream};

/// Words that carry no question about the lesson ("ok what next?", "go on then").
const FILLER: &[&str] = &[
    "ok", "okay", "next", "now", "well", "sure", "yeah", "yep", "go", "on", "more", "done",
    "ready", "let's", "lets", "move", "alright", "hmm", "hi", "hello", "thanks", "thank",
];

/// Past turns given to the model with a walk prompt (the section itself is in the prompt).
const WALK_HISTORY_TURNS: usize = 4;
/// Longest answer key or judge feedback kept.
const MAX_KEY_CHARS: usize = 200;

/// Who speaks.
#[derive(Debug, Clone)]
pub enum Voice {
    Offline,
    /// The model, metered for this run when metering is on.
    Model(Metered),
}

type Item = Result<TurnEvent, TurnError>;

/// One walk turn for `ctx` (which has a lesson); `cap` is `TEACH_CONTEXT_CHARS`.
pub fn run(ctx: Context, voice: Voice, cap: usize) -> TurnStream {
    // Boxed, so that the turn's setup (the judge's call among it) is freed once it streams.
    futures::stream::once(Box::pin(async move {
        let Some(lesson) = ctx.lesson.clone() else {
            return offline::reply(&ctx);
        };
        let sections = walk::split(&lesson);
        if sections.is_empty() {
            return offline::reply(&ctx);
        }
        let state = ctx.state.clone();
        let saved = state.walk_of(&lesson.path, sections.len());
        let plan = walk::plan(saved.as_ref(), ctx.message.as_deref());
        let fresh = saved.is_none();
        let walk = saved.unwrap_or_else(|| WalkState::new(&lesson.path, sections.len()));
        let mut turn = Turn {
            fresh,
            texts: sections
                .iter()
                .map(|s| walk::sections::capped(&s.text, cap))
                .collect(),
            ctx,
            sections,
            voice,
            state,
            walk,
            out: Vec::new(),
            body: None,
            pending: None,
            capture: None,
            tail: String::new(),
        };
        let played = match turn.play(plan).await {
            Ok(()) => turn.open_body().await,
            Err(e) => Err(e),
        };
        match played {
            Ok(()) => turn.into_stream(),
            Err(CallError::Failed(e)) => futures::stream::iter([Err(e)]).boxed(),
            // Not admitted (out of credits, suspended, failing closed): the refusal is the
            // whole reply, and the walk stays where it was.
            Err(CallError::Refused(r)) => refusal_reply(&r),
        }
    }))
    .flatten()
    .boxed()
}

/// One turn being put together: events before the body, the body (a stream), text after it.
struct Turn {
    /// The walk begins with this turn.
    fresh: bool,
    ctx: Context,
    sections: Vec<WalkSection>,
    /// Each section's text within the cap.
    texts: Vec<String>,
    voice: Voice,
    state: TutorState,
    walk: WalkState,
    out: Vec<Item>,
    body: Option<TurnStream>,
    /// The streamed model call of the body, opened (checked, then started) once the turn is
    /// planned: its model, prompt and the key to mask.
    pending: Option<(Metered, Prompt, Option<String>)>,
    /// The model's teaching, collected to read its check question at the end.
    capture: Option<Arc<Mutex<String>>>,
    tail: String,
}

impl Turn {
    async fn play(&mut self, plan: Plan) -> Result<(), CallError> {
        self.note_language();
        match plan {
            Plan::Start => self.teach(self.fresh),
            Plan::Resume => self.resume(),
            Plan::Answer(answer) => self.answer(&answer).await?,
            Plan::Hint => self.hint(),
            Plan::Skip => self.skip().await?,
            Plan::Free(message) => self.free(&message),
            Plan::Finished => self.text(&format!(
                "We've finished **{}**: Lesson complete. Ask me about any part of it, or switch \
                 to quiz mode to test yourself.",
                self.title()
            )),
        }
        Ok(())
    }

    fn title(&self) -> String {
        self.ctx.title().unwrap_or("this lesson").to_owned()
    }

    fn text(&mut self, text: &str) {
        if !text.is_empty() {
            self.out.push(Ok(TurnEvent::Delta(text.to_owned())));
        }
    }

    fn progress(&mut self) {
        let line = walk::progress_line(&self.walk, &self.sections[self.walk.current]);
        self.out.push(Ok(TurnEvent::Progress(line)));
    }

    /// The offline tutor answers in English only: said once per thread.
    fn note_language(&mut self) {
        if matches!(self.voice, Voice::Offline)
            && self.ctx.wants_other_language()
            && !self.state.english_noted
        {
            self.state.english_noted = true;
            self.text("*(The offline tutor answers in English only.)*\n\n");
        }
    }

    fn prompt(&self) -> WalkPrompt<'_> {
        WalkPrompt {
            ctx: &self.ctx,
            sections: &self.sections,
            current: self.walk.current,
            text: &self.texts[self.walk.current],
        }
    }

    /// The streamed messages: the last few turns and the student's message.
    fn messages(&self, message: Option<&str>) -> Vec<(&'static str, String)> {
        let mut ctx = self.ctx.clone();
        let skip = ctx.history.len().saturating_sub(WALK_HISTORY_TURNS);
        ctx.history.drain(..skip);
        ctx.message = message.map(str::to_owned);
        super::model::wire::conversation(&ctx)
    }

    /// Whether the turn has a body (said offline, or a model call to open).
    fn has_body(&self) -> bool {
        self.body.is_some() || self.pending.is_some()
    }

    /// Opens the pending model call as the body; a refused check refuses the whole turn.
    async fn open_body(&mut self) -> Result<(), CallError> {
        if let Some((client, prompt, key)) = self.pending.take() {
            let stream = client
                .open_reply(&prompt)
                .await
                .map_err(CallError::Refused)?;
            self.body = Some(redacted(stream, key.as_deref()));
        }
        Ok(())
    }

    fn stream(&mut self, client: &Metered, instructions: String, message: Option<&str>) {
        let prompt = Prompt {
            instructions,
            messages: self.messages(message),
        };
        // An option's text is public (it is on the buttons): masking only the right one would
        // tell which it is, so a key that is one of the options is not masked.
        let key = self
            .walk
            .check
            .as_ref()
            .filter(|c| {
                let key = c
                    .key
                    .as_deref()
                    .map(plain)
                    .unwrap_or_default()
                    .to_lowercase();
                !c.options.iter().any(|o| plain(o).to_lowercase() == key)
            })
            .and_then(|c| c.key.clone());
        self.pending = Some((client.clone(), prompt, key));
    }

    /// Teach the current section: its header, then its teaching and check.
    fn teach(&mut self, greet: bool) {
        self.progress();
        let k = self.walk.current;
        if greet {
            let hello = match &self.ctx.student_name {
                Some(n) => format!("Hi {n}! "),
                None => "Hi! ".to_owned(),
            };
            let n = self.sections.len();
            self.text(&format!(
                "{hello}Let's walk through **{}** together: {n} sections, one check question each. \
                 Answer in your own words (or with the buttons); type **hint** for a clue or \
                 **skip** to move on.\n\n",
                self.title()
            ));
        }
        let header = format!(
            "**{}**\n\n",
            walk::progress_line(&self.walk, &self.sections[k])
        );
        self.text(&header);
        match self.voice.clone() {
            Voice::Offline => {
                let check = offline_walk::check(&self.sections, k);
                let body = format!(
                    "{}\n\n{}",
                    offline_walk::teach(&self.sections[k]),
                    offline_walk::render_check(&check, None)
                );
                self.body = Some(offline::stream_text(&body));
                self.walk.check = Some(check);
            }
            Voice::Model(client) => {
                let instructions = self.prompt().teach();
                let message = self.ctx.message.clone();
                let message = message.as_deref().or(Some(prompts::START_MESSAGE));
                self.walk.check = None;
                self.stream(&client, instructions, message);
                self.capture = Some(Arc::default());
            }
        }
    }

    fn resume(&mut self) {
        self.progress();
        let line = walk::progress_line(&self.walk, &self.sections[self.walk.current]);
        self.text(&format!("Welcome back! We're on **{line}**.\n\n"));
        self.reask(None);
    }

    /// The pending check again (after a wrong answer, a hint or a free question).
    fn reask(&mut self, attempt: Option<(u32, u32)>) {
        if let Some(check) = &self.walk.check {
            let lead = if self.has_body() { "\n\n" } else { "" };
            self.tail = format!("{lead}{}", offline_walk::render_check(check, attempt));
        }
    }

    async fn answer(&mut self, answer: &str) -> Result<(), CallError> {
        let Some(check) = self.walk.check.clone() else {
            self.teach(false);
            return Ok(());
        };
        let (verdict, feedback) = match self.voice.clone() {
            Voice::Offline => (offline_walk::judge(&check, answer), String::new()),
            Voice::Model(client) => {
                self.out
                    .push(Ok(TurnEvent::Progress("Checking your answer…".into())));
                self.judge(&client, &check, Some(answer)).await?
            }
        };
        match verdict {
            Verdict::Correct => {
                let name = self.ctx.student_name.as_deref().map(|n| format!(", {n}"));
                let feedback = if feedback.is_empty() {
                    format!("That's it{}.", name.unwrap_or_default())
                } else {
                    feedback
                };
                self.text(&format!("**Correct!** {feedback}\n\n"));
                self.next(Outcome::Correct);
            }
            Verdict::Incorrect => {
                self.walk.attempts += 1;
                if self.walk.attempts >= MAX_ATTEMPTS {
                    let key = self.key_text();
                    self.text(&format!(
                        "**Not quite.** That was the last try on this one. The answer: {key}\n\n"
                    ));
                    self.next(Outcome::Revealed);
                } else {
                    self.text("**Not quite.** ");
                    self.nudge(&check, answer);
                    let attempt = Some((self.walk.attempts + 1, MAX_ATTEMPTS));
                    self.reask(attempt);
                }
            }
            Verdict::NotAnAnswer => {
                self.free_in_walk(answer);
                let k = self.walk.current + 1;
                if let Some(check) = &self.walk.check {
                    let lead = if self.has_body() { "\n\n" } else { "" };
                    self.tail = format!(
                        "{lead}*We're still on section {k}; type **hint** for a clue or **skip** to \
                         move on.*\n\n{}",
                        offline_walk::render_check(check, None)
                    );
                }
            }
        }
        Ok(())
    }

    /// The judge's verdict on `answer` (`None`: the student skipped), storing the key it gives
    /// when none was known. Its usage is part of the reply.
    async fn judge(
        &mut self,
        client: &Metered,
        check: &Check,
        answer: Option<&str>,
    ) -> Result<(Verdict, String), CallError> {
        let prompt = Prompt {
            instructions: prompts::judge(&self.prompt(), check, answer),
            messages: vec![("user", answer.unwrap_or("(skipped)").to_owned())],
        };
        let (value, usage) = client.judge(&prompt).await?;
        self.out.push(Ok(TurnEvent::Usage(usage)));
        let field = |name: &str| {
            value[name]
                .as_str()
                .map(|s| super::text::truncate_chars(s.trim(), MAX_KEY_CHARS).to_owned())
                .unwrap_or_default()
        };
        let expected = field("expected");
        if let Some(c) = self.walk.check.as_mut() {
            if c.key.is_none() && !expected.is_empty() {
                c.key = Some(expected);
            }
        }
        if answer.is_none() {
            return Ok((Verdict::Incorrect, String::new()));
        }
        let verdict = Verdict::parse(&field("verdict")).ok_or_else(|| TurnError {
            message: "Your answer could not be checked just now. Please send it again.".into(),
            allow_retry: true,
        })?;
        let feedback = if verdict == Verdict::Correct {
            field("feedback")
        } else {
            String::new()
        };
        Ok((verdict, feedback))
    }

    /// The revealed answer, as the student sees it.
    fn key_text(&self) -> String {
        let Some(check) = &self.walk.check else {
            return "(see the section above)".into();
        };
        let key = check
            .key
            .clone()
            .unwrap_or_else(|| "(see the section above)".into());
        match check.options.iter().position(|o| *o == key) {
            Some(i) => format!("{}) {key}", offline_walk::letter(i)),
            None => key,
        }
    }

    fn nudge(&mut self, check: &Check, answer: &str) {
        match self.voice.clone() {
            Voice::Offline => {
                let text = offline_walk::hint(check);
                if let Some(c) = self.walk.check.as_mut() {
                    c.hints += 1;
                }
                self.body = Some(offline::stream_text(&text));
            }
            Voice::Model(client) => {
                let instructions = self.prompt().nudge(check, answer);
                self.stream(&client, instructions, Some(answer));
            }
        }
    }

    fn hint(&mut self) {
        let Some(check) = self.walk.check.clone() else {
            self.teach(false);
            return;
        };
        self.text("**Hint:** ");
        match self.voice.clone() {
            Voice::Offline => self.body = Some(offline::stream_text(&offline_walk::hint(&check))),
            Voice::Model(client) => {
                let instructions = self.prompt().hint(&check);
                self.stream(&client, instructions, Some("hint"));
            }
        }
        if let Some(c) = self.walk.check.as_mut() {
            c.hints += 1;
        }
        self.reask(None);
    }

    async fn skip(&mut self) -> Result<(), CallError> {
        if let (Voice::Model(client), Some(check)) = (self.voice.clone(), self.walk.check.clone()) {
            if check.key.is_none() {
                self.judge(&client, &check, None).await?;
            }
        }
        let key = self.key_text();
        self.text(&format!("Skipping ahead. The answer was: {key}\n\n"));
        self.next(Outcome::Skipped);
        Ok(())
    }

    /// Closes the section and teaches the next one, or ends the walk with its summary.
    fn next(&mut self, outcome: Outcome) {
        self.walk.advance(outcome);
        if !self.walk.complete {
            self.teach(false);
            return;
        }
        self.out
            .push(Ok(TurnEvent::Progress("Lesson complete".into())));
        self.text("🎉 **Lesson complete!**\n\n");
        match self.voice.clone() {
            Voice::Offline => {
                let text = offline_walk::summary(&self.title(), &self.sections, &self.walk);
                self.body = Some(offline::stream_text(&text));
            }
            Voice::Model(client) => {
                let covered = format!(
                    "{} of {} checks answered right",
                    self.walk.correct(),
                    self.walk.total
                );
                let instructions = self.prompt().summary(&covered);
                self.stream(&client, instructions, Some(prompts::CONTINUE_MESSAGE));
                self.tail = format!(
                    "\n\nYou answered {} of {} checks right.",
                    self.walk.correct(),
                    self.walk.total
                );
            }
        }
    }

    /// A message that is not an answer while a check is pending: answered, the walk stays.
    fn free_in_walk(&mut self, message: &str) {
        match self.voice.clone() {
            Voice::Offline => {
                let Some(lesson) = self.ctx.lesson.as_deref() else {
                    return;
                };
                let lesson = offline::Prepared::new(lesson);
                let meaningful: Vec<String> = tokens(message)
                    .into_iter()
                    .filter(|t| !FILLER.contains(&t.as_str()))
                    .collect();
                let relevant = !meaningful.is_empty()
                    && offline::answer_covers(&lesson, &meaningful.join(" "));
                if relevant {
                    let text = offline::answer(&lesson, message, None);
                    self.body = Some(offline::stream_text(&text));
                }
            }
            Voice::Model(client) => {
                let check = self.walk.check.clone();
                let instructions = self.prompt().free(check.as_ref());
                self.stream(&client, instructions, Some(message));
            }
        }
    }

    /// A question after the walk is over.
    fn free(&mut self, message: &str) {
        match self.voice.clone() {
            Voice::Offline => {
                let Some(lesson) = self.ctx.lesson.as_deref() else {
                    return;
                };
                let lesson = offline::Prepared::new(lesson);
                let text = offline::answer(&lesson, message, self.ctx.selected_text.as_deref());
                self.body = Some(offline::stream_text(&text));
            }
            Voice::Model(client) => {
                // The section the question is about becomes the prompt's current section.
                self.walk.current = best_section(&self.sections, message);
                let instructions = self.prompt().free(None);
                self.walk.current = self.walk.total.saturating_sub(1);
                self.stream(&client, instructions, Some(message));
            }
        }
    }

    /// The whole reply: head events, body, then (once the body is complete) the captured
    /// check, the tail text, the new state and the answer buttons.
    fn into_stream(self) -> TurnStream {
        let Turn {
            out,
            body,
            capture,
            tail,
            mut walk,
            mut state,
            sections,
            ..
        } = self;
        let body = match (body, capture.clone()) {
            (Some(body), Some(buf)) => body
                .inspect(move |e| {
                    if let Ok(TurnEvent::Delta(d)) = e {
                        buf.lock().unwrap_or_else(|p| p.into_inner()).push_str(d);
                    }
                })
                .boxed(),
            (Some(body), None) => body,
            (None, _) => futures::stream::empty().boxed(),
        };
        let end = futures::stream::once(async move {
            let mut events: Vec<Item> = Vec::new();
            let mut tail = tail;
            if let Some(buf) = capture {
                let text = buf.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let check = parse_check(&text).unwrap_or_else(|| {
                    let title = sections[walk.current].title().to_owned();
                    let c = Check::typed(format!(
                        "In a sentence or two: what is the key idea of *{title}*?"
                    ));
                    tail = format!("\n\n{}{tail}", offline_walk::render_check(&c, None));
                    c
                });
                walk.check = Some(check);
            }
            if !tail.is_empty() {
                events.push(Ok(TurnEvent::Delta(tail)));
            }
            state.walk = Some(walk.clone());
            events.push(Ok(TurnEvent::State(state.to_value())));
            if let Some(check) = walk.check.as_ref().filter(|c| !c.options.is_empty()) {
                events.push(Ok(TurnEvent::Choices(choices(check))));
            }
            futures::stream::iter(events)
        })
        .flatten();
        futures::stream::iter(out).chain(body).chain(end).boxed()
    }
}

/// The answer buttons of `check`: pressing one answers as if `A) …` had been typed.
fn choices(check: &Check) -> Vec<Choice> {
    check
        .options
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let label = format!("{}) {}", offline_walk::letter(i), plain(o));
            Choice {
                value: label.clone(),
                label,
            }
        })
        .collect()
}

/// The check question the model wrote: its last `**Check:**` line (else its last line ending
/// with `?`), and the `A) …` option lines after it.
pub fn parse_check(text: &str) -> Option<Check> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let marker = |l: &str| {
        let bare = l.replace("**", "");
        let bare = bare.trim_start();
        bare.strip_prefix("Check:")
            .or_else(|| bare.strip_prefix("Check question:"))
            .map(|q| q.trim().to_owned())
    };
    let (at, question) = lines
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, l)| marker(l).map(|q| (i, q)))
        .or_else(|| {
            lines
                .iter()
                .enumerate()
                .rev()
                .find(|(_, l)| l.ends_with('?'))
                .map(|(i, l)| (i, (*l).to_owned()))
        })?;
    let mut options = Vec::new();
    let mut question = question;
    for line in &lines[at + 1..] {
        let mut chars = line.chars();
        let (Some(letter), Some(sep)) = (chars.next(), chars.next()) else {
            if question.is_empty() && !line.is_empty() {
                question = (*line).to_owned();
            }
            continue;
        };
        let expected = char::from(b'A' + u8::try_from(options.len()).unwrap_or(25));
        if letter.to_ascii_uppercase() == expected && matches!(sep, ')' | '.' | ':') {
            options.push(chars.as_str().trim().to_owned());
        } else if question.is_empty() {
            question = (*line).to_owned();
        }
    }
    if question.is_empty() {
        return None;
    }
    if options.len() < 2 {
        options.clear();
    }
    Some(Check {
        question,
        options,
        key: None,
        hints: 0,
    })
}

fn best_section(sections: &[WalkSection], message: &str) -> usize {
    let docs: Vec<Vec<String>> = sections
        .iter()
        .map(|s| {
            let mut t = tokens(&s.heading);
            t.extend(tokens(&s.text));
            t
        })
        .collect();
    super::bm25::Bm25::new(&docs)
        .best(&tokens(message))
        .map_or(0, |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_models_check_question_and_options_are_read_from_its_reply() {
        let text = "A `for` loop walks a sequence.\n\n**Check:** Which loop fits a list?\nA) `for`\nB) `while`";
        let c = parse_check(text).expect("check");
        assert_eq!(c.question, "Which loop fits a list?");
        assert_eq!(c.options, vec!["`for`", "`while`"]);
        assert_eq!(c.key, None);
        let c = parse_check("Teaching.\nWhat does `range(3)` give?").expect("fallback");
        assert_eq!(c.question, "What does `range(3)` give?");
        assert!(parse_check("No question here.").is_none());
    }
}

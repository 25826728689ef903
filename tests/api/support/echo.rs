//! The deterministic responder of the protocol tests (the conformance tests' Python twin in
//! `tests/conformance/oracle.py` must produce the same output).
//!
//! Reply: two content parts — an echo of the message (or a greeting for a start trigger) and a
//! fixed follow-up question — each streamed word by word (`split_inclusive(' ')`). On the
//! first turn of a thread with a message, the title is its first six words.

use futures::stream;

use study_mode_api::turn::{Responder, TurnEvent, TurnRequest, TurnStream, Usage};

/// Words of the message that make the title.
const TITLE_WORDS: usize = 6;

/// Echoes the student's message back in small deltas.
#[derive(Debug, Clone, Default)]
pub struct EchoResponder;

impl EchoResponder {
    /// The content parts of the reply to `request`.
    pub fn parts(request: &TurnRequest) -> [String; 2] {
        let first = match (&request.message, &request.lesson) {
            (Some(message), _) => format!("You said: {message}"),
            (None, Some(lesson)) => format!("Let's study {lesson} together."),
            (None, None) => "Let's start.".to_owned(),
        };
        [first, "What would you like to explore next?".to_owned()]
    }

    /// The events of the reply, in order.
    pub fn events(request: &TurnRequest) -> Vec<TurnEvent> {
        let mut events = Vec::new();
        let title = request
            .message
            .as_deref()
            .filter(|_| request.needs_title)
            .map(|m| {
                m.split_whitespace()
                    .take(TITLE_WORDS)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|t| !t.is_empty());
        if let Some(title) = title {
            events.push(TurnEvent::Title(title));
        }
        let parts = Self::parts(request);
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                events.push(TurnEvent::NewPart);
            }
            events.extend(
                part.split_inclusive(' ')
                    .map(|w| TurnEvent::Delta(w.to_owned())),
            );
        }
        let words = |s: &str| s.split_whitespace().count() as u64;
        events.push(TurnEvent::Usage(Usage {
            input_tokens: request.message.as_deref().map(words).unwrap_or(0),
            output_tokens: parts.iter().map(|p| words(p)).sum(),
            ..Usage::default()
        }));
        events
    }
}

impl Responder for EchoResponder {
    fn respond(&self, request: TurnRequest) -> TurnStream {
        Box::pin(stream::iter(Self::events(&request).into_iter().map(Ok)))
    }

    fn describe(&self) -> String {
        "echo".to_owned()
    }
}

mod tests {
    use super::*;

    #[test]
    fn the_first_turn_gets_a_title_and_two_parts_of_deltas() {
        let request = TurnRequest {
            message: Some("What is a closure in Rust exactly?".into()),
            needs_title: true,
            ..TurnRequest::default()
        };
        let events = EchoResponder::events(&request);
        assert_eq!(
            events[0],
            TurnEvent::Title("What is a closure in Rust".into())
        );
        assert_eq!(events[1], TurnEvent::Delta("You ".into()));
        assert_eq!(
            events.iter().filter(|e| **e == TurnEvent::NewPart).count(),
            1
        );
        let text: String = events
            .iter()
            .filter_map(|e| match e {
                TurnEvent::Delta(d) => Some(d.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            text,
            "You said: What is a closure in Rust exactly?What would you like to explore next?"
        );
    }

    #[test]
    fn a_start_trigger_greets_without_a_title() {
        let request = TurnRequest {
            lesson: Some(
                study_mode_api::content::LessonPath::parse("01-Part/02-lesson").expect("path"),
            ),
            needs_title: true,
            ..TurnRequest::default()
        };
        let events = EchoResponder::events(&request);
        assert!(!events.iter().any(|e| matches!(e, TurnEvent::Title(_))));
        assert_eq!(events[0], TurnEvent::Delta("Let's ".into()));
    }
}

//! A Server-Sent Events parser for model streams.
//!
//! Hand-written (about 80 lines) rather than `eventsource-stream`: that crate has had no
//! release since 2022, pulls in `nom`, and we need exactly the WHATWG line rules plus a bound
//! on line length. Bytes are buffered and split on line ends *before* decoding, so a UTF-8
//! character split across network chunks is never decoded in halves; `\r\n`, `\n` and `\r`
//! all end a line; `:` comments (keep-alives) are skipped. `[DONE]` is an ordinary `data`
//! payload here: the wire decoders give it meaning.

/// One dispatched event: its `event:` name (if any) and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// A line longer than this (1 MiB) is not a model stream: the parser refuses it.
const MAX_LINE_BYTES: usize = 1 << 20;

/// The upstream sent a line longer than [`MAX_LINE_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineTooLong;

/// Incremental parser: feed chunks with [`SseParser::push`] as they arrive.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    /// How many bytes at the front of `buf` are known to hold no line end, so that a long line
    /// arriving in many small chunks is scanned once, not once per chunk (quadratic).
    scanned: usize,
    event: Option<String>,
    data: Option<String>,
    started: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `chunk` and returns every event it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, LineTooLong> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        let mut from = self.scanned;
        let mut pending_cr = false;
        while let Some(offset) = self.buf[from..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
        {
            let end = from + offset;
            let is_cr = self.buf[end] == b'\r';
            // A `\r` at the very end may be the first half of `\r\n`: wait for the next byte.
            if is_cr && end + 1 == self.buf.len() {
                (from, pending_cr) = (end, true);
                break;
            }
            let skip = if is_cr && self.buf[end + 1] == b'\n' {
                2
            } else {
                1
            };
            let line = String::from_utf8_lossy(&self.buf[start..end]).into_owned();
            start = end + skip;
            from = start;
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
        }
        // All that is left is searched, except a pending `\r`: it is looked at again next time.
        self.scanned = if pending_cr { from } else { self.buf.len() } - start;
        self.buf.drain(..start);
        if self.buf.len() > MAX_LINE_BYTES {
            return Err(LineTooLong);
        }
        Ok(events)
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        let line = if self.started {
            line
        } else {
            self.started = true;
            line.strip_prefix('\u{feff}').unwrap_or(line)
        };
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                let data = self.data.get_or_insert_with(String::new);
                data.push_str(value);
                data.push('\n');
            }
            _ => {} // `id`, `retry` and unknown fields mean nothing to a model stream
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        let mut data = self.data.take()?;
        data.pop(); // the `\n` after the last data line
        Some(SseEvent { event, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        chunks
            .iter()
            .flat_map(|c| p.push(c).expect("line length"))
            .collect()
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(Into::into),
            data: data.into(),
        }
    }

    #[test]
    fn events_with_names_and_multi_line_data_are_dispatched_on_blank_lines() {
        let got = parse_chunks(&[b"event: a\ndata: one\ndata: two\n\ndata:x\n\n"]);
        assert_eq!(got, vec![ev(Some("a"), "one\ntwo"), ev(None, "x")]);
    }

    #[test]
    fn comments_ids_and_retry_are_ignored_and_done_is_plain_data() {
        let got = parse_chunks(&[b": keep-alive\n\nid: 1\nretry: 10\ndata: [DONE]\n\n"]);
        assert_eq!(got, vec![ev(None, "[DONE]")]);
    }

    #[test]
    fn crlf_and_lone_cr_line_ends_work_even_when_split_between_chunks() {
        let got = parse_chunks(&[b"data: a\r", b"\n\r", b"\ndata: b\r", b"\r", b"\n"]);
        assert_eq!(got, vec![ev(None, "a"), ev(None, "b")]);
    }

    #[test]
    fn a_utf8_character_split_across_chunks_is_decoded_whole() {
        let bytes = "data: héllo 🌍\n\n".as_bytes();
        let (a, b) = bytes.split_at(9); // inside "é"
        let (b, c) = b.split_at(6); // inside "🌍"
        assert_eq!(parse_chunks(&[a, b, c]), vec![ev(None, "héllo 🌍")]);
    }

    #[test]
    fn an_unterminated_event_is_not_dispatched() {
        assert_eq!(parse_chunks(&[b"data: partial\n"]), vec![]);
    }

    #[test]
    fn a_line_arriving_in_many_chunks_is_searched_once_and_a_pending_cr_again() {
        let mut p = SseParser::new();
        for _ in 0..1000 {
            assert_eq!(p.push(b"x"), Ok(vec![]));
            assert_eq!(
                p.scanned,
                p.buf.len(),
                "bytes already searched are not searched again"
            );
        }
        assert_eq!(p.push(b"\r"), Ok(vec![]));
        assert_eq!(
            p.scanned,
            p.buf.len() - 1,
            "the `\\r` waits for a possible `\\n`"
        );
        assert_eq!(p.push(b"\ndata: y\r"), Ok(vec![]));
        assert_eq!(p.push(b"\r\n"), Ok(vec![ev(None, "y")]));
        assert_eq!((p.scanned, p.buf.len()), (0, 0));
        assert_eq!(p.push(b"data: z\n"), Ok(vec![]));
        assert_eq!(p.push(b"\r"), Ok(vec![]), "a `\\r` alone in the buffer");
        assert_eq!(p.scanned, 0);
        assert_eq!(p.push(b"\n"), Ok(vec![ev(None, "z")]));
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut p = SseParser::new();
        assert_eq!(p.push(&vec![b'a'; MAX_LINE_BYTES + 1]), Err(LineTooLong));
    }

    fn serialise(events: &[(Option<String>, String)], crlf: bool, comments: bool) -> Vec<u8> {
        let nl = if crlf { "\r\n" } else { "\n" };
        let mut out = String::new();
        for (name, data) in events {
            if comments {
                out.push_str(&format!(": ping{nl}"));
            }
            if let Some(name) = name {
                out.push_str(&format!("event: {name}{nl}"));
            }
            for line in data.split('\n') {
                out.push_str(&format!("data: {line}{nl}"));
            }
            out.push_str(nl);
        }
        out.into_bytes()
    }

    proptest! {
        #[test]
        fn any_chunking_of_any_stream_parses_to_the_same_events(
            events in prop::collection::vec(
                (prop::option::of("[a-z.]{1,12}"), "[a-zé🌍{}\":, \n]{0,24}"),
                0..8,
            ),
            crlf in any::<bool>(),
            comments in any::<bool>(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let bytes = serialise(&events, crlf, comments);
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for p in points {
                chunks.push(&bytes[last..p]);
                last = p;
            }
            chunks.push(&bytes[last..]);
            let expected: Vec<SseEvent> = events
                .iter()
                .map(|(n, d)| SseEvent { event: n.clone(), data: d.clone() })
                .collect();
            prop_assert_eq!(parse_chunks(&chunks), expected);
        }
    }
}

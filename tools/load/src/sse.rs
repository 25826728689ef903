//! Incremental splitter for the ChatKit SSE stream: feeds bytes as they arrive and yields the
//! `type` of each complete event (events end at a blank line; only `data:` lines matter here),
//! with the type of its update or item when it carries one.

/// One parsed event: its `type` field (or `?` when the data is not a JSON object with one), and
/// the text of a reply delta (`update.delta`) when it carries one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventKind(pub String, pub Option<String>);

/// Buffers a partial event between reads.
#[derive(Default)]
pub struct Splitter {
    buf: Vec<u8>,
}

impl Splitter {
    /// Appends `chunk` and returns the events it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<EventKind> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some((end, sep)) = find_blank_line(&self.buf) {
            let event: Vec<u8> = self.buf.drain(..end + sep).collect();
            if let Some(kind) = kind_of(&event[..end]) {
                out.push(kind);
            }
        }
        out
    }
}

/// Position and length of the first `\n\n` or `\r\n\r\n`.
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| (p, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn kind_of(event: &[u8]) -> Option<EventKind> {
    let text = String::from_utf8_lossy(event);
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect();
    if data.is_empty() {
        return None; // a comment (keep-alive) or an empty event
    }
    let joined = data.join("\n");
    let value = serde_json::from_str::<serde_json::Value>(&joined).ok();
    let delta = value
        .as_ref()
        .and_then(|v| v.pointer("/update/delta")?.as_str().map(str::to_owned));
    let kind = value
        .and_then(|v| {
            let t = v.get("type")?.as_str()?.to_owned();
            // A reply delta travels inside thread.item.updated; name it so callers can time it.
            // Likewise an item event names its item's type (`thread.item.done/assistant_message`).
            let inner = v
                .pointer("/update/type")
                .or_else(|| v.pointer("/item/type"))
                .and_then(|u| u.as_str());
            Some(match inner {
                Some(u) => format!("{t}/{u}"),
                None => t,
            })
        })
        .unwrap_or_else(|| "?".into());
    Some(EventKind(kind, delta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_reads_come_out_whole_and_in_order() {
        let mut s = Splitter::default();
        assert!(s.feed(b"data: {\"type\":\"thread.cre").is_empty());
        let got = s.feed(b"ated\"}\n\n: keep-alive\n\ndata: {\"type\":\"thread.item.updated\",\"update\":{\"type\":\"assistant_message.content_part.text_delta\",\"delta\":\"hi\"}}\r\n\r\n");
        assert_eq!(
            got,
            vec![
                EventKind("thread.created".into(), None),
                EventKind(
                    "thread.item.updated/assistant_message.content_part.text_delta".into(),
                    Some("hi".into())
                )
            ]
        );
    }

    #[test]
    fn an_item_event_is_named_with_its_item_type() {
        let mut s = Splitter::default();
        let got = s.feed(b"data: {\"type\":\"thread.item.done\",\"item\":{\"id\":\"m\",\"type\":\"assistant_message\"}}\n\n");
        assert_eq!(
            got,
            vec![EventKind("thread.item.done/assistant_message".into(), None)]
        );
    }

    #[test]
    fn data_that_is_not_json_is_still_an_event() {
        let mut s = Splitter::default();
        assert_eq!(s.feed(b"data: oops\n\n"), vec![EventKind("?".into(), None)]);
    }
}

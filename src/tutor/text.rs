//! Small text tools shared by the offline tutor and the context builder: word tokens for
//! ranking and grading, sentence splitting, Markdown stripping and delta chunking.

/// Words too common to say anything about a topic (ranking and grading ignore them).
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "do", "does", "for",
    "from", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "of",
    "on", "or", "so", "that", "the", "their", "them", "then", "there", "these", "this", "to",
    "was", "we", "what", "when", "where", "which", "who", "why", "will", "with", "you", "your",
    "about", "explain", "tell", "please", "mean", "means", "just", "than", "also", "not", "no",
    "yes", "they", "it's", "i'm", "our", "us", "would", "could", "should", "all", "any", "some",
];

/// Lower-cased content words of `text`, lightly stemmed (plural `s` dropped), stopwords removed.
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\'').to_lowercase())
        .filter(|w| !w.is_empty() && !STOPWORDS.contains(&w.as_str()))
        .map(stem)
        .collect()
}

/// Drops a plural `s` so that "closures" matches "closure" (not "ss" words like "class").
fn stem(word: String) -> String {
    if word.chars().count() > 3 && word.ends_with('s') && !word.ends_with("ss") {
        word[..word.len() - 1].to_owned()
    } else {
        word
    }
}

/// One block of a lesson's Markdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A paragraph, its soft-wrapped lines joined with spaces.
    Paragraph(String),
    /// One list item (marker removed), continuation lines joined.
    Item(String),
    /// A fenced code block, fences included.
    Code(String),
    /// A heading inside the section (`### …`), without its hashes.
    Heading(String),
}

/// The blocks of `text`: paragraphs and list items with their soft-wrapped lines joined (a
/// line break inside a paragraph is a space, never a sentence end), code blocks kept whole,
/// tables, HTML and quotes' markers dropped.
pub fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut para: Option<Block> = None;
    let mut code: Option<String> = None;
    let flush = |para: &mut Option<Block>, out: &mut Vec<Block>| {
        if let Some(b) = para.take() {
            out.push(b);
        }
    };
    for raw in text.lines() {
        let line = raw.trim();
        if let Some(c) = code.as_mut() {
            c.push_str(raw);
            c.push('\n');
            if line.starts_with("```") || line.starts_with("~~~") {
                out.push(Block::Code(
                    code.take().unwrap_or_default().trim_end().to_owned(),
                ));
            }
            continue;
        }
        if line.starts_with("```") || line.starts_with("~~~") {
            flush(&mut para, &mut out);
            code = Some(format!("{raw}\n"));
            continue;
        }
        if line.is_empty() || line.starts_with('|') || line.starts_with('<') {
            flush(&mut para, &mut out);
            continue;
        }
        if line.starts_with('#') {
            flush(&mut para, &mut out);
            out.push(Block::Heading(
                line.trim_start_matches('#').trim().to_owned(),
            ));
            continue;
        }
        let stripped = strip_markers(line);
        let is_item = stripped.len() < line.len() && !line.starts_with('>');
        match (&mut para, is_item) {
            (_, true) => {
                flush(&mut para, &mut out);
                para = Some(Block::Item(stripped.to_owned()));
            }
            (Some(Block::Paragraph(p) | Block::Item(p)), false) => {
                p.push(' ');
                p.push_str(stripped);
            }
            (_, false) => para = Some(Block::Paragraph(stripped.to_owned())),
        }
    }
    flush(&mut para, &mut out);
    if let Some(c) = code {
        out.push(Block::Code(c.trim_end().to_owned()));
    }
    out
}

/// Splits prose into sentences (on `.`, `!`, `?` followed by whitespace; each list item is its
/// own sentence). Soft-wrapped lines are joined first, so a line break is never a sentence end.
/// Code blocks, headings and tables are not sentences.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for block in blocks(text) {
        match block {
            Block::Paragraph(p) | Block::Item(p) => split_line(&p, &mut out),
            Block::Code(_) | Block::Heading(_) => {}
        }
    }
    out
}

/// Removes list and quote markers (`- `, `* `, `1. `, `> `), not emphasis (`**bold**`).
fn strip_markers(mut line: &str) -> &str {
    loop {
        let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let rest = if digits > 0 { &line[digits..] } else { line };
        let next = ["- ", "* ", "+ ", "> ", ". ", ") "]
            .iter()
            .find_map(|m| rest.strip_prefix(m))
            .filter(|_| digits == 0 || rest.starts_with(". ") || rest.starts_with(") "));
        match next {
            Some(r) => line = r.trim_start(),
            None => return line,
        }
    }
}

fn split_line(line: &str, out: &mut Vec<String>) {
    let mut start = 0;
    let bytes: Vec<(usize, char)> = line.char_indices().collect();
    for (i, &(pos, c)) in bytes.iter().enumerate() {
        let next_is_space = bytes.get(i + 1).is_none_or(|&(_, n)| n.is_whitespace());
        if matches!(c, '.' | '!' | '?') && next_is_space {
            push_sentence(&line[start..pos + c.len_utf8()], out);
            start = pos + c.len_utf8();
        }
    }
    push_sentence(&line[start..], out);
}

fn push_sentence(s: &str, out: &mut Vec<String>) {
    let s = s.trim();
    if s.chars().filter(|c| c.is_alphanumeric()).count() >= 3 {
        out.push(s.to_owned());
    }
}

/// Plain text of one line of Markdown: links keep their label, emphasis and code marks go.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' | '_' | '`' => {}
            '[' => {}
            ']' if chars.peek() == Some(&'(') => {
                for n in chars.by_ref() {
                    if n == ')' {
                        break;
                    }
                }
            }
            ']' => {}
            _ => out.push(c),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Splits `text` into deltas of about `words` words each, keeping every character (the
/// concatenation of the deltas is `text`), so the client sees the reply grow.
pub fn deltas(text: &str, words: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut count = 0;
    for piece in text.split_inclusive(char::is_whitespace) {
        current.push_str(piece);
        if !piece.trim().is_empty() {
            count += 1;
        }
        if count >= words && piece.ends_with(char::is_whitespace) {
            out.push(std::mem::take(&mut current));
            count = 0;
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// At most `max` characters of `text`, cut on a char boundary.
pub fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_drop_stopwords_case_and_plurals() {
        assert_eq!(
            tokens("What ARE the Closures in Rust?"),
            vec!["closure", "rust"]
        );
        assert_eq!(tokens("class"), vec!["class"]);
    }

    #[test]
    fn sentences_split_on_terminal_punctuation_and_skip_code_and_headings() {
        let text = "# Title\nRust is fast. It is safe!\n```\nlet x = 1.\n```\n- A list item\n2. **Bold** start\n";
        assert_eq!(
            sentences(text),
            vec![
                "Rust is fast.",
                "It is safe!",
                "A list item",
                "**Bold** start"
            ]
        );
    }

    #[test]
    fn soft_wrapped_lines_are_one_sentence_not_two() {
        let text = "A **loop** runs the same block. Python has two: `for` goes through the items of\na sequence, `while` repeats.\n\n- first item that\n  wraps\n- second";
        assert_eq!(
            sentences(text),
            vec![
                "A **loop** runs the same block.",
                "Python has two: `for` goes through the items of a sequence, `while` repeats.",
                "first item that wraps",
                "second"
            ]
        );
    }

    #[test]
    fn blocks_keep_code_whole_and_join_paragraph_lines() {
        let b = blocks(
            "Intro line one\nline two.\n\n```python\nx = 1\n\ny = 2\n```\n### Sub\n| a | b |\n",
        );
        assert_eq!(
            b,
            vec![
                Block::Paragraph("Intro line one line two.".into()),
                Block::Code("```python\nx = 1\n\ny = 2\n```".into()),
                Block::Heading("Sub".into()),
            ]
        );
    }

    #[test]
    fn decimal_points_do_not_end_sentences() {
        assert_eq!(
            sentences("Version 1.5 is out. Yes."),
            vec!["Version 1.5 is out.", "Yes."]
        );
    }

    #[test]
    fn plain_removes_markdown_marks_but_keeps_link_labels() {
        assert_eq!(
            plain("A **bold** `code` [link](http://x.y/z) _it_"),
            "A bold code link it"
        );
    }

    #[test]
    fn deltas_concatenate_to_the_original_text() {
        let text = "Hello there, **Ada**! Ownership means one owner.\n\nNext — ünïcödé words.";
        let parts = deltas(text, 3);
        assert!(parts.len() > 3);
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn truncation_respects_multibyte_characters() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("hi", 5), "hi");
    }
}

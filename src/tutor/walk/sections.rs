//! A lesson cut into the sections of a teach walk: on H2 headings and horizontal rules, the
//! lesson's own `# Title` line dropped, pieces shorter than [`MIN_SECTION_CHARS`] merged into
//! the previous one (the first into the next).

use crate::content::Lesson;

/// Sections with less text than this join their neighbour.
pub const MIN_SECTION_CHARS: usize = 100;

/// One step of the walk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalkSection {
    /// The H2 heading; empty for the lesson's introduction (text before the first H2).
    pub heading: String,
    /// The section's Markdown (H3 and deeper headings included), without its own heading.
    pub text: String,
}

impl WalkSection {
    /// The heading to show: the section's, else `Introduction`.
    pub fn title(&self) -> &str {
        if self.heading.is_empty() {
            "Introduction"
        } else {
            &self.heading
        }
    }
}

/// The walk sections of `lesson`.
pub fn split(lesson: &Lesson) -> Vec<WalkSection> {
    if lesson.body.trim().is_empty() {
        // A lesson built without its body (tests, tools): its parsed sections.
        let pieces = lesson
            .sections
            .iter()
            .filter(|s| s.level != 1 || !s.text.trim().is_empty())
            .map(|s| WalkSection {
                heading: if s.level == 1 {
                    String::new()
                } else {
                    s.heading.clone()
                },
                text: s.text.trim().to_owned(),
            })
            .filter(|s| !s.text.is_empty() || !s.heading.is_empty())
            .collect();
        return merge_small(pieces);
    }
    let mut pieces: Vec<WalkSection> = Vec::new();
    let mut current = WalkSection {
        heading: String::new(),
        text: String::new(),
    };
    let mut fence: Option<String> = None;
    for line in lesson.body.lines() {
        let t = line.trim_start();
        let marker: String = t.chars().take_while(|c| *c == '`' || *c == '~').collect();
        let is_marker = marker.len() >= 3;
        if is_marker {
            match &fence {
                Some(open) if marker.starts_with(open.as_str()) => fence = None,
                None => fence = Some(marker),
                Some(_) => {}
            }
        }
        let outside = fence.is_none() && !is_marker;
        if outside && is_rule(t) {
            let heading = current.heading.trim_end_matches(" (continued)").to_owned();
            push(&mut pieces, std::mem::take(&mut current));
            // A rule splits a section; the second part keeps its heading.
            if !heading.is_empty() {
                current.heading = format!("{heading} (continued)");
            }
            continue;
        }
        if outside && let Some(h) = t.strip_prefix("## ") {
            push(&mut pieces, std::mem::take(&mut current));
            current.heading = h.trim().trim_end_matches('#').trim().to_owned();
            continue;
        }
        if outside && t.starts_with("# ") && pieces.is_empty() && current.text.trim().is_empty() {
            continue; // the lesson title
        }
        current.text.push_str(line);
        current.text.push('\n');
    }
    push(&mut pieces, current);
    merge_small(pieces)
}

fn push(pieces: &mut Vec<WalkSection>, mut s: WalkSection) {
    s.text = s.text.trim().to_owned();
    if !s.text.is_empty() || !s.heading.is_empty() {
        pieces.push(s);
    }
}

/// `---`, `***`, `___` (three or more, spaces allowed).
fn is_rule(t: &str) -> bool {
    let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    compact.len() >= 3
        && ['-', '*', '_']
            .iter()
            .any(|m| compact.chars().all(|c| c == *m))
}

fn merge_small(pieces: Vec<WalkSection>) -> Vec<WalkSection> {
    let mut out: Vec<WalkSection> = Vec::new();
    for piece in pieces {
        match out.last_mut() {
            Some(prev) if piece.text.chars().count() < MIN_SECTION_CHARS => {
                if !piece.heading.is_empty() && piece.heading != prev.heading {
                    prev.text.push_str(&format!("\n\n### {}", piece.heading));
                }
                if !piece.text.is_empty() {
                    prev.text.push_str("\n\n");
                    prev.text.push_str(&piece.text);
                }
            }
            _ => out.push(piece),
        }
    }
    // A short first piece (a one-line introduction) joins the section after it.
    if out.len() > 1 && out[0].text.chars().count() < MIN_SECTION_CHARS {
        let first = out.remove(0);
        let next = &mut out[0];
        if !first.text.is_empty() {
            next.text = format!("{}\n\n{}", first.text, next.text);
        }
        if next.heading.is_empty() {
            next.heading = first.heading;
        }
    }
    out
}

/// At most `cap` characters of `text`, cut at the last paragraph end that fits (else a
/// sentence end, else anywhere); a code block is never cut open.
pub fn capped(text: &str, cap: usize) -> String {
    if text.chars().count() <= cap {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut in_fence = false;
    let mut last_good = 0;
    for line in text.split_inclusive('\n') {
        if out.chars().count() + line.chars().count() > cap {
            break;
        }
        out.push_str(line);
        if line.trim_start().starts_with("```") || line.trim_start().starts_with("~~~") {
            in_fence = !in_fence;
        }
        if !in_fence && line.trim().is_empty() {
            last_good = out.len();
        }
    }
    if last_good > 0 {
        out.truncate(last_good);
        return out.trim_end().to_owned();
    }
    let head = crate::tutor::text::truncate_chars(text, cap);
    match head.rfind(". ") {
        Some(i) if i > head.len() / 3 => head[..=i].trim_end().to_owned(),
        _ => head.trim_end().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{LessonPath, parse_lesson};

    fn lesson(raw: &str) -> Lesson {
        parse_lesson(&LessonPath::parse("a/b").expect("path"), raw)
    }

    fn long(word: &str) -> String {
        format!("{word} ").repeat(30)
    }

    #[test]
    fn sections_split_on_h2_and_rules_with_the_title_dropped_and_h3_kept_inside() {
        let raw = format!(
            "# Title\n\n{}\n\n## One\n\n{}\n\n### Deeper\n\n{}\n\n---\n\n{}\n\n## Two\n\n{}\n",
            long("intro"),
            long("one"),
            long("deep"),
            long("after"),
            long("two")
        );
        let s = split(&lesson(&raw));
        let heads: Vec<_> = s.iter().map(|s| s.heading.as_str()).collect();
        assert_eq!(heads, ["", "One", "One (continued)", "Two"]);
        assert!(s[1].text.contains("### Deeper"));
        assert!(!s[0].text.contains("Title"));
        assert_eq!(s[0].title(), "Introduction");
    }

    #[test]
    fn pieces_under_100_characters_join_the_previous_one_and_a_short_intro_the_next() {
        let raw = format!(
            "# T\n\nShort intro.\n\n## Big\n\n{}\n\n## Tiny\n\nOne line.\n\n## Other\n\n{}\n",
            long("big"),
            long("other")
        );
        let s = split(&lesson(&raw));
        let heads: Vec<_> = s.iter().map(|s| s.heading.as_str()).collect();
        assert_eq!(heads, ["Big", "Other"]);
        assert!(s[0].text.starts_with("Short intro."), "{}", s[0].text);
        assert!(s[0].text.contains("### Tiny\n\nOne line."), "{}", s[0].text);
    }

    #[test]
    fn rules_and_headings_inside_code_blocks_do_not_split() {
        let raw = format!("## A\n\n{}\n\n```\n---\n## not\n```\n", long("a"));
        assert_eq!(split(&lesson(&raw)).len(), 1);
    }

    #[test]
    fn a_capped_section_ends_on_a_paragraph_and_never_inside_code() {
        let text = format!("{}\n\n```\ncode\n\nmore\n```\n\n{}", long("p"), long("q"));
        let cut = capped(&text, 70);
        assert!(cut.ends_with("p"), "{cut:?}");
        assert!(cut.chars().count() <= 70);
        let cut = capped(&text, text.len() - 5);
        assert!(cut.ends_with("```"), "{cut:?}");
    }
}

//! Markdown/MDX cleaning: frontmatter, MDX `import`/`export` statements and JSX component
//! blocks removed, the title chosen, and the body split into sections on headings.
//!
//! Owns: turning the raw text of one file into a [`Lesson`]. Pure functions, no I/O.

use serde_norway::Value;

use super::lesson::{Lesson, LessonPath, Section};

/// Builds the lesson at `path` from the raw text of its file.
pub fn parse_lesson(path: &LessonPath, raw: &str) -> Lesson {
    let raw = raw.trim_start_matches('\u{feff}').replace("\r\n", "\n");
    let (front, rest) = split_frontmatter(&raw);
    let meta = front.map(parse_frontmatter).unwrap_or_default();
    let body = clean_mdx(rest);
    let sections = split_sections(&body);
    let title = meta
        .title
        .clone()
        .or_else(|| first_h1(&sections))
        .unwrap_or_else(|| humanise(path.last_segment()));
    Lesson {
        path: path.as_str().to_owned(),
        title,
        sidebar_label: meta.sidebar_label,
        description: meta.description,
        body,
        sections,
        suggestions: Default::default(),
    }
}

#[derive(Debug, Default, PartialEq)]
struct Frontmatter {
    title: Option<String>,
    sidebar_label: Option<String>,
    description: Option<String>,
}

/// `(frontmatter, rest)` when the text opens with a `---` fenced YAML block.
fn split_frontmatter(raw: &str) -> (Option<&str>, &str) {
    let Some(after) = raw.strip_prefix("---\n") else {
        return (None, raw);
    };
    let mut offset = 0;
    for line in after.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return (Some(&after[..offset]), &after[offset + line.len()..]);
        }
        offset += line.len();
    }
    (None, raw)
}

/// Reads the keys we use; a malformed block is logged and ignored (the lesson still loads).
fn parse_frontmatter(yaml: &str) -> Frontmatter {
    let value: Value = match serde_norway::from_str(yaml) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "lesson frontmatter is not valid YAML; ignored");
            return Frontmatter::default();
        }
    };
    let text = |key: &str| match value.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    Frontmatter {
        title: text("title"),
        sidebar_label: text("sidebar_label"),
        description: text("description"),
    }
}

/// Tracks whether a line is inside a fenced code block (``` or ~~~), where nothing is touched.
#[derive(Default)]
struct Fence(Option<String>);

impl Fence {
    /// Updates the state with `line`; true when the line is code or a fence marker.
    fn is_code(&mut self, line: &str) -> bool {
        let t = line.trim_start();
        let marker: String = t.chars().take_while(|c| *c == '`' || *c == '~').collect();
        let is_marker =
            marker.len() >= 3 && marker.chars().all(|c| c == marker.as_bytes()[0] as char);
        match &self.0 {
            Some(open) if is_marker && marker.starts_with(open.as_str()) => {
                self.0 = None;
                true
            }
            Some(_) => true,
            None if is_marker => {
                self.0 = Some(marker);
                true
            }
            None => false,
        }
    }
}

/// What the MDX stripper is in the middle of skipping.
enum Skip {
    None,
    /// An `import`/`export` statement spanning lines: open bracket depth.
    Statement(i32),
    /// A multi-line JSX tag whose `>` or `/>` has not been seen yet: open brace depth of its
    /// props (a `=>` inside `{…}` does not close the tag).
    Tag(i32),
}

/// Removes MDX `import`/`export` statements, JSX component tags (capitalised names, one line or
/// several) and `{/* … */}` comments outside code blocks. The Markdown *children* of a container
/// component (`<Tabs>…</Tabs>`) are lesson text and are kept; only the tag lines go.
pub fn clean_mdx(text: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut fence = Fence::default();
    let mut skip = Skip::None;
    for line in text.lines() {
        skip = match skip {
            Skip::Statement(depth) => statement_rest(depth, line),
            Skip::Tag(depth) => tag_rest(depth, line),
            Skip::None if fence.is_code(line) => {
                out.push(line);
                Skip::None
            }
            Skip::None => classify(line, &mut out),
        };
    }
    collapse_blank_lines(&out)
}

fn classify<'a>(line: &'a str, out: &mut Vec<&'a str>) -> Skip {
    let t = line.trim_start();
    if t.starts_with("import ") || t.starts_with("export ") {
        return statement_rest(0, line);
    }
    if is_component_tag(t) {
        return tag_rest(0, t);
    }
    if t.starts_with("{/*") && t.trim_end().ends_with("*/}") {
        return Skip::None;
    }
    out.push(line);
    Skip::None
}

/// Continues an import/export statement: it ends when its brackets balance and it does not end
/// with an opening bracket or a comma.
fn statement_rest(depth: i32, line: &str) -> Skip {
    let depth = depth + bracket_balance(line);
    let t = line.trim_end();
    if depth > 0 || t.ends_with(',') || t.ends_with('=') {
        Skip::Statement(depth.max(1))
    } else {
        Skip::None
    }
}

fn bracket_balance(line: &str) -> i32 {
    line.chars()
        .map(|c| match c {
            '{' | '(' | '[' => 1,
            '}' | ')' | ']' => -1,
            _ => 0,
        })
        .sum()
}

/// `<Name`, `</Name` or `<Name.Sub` with a capital first letter.
fn is_component_tag(t: &str) -> bool {
    let name = t.strip_prefix("</").or_else(|| t.strip_prefix('<'));
    name.and_then(|n| n.chars().next())
        .is_some_and(|c| c.is_ascii_uppercase())
}

/// A tag is over when a line ends with `>` outside any `{…}` prop expression; until then its
/// props lines are skipped.
fn tag_rest(depth: i32, line: &str) -> Skip {
    let depth = depth + bracket_balance(line);
    if depth <= 0 && line.trim_end().ends_with('>') {
        Skip::None
    } else {
        Skip::Tag(depth.max(0))
    }
}

fn collapse_blank_lines(lines: &[&str]) -> String {
    let mut out = String::new();
    let mut blanks = 0;
    for line in lines {
        if line.trim().is_empty() {
            blanks += 1;
            if blanks > 1 {
                continue;
            }
        } else {
            blanks = 0;
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.trim().to_owned()
}

/// `(level, text)` when the line is an ATX heading.
fn heading(line: &str) -> Option<(u8, String)> {
    let hashes = line.chars().take_while(|c| *c == '#').count();
    if hashes == 0 || hashes > 6 {
        return None;
    }
    let rest = &line[hashes..];
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    let text = rest.trim().trim_end_matches('#').trim();
    u8::try_from(hashes).ok().map(|l| (l, text.to_owned()))
}

/// Splits on headings outside code blocks; text before the first heading is a level-0 section.
pub fn split_sections(body: &str) -> Vec<Section> {
    let mut sections = Vec::new();
    let mut current = Section {
        heading: String::new(),
        level: 0,
        text: String::new(),
    };
    let mut fence = Fence::default();
    for line in body.lines() {
        let code = fence.is_code(line);
        match heading(line).filter(|_| !code) {
            Some((level, text)) => {
                let done = std::mem::replace(
                    &mut current,
                    Section {
                        heading: text,
                        level,
                        text: String::new(),
                    },
                );
                push_section(&mut sections, done);
            }
            None => {
                current.text.push_str(line);
                current.text.push('\n');
            }
        }
    }
    push_section(&mut sections, current);
    sections
}

fn push_section(sections: &mut Vec<Section>, mut s: Section) {
    s.text = s.text.trim().to_owned();
    if s.level > 0 || !s.text.is_empty() {
        sections.push(s);
    }
}

fn first_h1(sections: &[Section]) -> Option<String> {
    sections
        .iter()
        .find(|s| s.level == 1 && !s.heading.is_empty())
        .map(|s| s.heading.clone())
}

/// `03-first-steps.md` → `First steps`: numeric prefix, extension and separators removed.
pub fn humanise(segment: &str) -> String {
    let stem = segment
        .strip_suffix(".mdx")
        .or_else(|| segment.strip_suffix(".md"))
        .unwrap_or(segment);
    let stem = stem.trim_start_matches(|c: char| c.is_ascii_digit());
    let stem = stem.trim_start_matches(['-', '_', '.', ' ']);
    let words = stem.replace(['-', '_'], " ");
    let words = words.trim();
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => segment.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> LessonPath {
        LessonPath::parse(p).expect("valid path")
    }

    #[test]
    fn frontmatter_title_wins_and_the_other_keys_are_read() {
        let raw = "---\ntitle: \"Variables: names for values\"\nsidebar_label: Variables\ndescription: What a variable is\nsidebar_position: 2\ntags: [a, b]\n---\n# Heading title\n\nText.\n";
        let l = parse_lesson(&path("01-a/02-variables"), raw);
        assert_eq!(l.title, "Variables: names for values");
        assert_eq!(l.sidebar_label.as_deref(), Some("Variables"));
        assert_eq!(l.description.as_deref(), Some("What a variable is"));
        assert!(!l.body.contains("sidebar_position"), "{}", l.body);
        assert!(l.body.starts_with("# Heading title"));
    }

    #[test]
    fn without_frontmatter_title_the_first_h1_is_used() {
        let raw = "---\nsidebar_position: 1\n---\nIntro\n\n## Not this\n\n# Loops\n";
        assert_eq!(parse_lesson(&path("x/01-y"), raw).title, "Loops");
    }

    #[test]
    fn without_any_title_the_last_segment_is_humanised() {
        let l = parse_lesson(&path("01-part/03-first-steps"), "Just text.");
        assert_eq!(l.title, "First steps");
        assert_eq!(humanise("10_data_types.mdx"), "Data types");
        assert_eq!(humanise("index"), "Index");
    }

    #[test]
    fn invalid_yaml_frontmatter_is_ignored_not_fatal() {
        let raw = "---\ntitle: [unclosed\n---\n# Real\n";
        let l = parse_lesson(&path("a"), raw);
        assert_eq!(l.title, "Real");
        assert_eq!(l.body, "# Real");
    }

    #[test]
    fn mdx_imports_exports_and_components_are_removed() {
        let raw = r#"import Tabs from '@theme/Tabs';
import {
  Quiz,
  Hint,
} from '@site/src/components';
export const meta = {
  level: 2,
};

# Lists

Before.

<Quiz
  question="What is 2 + 2?"
  answers={["3", "4"]}
/>

<Hint text="look closely" />

<Check
  verify={(answer) =>
    answer === 4}
/>

<Tabs>
<TabItem value="py">

Python text stays.

</TabItem>
</Tabs>

{/* an editor's note */}
After.
"#;
        let body = clean_mdx(raw);
        for gone in [
            "import", "export", "Quiz", "Hint", "Tabs", "TabItem", "editor", "answers",
        ] {
            assert!(!body.contains(gone), "{gone} left in:\n{body}");
        }
        for kept in ["# Lists", "Before.", "Python text stays.", "After."] {
            assert!(body.contains(kept), "{kept} missing in:\n{body}");
        }
        assert!(!body.contains("\n\n\n"), "blank lines collapsed:\n{body}");
    }

    #[test]
    fn code_blocks_are_left_untouched() {
        let raw =
            "# Title\n\n```python\n# a comment, not a heading\nimport os\n<Tag/>\n```\n\n## Next\n";
        let l = parse_lesson(&path("a"), raw);
        assert!(l.body.contains("import os") && l.body.contains("<Tag/>"));
        let headings: Vec<_> = l.sections.iter().map(|s| s.heading.as_str()).collect();
        assert_eq!(headings, ["Title", "Next"]);
        assert!(l.sections[0].text.contains("# a comment, not a heading"));
    }

    #[test]
    fn sections_split_on_every_heading_level_with_the_preamble_first() {
        let raw = "Preamble.\n\n# One\n\nA.\n\n## Two ##\n\nB.\n\n#not-a-heading\n\n### Three\n";
        let s = split_sections(&clean_mdx(raw));
        let got: Vec<_> = s
            .iter()
            .map(|s| (s.level, s.heading.as_str(), s.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (0, "", "Preamble."),
                (1, "One", "A."),
                (2, "Two", "B.\n\n#not-a-heading"),
                (3, "Three", "")
            ]
        );
    }

    mod fuzz {
        //! Property tests standing in for a fuzz target for the Markdown/MDX cleaner.
        use super::*;
        use proptest::prelude::*;

        fn line() -> impl Strategy<Value = String> {
            prop_oneof![
                "import [A-Za-z{} ,]{0,20}( from '[a-z./]{0,10}')?;?",
                "export (const|default|function) [a-z]{0,8}.{0,10}",
                "<[A-Z][a-z]{0,6}( [a-z]{1,5}=\"[^\"]{0,5}\")?( /)?>",
                "<[A-Z][a-z]{0,6} [a-z]{1,5}=\\{[^}]{0,8}",
                "</[A-Z][a-z]{0,6}>",
                "#{1,7} ?.{0,12}",
                "```[a-z]{0,4}",
                "---",
                "title: .{0,10}",
                "\\{/\\*.{0,8}\\*/\\}",
                ".{0,30}",
            ]
        }

        proptest! {
            #[test]
            fn any_lesson_text_parses_with_a_title_and_without_panicking(
                lines in proptest::collection::vec(line(), 0..40)
            ) {
                let raw = lines.join("\n");
                let path = LessonPath::parse("01-part/02-some-lesson").expect("valid");
                let lesson = parse_lesson(&path, &raw);
                prop_assert!(!lesson.title.trim().is_empty(), "empty title for {raw:?}");
                let _ = clean_mdx(&raw);
                let _ = split_sections(&raw);
            }

            #[test]
            fn arbitrary_unicode_never_panics(raw in "(?s).{0,300}") {
                let path = LessonPath::parse("a").expect("valid");
                let _ = parse_lesson(&path, &raw);
            }
        }
    }
}

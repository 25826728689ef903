//! Fuzz target: arbitrary text as a lesson file, through the Markdown/MDX cleaner and the
//! lesson parser. Never a panic, and the cheap invariants of the result: a non-blank title, a
//! trimmed body without runs of blank lines, cleaning that is idempotent (the body is already
//! clean), and sections whose levels are 1–6 except a leading level-0 preamble.
#![no_main]

use libfuzzer_sys::fuzz_target;
use study_mode_api::content::{LessonPath, clean_mdx, parse_lesson};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return; // lesson files are read as UTF-8 before they reach the parser
    };
    let path = LessonPath::parse("01-part/02-some-lesson").expect("a valid path");
    let lesson = parse_lesson(&path, raw);
    assert!(!lesson.title.trim().is_empty(), "blank title");
    assert_eq!(lesson.body, lesson.body.trim(), "body not trimmed");
    assert!(!lesson.body.contains("\n\n\n"), "blank lines not collapsed");
    assert_eq!(
        clean_mdx(&lesson.body),
        lesson.body,
        "cleaning twice changed the body"
    );
    for (i, section) in lesson.sections.iter().enumerate() {
        assert!(section.level <= 6, "{section:?}");
        assert!(
            section.level > 0 || i == 0,
            "a level-0 section after a heading"
        );
        assert_eq!(
            section.text,
            section.text.trim(),
            "section text not trimmed"
        );
    }
});

//! Fuzz target: arbitrary text as a client's `lesson_path`, through `LessonPath::parse`.
//! An accepted path is relative, non-empty, at most 512 bytes, free of `.`/`..`/empty
//! segments, control characters, `\`, `%`, `:`, `#`, `?` and `@`, has no segment starting or ending with a
//! space, and round-trips: parsing its own text gives the same path (threads store the text
//! and the tutor parses it again).
#![no_main]

use libfuzzer_sys::fuzz_target;
use study_mode_api::content::{LessonPath, MAX_LESSON_PATH_BYTES};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return; // query strings and stored paths reach the parser as UTF-8 text
    };
    let Ok(path) = LessonPath::parse(raw) else {
        return;
    };
    let text = path.as_str();
    assert!(
        !text.is_empty() && text.len() <= MAX_LESSON_PATH_BYTES,
        "{raw:?} -> {text:?}"
    );
    assert!(!text.starts_with('/'), "{raw:?} -> absolute {text:?}");
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() || matches!(c, '\\' | '%' | ':' | '#' | '?' | '@')),
        "{raw:?} -> {text:?}"
    );
    for segment in text.split('/') {
        assert!(!matches!(segment, "" | "." | ".."), "{raw:?} -> {text:?}");
        assert_eq!(segment, segment.trim(), "{raw:?} -> {text:?}");
    }
    assert_eq!(path.to_string(), text);
    assert_eq!(
        LessonPath::parse(text),
        Ok(path.clone()),
        "{raw:?} does not round-trip"
    );
});

//! Fuzz target: arbitrary bytes as a `POST /chatkit` body, through the ChatKit request parser.
//! Never a panic; a rejection is always a client error (4xx); whatever parses re-serialises to
//! a body that parses to the same request (compared by `Debug`: the params have no `PartialEq`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use study_mode_api::chatkit::ChatKitError;
use study_mode_api::chatkit::request::parse;
use study_mode_api::error::ApiError;

fuzz_target!(|body: &[u8]| {
    match parse(body) {
        Err(e) => {
            let refused = matches!(
                e,
                ChatKitError::BadRequest(_) | ChatKitError::Unsupported(_)
            );
            assert!(refused, "not a client error: {e}");
            assert!(ApiError::from(e).status().is_client_error());
        }
        Ok(request) => {
            let again = serde_json::to_vec(&request).expect("a parsed request serialises");
            let reparsed = parse(&again).unwrap_or_else(|e| {
                panic!(
                    "{request:?} re-serialised to {} which is refused: {e}",
                    String::from_utf8_lossy(&again)
                )
            });
            assert_eq!(format!("{reparsed:?}"), format!("{request:?}"));
        }
    }
});

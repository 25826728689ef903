//! Typed query strings: one extractor for every route that reads parameters, so all of them
//! share the rules of the OpenAPI document.
//!
//! Owns: [`Query`]. The rules, in one place:
//! - the first occurrence of a parameter counts (later repeats are ignored, as before);
//! - only an empty value counts as absent (`allowEmptyValue`); a blank one is checked like any
//!   other value and refused when it does not parse ([`empty_as_none`]);
//! - a value that does not parse is 400 naming `query.<name>`, except for the parameters a
//!   route lists in [`QueryParams::UNPROCESSABLE`] (e.g. an unknown `mode`), which are 422.
//!
//! Unknown parameters are ignored.

use std::collections::HashSet;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};

use crate::error::ApiError;

/// The parameters of one route.
pub trait QueryParams: DeserializeOwned {
    /// Parameters whose invalid values are answered 422 instead of 400.
    const UNPROCESSABLE: &'static [&'static str] = &[];
}

/// The route's parameters, parsed by the rules above.
#[derive(Debug, Clone)]
pub struct Query<T>(pub T);

impl<T: QueryParams, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parse(parts.uri.query().unwrap_or("")).map(Query)
    }
}

/// Parses a raw query string into `T`.
///
/// The common query (no repeated parameter, every value valid) is deserialized straight from
/// the raw string; only a query with repeats is re-encoded first, and only a refused one is
/// parsed a second time to name the parameter at fault.
pub fn parse<T: QueryParams>(raw: &str) -> Result<T, ApiError> {
    let deduplicated;
    let raw = if has_repeats(raw) {
        deduplicated = first_occurrences(raw);
        deduplicated.as_str()
    } else {
        raw
    };
    let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(raw.as_bytes()));
    T::deserialize(de).map_err(|_| refusal::<T>(raw))
}

/// Above this many pairs repeats are not searched for: the query is always re-encoded.
const SCAN_PAIRS: usize = 16;

/// Whether a parameter occurs twice. Allocation-free for the short queries routes take.
fn has_repeats(raw: &str) -> bool {
    if raw.split('&').count() > SCAN_PAIRS {
        return true;
    }
    let pairs = || url::form_urlencoded::parse(raw.as_bytes());
    pairs()
        .enumerate()
        .any(|(i, (key, _))| pairs().skip(i + 1).any(|(other, _)| other == key))
}

/// The query re-encoded with the first occurrence of each parameter only.
fn first_occurrences(raw: &str) -> String {
    let mut seen = HashSet::new();
    let mut first_only = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        if seen.insert(key.clone()) {
            first_only.append_pair(&key, &value);
        }
    }
    first_only.finish()
}

/// The error for a query `T` refuses (parsed again, tracking the path of the failing field).
fn refusal<T: QueryParams>(raw: &str) -> ApiError {
    let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(raw.as_bytes()));
    let e = match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(_) => return ApiError::bad_request("query: invalid"),
        Err(e) => e,
    };
    let path = e.path().to_string();
    let inner = e.into_inner().to_string();
    // A missing parameter is reported on the whole query; name the parameter itself.
    let missing = inner
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    let (field, message) = match missing {
        Some(name) => (name.to_owned(), format!("query.{name}: required")),
        None => (path.clone(), format!("query.{path}: {inner}")),
    };
    if T::UNPROCESSABLE.contains(&field.as_str()) {
        ApiError::unprocessable(message)
    } else {
        ApiError::bad_request(message)
    }
}

/// `deserialize_with` for an optional parameter: an empty value is absent, anything else must
/// parse as `T`.
pub fn empty_as_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<String>,
    T::Error: std::fmt::Display,
{
    let raw = Option::<String>::deserialize(deserializer)?;
    match raw {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => T::try_from(v).map(Some).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::LessonPath;
    use axum::http::StatusCode;

    #[derive(Debug, Deserialize)]
    struct Params {
        #[serde(default, deserialize_with = "empty_as_none")]
        lesson_path: Option<LessonPath>,
        #[serde(default, deserialize_with = "empty_as_none")]
        mode: Option<crate::content::Mode>,
    }

    impl QueryParams for Params {
        const UNPROCESSABLE: &'static [&'static str] = &["mode"];
    }

    #[derive(Debug, Deserialize)]
    struct Required {
        #[allow(dead_code)]
        lesson_path: LessonPath,
    }

    impl QueryParams for Required {}

    #[test]
    fn empty_is_absent_and_the_first_occurrence_wins() {
        let p: Params = parse("lesson_path=&mode=ask&mode=nonsense").expect("valid");
        assert!(p.lesson_path.is_none());
        assert_eq!(p.mode, Some(crate::content::Mode::Ask));
    }

    #[test]
    fn repeats_are_found_in_short_and_long_queries() {
        assert!(!has_repeats(""));
        assert!(!has_repeats("lesson_path=a&mode=ask"));
        assert!(has_repeats("mode=ask&lesson_path=a&mode=quiz"));
        // Percent-encoding does not hide a repeat.
        assert!(has_repeats("mode=ask&%6Dode=quiz"));
        let long: Vec<String> = (0..40).map(|i| format!("k{i}=v")).collect();
        let long = format!("{}&mode=quiz", long.join("&"));
        let p: Params = parse(&format!("mode=ask&{long}")).expect("valid");
        assert_eq!(p.mode, Some(crate::content::Mode::Ask));
    }

    #[test]
    fn a_blank_value_is_checked_and_bad_values_name_their_parameter() {
        let e = parse::<Params>("lesson_path=%20%20").expect_err("blank path refused");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(
            e.message().starts_with("query.lesson_path: "),
            "{}",
            e.message()
        );
        let e = parse::<Required>("").expect_err("missing path refused");
        assert_eq!(e.message(), "query.lesson_path: required");
        let e = parse::<Params>("mode=review").expect_err("unknown mode refused");
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.message().contains("review"), "{}", e.message());
    }
}

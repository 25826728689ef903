//! `METERING_*`: whether tutor runs are metered, where the metering API is, how long to wait
//! for it and what to do when it does not answer.

use std::time::Duration;

use crate::config::{Env, SettingDoc};

/// Settings of credit metering.
#[derive(Debug, Clone)]
pub struct MeteringSettings {
    pub enabled: bool,
    /// Without a trailing slash; `None` only when metering is off (or refused in production).
    pub api_url: Option<String>,
    /// Deadline of one metering API call (connect included).
    pub timeout: Duration,
    /// When the API cannot be reached: run anyway (`true`) or answer with a message.
    pub fail_open: bool,
    /// Tokens reserved when a prompt cannot be measured.
    pub default_estimate: u64,
}

impl Default for MeteringSettings {
    fn default() -> Self {
        Self::from_env(&mut Env::default(), false)
    }
}

impl MeteringSettings {
    /// Reads `METERING_*`; in `production`, metering without `METERING_API_URL` is refused.
    pub fn from_env(env: &mut Env, production: bool) -> Self {
        let enabled = env.bool("METERING_ENABLED").unwrap_or(false);
        let api_url = env
            .string("METERING_API_URL")
            .map(|u| u.trim_end_matches('/').to_owned());
        if let Some(u) = &api_url {
            if url::Url::parse(u).is_err() {
                env.error(
                    "METERING_API_URL",
                    format!("`{u}` is not a URL like https://metering.example.com"),
                );
            }
        }
        if enabled && api_url.is_none() {
            if production {
                env.error(
                    "METERING_API_URL",
                    "is required in production when METERING_ENABLED is on",
                );
            } else {
                tracing::warn!("METERING_ENABLED is on without METERING_API_URL: not metering");
            }
        }
        let secs: f64 = env.parse_or("METERING_TIMEOUT_SECS", 15.0);
        let timeout = match Duration::try_from_secs_f64(secs) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                env.error(
                    "METERING_TIMEOUT_SECS",
                    format!("`{secs}` must be a positive number of seconds"),
                );
                Duration::from_secs(15)
            }
        };
        let default_estimate = env.parse_or("METERING_DEFAULT_ESTIMATE", 5000_u64);
        if default_estimate == 0 {
            env.error("METERING_DEFAULT_ESTIMATE", "must be at least 1 token");
        }
        Self {
            enabled: enabled && api_url.is_some(),
            api_url,
            timeout,
            fail_open: env.bool("METERING_FAIL_OPEN").unwrap_or(true),
            default_estimate: default_estimate.max(1),
        }
    }
}

/// Variables read by this module.
pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc::new(
        "METERING_ENABLED",
        "`false`",
        "Meter every model call against the book's credit API (check before, deduct or release after). Needs `METERING_API_URL`; required with it in production.",
    ),
    SettingDoc::new(
        "METERING_API_URL",
        "unset",
        "Base URL of the token-metering API (`{url}/api/v1/metering/check`, `/deduct`, `/release`).",
    ),
    SettingDoc::new(
        "METERING_TIMEOUT_SECS",
        "`15`",
        "Deadline of one metering call (fractions allowed). A check that misses it counts as the API being down.",
    ),
    SettingDoc::new(
        "METERING_FAIL_OPEN",
        "`true`",
        "When the metering API is down: run the tutor anyway with a `failopen_…` reservation (and still deduct), or, when `false`, answer with a message and call no model.",
    ),
    SettingDoc::new(
        "METERING_DEFAULT_ESTIMATE",
        "`5000`",
        "Tokens reserved for a call whose prompt cannot be measured (otherwise: the prompt's characters / 4 plus the output budget).",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)], production: bool) -> (MeteringSettings, Option<String>) {
        let mut env = Env::from_map(vars.iter().copied());
        let s = MeteringSettings::from_env(&mut env, production);
        (s, env.finish().err().map(|e| e.to_string()))
    }

    #[test]
    fn metering_is_off_by_default_and_fails_open_with_a_fifteen_second_timeout() {
        let (s, err) = read(&[], true);
        assert!(err.is_none());
        assert!(!s.enabled);
        assert!(s.fail_open);
        assert_eq!(s.timeout, Duration::from_secs(15));
        assert_eq!(s.default_estimate, 5000);
    }

    #[test]
    fn production_refuses_metering_without_a_url_naming_the_variable() {
        let (_, err) = read(&[("METERING_ENABLED", "true")], true);
        let err = err.expect("refused");
        assert!(err.contains("METERING_API_URL"), "{err}");
        let (s, err) = read(&[("METERING_ENABLED", "true")], false);
        assert!(err.is_none());
        assert!(!s.enabled, "no URL, nothing to meter against");
        let (s, err) = read(
            &[
                ("METERING_ENABLED", "true"),
                ("METERING_API_URL", "http://m.example/"),
                ("METERING_TIMEOUT_SECS", "0.5"),
            ],
            true,
        );
        assert!(err.is_none(), "{err:?}");
        assert!(s.enabled);
        assert_eq!(s.api_url.as_deref(), Some("http://m.example"));
        assert_eq!(s.timeout, Duration::from_millis(500));
    }
}

//! The variable reader behind [`super::Settings`]: trims values, treats empty as unset, parses
//! typed values and collects every problem instead of stopping at the first.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One problem with one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: String,
    pub message: String,
}

/// Every problem found while reading the settings.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {}: {}", e.variable, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Documentation row of one setting: name, default, meaning (used by `--help` and the README test).
#[derive(Debug, Clone, Copy)]
pub struct SettingDoc {
    pub name: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

impl SettingDoc {
    pub const fn new(name: &'static str, default: &'static str, meaning: &'static str) -> Self {
        Self {
            name,
            default,
            meaning,
        }
    }
}

/// A snapshot of variables plus the problems found so far.
#[derive(Debug, Default)]
pub struct Env {
    vars: HashMap<String, String>,
    errors: Vec<ConfigError>,
}

impl Env {
    /// The variables of this process.
    pub fn from_process() -> Self {
        Self::from_map(std::env::vars())
    }

    /// Any set of variables (tests use this; nothing touches the process environment).
    pub fn from_map<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            errors: Vec::new(),
        }
    }

    /// The trimmed value, `None` when unset or blank.
    pub fn string(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// A secret value (token, password, key): held so that `Debug` never prints it.
    pub fn secret(&self, name: &str) -> Option<secrecy::SecretString> {
        self.string(name).map(secrecy::SecretString::from)
    }

    /// Records a problem with `name`.
    pub fn error(&mut self, name: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            variable: name.to_owned(),
            message: message.into(),
        });
    }

    /// Parses `name`; `None` when unset, and records a problem when it does not parse.
    pub fn parse<T>(&mut self, name: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let raw = self.string(name)?;
        match raw.parse() {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(name, format!("`{raw}` is invalid: {e}"));
                None
            }
        }
    }

    /// Parses `name`, or returns `default` when unset (or invalid, with the problem recorded).
    pub fn parse_or<T>(&mut self, name: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.parse(name).unwrap_or(default)
    }

    /// A whole number of seconds.
    pub fn secs_or(&mut self, name: &str, default: u64) -> Duration {
        Duration::from_secs(self.parse_or(name, default))
    }

    /// A boolean written as true/false, 1/0, yes/no or on/off.
    pub fn bool(&mut self, name: &str) -> Option<bool> {
        let raw = self.string(name)?;
        match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Some(true),
            "0" | "false" | "no" | "off" => Some(false),
            _ => {
                self.error(name, format!("`{raw}` is not a boolean; use true or false"));
                None
            }
        }
    }

    /// Ends reading: every recorded problem, or nothing.
    pub fn finish(&mut self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(std::mem::take(&mut self.errors)))
        }
    }
}

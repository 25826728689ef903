//! Reading settings: the environment snapshot, typed parsers that collect every problem, and
//! the documentation row of a setting.
//!
//! Owns: how a variable is read (trimmed, blank = unset, typed, every problem collected with
//! its variable). A leaf: it imports nothing of the crate. Each owner declares its own settings
//! (a `*Settings` struct with `from_env(&mut Env)` and a `SETTINGS: &[SettingDoc]` table);
//! `crate::settings` composes them. Nothing else in the crate reads the process environment.

mod env;

pub use env::{ConfigError, ConfigErrors, Env, SettingDoc};

/// Where the service runs; production enables the safety rules of `crate::settings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

impl std::str::FromStr for Environment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Self::Development),
            "production" | "prod" => Ok(Self::Production),
            other => Err(format!(
                "`{other}` is not an environment; use `development` or `production`"
            )),
        }
    }
}

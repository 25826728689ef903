//! Settings of the tutor: which tutor runs (offline, or a model behind an OpenAI-compatible
//! API), the model client's timeouts and retries, and the context budgets.

use secrecy::SecretString;
use std::time::Duration;

use crate::config::{Env, SettingDoc};

/// Which wire protocol the model server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelApi {
    /// `POST {base}/responses` (OpenAI's Responses API).
    Responses,
    /// `POST {base}/chat/completions` (OpenAI, Ollama, vLLM, DeepSeek, …).
    ChatCompletions,
}

impl std::str::FromStr for ModelApi {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "responses" => Ok(Self::Responses),
            "chat_completions" | "chat-completions" | "chat" => Ok(Self::ChatCompletions),
            other => Err(format!(
                "`{other}` is not a model API; use `responses` or `chat_completions`"
            )),
        }
    }
}

impl ModelApi {
    /// Short name used in `describe()` and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Responses => "responses",
            Self::ChatCompletions => "chat_completions",
        }
    }
}

/// How to reach the model.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    /// `None` = the offline tutor.
    pub api_key: Option<SecretString>,
    /// Without a trailing slash.
    pub base_url: String,
    pub api: ModelApi,
    /// Model name sent upstream (`STUDY_MODE_MODEL`).
    pub model: String,
    pub connect_timeout: Duration,
    pub first_token_timeout: Duration,
    pub idle_timeout: Duration,
    pub total_timeout: Duration,
    /// Retries before the first token (429, 5xx, connection failures).
    pub max_retries: u32,
    /// First retry delay; doubled at each retry.
    pub retry_backoff: Duration,
}

/// Settings of the tutor.
#[derive(Debug, Clone)]
pub struct TutorSettings {
    /// The model client (used only when an API key is set).
    pub model: ModelSettings,
    pub teach_context_chars: usize,
    pub ask_context_chars: usize,
    pub quiz_context_chars: usize,
    /// Past thread items given to the tutor, newest kept.
    pub history_items: usize,
}

impl Default for TutorSettings {
    fn default() -> Self {
        Self::from_env(&mut Env::default())
    }
}

/// Variables read by this module.
pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc::new(
        "OPENAI_API_KEY",
        "unset: **offline tutor**",
        "Key of the model API. Unset = the built-in offline tutor (no model). Servers that need no key (Ollama) take any value.",
    ),
    SettingDoc::new(
        "OPENAI_BASE_URL",
        "`https://api.openai.com/v1`",
        "Base URL of an OpenAI-compatible API (OpenAI, Ollama, vLLM, DeepSeek, …).",
    ),
    SettingDoc::new(
        "MODEL_API",
        "`responses`",
        "`responses` (`POST /responses`) or `chat_completions` (`POST /chat/completions`).",
    ),
    SettingDoc::new(
        "STUDY_MODE_MODEL",
        "`gpt-4.1-mini`",
        "Model name sent upstream.",
    ),
    SettingDoc::new(
        "MODEL_CONNECT_TIMEOUT_SECS",
        "`10`",
        "TCP/TLS connect timeout of the model client (fractions allowed, as in all `MODEL_*_SECS`).",
    ),
    SettingDoc::new(
        "MODEL_FIRST_TOKEN_TIMEOUT_SECS",
        "`30`",
        "Longest wait from sending a request to the first text token.",
    ),
    SettingDoc::new(
        "MODEL_IDLE_TIMEOUT_SECS",
        "`30`",
        "Longest gap between two chunks of a streaming reply.",
    ),
    SettingDoc::new(
        "MODEL_TOTAL_TIMEOUT_SECS",
        "`180`",
        "Longest a whole reply may take, retries included.",
    ),
    SettingDoc::new(
        "MODEL_MAX_RETRIES",
        "`2`",
        "Retries (with backoff) on 429, 5xx or connection failure, only before the first token.",
    ),
    SettingDoc::new(
        "MODEL_RETRY_BACKOFF_MS",
        "`500`",
        "First retry delay, doubled at each retry (a `Retry-After` of up to 10 s wins).",
    ),
    SettingDoc::new(
        "TEACH_CONTEXT_CHARS",
        "`8000`",
        "Lesson text given to the tutor in teach mode (cut on a section boundary).",
    ),
    SettingDoc::new(
        "ASK_CONTEXT_CHARS",
        "`6000`",
        "Lesson text given to the tutor in ask mode.",
    ),
    SettingDoc::new(
        "QUIZ_CONTEXT_CHARS",
        "`8000`",
        "Lesson text given to the tutor in quiz mode.",
    ),
    SettingDoc::new(
        "HISTORY_ITEMS",
        "`30`",
        "Past thread items given to the tutor as conversation.",
    ),
];

impl TutorSettings {
    /// Reads the tutor's variables, recording every problem in `env`.
    pub fn from_env(env: &mut Env) -> Self {
        let base_url = env
            .string("OPENAI_BASE_URL")
            .unwrap_or_else(|| "https://api.openai.com/v1".into())
            .trim_end_matches('/')
            .to_owned();
        if url::Url::parse(&base_url).is_err() {
            env.error(
                "OPENAI_BASE_URL",
                format!("`{base_url}` is not a URL like https://api.openai.com/v1"),
            );
        }
        let model = ModelSettings {
            api_key: env.secret("OPENAI_API_KEY"),
            base_url,
            api: env.parse_or("MODEL_API", ModelApi::Responses),
            model: env
                .string("STUDY_MODE_MODEL")
                .unwrap_or_else(|| "gpt-4.1-mini".into()),
            connect_timeout: secs_f64(env, "MODEL_CONNECT_TIMEOUT_SECS", 10.0),
            first_token_timeout: secs_f64(env, "MODEL_FIRST_TOKEN_TIMEOUT_SECS", 30.0),
            idle_timeout: secs_f64(env, "MODEL_IDLE_TIMEOUT_SECS", 30.0),
            total_timeout: secs_f64(env, "MODEL_TOTAL_TIMEOUT_SECS", 180.0),
            max_retries: env.parse_or("MODEL_MAX_RETRIES", 2),
            retry_backoff: Duration::from_millis(env.parse_or("MODEL_RETRY_BACKOFF_MS", 500)),
        };
        Self {
            model,
            teach_context_chars: positive(env, "TEACH_CONTEXT_CHARS", 8000),
            ask_context_chars: positive(env, "ASK_CONTEXT_CHARS", 6000),
            quiz_context_chars: positive(env, "QUIZ_CONTEXT_CHARS", 8000),
            history_items: positive(env, "HISTORY_ITEMS", 30),
        }
    }
}

/// Seconds with fractions (tests use sub-second timeouts); must be positive and finite.
fn secs_f64(env: &mut Env, name: &str, default: f64) -> Duration {
    let value: f64 = env.parse_or(name, default);
    match Duration::try_from_secs_f64(value) {
        Ok(d) if !d.is_zero() => d,
        _ => {
            env.error(
                name,
                format!("`{value}` must be a positive number of seconds"),
            );
            Duration::from_secs_f64(default)
        }
    }
}

fn positive(env: &mut Env, name: &str, default: usize) -> usize {
    let value = env.parse_or(name, default);
    if value == 0 {
        env.error(name, "must be at least 1");
        return default;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<TutorSettings, crate::config::ConfigErrors> {
        let mut env = Env::from_map(vars.iter().map(|(k, v)| (*k, *v)));
        let s = TutorSettings::from_env(&mut env);
        env.finish().map(|()| s)
    }

    #[test]
    fn no_variables_select_the_offline_tutor_with_documented_defaults() {
        let s = read(&[]).expect("valid");
        assert!(s.model.api_key.is_none());
        assert_eq!(s.model.api, ModelApi::Responses);
        assert_eq!(s.model.model, "gpt-4.1-mini");
        assert_eq!(s.model.base_url, "https://api.openai.com/v1");
        assert_eq!(
            (s.teach_context_chars, s.ask_context_chars, s.history_items),
            (8000, 6000, 30)
        );
    }

    #[test]
    fn fractional_timeouts_and_chat_completions_are_accepted() {
        let s = read(&[
            ("MODEL_IDLE_TIMEOUT_SECS", "0.25"),
            ("MODEL_API", "chat_completions"),
            ("OPENAI_BASE_URL", "http://localhost:11434/v1/"),
        ])
        .expect("valid");
        assert_eq!(s.model.idle_timeout, Duration::from_millis(250));
        assert_eq!(s.model.api, ModelApi::ChatCompletions);
        assert_eq!(s.model.base_url, "http://localhost:11434/v1");
    }

    #[test]
    fn bad_values_are_all_reported_by_name() {
        let errors = read(&[
            ("MODEL_API", "grpc"),
            ("MODEL_IDLE_TIMEOUT_SECS", "-1"),
            ("HISTORY_ITEMS", "0"),
            ("OPENAI_BASE_URL", "not a url"),
        ])
        .expect_err("invalid");
        let names: Vec<_> = errors.0.iter().map(|e| e.variable.as_str()).collect();
        for n in [
            "MODEL_API",
            "MODEL_IDLE_TIMEOUT_SECS",
            "HISTORY_ITEMS",
            "OPENAI_BASE_URL",
        ] {
            assert!(names.contains(&n), "{n} not reported: {names:?}");
        }
    }

    #[test]
    fn the_api_key_never_appears_in_debug_output() {
        let s = read(&[("OPENAI_API_KEY", "sk-secret-123")]).expect("valid");
        assert!(!format!("{s:?}").contains("sk-secret-123"));
    }
}

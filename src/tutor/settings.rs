//! Settings of the tutor: which tutor runs in each mode (offline, or a model behind an
//! OpenAI-compatible API), the model client's timeouts and retries, the context budgets and
//! the learner profile service.
//!
//! Each mode's model is resolved once here: `{MODE}_OPENAI_API_KEY`, `{MODE}_OPENAI_BASE_URL`,
//! `{MODE}_MODEL_API` and `{MODE}_MODEL` fall back to `OPENAI_API_KEY`, `OPENAI_BASE_URL`,
//! `MODEL_API` and `STUDY_MODE_MODEL`, `{MODE}_MAX_OUTPUT_TOKENS` to `MAX_OUTPUT_TOKENS`;
//! `{MODE}_REASONING_EFFORT` has no fallback (unset = not
//! sent). A mode with a key uses its model, a mode without one the offline tutor.

use secrecy::SecretString;
use std::time::Duration;

use crate::config::{Env, SettingDoc};
use crate::content::Mode;

/// `reasoning.effort` (Responses) / `reasoning_effort` (Chat Completions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasoningEffort {
    Minimal,
    Low,
    Medium,
    High,
}

impl std::str::FromStr for ReasoningEffort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "minimal" => Ok(Self::Minimal),
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            other => Err(format!(
                "`{other}` is not a reasoning effort; use minimal, low, medium or high"
            )),
        }
    }
}

impl ReasoningEffort {
    /// The value sent upstream.
    pub fn name(self) -> &'static str {
        match self {
            Self::Minimal => "minimal",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

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
    /// Model name sent upstream (`{MODE}_MODEL`, else `STUDY_MODE_MODEL`).
    pub model: String,
    /// `{MODE}_REASONING_EFFORT`; `None` = not sent.
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Cap on the model's output tokens (`{MODE}_MAX_OUTPUT_TOKENS`, else `MAX_OUTPUT_TOKENS`),
    /// sent as `max_output_tokens` / `max_completion_tokens` and reserved by metering.
    pub max_output_tokens: u32,
    pub connect_timeout: Duration,
    pub first_token_timeout: Duration,
    pub idle_timeout: Duration,
    pub total_timeout: Duration,
    /// Retries before the first token (429, 5xx, connection failures).
    pub max_retries: u32,
    /// First retry delay; doubled at each retry.
    pub retry_backoff: Duration,
    /// Replies in flight on one HTTP/2 connection before another is opened
    /// (`MODEL_STREAMS_PER_CONNECTION`).
    pub streams_per_connection: usize,
}

/// Settings of the tutor.
#[derive(Debug, Clone)]
pub struct TutorSettings {
    /// The shared model settings (`OPENAI_*`, `STUDY_MODE_MODEL`, `MODEL_*`): what a mode
    /// without settings of its own uses.
    pub model: ModelSettings,
    /// Each mode's resolved model (`TEACH_*`, `ASK_*`, `QUIZ_*` over [`Self::model`]).
    pub teach: ModelSettings,
    pub ask: ModelSettings,
    pub quiz: ModelSettings,
    /// Cap on one walk section's text (cut on a paragraph boundary).
    pub teach_context_chars: usize,
    /// Budget of the ranked sections given to ask mode.
    pub ask_context_chars: usize,
    pub quiz_context_chars: usize,
    /// Past thread items given to the tutor, newest kept.
    pub history_items: usize,
    /// `LEARNER_PROFILE_URL` without a trailing slash; `None` = no profiles.
    pub profile_url: Option<String>,
}

impl TutorSettings {
    /// The model settings of `mode`.
    pub fn for_mode(&self, mode: Mode) -> &ModelSettings {
        match mode {
            Mode::Teach => &self.teach,
            Mode::Ask => &self.ask,
            Mode::Quiz => &self.quiz,
        }
    }
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
        "Model name sent upstream (every mode without its own `{MODE}_MODEL`).",
    ),
    SettingDoc::new(
        "TEACH_MODEL",
        "`STUDY_MODE_MODEL`",
        "Model of teach mode (the lesson walk and its answer checks).",
    ),
    SettingDoc::new(
        "ASK_MODEL",
        "`STUDY_MODE_MODEL`",
        "Model of ask mode (a small fast model is enough, e.g. `gpt-5-nano`).",
    ),
    SettingDoc::new("QUIZ_MODEL", "`STUDY_MODE_MODEL`", "Model of quiz mode."),
    SettingDoc::new(
        "TEACH_REASONING_EFFORT",
        "unset: not sent",
        "`minimal`, `low`, `medium` or `high`: sent as `reasoning.effort` (Responses) or `reasoning_effort` (Chat Completions).",
    ),
    SettingDoc::new(
        "ASK_REASONING_EFFORT",
        "unset: not sent",
        "As `TEACH_REASONING_EFFORT`, for ask mode (e.g. `minimal`).",
    ),
    SettingDoc::new(
        "QUIZ_REASONING_EFFORT",
        "unset: not sent",
        "As `TEACH_REASONING_EFFORT`, for quiz mode.",
    ),
    SettingDoc::new(
        "MAX_OUTPUT_TOKENS",
        "`2000`",
        "Cap on the model's output tokens per call (reasoning included), sent as `max_output_tokens` (Responses) or `max_completion_tokens` (Chat Completions); metering reserves it for each reply.",
    ),
    SettingDoc::new(
        "TEACH_MAX_OUTPUT_TOKENS",
        "`MAX_OUTPUT_TOKENS`",
        "`MAX_OUTPUT_TOKENS` of teach mode.",
    ),
    SettingDoc::new(
        "ASK_MAX_OUTPUT_TOKENS",
        "`MAX_OUTPUT_TOKENS`",
        "`MAX_OUTPUT_TOKENS` of ask mode.",
    ),
    SettingDoc::new(
        "QUIZ_MAX_OUTPUT_TOKENS",
        "`MAX_OUTPUT_TOKENS`",
        "`MAX_OUTPUT_TOKENS` of quiz mode.",
    ),
    SettingDoc::new(
        "TEACH_OPENAI_BASE_URL",
        "`OPENAI_BASE_URL`",
        "Another provider for teach mode (with `TEACH_OPENAI_API_KEY`, `TEACH_MODEL_API`).",
    ),
    SettingDoc::new(
        "ASK_OPENAI_BASE_URL",
        "`OPENAI_BASE_URL`",
        "Another provider for ask mode, e.g. `https://api.deepseek.com/v1`.",
    ),
    SettingDoc::new(
        "QUIZ_OPENAI_BASE_URL",
        "`OPENAI_BASE_URL`",
        "Another provider for quiz mode.",
    ),
    SettingDoc::new(
        "TEACH_OPENAI_API_KEY",
        "`OPENAI_API_KEY`",
        "Key of teach mode's provider. A mode with no key at all uses the offline tutor.",
    ),
    SettingDoc::new(
        "ASK_OPENAI_API_KEY",
        "`OPENAI_API_KEY`",
        "Key of ask mode's provider.",
    ),
    SettingDoc::new(
        "QUIZ_OPENAI_API_KEY",
        "`OPENAI_API_KEY`",
        "Key of quiz mode's provider.",
    ),
    SettingDoc::new(
        "TEACH_MODEL_API",
        "`MODEL_API`",
        "`responses` or `chat_completions` for teach mode's provider.",
    ),
    SettingDoc::new(
        "ASK_MODEL_API",
        "`MODEL_API`",
        "`responses` or `chat_completions` for ask mode's provider (DeepSeek: `chat_completions`).",
    ),
    SettingDoc::new(
        "QUIZ_MODEL_API",
        "`MODEL_API`",
        "`responses` or `chat_completions` for quiz mode's provider.",
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
        "MODEL_STREAMS_PER_CONNECTION",
        "`100`",
        "Replies (and judge calls) in flight on one HTTP/2 connection to a model API before the client opens another; keep it at or below the server's `MAX_CONCURRENT_STREAMS` (RFC 9113 recommends servers allow at least 100), else replies beyond it wait for a free stream. HTTP/1.1 servers get a connection per reply anyway.",
    ),
    SettingDoc::new(
        "TEACH_CONTEXT_CHARS",
        "`8000`",
        "Teach mode: the cap on one walk section's text given to the tutor (cut on a paragraph boundary); the lesson's outline is sent besides.",
    ),
    SettingDoc::new(
        "ASK_CONTEXT_CHARS",
        "`6000`",
        "Ask mode: the budget of the lesson sections most relevant to the question (ranked with BM25), given whole.",
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
    SettingDoc::new(
        "LEARNER_PROFILE_URL",
        "unset: no profiles",
        "Learner profile service: `GET {url}/api/v1/profiles/me` with the student's bearer (cached 5 min; fields in docs/GUIDE.md). Fail soft.",
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
            reasoning_effort: None,
            max_output_tokens: output_tokens(env, "MAX_OUTPUT_TOKENS", 2000),
            connect_timeout: secs_f64(env, "MODEL_CONNECT_TIMEOUT_SECS", 10.0),
            first_token_timeout: secs_f64(env, "MODEL_FIRST_TOKEN_TIMEOUT_SECS", 30.0),
            idle_timeout: secs_f64(env, "MODEL_IDLE_TIMEOUT_SECS", 30.0),
            total_timeout: secs_f64(env, "MODEL_TOTAL_TIMEOUT_SECS", 180.0),
            max_retries: env.parse_or("MODEL_MAX_RETRIES", 2),
            retry_backoff: Duration::from_millis(env.parse_or("MODEL_RETRY_BACKOFF_MS", 500)),
            streams_per_connection: streams_per_connection(env),
        };
        let profile_url = env
            .string("LEARNER_PROFILE_URL")
            .map(|u| u.trim_end_matches('/').to_owned());
        if let Some(u) = &profile_url {
            if url::Url::parse(u).is_err() {
                env.error(
                    "LEARNER_PROFILE_URL",
                    format!("`{u}` is not a URL like https://profiles.example.com"),
                );
            }
        }
        Self {
            teach: mode_model(env, &model, "TEACH"),
            ask: mode_model(env, &model, "ASK"),
            quiz: mode_model(env, &model, "QUIZ"),
            model,
            profile_url,
            teach_context_chars: positive(env, "TEACH_CONTEXT_CHARS", 8000),
            ask_context_chars: positive(env, "ASK_CONTEXT_CHARS", 6000),
            quiz_context_chars: positive(env, "QUIZ_CONTEXT_CHARS", 8000),
            history_items: positive(env, "HISTORY_ITEMS", 30),
        }
    }
}

/// The model of one mode (`prefix` = `TEACH`, `ASK`, `QUIZ`): its own variables over `base`.
fn streams_per_connection(env: &mut Env) -> usize {
    let n = env.parse_or("MODEL_STREAMS_PER_CONNECTION", 100);
    if n == 0 {
        env.error("MODEL_STREAMS_PER_CONNECTION", "must be at least 1");
    }
    n.max(1)
}

fn mode_model(env: &mut Env, base: &ModelSettings, prefix: &str) -> ModelSettings {
    let var = |name: &str| format!("{prefix}_{name}");
    let base_url = match env.string(&var("OPENAI_BASE_URL")) {
        Some(u) => {
            let u = u.trim_end_matches('/').to_owned();
            if url::Url::parse(&u).is_err() {
                env.error(
                    &var("OPENAI_BASE_URL"),
                    format!("`{u}` is not a URL like https://api.openai.com/v1"),
                );
            }
            u
        }
        None => base.base_url.clone(),
    };
    ModelSettings {
        api_key: env
            .secret(&var("OPENAI_API_KEY"))
            .or_else(|| base.api_key.clone()),
        base_url,
        api: env.parse_or(&var("MODEL_API"), base.api),
        model: env
            .string(&var("MODEL"))
            .unwrap_or_else(|| base.model.clone()),
        reasoning_effort: env.parse(&var("REASONING_EFFORT")),
        max_output_tokens: output_tokens(env, &var("MAX_OUTPUT_TOKENS"), base.max_output_tokens),
        ..base.clone()
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

/// A cap on output tokens: a whole number, at least 1 (`default` when unset or invalid).
fn output_tokens(env: &mut Env, name: &str, default: u32) -> u32 {
    let value = env.parse_or(name, default);
    if value == 0 {
        env.error(name, "must be at least 1 token");
        return default;
    }
    value
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
    fn each_mode_falls_back_to_the_shared_model_and_may_have_its_own() {
        let s = read(&[
            ("OPENAI_API_KEY", "sk-main"),
            ("STUDY_MODE_MODEL", "gpt-5-mini"),
            ("ASK_MODEL", "deepseek-chat"),
            ("ASK_OPENAI_BASE_URL", "https://api.deepseek.com/v1/"),
            ("ASK_MODEL_API", "chat_completions"),
            ("ASK_REASONING_EFFORT", "minimal"),
            ("QUIZ_MODEL", "gpt-5-nano"),
        ])
        .expect("valid");
        assert_eq!(s.teach.model, "gpt-5-mini");
        assert_eq!(s.teach.reasoning_effort, None);
        assert_eq!(s.ask.model, "deepseek-chat");
        assert_eq!(s.ask.base_url, "https://api.deepseek.com/v1");
        assert_eq!(s.ask.api, ModelApi::ChatCompletions);
        assert_eq!(s.ask.reasoning_effort, Some(ReasoningEffort::Minimal));
        assert!(s.ask.api_key.is_some(), "the shared key is inherited");
        assert_eq!(s.quiz.model, "gpt-5-nano");
        assert_eq!(s.quiz.base_url, "https://api.openai.com/v1");
        assert_eq!(s.for_mode(Mode::Quiz).model, "gpt-5-nano");
    }

    #[test]
    fn a_mode_with_a_key_of_its_own_uses_a_model_while_the_others_stay_offline() {
        let s = read(&[("ASK_OPENAI_API_KEY", "sk-ask")]).expect("valid");
        assert!(s.ask.api_key.is_some());
        assert!(s.teach.api_key.is_none() && s.quiz.api_key.is_none());
    }

    #[test]
    fn bad_per_mode_values_name_their_variable() {
        let errors = read(&[
            ("TEACH_REASONING_EFFORT", "extreme"),
            ("ASK_MODEL_API", "grpc"),
            ("QUIZ_OPENAI_BASE_URL", "nope"),
            ("LEARNER_PROFILE_URL", "not a url"),
        ])
        .expect_err("invalid");
        let names: Vec<_> = errors.0.iter().map(|e| e.variable.as_str()).collect();
        for n in [
            "TEACH_REASONING_EFFORT",
            "ASK_MODEL_API",
            "QUIZ_OPENAI_BASE_URL",
            "LEARNER_PROFILE_URL",
        ] {
            assert!(names.contains(&n), "{n} not reported: {names:?}");
        }
    }

    #[test]
    fn the_output_cap_defaults_to_2000_and_each_mode_may_have_its_own() {
        let s = read(&[]).expect("valid");
        assert_eq!(s.model.max_output_tokens, 2000);
        assert_eq!(s.teach.max_output_tokens, 2000);
        let s = read(&[
            ("MAX_OUTPUT_TOKENS", "800"),
            ("QUIZ_MAX_OUTPUT_TOKENS", "300"),
        ])
        .expect("valid");
        assert_eq!(
            (
                s.teach.max_output_tokens,
                s.ask.max_output_tokens,
                s.for_mode(Mode::Quiz).max_output_tokens
            ),
            (800, 800, 300)
        );
    }

    #[test]
    fn a_zero_or_non_numeric_output_cap_is_a_configuration_error_naming_it() {
        for bad in ["0", "many", "-5", "1.5"] {
            for name in ["MAX_OUTPUT_TOKENS", "ASK_MAX_OUTPUT_TOKENS"] {
                let errors = read(&[(name, bad)]).expect_err("invalid");
                let names: Vec<_> = errors.0.iter().map(|e| e.variable.as_str()).collect();
                assert_eq!(names, [name], "{name}={bad}");
            }
        }
    }

    #[test]
    fn the_api_key_never_appears_in_debug_output() {
        let s = read(&[("OPENAI_API_KEY", "sk-secret-123")]).expect("valid");
        assert!(!format!("{s:?}").contains("sk-secret-123"));
    }
}

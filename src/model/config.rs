//! Where a model is and how to reach it: the endpoint, the key and the model, from flags first,
//! then the environment, resolved once into a [`ModelConfig`] before any request is made.
//!
//! | setting | flag | then, in order |
//! | --- | --- | --- |
//! | endpoint | `--endpoint URL` | `PROMPTREG_ENDPOINT`, `model.endpoint` in `promptreg.yaml`, `OPENAI_BASE_URL`, GitHub Models when `GITHUB_TOKEN` is set, `OLLAMA_HOST` (`http://HOST/v1`) |
//! | key | none: keys never go on a command line or in a file | `PROMPTREG_API_KEY`, the variable `model.keyEnv` names, `GITHUB_TOKEN` for GitHub Models, `AZURE_OPENAI_API_KEY` for Azure, `OPENAI_API_KEY` |
//! | model | `--model M` | the prompt's `model`, then `PROMPTREG_MODEL`, then `model.model` |
//! | judge model | `--judge-model M` | `PROMPTREG_JUDGE_MODEL`, `model.judgeModel`, then the evaluator's `modelId` |
//! | timeout, retries, jobs | `--timeout`, `--retries`, `--jobs` | `model.timeout`, `model.retries`, `model.jobs`, then 120 s, 3, 4 |
//!
//! The `PROMPTREG_*` variables are one person's choice and win over the team's file; the
//! generic variables (`OPENAI_BASE_URL`, `GITHUB_TOKEN`, `OLLAMA_HOST`) are often set for other
//! tools, so the file wins over them.
//!
//! An endpoint is a base URL (`https://api.openai.com/v1`) to which `/chat/completions` is
//! added, or a full URL that already ends with it (Azure's deployment URLs with their
//! `?api-version=`). Azure endpoints get the key as `api-key`, the others as `Authorization:
//! Bearer`.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::format::config::ModelSection;

/// GitHub Models' OpenAI-compatible inference endpoint.
pub const GITHUB_MODELS: &str = "https://models.github.ai/inference";

/// A key: shown as `[redacted]` by `Debug` and `Display`, so that no message, log line or
/// panic can carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Secret {
        Secret(key.into())
    }

    /// The key itself, for the one header that carries it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How the key is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer KEY` (OpenAI, GitHub Models, Ollama, vLLM, llama.cpp).
    Bearer,
    /// `api-key: KEY` (Azure OpenAI).
    ApiKey,
}

/// What the caller chose (flags); `None` leaves a setting to the environment or the default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// The endpoint (`--endpoint`).
    pub endpoint: Option<String>,
    /// The model, overriding the prompt's (`--model`).
    pub model: Option<String>,
    /// The model for `llm` and built-in evaluators, overriding their `modelId` (`--judge-model`).
    pub judge_model: Option<String>,
    /// The time one request may take, in seconds (`--timeout`).
    pub timeout: Option<f64>,
    /// How many times a request is retried after a 429 or 5xx (`--retries`).
    pub retries: Option<u32>,
    /// How many requests may run at once (`--jobs`).
    pub jobs: Option<usize>,
}

/// A resolved model configuration.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// The chat-completions URL requests are posted to.
    pub url: String,
    /// The key, when there is one (a local server needs none).
    pub key: Option<Secret>,
    /// How the key is sent.
    pub auth: Auth,
    /// The model to use when the caller chose one (it overrides the prompt's).
    pub model: Option<String>,
    /// The model used when neither the caller nor the prompt names one.
    pub fallback_model: Option<String>,
    /// The judge model for evaluators, overriding theirs.
    pub judge_model: Option<String>,
    /// The time one request may take.
    pub timeout: Duration,
    /// Retries after a 429 or a 5xx.
    pub retries: u32,
    /// The first back-off; it doubles with each retry.
    pub backoff: Duration,
    /// The longest wait a `Retry-After` may ask for.
    pub max_wait: Duration,
    /// Requests in flight at once.
    pub jobs: usize,
}

impl ModelConfig {
    /// A configuration for `endpoint` with the defaults and no key.
    pub fn new(endpoint: &str) -> ModelConfig {
        ModelConfig {
            url: chat_url(endpoint),
            key: None,
            auth: auth_for(endpoint),
            model: None,
            fallback_model: None,
            judge_model: None,
            timeout: Duration::from_secs(120),
            retries: 3,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(60),
            jobs: 4,
        }
    }

    /// Resolves `settings` against the environment (`env` looks a variable up; empty values
    /// count as unset), without a `promptreg.yaml`.
    pub fn resolve(
        settings: &Settings,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ModelConfig> {
        ModelConfig::resolve_with(settings, &ModelSection::default(), env)
    }

    /// Resolves `settings` against the environment and the `model` section of the registry's
    /// `promptreg.yaml`, in the order of the table above.
    pub fn resolve_with(
        settings: &Settings,
        file: &ModelSection,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ModelConfig> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let mut from_file = false;
        let endpoint = settings
            .endpoint
            .clone()
            .or_else(|| var("PROMPTREG_ENDPOINT"))
            .or_else(|| {
                from_file = file.endpoint.is_some();
                file.endpoint.clone()
            })
            .or_else(|| var("OPENAI_BASE_URL"))
            .or_else(|| var("GITHUB_TOKEN").map(|_| GITHUB_MODELS.to_string()))
            .or_else(|| var("OLLAMA_HOST").map(|host| ollama_url(&host)))
            .ok_or_else(|| {
                Error::Usage(
                    "no model endpoint is configured: pass --endpoint URL, set PROMPTREG_ENDPOINT, write `model: {endpoint: URL}` in promptreg.yaml, or set OPENAI_BASE_URL, GITHUB_TOKEN (GitHub Models) or OLLAMA_HOST".into(),
                )
            })?;
        let endpoint = endpoint.trim().to_string();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(Error::Usage(format!(
                "the model endpoint `{}` is not an http:// or https:// URL",
                redact_url(&endpoint)
            )));
        }
        let mut config = ModelConfig::new(&endpoint);
        let github = is_github(&endpoint);
        let named = file.key_env.as_deref();
        let key_from_file = named.and_then(&var);
        if let (Some(name), None, true) = (named, &key_from_file, from_file) {
            if var("PROMPTREG_API_KEY").is_none() {
                return Err(Error::Usage(format!(
                    "promptreg.yaml says the key for {} is in the environment variable `{name}`, which is not set: set it, or PROMPTREG_API_KEY",
                    redact_url(&endpoint)
                )));
            }
        }
        config.key = var("PROMPTREG_API_KEY")
            .or(key_from_file)
            .or_else(|| github.then(|| var("GITHUB_TOKEN")).flatten())
            .or_else(|| {
                (config.auth == Auth::ApiKey)
                    .then(|| var("AZURE_OPENAI_API_KEY"))
                    .flatten()
            })
            .or_else(|| var("OPENAI_API_KEY"))
            .map(Secret::new);
        config.model = settings.model.clone();
        config.fallback_model = var("PROMPTREG_MODEL").or_else(|| file.model.clone());
        config.judge_model = settings
            .judge_model
            .clone()
            .or_else(|| var("PROMPTREG_JUDGE_MODEL"))
            .or_else(|| file.judge_model.clone());
        if let Some(seconds) = settings.timeout.or(file.timeout) {
            // A day is longer than any model reply; more would overflow the clock.
            if !(seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0) {
                return Err(Error::Usage(format!(
                    "the model timeout must be a positive number of seconds, at most 86400 (a day), not {seconds}"
                )));
            }
            config.timeout = Duration::from_secs_f64(seconds);
        }
        if let Some(retries) = settings.retries.or(file.retries) {
            config.retries = retries;
        }
        if let Some(jobs) = settings.jobs.or(file.jobs) {
            config.jobs = jobs.max(1);
        }
        Ok(config)
    }

    /// The URL for messages: without user info or a query string.
    pub fn display_url(&self) -> String {
        redact_url(&self.url)
    }
}

/// `base` + `/chat/completions`, unless it already ends there (before any query string).
fn chat_url(base: &str) -> String {
    let (path, query) = match base.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (base, None),
    };
    let path = path.trim_end_matches('/');
    let mut url = if path.ends_with("/chat/completions") {
        path.to_string()
    } else {
        format!("{path}/chat/completions")
    };
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

fn auth_for(endpoint: &str) -> Auth {
    if host_of(endpoint).ends_with(".openai.azure.com") {
        Auth::ApiKey
    } else {
        Auth::Bearer
    }
}

fn is_github(endpoint: &str) -> bool {
    let host = host_of(endpoint);
    host == "models.github.ai" || host == "models.inference.ai.azure.com"
}

/// The host of a URL, lowercased, without user info or port.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    host.split(':').next().unwrap_or("").to_ascii_lowercase()
}

/// `OLLAMA_HOST` (`host:port`, or a URL) as an OpenAI-compatible base URL.
fn ollama_url(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    if host.starts_with("http://") || host.starts_with("https://") {
        format!("{host}/v1")
    } else {
        format!("http://{host}/v1")
    }
}

/// A URL without user info (`user:pass@`) and without its query string (which may hold a key).
pub fn redact_url(url: &str) -> String {
    let url = url.split('?').next().unwrap_or(url);
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(at) => rest.split_at(at),
                None => (rest, ""),
            };
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn endpoint_order() {
        let flags = Settings {
            endpoint: Some("http://flag/v1".into()),
            ..Settings::default()
        };
        let all = [
            ("PROMPTREG_ENDPOINT", "http://promptreg/v1"),
            ("OPENAI_BASE_URL", "http://openai/v1"),
            ("GITHUB_TOKEN", "ghp"),
        ];
        let url = |s: &Settings, vars: &[(&str, &str)]| {
            ModelConfig::resolve(s, &env(vars)).map(|c| c.url)
        };
        assert_eq!(
            url(&flags, &all).ok().as_deref(),
            Some("http://flag/v1/chat/completions")
        );
        let none = Settings::default();
        assert_eq!(
            url(&none, &all).ok().as_deref(),
            Some("http://promptreg/v1/chat/completions")
        );
        assert_eq!(
            url(&none, &all[1..]).ok().as_deref(),
            Some("http://openai/v1/chat/completions")
        );
        assert_eq!(
            url(&none, &all[2..]).ok().as_deref(),
            Some("https://models.github.ai/inference/chat/completions")
        );
        assert_eq!(
            url(&none, &[("OLLAMA_HOST", "127.0.0.1:11434")])
                .ok()
                .as_deref(),
            Some("http://127.0.0.1:11434/v1/chat/completions")
        );
        assert!(url(&none, &[]).is_err());
        assert!(url(&none, &[("PROMPTREG_ENDPOINT", "ftp://x")]).is_err());
    }

    #[test]
    fn keys_follow_the_endpoint() {
        let s = Settings::default();
        let github = [("GITHUB_TOKEN", "ghp"), ("OPENAI_API_KEY", "sk")];
        let config = ModelConfig::resolve(&s, &env(&github)).expect("config");
        assert_eq!(config.key.as_ref().map(Secret::expose), Some("ghp"));
        let openai = [
            ("OPENAI_BASE_URL", "https://api.openai.com/v1"),
            ("GITHUB_TOKEN", "ghp"),
            ("OPENAI_API_KEY", "sk"),
        ];
        let config = ModelConfig::resolve(&s, &env(&openai)).expect("config");
        assert_eq!(config.key.as_ref().map(Secret::expose), Some("sk"));
        let azure = [
            ("PROMPTREG_ENDPOINT", "https://x.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21"),
            ("AZURE_OPENAI_API_KEY", "az"),
        ];
        let config = ModelConfig::resolve(&s, &env(&azure)).expect("config");
        assert_eq!(config.auth, Auth::ApiKey);
        assert_eq!(config.key.as_ref().map(Secret::expose), Some("az"));
        assert_eq!(
            config.url,
            "https://x.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            config.display_url(),
            "https://x.openai.azure.com/openai/deployments/d/chat/completions"
        );
    }

    #[test]
    fn the_file_sits_between_promptreg_variables_and_generic_ones() {
        let file = ModelSection {
            endpoint: Some("http://file/v1".into()),
            model: Some("file-model".into()),
            judge_model: Some("file-judge".into()),
            key_env: Some("TEAM_KEY".into()),
            timeout: Some(7.0),
            retries: Some(1),
            jobs: Some(9),
        };
        let s = Settings::default();
        let generic = [
            ("OPENAI_BASE_URL", "http://openai/v1"),
            ("GITHUB_TOKEN", "ghp"),
            ("OPENAI_API_KEY", "sk"),
            ("TEAM_KEY", "team"),
        ];
        let config = ModelConfig::resolve_with(&s, &file, &env(&generic)).expect("config");
        assert_eq!(config.url, "http://file/v1/chat/completions");
        assert_eq!(config.key.as_ref().map(Secret::expose), Some("team"));
        assert_eq!(config.fallback_model.as_deref(), Some("file-model"));
        assert_eq!(config.judge_model.as_deref(), Some("file-judge"));
        assert_eq!(
            (config.timeout, config.retries, config.jobs),
            (Duration::from_secs(7), 1, 9)
        );
        let mine = [
            ("PROMPTREG_ENDPOINT", "http://mine/v1"),
            ("PROMPTREG_MODEL", "my-model"),
            ("PROMPTREG_JUDGE_MODEL", "my-judge"),
            ("TEAM_KEY", "team"),
        ];
        let config = ModelConfig::resolve_with(&s, &file, &env(&mine)).expect("config");
        assert_eq!(config.url, "http://mine/v1/chat/completions");
        assert_eq!(config.fallback_model.as_deref(), Some("my-model"));
        assert_eq!(config.judge_model.as_deref(), Some("my-judge"));
        let flags = Settings {
            timeout: Some(1.0),
            retries: Some(5),
            ..Settings::default()
        };
        let config = ModelConfig::resolve_with(&flags, &file, &env(&mine)).expect("config");
        assert_eq!(
            (config.timeout, config.retries),
            (Duration::from_secs(1), 5)
        );
        // The file's endpoint with its key variable unset is an error naming the variable.
        let unset = ModelConfig::resolve_with(&s, &file, &env(&generic[..3]))
            .expect_err("the named key is not set");
        assert!(unset.to_string().contains("`TEAM_KEY`"), "{unset}");
        // With another endpoint chosen, the file's key variable is only one of the keys.
        let config =
            ModelConfig::resolve_with(&s, &file, &env(&[("PROMPTREG_ENDPOINT", "http://mine/v1")]))
                .expect("config");
        assert!(config.key.is_none());
    }

    #[test]
    fn timeouts_out_of_range_are_errors_not_panics() {
        let at = |t: f64| {
            let s = Settings {
                endpoint: Some("http://h/v1".into()),
                timeout: Some(t),
                ..Settings::default()
            };
            ModelConfig::resolve(&s, &env(&[]))
        };
        for bad in [0.0, -1.0, 1e300, f64::INFINITY, f64::NAN, 86_401.0] {
            assert!(at(bad).is_err(), "{bad}");
        }
        assert_eq!(
            at(86_400.0).map(|c| c.timeout).ok(),
            Some(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let key = Secret::new("sk-very-secret");
        assert_eq!(format!("{key} {key:?}"), "[redacted] [redacted]");
        let config = ModelConfig {
            key: Some(key),
            ..ModelConfig::new("http://u:p@h/v1")
        };
        assert!(!format!("{config:?}").contains("sk-very-secret"));
        assert_eq!(config.display_url(), "http://h/v1/chat/completions");
    }
}

//! The flags every command that talks to a model shares (`run`, `eval`), and the client they
//! build: endpoint and key from the environment (see `promptreg::model::config`), retries
//! noted on stderr, the cache under the git dir.

use std::sync::Arc;

use clap::Args;

use super::output::eprint;
use super::Failure;
use crate::model::cache::{Cache, CachedClient};
use crate::model::client::Client;
use crate::model::config::{ModelConfig, Settings};
use crate::registry::Registry;

/// Where the model is. The key comes only from the environment (`PROMPTREG_API_KEY`,
/// `OPENAI_API_KEY`, `GITHUB_TOKEN`, `AZURE_OPENAI_API_KEY`), never from a flag.
#[derive(Debug, Args, Clone, Default)]
pub struct ModelArgs {
    /// The OpenAI-compatible endpoint (e.g. `https://api.openai.com/v1`, `http://localhost:11434/v1`).
    /// Default: `PROMPTREG_ENDPOINT`, `OPENAI_BASE_URL`, GitHub Models with `GITHUB_TOKEN`, `OLLAMA_HOST`.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// The model, instead of the prompt's `model` (default for prompts without one: `PROMPTREG_MODEL`).
    #[arg(long, value_name = "M")]
    pub model: Option<String>,
    /// Seconds one request may take, reply included [default: 120].
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Retries after HTTP 429 (honouring `Retry-After`) or 5xx, with doubling back-off [default: 3].
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
}

impl ModelArgs {
    /// The settings these flags choose.
    pub fn settings(&self) -> Settings {
        Settings {
            endpoint: self.endpoint.clone(),
            model: self.model.clone(),
            timeout: self.timeout,
            retries: self.retries,
            ..Settings::default()
        }
    }
}

/// Resolves `settings` against the process environment and the `model` section of the
/// registry's `promptreg.yaml`.
pub fn config(settings: &Settings, registry: &Registry) -> Result<ModelConfig, Failure> {
    let file = registry.settings()?.model;
    Ok(ModelConfig::resolve_with(settings, &file, &|name| {
        std::env::var(name).ok()
    })?)
}

/// A client for `config` that notes retries on stderr.
pub fn client(config: ModelConfig) -> Client {
    Client::new(config).with_notify(Arc::new(|line: &str| eprint(&format!("note: {line}\n"))))
}

/// A cached client: the cache is under the registry's git dir, none without git or with
/// `no_cache`.
pub fn cached(config: ModelConfig, registry: &Registry, no_cache: bool) -> CachedClient {
    let cache = if no_cache {
        None
    } else {
        registry
            .repo()
            .map(|repo| Cache::in_git_dir(repo.git_dir()))
    };
    CachedClient::new(client(config), cache)
}

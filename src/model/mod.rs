//! Running prompts on models: an OpenAI-compatible chat-completions client ([`client`]) set up
//! from flags and the environment ([`config`]), a cache of completions by content ([`cache`]),
//! and what is built on them: GitHub Models evaluators ([`evaluator`], [`eval`]).
//!
//! ```no_run
//! use promptreg::model::{client::Client, config::{ModelConfig, Settings}};
//!
//! let config = ModelConfig::resolve(&Settings::default(), &|name| std::env::var(name).ok())?;
//! let client = Client::new(config);
//! let body = serde_json::json!({
//!     "model": "openai/gpt-4o-mini",
//!     "messages": [{ "role": "user", "content": "Say hi" }],
//! });
//! let completion = client.complete(&body, &mut |piece| print!("{piece}"))?;
//! println!("\n{:?}", completion.usage());
//! # Ok::<(), promptreg::Error>(())
//! ```

pub mod analyze;
pub mod cache;
pub mod client;
pub mod config;
pub mod eval;
pub mod evaluator;
pub mod generate;

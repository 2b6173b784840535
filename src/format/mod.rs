//! The prompt formats: the prompt file, the YAML reader with positions, the `defaults.yaml`
//! manifest, the `promptreg.yaml` settings, GitHub Models evaluators and the JSON schema. Pure parsing over bytes; uses
//! only `diagnostic` and `error`.

pub mod config;
pub mod dotprompt;
pub(crate) mod evaluators;
pub(crate) mod front;
pub mod kind;
pub mod manifest;
pub mod prompt;
pub mod prompty;
pub mod schema;
pub mod skeleton;
pub mod text;
pub(crate) mod yaml;

//! `promptreg new`: scaffold a valid prompt file.

use clap::Args;

use super::output::print;
use super::{Context, Failure};
use crate::error::Error;
use crate::snapshot::work::{normalize, PROMPT_SUFFIXES};

/// Create `ID.prompt.yaml` with a valid skeleton: a system and a user message, one declared
/// variable and a test case. Refuses to overwrite an existing prompt.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The new prompt's id, e.g. `support/escalation` (creates `support/escalation.prompt.yaml`).
    pub id: String,
}

/// The skeleton written by `new`.
pub fn skeleton(id: &str) -> String {
    let name = id.rsplit('/').next().unwrap_or(id).replace(['-', '_'], " ");
    format!(
        r#"name: {name}
description: TODO say what this prompt is for
model: gpt-4o-mini
modelParameters:
  temperature: 0.2
variables:
  input:
    type: string
    required: true
    description: The user's message
messages:
  - role: system
    content: |
      You are a helpful assistant.
  - role: user
    content: "{{{{ input }}}}"
testData:
  - input: Hello!
tags: []
"#
    )
}

/// Runs `new`.
pub fn run(ctx: &Context, args: NewArgs) -> Result<u8, Failure> {
    let registry = ctx.registry()?;
    let id =
        normalize(&args.id).map_err(|e| Failure::Message(format!("invalid prompt id: {e}")))?;
    if id != args.id || id.contains('@') || crate::snapshot::work::is_hidden(&id) {
        return Err(Failure::Message(format!(
            "invalid prompt id `{}`: use a relative path without `@`, `..` or hidden folders",
            args.id
        )));
    }
    for suffix in PROMPT_SUFFIXES {
        let existing = registry.root().join(format!("{id}{suffix}"));
        if existing.exists() {
            return Err(Error::Refused(format!(
                "{} already exists; not overwriting it",
                existing.display()
            ))
            .into());
        }
    }
    let path = registry.root().join(format!("{id}.prompt.yaml"));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| {
            Failure::from(Error::Io {
                path: parent.to_path_buf(),
                source: e,
            })
        })?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| {
            Failure::from(Error::Io {
                path: path.clone(),
                source: e,
            })
        })?;
    std::io::Write::write_all(&mut file, skeleton(&id).as_bytes()).map_err(|e| {
        Failure::from(Error::Io {
            path: path.clone(),
            source: e,
        })
    })?;
    print(&format!("created {}\n", path.display()))?;
    Ok(0)
}

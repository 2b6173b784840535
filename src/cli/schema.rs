//! `promptreg schema`: print the prompt file's JSON Schema.

use clap::Args;

use super::output::print;
use super::{Context, Failure};

/// Print the JSON Schema of the prompt file.
///
/// Point yaml-language-server at it with a first line
/// `# yaml-language-server: $schema=prompt.schema.json` after `promptreg schema > prompt.schema.json`.
#[derive(Debug, Args)]
pub struct SchemaArgs {}

/// Runs `schema`.
pub fn run(_ctx: &Context, _args: SchemaArgs) -> Result<u8, Failure> {
    print(crate::format::schema::PROMPT_SCHEMA)?;
    Ok(0)
}

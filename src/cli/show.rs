//! `promptreg show`: print a prompt's file as written, or as JSON.

use clap::{Args, ValueEnum};

use super::output::print;
use super::{Context, Failure};
use crate::registry::reference::Reference;

/// Print a prompt's file: `show ID`, `show ID@work`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The prompt: `ID` (its default), `ID@N`, `ID@latest`, `ID@LABEL`, `ID@COMMIT` or `ID@work`.
    pub reference: String,
    /// Output format: the file as written (`yaml`) or its fields as JSON.
    #[arg(long, value_enum, default_value_t)]
    pub format: ShowFormat,
}

/// Formats of `show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ShowFormat {
    /// The file exactly as written.
    #[default]
    Yaml,
    /// The file's fields as JSON.
    Json,
}

/// Runs `show`.
pub fn run(ctx: &Context, args: ShowArgs) -> Result<u8, Failure> {
    let registry = ctx.registry()?;
    let reference = Reference::parse(&args.reference)?;
    let loaded = registry.load(&reference)?;
    match args.format {
        ShowFormat::Yaml => {
            let mut text = loaded.text.clone();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            print(&text)?;
        }
        ShowFormat::Json => {
            let (document, _) = crate::format::yaml::parse(&loaded.file, loaded.text.as_bytes());
            let value = document.map(|d| d.value).unwrap_or_default();
            print(&format!(
                "{}\n",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            ))?;
        }
    }
    Ok(0)
}

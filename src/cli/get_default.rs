//! `promptreg get-default`: the version a prompt's id resolves to.

use clap::Args;

use super::output::print;
use super::{Context, DataFormat, Failure};
use crate::registry::reference::{Reference, Selector};
use crate::registry::Resolved;

/// Print the default version of a prompt (the manifest's, else the latest), or of a label.
#[derive(Debug, Args)]
pub struct GetDefaultArgs {
    /// The prompt id.
    pub id: String,
    /// Read this label instead of the default.
    #[arg(long)]
    pub label: Option<String>,
    /// `text` prints the number; `json` prints the resolved prompt.
    #[arg(long, value_enum, default_value_t)]
    pub format: DataFormat,
}

/// Runs `get-default`.
pub fn run(ctx: &Context, args: GetDefaultArgs) -> Result<u8, Failure> {
    let registry = ctx.registry()?;
    registry.index()?;
    let selector = match &args.label {
        Some(label) => Selector::Name(label.clone()),
        None => Selector::Default,
    };
    let reference = Reference {
        id: args.id.clone(),
        selector,
    };
    let resolved = registry.resolve_numbered(&reference)?;
    let Resolved::Version { number, commit } = resolved else {
        return Err(Failure::Message(format!(
            "`{}` has no committed versions yet",
            args.id
        )));
    };
    match args.format {
        DataFormat::Text => print(&format!("{number}\n"))?,
        DataFormat::Json => {
            let loaded = registry.load_resolved(&args.id, &resolved)?;
            let (document, _) = crate::format::yaml::parse(&loaded.file, loaded.text.as_bytes());
            let value = serde_json::json!({
                "id": args.id,
                "version": number,
                "commit": commit.to_hex(),
                "label": args.label,
                "file": loaded.file,
                "prompt": document.map(|d| d.value).unwrap_or_default(),
            });
            print(&format!(
                "{}\n",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            ))?;
        }
    }
    Ok(0)
}

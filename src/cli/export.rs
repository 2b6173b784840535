//! `promptreg export`: the read API as static files, and one bundle.

use std::path::PathBuf;

use clap::Args;

use super::output::print;
use super::{Context, Failure};

/// Write the read API's answers at one commit as static files, plus `bundle.json`.
///
/// Every GET path of `promptreg serve` (the list, each prompt at its default, `@latest`, each
/// label and the versions they point at, each prompt's versions, the manifest) becomes
/// `DIR/<path>/index.json`, byte for byte what the server sends at that commit. `bundle.json`
/// holds every prompt with those versions, to bake into an application image.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Where to write (empty, absent, or an earlier export).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Every version of every prompt, not only those a default or label points at.
    #[arg(long)]
    pub all_versions: bool,
}

/// Runs `export`.
pub fn run(ctx: &Context, args: ExportArgs) -> Result<u8, Failure> {
    let registry = ctx.commits()?;
    let exported = crate::serve::export::export(registry, &args.out, args.all_versions)?;
    print(&format!(
        "exported {} paths and bundle.json of commit {} to {}\n",
        exported.paths.len(),
        exported.commit,
        args.out.display()
    ))?;
    Ok(0)
}

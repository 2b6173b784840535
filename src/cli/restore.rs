//! `promptreg restore`: write a version's content back to the working copy.

use clap::Args;

use super::output::print;
use super::{Context, Failure};
use crate::error::Error;
use crate::registry::reference::Reference;
use crate::registry::Resolved;

/// Write the content of a version back to the working copy, so that committing it makes it the
/// newest version (a revert). Refuses to overwrite uncommitted edits without `--force`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The version to restore: `ID@N`, `ID@LABEL`, `ID@COMMIT`, `ID` (the default).
    pub reference: String,
    /// Overwrite uncommitted edits of the file.
    #[arg(long)]
    pub force: bool,
}

/// Runs `restore`.
pub fn run(ctx: &Context, args: RestoreArgs) -> Result<u8, Failure> {
    let registry = ctx.registry()?;
    let reference = Reference::parse(&args.reference)?;
    let resolved = registry.resolve_numbered(&reference)?;
    let Resolved::Version { number, .. } = resolved else {
        return Err(Error::Usage(format!(
            "`{reference}` is the working copy; restore takes a committed version such as `{}@1`",
            reference.id
        ))
        .into());
    };
    let loaded = registry.load_resolved(&reference.id, &resolved)?;
    let (_, versions) = registry.versions(&reference.id)?;
    let latest = versions.last().map(|v| v.blob);
    if !args.force
        && registry.work_differs(&loaded.file, latest)?
        && registry.read_work_text(&loaded.file).is_some()
    {
        return Err(Error::Refused(format!(
            "{} has uncommitted edits; commit them first, or pass --force to overwrite them",
            loaded.file
        ))
        .into());
    }
    // Written as checkout writes it (CRLF where git's line-ending rules say), so the restored
    // file is clean for git when it is the latest version's content.
    let bytes = match registry.repo() {
        Some(repo) => repo
            .to_worktree(&loaded.file, loaded.text.as_bytes())
            .into_owned(),
        None => loaded.text.clone().into_bytes(),
    };
    registry.work_tree().write(&loaded.file, &bytes)?;
    let restored = (number as usize)
        .checked_sub(1)
        .and_then(|i| versions.get(i))
        .map(|v| v.blob);
    let next = if restored == latest {
        "it is the latest version's content, so there is nothing to commit".to_string()
    } else {
        format!("commit it to make it v{}", versions.len() + 1)
    };
    print(&format!(
        "restored {} to the content of v{number}; {next}\n",
        loaded.file
    ))?;
    Ok(0)
}

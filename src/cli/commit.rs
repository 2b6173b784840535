//! `promptreg commit`: commit one prompt file as its next version.

use clap::Args;

use super::output::{eprint, print, render_diagnostics, stderr_color};
use super::{Context, Failure};
use crate::error::Error;
use crate::write::{self, Edit};

/// Validate a prompt, then commit its file alone as the next version. Every other staged and
/// unstaged change stays exactly as it was.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// The prompt id.
    pub id: String,
    /// The commit message: the version's change note.
    #[arg(short, long)]
    pub message: String,
}

/// Runs `commit`.
///
/// The library's write layer plans it ([`write::plan`]: the message, and the file validated
/// with the partials and config of `HEAD`, what the commit will hold) and applies it
/// ([`write::apply`]: through git's index, every other change kept).
pub fn run(ctx: &Context, args: CommitArgs) -> Result<u8, Failure> {
    let registry = ctx.registry()?;
    let loaded = registry.load_work(&args.id)?;
    let path = registry.work_tree().path(&loaded.file);
    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(Error::Refused(format!(
            "{} is a symlink; commit the file it points to instead",
            loaded.file
        ))
        .into());
    }
    let file = loaded.file.clone();
    let edit = Edit::Commit {
        id: args.id.clone(),
        source: loaded.text.clone(),
        file: Some(file.clone()),
    };
    let planned = match registry.current_tip()? {
        Some(_) => write::plan(&registry.snapshot()?, edit, Some(&args.message)),
        // The first commit of a new repository.
        None => write::plan_unborn(edit, Some(&args.message)),
    };
    let plan = match planned {
        Ok(plan) => plan,
        Err(Error::Invalid {
            diagnostics, text, ..
        }) => {
            let own = |f: &str| {
                if f == file {
                    text.clone()
                } else {
                    registry.read_work_text(f)
                }
            };
            eprint(&render_diagnostics(&diagnostics, &own, stderr_color()));
            eprint(&format!(
                "error: not committing {file}: fix the errors above first\n"
            ));
            return Ok(1);
        }
        Err(err) => return Err(err.into()),
    };
    if plan.is_noop() {
        return Err(Error::Refused(format!(
            "{file} has no changes since HEAD; nothing to commit"
        ))
        .into());
    }
    let applied = write::apply(&registry, &plan)?;
    let short = applied.commit.map(|c| c.short()).unwrap_or_default();
    let reopened = crate::registry::Registry::open(registry.root())?;
    let (_, versions) = reopened.versions(&args.id)?;
    print(&format!("{} v{} ({short})\n", args.id, versions.len()))?;
    if applied.branch.is_none() {
        eprint(&format!(
            "note: HEAD is detached, so {short} is on no branch; keep it with `git switch -c NAME`\n"
        ));
    }
    Ok(0)
}

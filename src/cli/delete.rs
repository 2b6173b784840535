//! `promptreg delete`: delete a prompt, with its lines of `defaults.yaml`, in one commit.

use clap::Args;

use super::output::{eprint, print};
use super::{Context, Failure};
use crate::write::{self, Edit};

/// Delete a prompt: one commit that removes its file and its default and labels from
/// `defaults.yaml`. Its versions stay readable by number (`ID@N`) and by commit. Every other
/// staged and unstaged change stays as it was.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The prompt id.
    pub id: String,
    /// The commit message (`Delete ID` when not given).
    #[arg(short, long)]
    pub message: Option<String>,
}

/// Runs `delete`.
///
/// Planned and applied by the library's write layer ([`write::apply`]): the commit goes through
/// git's index, then the working file is removed and `defaults.yaml` in the working copy gets
/// the same edit, so its uncommitted lines stay. A prompt whose working file differs from
/// `HEAD` is refused: deleting it would lose those edits.
pub fn run(ctx: &Context, args: DeleteArgs) -> Result<u8, Failure> {
    let registry = ctx.registry()?;
    let snapshot = registry.snapshot()?;
    let edit = Edit::Delete {
        id: args.id.clone(),
    };
    let plan = write::plan(&snapshot, edit, args.message.as_deref())?;
    let applied = write::apply(&registry, &plan)?;
    let short = applied.commit.map(|c| c.short()).unwrap_or_default();
    print(&format!(
        "deleted {} ({}): {}\n",
        args.id,
        short,
        plan.message()
    ))?;
    if applied.branch.is_none() {
        eprint(&format!(
            "note: HEAD is detached, so {short} is on no branch; keep it with `git switch -c NAME`\n"
        ));
    }
    Ok(0)
}

//! `promptreg delete`: delete a prompt, with its lines of `defaults.yaml`, in one commit.

use clap::Args;

use super::output::{eprint, print};
use super::{Context, Failure};
use crate::error::Error;
use crate::format::manifest;
use crate::snapshot::work::Source;
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
/// The commit is made through git's index (`Repo::commit_files`); then the prompt's working
/// file is removed and `defaults.yaml` in the working copy gets the same edit, under its lock,
/// so uncommitted lines of it stay. A prompt whose working file differs from `HEAD` is refused:
/// deleting it would lose those edits.
pub fn run(ctx: &Context, args: DeleteArgs) -> Result<u8, Failure> {
    let registry = ctx.registry()?;
    let repo = registry.repo().ok_or_else(|| {
        Error::NoHistory(format!(
            "{} is not inside a git repository",
            registry.root().display()
        ))
    })?;
    let snapshot = registry.snapshot()?;
    let edit = Edit::Delete {
        id: args.id.clone(),
    };
    let plan = write::plan(&snapshot, edit, args.message.as_deref())?;
    let file = plan.file().unwrap_or_default().to_string();
    let at_head = registry.commit_source(snapshot.commit())?.blob_id(&file)?;
    if registry.work_differs(&file, at_head)? {
        return Err(Error::Refused(format!(
            "{file} has changes that are not committed; commit them (`promptreg commit {}`) or drop them (`git restore {file}`) first",
            args.id
        ))
        .into());
    }
    let work = registry.work_tree();
    let mut lock = work.lock(manifest::FILE)?;
    let committed = write::commit_to_index(&repo, &plan)?
        .ok_or_else(|| Error::Refused(format!("`{}` changes nothing", args.id)))?;
    // The commit has landed: now the working copy follows it.
    let path = work.path(&file);
    if let Err(e) = std::fs::remove_file(&path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(Error::io(path, e).into());
        }
    }
    if let Some(bytes) = work.read(manifest::FILE)? {
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::Refused(format!(
                "{} in the working copy is not UTF-8; the commit removed `{}` from it, so edit the working file the same way",
                manifest::FILE,
                args.id
            ))
        })?;
        if let Some(edited) = write::edit_manifest(plan.edit(), &text)? {
            lock.write(edited.as_bytes())?;
            lock.commit()?;
        }
    }
    print(&format!(
        "deleted {} ({}): {}\n",
        args.id,
        committed.id.short(),
        plan.message()
    ))?;
    if committed.branch.is_none() {
        eprint(&format!(
            "note: HEAD is detached, so {} is on no branch; keep it with `git switch -c NAME`\n",
            committed.id.short()
        ));
    }
    Ok(0)
}

//! `promptreg commit`: commit one prompt file as its next version.

use clap::Args;

use super::output::{eprint, print, render_diagnostics, stderr_color};
use super::{Context, Failure};
use crate::error::Error;

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
pub fn run(ctx: &Context, args: CommitArgs) -> Result<u8, Failure> {
    let registry = ctx.registry()?;
    let repo = registry.repo().ok_or_else(|| {
        Error::NoHistory(format!(
            "{} is not inside a git repository",
            registry.root().display()
        ))
    })?;
    if args.message.trim().is_empty() {
        return Err(Failure::Message(
            "the commit message is empty; say what changed with -m".into(),
        ));
    }
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
    let text = loaded.text.clone();
    let findings = crate::check::validate::check_loaded(loaded);
    let errors: Vec<_> = findings.iter().filter(|d| d.is_error()).cloned().collect();
    if !errors.is_empty() {
        let own = |f: &str| {
            if f == file {
                Some(text.clone())
            } else {
                registry.read_work_text(f)
            }
        };
        eprint(&render_diagnostics(&errors, &own, stderr_color()));
        eprint(&format!(
            "error: not committing {file}: fix the errors above first\n"
        ));
        return Ok(1);
    }
    // Under git's lock, `commit_file` refuses a file that is the same as at HEAD.
    let bytes = text.into_bytes();
    let committed = repo.commit_file(&file, &|_| Ok(bytes.clone()), &args.message)?;
    let reopened = crate::registry::Registry::open(registry.root())?;
    let (_, versions) = reopened.versions(&args.id)?;
    print(&format!(
        "{} v{} ({})\n",
        args.id,
        versions.len(),
        committed.id.short()
    ))?;
    if committed.branch.is_none() {
        eprint(&format!(
            "note: HEAD is detached, so {} is on no branch; keep it with `git switch -c NAME`\n",
            committed.id.short()
        ));
    }
    Ok(0)
}

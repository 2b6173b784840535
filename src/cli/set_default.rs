//! `promptreg set-default`: move a prompt's default (or a label) in `defaults.yaml`.

use clap::Args;

use super::output::{eprint, print};
use super::{Context, Failure};
use crate::error::Error;
use crate::format::manifest::{self, Manifest};
use crate::snapshot::work::Source;
use crate::write::{self, Edit};

/// Point a prompt's default (or `--label`) at version N in `defaults.yaml`. Only that line
/// changes; comments and order stay. Refuses versions that do not exist.
#[derive(Debug, Args)]
pub struct SetDefaultArgs {
    /// The prompt id.
    pub id: String,
    /// The version to point at.
    pub version: u32,
    /// Move this label instead of the default.
    #[arg(long)]
    pub label: Option<String>,
    /// Commit `defaults.yaml` alone, with a message naming the move.
    #[arg(long)]
    pub commit: bool,
}

/// Runs `set-default`.
///
/// The read, edit and write of `defaults.yaml` happen under its lock file
/// (`defaults.yaml.lock`), so writers running at once each add their line; with `--commit` the
/// commit (under git's `index.lock`) lands before the working copy is written, and a failure
/// leaves both as they were.
pub fn run(ctx: &Context, args: SetDefaultArgs) -> Result<u8, Failure> {
    let registry = ctx.registry()?;
    write::check_id(&args.id)?;
    let label = args.label.as_deref();
    let (_, versions) = registry.versions(&args.id)?;
    if versions.is_empty() {
        registry
            .discover_work()?
            .file(&args.id, &registry.root().display().to_string())?;
        return Err(Error::Usage(format!("`{}` has no committed versions yet", args.id)).into());
    }
    let count = versions.len() as u32;
    if args.version == 0 || args.version > count {
        return Err(Error::Usage(format!(
            "`{}` has no version {}; it has versions 1 to {count}",
            args.id, args.version
        ))
        .into());
    }
    let work = registry.work_tree();
    let target = work.write_target(manifest::FILE)?;
    let mut lock = work.lock(manifest::FILE)?;
    let text = match work.read(manifest::FILE)? {
        Some(bytes) => String::from_utf8(bytes).map_err(|_| {
            Error::Usage(format!(
                "{} is not valid UTF-8; save it as UTF-8",
                manifest::FILE
            ))
        })?,
        None => String::new(),
    };
    let before = Manifest::load(text.as_bytes())?.get(label, &args.id);
    let edit = Edit::Point {
        label: args.label.clone(),
        id: args.id.clone(),
        version: args.version,
    };
    let edited = write::edit_manifest(&edit, &text)?;
    let what = match label {
        Some(label) => format!("label {label} of {}", args.id),
        None => format!("default of {}", args.id),
    };
    let change = match before {
        Some(b) => format!("v{b} -> v{}", args.version),
        None => format!("v{}", args.version),
    };
    let mut out = format!("{what}: {change}\n");
    if args.commit {
        let repo = registry
            .repo()
            .ok_or_else(|| Error::NoHistory("--commit needs a git repository".into()))?;
        if target != work.path(manifest::FILE) {
            return Err(Error::Refused(format!(
                "{} is a symlink; --commit would replace it with a file in git: run without --commit and commit the file it points to",
                manifest::FILE
            ))
            .into());
        }
        // The same plan as every other front end: the message, and the edit made on HEAD's
        // (or the staged) defaults.yaml.
        let plan = write::plan(&registry.snapshot()?, edit, None)?;
        match write::commit_to_index(&repo, &plan)? {
            None => out.push_str(&format!(
                "already v{} at HEAD; nothing to commit\n",
                args.version
            )),
            Some(committed) => {
                out.push_str(&format!(
                    "committed {} ({})\n",
                    manifest::FILE,
                    committed.id.short()
                ));
                if committed.branch.is_none() {
                    eprint(&format!(
                        "note: HEAD is detached, so {} is on no branch; keep it with `git switch -c NAME`\n",
                        committed.id.short()
                    ));
                }
            }
        }
    } else if edited.is_some() {
        eprint(&format!(
            "note: {} is changed in the working copy only: `promptreg serve`, other clones and CI keep the committed default until it is committed (add --commit, or `git commit {}`)\n",
            manifest::FILE,
            manifest::FILE
        ));
    }
    if let Some(edited) = edited {
        lock.write(edited.as_bytes())?;
        lock.commit()?;
    }
    print(&out)?;
    Ok(0)
}

//! `promptreg set-default`: move a prompt's default (or a label) in `defaults.yaml`.

use clap::Args;

use super::output::print;
use super::{Context, Failure};
use crate::error::Error;
use crate::manifest::{self, Manifest};

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
pub fn run(ctx: &Context, args: SetDefaultArgs) -> Result<u8, Failure> {
    let registry = ctx.registry()?;
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
    let text = registry.read_work_text(manifest::FILE).unwrap_or_default();
    let (old, _) = Manifest::parse(text.as_bytes());
    let before = old.get(args.label.as_deref(), &args.id);
    let edited = manifest::edit(&text, args.label.as_deref(), &args.id, args.version)
        .map_err(Failure::Message)?;
    let what = match &args.label {
        Some(label) => format!("label {label} of {}", args.id),
        None => format!("default of {}", args.id),
    };
    let change = match before {
        Some(b) => format!("v{b} -> v{}", args.version),
        None => format!("v{}", args.version),
    };
    if edited != text {
        registry
            .work_tree()
            .write(manifest::FILE, edited.as_bytes())?;
    }
    let mut out = format!("{what}: {change}\n");
    if args.commit {
        let repo = registry
            .repo()
            .ok_or_else(|| Error::NoHistory("--commit needs a git repository".into()))?;
        let message = format!(
            "Set {what} to v{} (was {})\n",
            args.version,
            before.map_or("unset".to_string(), |b| format!("v{b}"))
        );
        let commit = repo.commit_file(manifest::FILE, edited.as_bytes(), &message)?;
        out.push_str(&format!(
            "committed {} ({})\n",
            manifest::FILE,
            commit.short()
        ));
    }
    print(&out)?;
    Ok(0)
}

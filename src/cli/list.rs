//! `promptreg list`: every prompt with its versions, default, labels and working-copy state.

use clap::Args;

use super::output::{eprint, print, render_diagnostics, stderr_color};
use super::{Context, DataFormat, Failure};
use crate::error::Error;

/// List every prompt: id, number of versions, latest, default, labels, and whether the working
/// copy has uncommitted changes (`*`).
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: DataFormat,
}

/// What `list` says when it finds no prompt: the patterns it tried, and the files it saw that
/// look like prompts with the `prompts` entries that would take them.
fn nothing_found(registry: &crate::registry::Registry) -> Result<String, Failure> {
    let matcher = registry.work().matcher()?;
    let from = if registry.root().join(crate::format::config::FILE).is_file() {
        "the `prompts` of promptreg.yaml"
    } else {
        "the default; `prompts` in promptreg.yaml changes them"
    };
    let mut out = format!(
        "note: no prompt found under {}; the patterns tried ({from}): {}
",
        registry.root().display(),
        matcher.patterns().join(", ")
    );
    let lookalikes = registry.lookalikes()?;
    if lookalikes.is_empty() {
        return Ok(out);
    }
    let mut by_entry: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for l in &lookalikes {
        by_entry.entry(&l.entry).or_default().push(&l.file);
    }
    out.push_str(
        "note: these files look like prompts; to take them, add to promptreg.yaml (a `prompts` list replaces the default patterns: keep those you use):\n  prompts:\n",
    );
    for (entry, files) in &by_entry {
        let more = match files.len() {
            1 => String::new(),
            n => format!(" and {} more", n - 1),
        };
        out.push_str(&format!("    - {entry}    # {}{more}\n", files[0]));
    }
    Ok(out)
}

/// Runs `list`.
pub fn run(ctx: &Context, args: ListArgs) -> Result<u8, Failure> {
    let registry = ctx.registry()?;
    let discovery = registry.discover_work()?;
    if !discovery.diagnostics.is_empty() {
        let none = |_: &str| None;
        eprint(&render_diagnostics(
            &discovery.diagnostics,
            &none,
            stderr_color(),
        ));
    }
    match registry.version_counts() {
        Err(Error::NoHistory(why)) => eprint(&format!("note: {why}\n")),
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    let rows = registry.summaries_of(&discovery)?;
    if rows.is_empty() && discovery.conflicts.is_empty() {
        eprint(&nothing_found(&registry)?);
    }
    if manifest_uncommitted(&registry)? {
        eprint(&format!(
            "note: {} has changes that are not committed: DEFAULT and LABELS show them, while `promptreg serve`, other clones and CI use the committed file until it is committed\n",
            crate::format::manifest::FILE
        ));
    }
    match args.format {
        DataFormat::Json => print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        ))?,
        DataFormat::Text => {
            let cell = |v: Option<u32>| v.map_or("-".to_string(), |n| format!("v{n}"));
            let width = rows
                .iter()
                .map(|r| r.id.len() + 1)
                .max()
                .unwrap_or(2)
                .max(2);
            let mut out = format!(
                "{:<width$}  {:>8}  {:>6}  {:>7}  LABELS\n",
                "ID", "VERSIONS", "LATEST", "DEFAULT"
            );
            for row in &rows {
                let id = if row.modified {
                    format!("{}*", row.id)
                } else {
                    row.id.clone()
                };
                let labels: Vec<String> = row
                    .labels
                    .iter()
                    .map(|(l, v)| format!("{l}=v{v}"))
                    .collect();
                let line = format!(
                    "{id:<width$}  {:>8}  {:>6}  {:>7}  {}",
                    row.versions,
                    cell(row.latest),
                    cell(row.default),
                    labels.join(" ")
                );
                out.push_str(line.trim_end());
                out.push('\n');
            }
            if rows.iter().any(|r| r.modified) {
                out.push_str("(* = the working copy differs from the latest committed version)\n");
            }
            print(&out)?;
        }
    }
    // The process ends next: freeing the version index (every version commit's author and
    // message, hundreds of thousands of strings in a long history) one by one only costs time.
    std::mem::forget(registry);
    Ok(0)
}

/// Whether `defaults.yaml` in the working copy differs from `HEAD`'s, so what `list` shows is
/// not what a server serves.
fn manifest_uncommitted(registry: &crate::registry::Registry) -> Result<bool, Failure> {
    let file = crate::format::manifest::FILE;
    let Ok(Some(tip)) = registry.current_tip() else {
        return Ok(false);
    };
    let at_head = registry.commit_source(tip)?.blob_id(file)?;
    Ok(registry.work_differs(file, at_head)?)
}

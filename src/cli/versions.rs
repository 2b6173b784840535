//! `promptreg versions`: the version table of one prompt, newest first.

use clap::Args;
use serde::Serialize;

use super::output::print;
use super::{Context, DataFormat, Failure};
use crate::error::Error;

/// The versions of a prompt, newest first: number, commit, date, author, subject, and marks for
/// the default and labels.
#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// The prompt id.
    pub id: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: DataFormat,
}

#[derive(Serialize)]
struct Row {
    version: u32,
    commit: String,
    author: String,
    email: String,
    time: String,
    subject: String,
    message: String,
    default: bool,
    labels: Vec<String>,
}

/// Runs `versions`.
pub fn run(ctx: &Context, args: VersionsArgs) -> Result<u8, Failure> {
    let registry = ctx.registry()?;
    let (index, versions) = registry.versions(&args.id)?;
    if versions.is_empty() {
        registry
            .discover_work()?
            .file(&args.id, &registry.root().display().to_string())?;
        if args.format == DataFormat::Text {
            return Err(Error::Usage(format!("`{}` has no committed versions yet; commit it with `promptreg commit {} -m MESSAGE`", args.id, args.id)).into());
        }
    }
    let manifest = registry.manifest()?;
    let default = manifest
        .get(None, &args.id)
        .or(versions.last().map(|v| v.number));
    let labels = manifest.labels_of(&args.id);
    let rows: Vec<Row> = versions
        .iter()
        .rev()
        .map(|v| {
            let c = index.commit(v);
            Row {
                version: v.number,
                commit: c.id.to_hex(),
                author: c.author.clone(),
                email: c.email.clone(),
                time: crate::git::time::rfc3339(c.time, c.offset_minutes),
                subject: c.message.lines().next().unwrap_or("").to_string(),
                message: c.message.clone(),
                default: default == Some(v.number),
                labels: labels
                    .iter()
                    .filter(|(_, n)| *n == v.number)
                    .map(|(l, _)| l.to_string())
                    .collect(),
            }
        })
        .collect();
    match args.format {
        DataFormat::Json => print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        ))?,
        DataFormat::Text => {
            let author_width = rows
                .iter()
                .map(|r| r.author.chars().count())
                .max()
                .unwrap_or(0)
                .min(24);
            let mut out = String::new();
            for row in &rows {
                let mut marks: Vec<String> = Vec::new();
                if row.default {
                    marks.push("default".into());
                }
                marks.extend(row.labels.iter().cloned());
                let marks = if marks.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", marks.join(", "))
                };
                let author: String = if row.author.chars().count() > 24 {
                    format!("{}...", row.author.chars().take(21).collect::<String>())
                } else {
                    row.author.clone()
                };
                out.push_str(&format!(
                    "v{:<4} {}  {}  {author:<author_width$}  {}{marks}\n",
                    row.version,
                    &row.commit[..7],
                    &row.time[..10],
                    row.subject
                ));
            }
            print(&out)?;
        }
    }
    Ok(0)
}

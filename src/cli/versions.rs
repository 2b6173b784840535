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
    let rows: Vec<Row> = crate::registry::marked_versions(index, &versions, &manifest, &args.id)
        .into_iter()
        .map(|m| Row {
            version: m.version.number,
            commit: m.commit.id.to_hex(),
            author: m.commit.author.clone(),
            email: m.commit.email.clone(),
            time: crate::git::time::rfc3339(m.commit.time, m.commit.offset_minutes),
            subject: m.commit.message.lines().next().unwrap_or("").to_string(),
            message: m.commit.message.clone(),
            default: m.default,
            labels: m.labels,
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

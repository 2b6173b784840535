//! `promptreg list`: every prompt of the registry.

use clap::Args;
use serde::Serialize;

use super::output::{eprint, print, render_diagnostics, stderr_color};
use super::{Context, DataFormat, Failure};

/// List every prompt of the registry: its id and file.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: DataFormat,
}

#[derive(Serialize)]
struct Row {
    id: String,
    file: String,
    name: Option<String>,
    description: Option<String>,
}

/// Runs `list`.
pub fn run(ctx: &Context, args: ListArgs) -> Result<u8, Failure> {
    let registry = ctx.registry()?;
    let discovery = registry.discover_work()?;
    if !discovery.diagnostics.is_empty() {
        let none = |_: &str| None;
        eprint(&render_diagnostics(&discovery.diagnostics, &none, stderr_color()));
    }
    let rows: Vec<Row> = discovery
        .prompts
        .iter()
        .map(|(id, file)| {
            let (name, description) = registry
                .read_work_text(file)
                .and_then(|text| crate::Prompt::parse(file, text.as_bytes()).prompt)
                .map_or((None, None), |p| (p.name, p.description));
            Row { id: id.clone(), file: file.clone(), name, description }
        })
        .collect();
    match args.format {
        DataFormat::Json => print(&format!("{}\n", serde_json::to_string_pretty(&rows).unwrap_or_default()))?,
        DataFormat::Text => {
            let width = rows.iter().map(|r| r.id.len()).max().unwrap_or(2).max(2);
            let mut out = format!("{:<width$}  DESCRIPTION\n", "ID");
            for row in &rows {
                let description = row.description.as_deref().or(row.name.as_deref()).unwrap_or("");
                out.push_str(format!("{:<width$}  {}", row.id, first_line(description)).trim_end());
                out.push('\n');
            }
            print(&out)?;
        }
    }
    Ok(0)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

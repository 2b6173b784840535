//! `promptreg diff`: the source diff between two references, and with `--rendered` the diff of
//! their rendered output on each test case.

use clap::Args;
use serde_json::{json, Map, Value};

use super::output::{print, stdout_color};
use super::render::{RenderArgs, Request};
use super::{Context, DataFormat, Failure};
use crate::check::diff::{compile_failure, render_cases, render_own_cases, side, unified, Cases};
use crate::registry::reference::Reference;

/// Show what changed between two versions of a prompt (or two prompts): `diff greeting@3
/// greeting@4`, `diff greeting greeting@work`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old side.
    pub from: String,
    /// The new side.
    pub to: String,
    /// Also render both sides on each test case (or the given values) and diff the output.
    #[arg(long)]
    pub rendered: bool,
    /// A value for `--rendered`: `k=v` or `k:=JSON` (replaces the test cases).
    #[arg(long = "var", value_name = "K=V")]
    pub vars: Vec<String>,
    /// A YAML or JSON file of values for `--rendered` (replaces the test cases).
    #[arg(long = "vars", value_name = "FILE")]
    pub vars_file: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: DataFormat,
}

/// Colours `+`/`-`/`@@` lines of a unified diff.
pub fn colorize(diff: &str, color: bool) -> String {
    if !color {
        return diff.to_string();
    }
    diff.lines()
        .map(|line| {
            let style = match line.chars().next() {
                Some('+') if !line.starts_with("+++") => "\x1b[32m",
                Some('-') if !line.starts_with("---") => "\x1b[31m",
                Some('@') => "\x1b[36m",
                _ => "",
            };
            if style.is_empty() {
                format!("{line}\n")
            } else {
                format!("{style}{line}\x1b[0m\n")
            }
        })
        .collect()
}

/// Runs `diff`.
pub fn run(ctx: &Context, args: DiffArgs) -> Result<u8, Failure> {
    let registry = ctx.registry()?;
    let from_ref = Reference::parse(&args.from)?;
    let to_ref = Reference::parse(&args.to)?;
    let from = registry.load(&from_ref)?;
    let to = registry.load(&to_ref)?;
    let source = unified(
        &from.text,
        &to.text,
        &from_ref.to_string(),
        &to_ref.to_string(),
    );
    let mut cases_json = Vec::new();
    let mut compile_errors: (Option<String>, Option<String>) = (None, None);
    let mut text = colorize(&source, stdout_color());
    if source.is_empty() {
        text.push_str(&format!(
            "{} and {} have the same source\n",
            from_ref, to_ref
        ));
    }
    if args.rendered {
        let old = from.compile().map_err(|e| compile_failure(&e));
        let new = to.compile().map_err(|e| compile_failure(&e));
        for (name, side) in [(&from_ref, &old), (&to_ref, &new)] {
            if let Err(e) = side {
                text.push_str(&format!("{name}: {e}\n"));
            }
        }
        compile_errors = (old.as_ref().err().cloned(), new.as_ref().err().cloned());
        let given = !args.vars.is_empty() || args.vars_file.is_some();
        let names = (from_ref.to_string(), to_ref.to_string());
        let names = (names.0.as_str(), names.1.as_str());
        let diffs = if given {
            let request = Request::from_args(RenderArgs {
                reference: args.to.clone(),
                vars: args.vars.clone(),
                vars_file: args.vars_file.clone(),
                test: None,
                strict: false,
                format: DataFormat::Text,
            })?;
            let target = new
                .as_ref()
                .or(old.as_ref())
                .map_err(|e| Failure::Message(e.clone()))?;
            let values: Vec<Map<String, Value>> = vec![request.request.resolve_values(target)?.0];
            render_cases(side(&old), side(&new), Cases::same(&values), names)
        } else {
            render_own_cases(&old, &new, names)
        };
        if diffs.is_empty() {
            text.push_str("no test cases to render (give values with --var or --vars)\n");
        }
        for case in &diffs {
            let label = if given {
                "given values".to_string()
            } else {
                format!("test case {}", case.test)
            };
            if case.same {
                text.push_str(&format!("{label}: renders the same\n"));
            } else {
                text.push_str(&format!(
                    "{label}:\n{}",
                    colorize(&case.diff, stdout_color())
                ));
            }
        }
        cases_json = diffs
            .iter()
            .map(|c| serde_json::to_value(c).unwrap_or_default())
            .collect();
    }
    match args.format {
        DataFormat::Text => print(&text)?,
        DataFormat::Json => {
            let value = json!({
                "from": from_ref.to_string(),
                "to": to_ref.to_string(),
                "same": source.is_empty(),
                "source_diff": source,
                "rendered": if args.rendered { Value::Array(cases_json) } else { Value::Null },
                "error_from": compile_errors.0,
                "error_to": compile_errors.1,
            });
            print(&format!(
                "{}\n",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            ))?;
        }
    }
    Ok(0)
}

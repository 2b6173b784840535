//! `promptreg validate`: the check CI runs on every pull request.

use clap::{Args, ValueEnum};

use super::output::{eprint, print, render_diagnostics, stdout_color};
use super::{Context, Failure};
use crate::diagnostic::Diagnostic;

/// Check every prompt (or the named ones) and the manifest; report every finding. Exits 0 when
/// there is no error, 1 when there is (warnings too with `--deny-warnings`), 2 when it could
/// not run.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Prompt ids to check (all when none are given).
    pub ids: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ValidateFormat,
    /// Fail on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
}

/// Formats of `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ValidateFormat {
    /// rustc-style findings with the source line and a caret.
    #[default]
    Human,
    /// One JSON object with every finding and the counts.
    Json,
    /// GitHub Actions workflow commands, one per finding (annotations on the PR's files).
    Github,
}

/// Escapes a workflow-command property value.
fn escape_property(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
        .replace(':', "%3A")
        .replace(',', "%2C")
}

/// Escapes a workflow-command message.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// One workflow-command line for a finding; `prefix` makes the path repository-relative.
pub fn github_line(d: &Diagnostic, prefix: &str) -> String {
    let level = if d.is_error() { "error" } else { "warning" };
    let mut message = d.message.clone();
    if let Some(hint) = &d.hint {
        message.push_str(&format!("\n{hint}"));
    }
    format!(
        "::{level} file={},line={},col={},title={}::{}\n",
        escape_property(&format!("{prefix}{}", d.file)),
        d.line,
        d.column,
        escape_property(d.code.as_str()),
        escape_data(&message)
    )
}

/// Runs `validate`.
pub fn run(ctx: &Context, args: ValidateArgs) -> Result<u8, Failure> {
    let registry = ctx.registry()?;
    let report = crate::check::validate::validate(&registry, &args.ids)?;
    let (errors, warnings) = (report.errors(), report.warnings());
    match args.format {
        ValidateFormat::Human => {
            let lookup = |f: &str| registry.read_work_text(f);
            let mut out = render_diagnostics(&report.diagnostics, &lookup, stdout_color());
            for note in &report.skipped {
                out.push_str(&format!("note: {note}\n"));
            }
            out.push_str(&format!(
                "{} prompt{} checked: {errors} error{}, {warnings} warning{}\n",
                report.prompts,
                if report.prompts == 1 { "" } else { "s" },
                if errors == 1 { "" } else { "s" },
                if warnings == 1 { "" } else { "s" },
            ));
            print(&out)?;
        }
        ValidateFormat::Json => {
            let value = serde_json::json!({
                "diagnostics": report.diagnostics,
                "errors": errors,
                "warnings": warnings,
                "prompts": report.prompts,
            });
            print(&format!(
                "{}\n",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            ))?;
            for note in &report.skipped {
                eprint(&format!("note: {note}\n"));
            }
        }
        ValidateFormat::Github => {
            let prefix = registry
                .repo()
                .map(|r| r.prefix().to_string())
                .unwrap_or_default();
            let out: String = report
                .diagnostics
                .iter()
                .map(|d| github_line(d, &prefix))
                .collect();
            print(&out)?;
            for note in &report.skipped {
                eprint(&format!("note: {note}\n"));
            }
        }
    }
    let failed = errors > 0 || (args.deny_warnings && warnings > 0);
    Ok(u8::from(failed))
}

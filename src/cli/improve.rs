//! `promptreg improve REF`: ask a judge model for a better version of a prompt, write it to the
//! working copy and print the diff. It never commits.

use clap::Args;

use super::model::{cached, config, ModelArgs};
use super::output::print;
use super::{Context, DataFormat, Failure};
use crate::check::diff::unified;
use crate::error::Error;
use crate::format::prompt::Prompt;
use crate::model::analyze::{analyze, judge, Analysis};
use crate::registry::reference::Reference;

/// Ask a model for an improved version of a prompt and write it to the working copy.
///
/// The judge prompt (`promptreg/judges/improve.prompt.yaml` in the registry overrides the one
/// shipped inside promptreg) gets the file at REF and answers with the whole improved file and
/// the changes it made. The new file must be a valid prompt; it is written to the working copy
/// and the diff printed. Nothing is committed: review it, then `promptreg commit`. Refuses to
/// overwrite uncommitted edits without `--force`.
#[derive(Debug, Args)]
pub struct ImproveArgs {
    /// The prompt: `ID` (its default), `ID@N`, `ID@latest`, `ID@LABEL`, `ID@work`.
    pub reference: String,
    /// Where the judge model is.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Overwrite uncommitted edits of the file.
    #[arg(long)]
    pub force: bool,
    /// Neither read nor write the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Output format: the diff and the changes, or JSON (`{file, prompt, changes, diff}`).
    #[arg(long, value_enum, default_value_t)]
    pub format: DataFormat,
}

/// Runs `improve`.
pub fn run(ctx: &Context, args: ImproveArgs) -> Result<u8, Failure> {
    let registry = ctx.registry()?;
    let config = config(&args.model.settings(), &registry)?;
    let reference = Reference::parse(&args.reference)?;
    let loaded = registry.load(&reference)?;
    let work = registry.read_work_text(&loaded.file);
    if !args.force && work.as_ref().is_some_and(|w| *w != loaded.text) {
        return Err(Error::Refused(format!(
            "{} differs from `{}` in the working copy; commit or drop those edits, improve `{}@work`, or pass --force to overwrite them",
            loaded.file, args.reference, loaded.id
        ))
        .into());
    }
    let judge = judge(&registry, Analysis::Improve)?;
    let client = cached(config, &registry, args.no_cache);
    let result = analyze(
        Analysis::Improve,
        &loaded.id,
        &loaded.text,
        &judge,
        &[],
        &client,
        None,
    )?;
    let mut improved = result["prompt"].as_str().unwrap_or("").to_string();
    if !improved.ends_with('\n') {
        improved.push('\n');
    }
    let parsed = Prompt::parse(&loaded.file, improved.as_bytes());
    if parsed.has_errors() {
        return Err(Error::Model(format!(
            "the improved `{}` is not a valid prompt file: {}",
            loaded.id,
            parsed
                .diagnostics
                .iter()
                .find(|d| d.is_error())
                .map(|d| d.message.clone())
                .unwrap_or_default()
        ))
        .into());
    }
    registry
        .work_tree()
        .write(&loaded.file, improved.as_bytes())?;
    let diff = unified(
        &loaded.text,
        &improved,
        &format!("a/{}", loaded.file),
        &format!("b/{}", loaded.file),
    );
    let text = match args.format {
        DataFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&serde_json::json!({
                "file": loaded.file,
                "prompt": improved,
                "changes": result["changes"],
                "diff": diff,
            }))
            .unwrap_or_default()
        ),
        DataFormat::Text => {
            let mut out = diff;
            out.push_str("changes:\n");
            for change in result["changes"].as_array().into_iter().flatten() {
                out.push_str(&format!("  - {}\n", change.as_str().unwrap_or("")));
            }
            out.push_str(&format!(
                "wrote {}; review it, then `promptreg commit {} -m ...`\n",
                loaded.file, loaded.id
            ));
            out
        }
    };
    print(&text)?;
    Ok(0)
}

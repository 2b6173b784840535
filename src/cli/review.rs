//! `promptreg review`: the pull-request report, as Markdown for a comment or as JSON.

use clap::{Args, ValueEnum};

use super::output::print;
use super::{Context, Failure};

/// Compare the registry at the merge base of `--base` and `--head` with head, as a pull request
/// does, and print a report for the pull-request comment. Exits 1 when head has validation
/// errors.
#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// The branch the pull request merges into, e.g. `origin/main`.
    #[arg(long)]
    pub base: String,
    /// The pull request's head (default: HEAD).
    #[arg(long)]
    pub head: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ReviewFormat,
}

/// Formats of `review`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ReviewFormat {
    /// Markdown for a pull-request comment.
    #[default]
    Markdown,
    /// The same content as data.
    Json,
}

/// Runs `review`.
pub fn run(ctx: &Context, args: ReviewArgs) -> Result<u8, Failure> {
    let registry = ctx.registry()?;
    let review = crate::check::review::review(&registry, &args.base, args.head.as_deref())?;
    match args.format {
        ReviewFormat::Markdown => print(&crate::check::markdown::review(&review))?,
        ReviewFormat::Json => print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&review).unwrap_or_default()
        ))?,
    }
    Ok(u8::from(review.has_errors()))
}

//! `promptreg review`: the pull-request report, as Markdown for a comment or as JSON.

use clap::{Args, ValueEnum};

use super::model::{cached, config, ModelArgs};
use super::output::print;
use super::{Context, Failure};
use crate::check::review_eval::{evaluate_review, markdown};

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
    /// Also run each changed prompt's test cases and evaluators, and its score, before and
    /// after (needs a model endpoint; replies are cached by content).
    #[arg(long)]
    pub eval: bool,
    /// Where the model is (with `--eval`).
    #[command(flatten)]
    pub model: ModelArgs,
    /// The judge model of the score and of evaluators (with `--eval`).
    #[arg(long, value_name = "M")]
    pub judge_model: Option<String>,
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
    let evaluation = if args.eval {
        let mut settings = args.model.settings();
        settings.judge_model = args.judge_model.clone();
        let client = cached(config(&settings, &registry)?, &registry, false);
        Some(evaluate_review(
            &registry,
            &review,
            &client,
            args.judge_model.as_deref(),
        )?)
    } else {
        None
    };
    match args.format {
        ReviewFormat::Markdown => {
            let mut text = crate::check::markdown::review(&review);
            if let Some(evaluation) = &evaluation {
                text.push_str(&markdown(evaluation));
            }
            print(&text)?
        }
        ReviewFormat::Json => {
            let mut value = serde_json::to_value(&review).unwrap_or_default();
            if let (Some(evaluation), serde_json::Value::Object(map)) = (&evaluation, &mut value) {
                map.insert(
                    "evaluation".into(),
                    serde_json::to_value(evaluation).unwrap_or_default(),
                );
            }
            print(&format!(
                "{}\n",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            ))?
        }
    }
    Ok(u8::from(review.has_errors()))
}

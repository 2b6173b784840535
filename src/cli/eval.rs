//! `promptreg eval`: every test case of each prompt through the model, then the file's own
//! `evaluators`, as `gh models eval` runs them; a table per prompt, exit 1 when one fails.

use clap::{Args, ValueEnum};

use super::model::{cached, config, ModelArgs};
use super::output::{eprint, print};
use super::{Context, Failure};
use crate::model::eval::{evaluate_in, PromptEval};
use crate::registry::reference::{Reference, Selector};
use crate::registry::Registry;

/// Run every test case on the model and apply the file's evaluators.
///
/// Each test case of `testData` is rendered and sent to the model; each reply is checked by the
/// file's `evaluators` (`string`, `llm` and the built-in `uses: github/...`) with the semantics
/// of `gh models eval`. A bare ID is the working copy, as `validate` reads it (`ID@N`, `ID@LABEL`
/// evaluate a version); without IDs, every prompt that has evaluators. Replies and judgements
/// are cached by content under the git dir, so an unchanged prompt costs no model calls.
/// Exit 1 when an evaluator fails.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The prompts (`ID` is the working copy; `ID@N`, `ID@latest`, `ID@LABEL` a version).
    pub prompts: Vec<String>,
    /// Where the model is.
    #[command(flatten)]
    pub model: ModelArgs,
    /// The judge model of `llm` and built-in evaluators, instead of their `modelId`.
    #[arg(long, value_name = "M")]
    pub judge_model: Option<String>,
    /// How many test cases run at once [default: 4].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Neither read nor write the cache of replies.
    #[arg(long)]
    pub no_cache: bool,
    /// Output format: tables, gh-models' JSON, or GitHub workflow annotations.
    #[arg(long, value_enum, default_value_t)]
    pub format: EvalFormat,
}

/// Output formats of `eval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum EvalFormat {
    /// A table per prompt.
    #[default]
    Text,
    /// `{"prompts": [...]}`, each in gh-models' `--json` shape with the prompt's `id`.
    Json,
    /// `::error` annotations for each failed evaluator, and a `::notice` summary.
    Github,
}

/// Runs `eval`.
pub fn run(ctx: &Context, args: EvalArgs) -> Result<u8, Failure> {
    let mut settings = args.model.settings();
    settings.judge_model = args.judge_model.clone();
    settings.jobs = args.jobs;
    let registry = ctx.registry()?;
    let config = config(&settings, &registry)?;
    let targets = targets(&registry, &args.prompts)?;
    let client = cached(config, &registry, args.no_cache);
    let mut results = Vec::new();
    // Evaluator overrides come from where each prompt does: the working copy, or its commit.
    for (file, source, compiled) in targets {
        results.push((file, evaluate_in(source.as_ref(), &compiled, &client)?));
    }
    let failed = results.iter().any(|(_, r)| !r.passed());
    let text = match args.format {
        EvalFormat::Json => {
            let prompts: Vec<_> = results.iter().map(|(_, r)| r).collect();
            format!(
                "{}\n",
                serde_json::to_string_pretty(&serde_json::json!({ "prompts": prompts }))
                    .unwrap_or_default()
            )
        }
        EvalFormat::Text => results.iter().map(|(_, r)| table(r)).collect(),
        EvalFormat::Github => github(&results),
    };
    print(&text)?;
    eprint(&format!(
        "note: {} model call{} ({} answered from the cache)\n",
        client.calls(),
        if client.calls() == 1 { "" } else { "s" },
        client.hits()
    ));
    Ok(if failed { 1 } else { 0 })
}

/// The prompts to evaluate: each reference given, or every prompt with evaluators.
/// A prompt to evaluate: its file, the source it came from, and the prompt compiled.
type Target = (
    String,
    std::sync::Arc<dyn crate::snapshot::work::Source>,
    crate::render::CompiledPrompt,
);

fn targets(registry: &Registry, prompts: &[String]) -> Result<Vec<Target>, Failure> {
    let mut out = Vec::new();
    if prompts.is_empty() {
        for id in registry.discover_work()?.prompts.into_keys() {
            let loaded = registry.load_work(&id)?;
            let has = loaded
                .prompt
                .evaluators
                .as_ref()
                .is_some_and(|e| e.as_array().is_some_and(|a| !a.is_empty()));
            if has {
                let (file, source) = (loaded.file.clone(), loaded.source.clone());
                out.push((file, source, loaded.compile()?));
            }
        }
        if out.is_empty() {
            return Err(Failure::Message(
                "no prompt has `evaluators`: name the prompts to run their test cases".into(),
            ));
        }
        return Ok(out);
    }
    for text in prompts {
        let reference = Reference::parse(text)?;
        let loaded = match reference.selector() {
            Selector::Default if !text.contains('@') => registry.load_work(reference.id())?,
            _ => {
                let resolved = registry.resolve(&reference)?;
                registry.load_resolved(reference.id(), &resolved)?
            }
        };
        let (file, source) = (loaded.file.clone(), loaded.source.clone());
        out.push((file, source, loaded.compile()?));
    }
    Ok(out)
}

/// One prompt's results as a table.
fn table(result: &PromptEval) -> String {
    let s = &result.summary;
    let mut out = format!(
        "{}: {}/{} test case{} passed ({:.2}%) on {}\n",
        result.id,
        s.passed_tests,
        s.total_tests,
        if s.total_tests == 1 { "" } else { "s" },
        s.pass_rate,
        if result.model.is_empty() {
            "(no model)"
        } else {
            &result.model
        }
    );
    let width = result
        .test_results
        .iter()
        .flat_map(|t| {
            t.evaluation_results
                .iter()
                .map(|e| e.evaluator_name.chars().count())
        })
        .max()
        .unwrap_or(0);
    for (n, test) in result.test_results.iter().enumerate() {
        if test.passed() {
            out.push_str(&format!("  test {n}  ✓ passed\n"));
        } else {
            out.push_str(&format!("  test {n}  ✗ failed\n"));
            out.push_str(&format!(
                "    response: {}\n",
                preview(&test.model_response)
            ));
        }
        for e in &test.evaluation_results {
            out.push_str(&format!(
                "    {} {:<width$}  {:.2}  {}\n",
                if e.passed { "✓" } else { "✗" },
                e.evaluator_name,
                e.score,
                e.details
            ));
        }
    }
    out.push('\n');
    out
}

/// The first 100 characters of a reply, on one line.
fn preview(reply: &str) -> String {
    let line = reply.replace('\n', " ");
    let mut short: String = line.chars().take(100).collect();
    if short.len() < line.len() {
        short.push_str("...");
    }
    short
}

/// Annotations: one `::error` per failed evaluator, one `::notice` per prompt.
fn github(results: &[(String, PromptEval)]) -> String {
    let mut out = String::new();
    for (file, result) in results {
        for (n, test) in result.test_results.iter().enumerate() {
            for e in test.evaluation_results.iter().filter(|e| !e.passed) {
                out.push_str(&format!(
                    "::error file={},title={}::test case {n}: evaluator {} failed (score {:.2}): {}\n",
                    escape_property(file),
                    escape_property(&format!("eval {}", result.id)),
                    escape_data(&e.evaluator_name),
                    e.score,
                    escape_data(&e.details)
                ));
            }
        }
        let s = &result.summary;
        out.push_str(&format!(
            "::notice file={},title={}::{}/{} test cases passed ({:.2}%)\n",
            escape_property(file),
            escape_property(&format!("eval {}", result.id)),
            s.passed_tests,
            s.total_tests,
            s.pass_rate
        ));
    }
    out
}

/// Workflow-command escaping of a message.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Workflow-command escaping of a property value.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

//! `promptreg analyze score|risk|balance|heatmap REF`: Zatomic's analyses of a version, asked of
//! a judge model through promptreg's own judge prompts.

use clap::{Args, ValueEnum};
use serde_json::Value;

use super::model::{cached, config, ModelArgs};
use super::output::{eprint, print, stdout_color};
use super::{Context, DataFormat, Failure};
use crate::error::Error;
use crate::model::analyze::{analyze, criteria, heatmap_html, judge, Analysis};
use crate::registry::reference::Reference;

/// Analyse a prompt version with a judge model: score, risk, balance or heatmap.
///
/// The judge prompts are prompt files shipped inside promptreg; a registry overrides one with
/// `promptreg/judges/NAME.prompt.yaml`, and defines its own score criteria in
/// `promptreg/criteria.yaml`. `--model` chooses the judge (default: `PROMPTREG_MODEL`). Results
/// are cached by content under the git dir.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Which analysis.
    #[arg(value_enum)]
    pub analysis: Which,
    /// The prompt: `ID` (its default), `ID@N`, `ID@latest`, `ID@LABEL`, `ID@work`.
    pub reference: String,
    /// Where the judge model is.
    #[command(flatten)]
    pub model: ModelArgs,
    /// `heatmap`: also write the heatmap as an HTML page to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<std::path::PathBuf>,
    /// Neither read nor write the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: DataFormat,
}

/// The analyses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Which {
    /// Overall 0-100 with a rating band, per-criterion score, weight and feedback.
    Score,
    /// Bias, ethical and safety levels, the parts involved and revisions.
    Risk,
    /// The share of instructions, entities, concepts and details against ideal ranges.
    Balance,
    /// Phrases with the attention (1-5) a model gives them.
    Heatmap,
}

impl Which {
    fn analysis(self) -> Analysis {
        match self {
            Which::Score => Analysis::Score,
            Which::Risk => Analysis::Risk,
            Which::Balance => Analysis::Balance,
            Which::Heatmap => Analysis::Heatmap,
        }
    }
}

/// Runs `analyze`.
pub fn run(ctx: &Context, args: AnalyzeArgs) -> Result<u8, Failure> {
    if args.html.is_some() && args.analysis != Which::Heatmap {
        return Err(Failure::Message(
            "--html is for `analyze heatmap` only".into(),
        ));
    }
    let registry = ctx.registry()?;
    let config = config(&args.model.settings(), &registry)?;
    let reference = Reference::parse(&args.reference)?;
    let loaded = registry.load(&reference)?;
    let analysis = args.analysis.analysis();
    let judge = judge(&registry, analysis)?;
    let criteria = criteria(&registry)?;
    let client = cached(config, &registry, args.no_cache);
    let result = analyze(
        analysis,
        &loaded.id,
        &loaded.text,
        &judge,
        &criteria,
        &client,
        None,
    )?;
    if let Some(path) = &args.html {
        std::fs::write(path, heatmap_html(&loaded.id, &result)).map_err(|e| Error::Io {
            path: path.clone(),
            source: e,
        })?;
        eprint(&format!("note: wrote the heatmap to {}\n", path.display()));
    }
    let text = match args.format {
        DataFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&result).unwrap_or_default()
        ),
        DataFormat::Text => text(analysis, &result, stdout_color()),
    };
    print(&text)?;
    Ok(0)
}

/// The result for a person.
fn text(analysis: Analysis, result: &Value, color: bool) -> String {
    let mut out = String::new();
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    match analysis {
        Analysis::Score => {
            let n = |v: &Value| v.as_f64().unwrap_or(0.0);
            out.push_str(&format!(
                "score: {:.0}/100 ({})\n",
                n(&result["score"]),
                s(&result["rating"])
            ));
            for c in result["criteria"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "  {:<14} {:>3.0}  weight {:<5} {}\n",
                    s(&c["name"]),
                    n(&c["score"]),
                    n(&c["weight"]),
                    s(&c["feedback"])
                ));
            }
            for (title, key) in [("strengths", "strengths"), ("improvements", "improvements")] {
                out.push_str(&format!("{title}:\n"));
                for item in result[key].as_array().into_iter().flatten() {
                    out.push_str(&format!("  - {}\n", s(item)));
                }
            }
        }
        Analysis::Risk => {
            out.push_str(&format!("risk: {}\n", s(&result["level"])));
            for kind in ["bias", "ethical", "safety"] {
                out.push_str(&format!("  {kind}: {}\n", s(&result[kind]["level"])));
                for issue in result[kind]["issues"].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "    - \"{}\": {}\n      revision: {}\n",
                        s(&issue["text"]),
                        s(&issue["issue"]),
                        s(&issue["revision"])
                    ));
                }
            }
        }
        Analysis::Balance => {
            out.push_str(&format!("balance: {} phrases\n", result["total"]));
            for c in result["categories"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "  {:<13} {:>3}  {:>5.1}%  ideal {:.0}-{:.0}%  {}\n",
                    s(&c["name"]),
                    c["count"].as_u64().unwrap_or(0),
                    c["percent"].as_f64().unwrap_or(0.0),
                    c["ideal"]["min"].as_f64().unwrap_or(0.0),
                    c["ideal"]["max"].as_f64().unwrap_or(0.0),
                    s(&c["status"])
                ));
            }
        }
        Analysis::Heatmap => {
            for p in result["phrases"].as_array().into_iter().flatten() {
                let attention = p["attention"].as_u64().unwrap_or(1);
                let phrase = s(&p["text"]);
                let shown = if color {
                    // Pale to red: 1 dim, 2 blue, 3 yellow, 4 bold yellow, 5 bold red.
                    let code =
                        ["2", "34", "33", "1;33", "1;31"][(attention.clamp(1, 5) - 1) as usize];
                    format!("\x1b[{code}m{phrase}\x1b[0m")
                } else {
                    phrase
                };
                out.push_str(&format!("{attention} {shown}  ({})\n", s(&p["reason"])));
            }
        }
        Analysis::Improve => {}
    }
    out
}

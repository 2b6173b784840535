//! Zatomic's analyses of a prompt version, each asked of a judge model: `score` (0-100 with a
//! rating band and per-criterion feedback), `risk` (bias, ethical and safety levels with the
//! parts involved and revisions), `balance` (the share of instructions, entities, concepts and
//! details against ideal ranges), `heatmap` (phrases with attention 1-5), and `improve` (a new
//! version of the file).
//!
//! Each judge is a prompt file in promptreg's own format, shipped inside the binary
//! (`src/model/judges/*.prompt.yaml`) and overridden by a registry that has
//! `promptreg/judges/NAME.prompt.yaml`. The judge is asked for JSON (`responseFormat:
//! json_object`); its reply is checked field by field, and one that is not the promised JSON is
//! an [`Error::Model`] naming the model and the first bad field. Numbers promptreg can work out
//! itself (the overall score and its band, the overall risk level, the balance counts and
//! percentages) are computed here, not taken from the judge.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::model::cache::CachedClient;
use crate::model::eval::model_for;
use crate::registry::{LoadedPrompt, Registry};
use crate::render::chat::request_body;
use crate::render::request::RenderRequest;
use crate::render::CompiledPrompt;
use crate::snapshot::overlay::Overlay;
use crate::snapshot::work::Source;

/// One analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Analysis {
    /// Overall 0-100, a rating band, per-criterion scores, strengths, improvements.
    Score,
    /// Bias, ethical and safety levels with issues and revisions.
    Risk,
    /// Phrase counts and shares per category against ideal ranges.
    Balance,
    /// Phrases with attention 1-5 and a reason.
    Heatmap,
    /// An improved version of the file.
    Improve,
}

impl Analysis {
    /// Its name (`score`, ...), also the judge's file name.
    pub fn name(self) -> &'static str {
        match self {
            Analysis::Score => "score",
            Analysis::Risk => "risk",
            Analysis::Balance => "balance",
            Analysis::Heatmap => "heatmap",
            Analysis::Improve => "improve",
        }
    }

    /// The analysis called `name`.
    pub fn from_name(name: &str) -> Option<Analysis> {
        [
            Analysis::Score,
            Analysis::Risk,
            Analysis::Balance,
            Analysis::Heatmap,
            Analysis::Improve,
        ]
        .into_iter()
        .find(|a| a.name() == name)
    }

    /// Where a registry overrides the judge.
    pub fn judge_file(self) -> String {
        format!("promptreg/judges/{}.prompt.yaml", self.name())
    }

    fn builtin(self) -> &'static str {
        match self {
            Analysis::Score => include_str!("judges/score.prompt.yaml"),
            Analysis::Risk => include_str!("judges/risk.prompt.yaml"),
            Analysis::Balance => include_str!("judges/balance.prompt.yaml"),
            Analysis::Heatmap => include_str!("judges/heatmap.prompt.yaml"),
            Analysis::Improve => include_str!("judges/improve.prompt.yaml"),
        }
    }
}

/// Where a registry defines its own score criteria.
pub const CRITERIA_FILE: &str = "promptreg/criteria.yaml";

/// The rating band of an overall score: Poor below 50, Fair below 70, Good below 85, else
/// Excellent.
pub fn rating(score: f64) -> &'static str {
    match score {
        s if s < 50.0 => "Poor",
        s if s < 70.0 => "Fair",
        s if s < 85.0 => "Good",
        _ => "Excellent",
    }
}

/// The ideal share (percent, min and max) of each balance category.
pub const IDEAL_BALANCE: &[(&str, f64, f64)] = &[
    ("instructions", 30.0, 50.0),
    ("entities", 10.0, 25.0),
    ("concepts", 15.0, 30.0),
    ("details", 15.0, 35.0),
];

/// The judge of `analysis`: the registry's own when its working copy has one, else the one
/// shipped inside promptreg.
pub fn judge(registry: &Registry, analysis: Analysis) -> Result<CompiledPrompt> {
    judge_in(registry.work(), analysis)
}

/// The judge of `analysis` as `source` (a working copy or a commit) has it: its own
/// `promptreg/judges/NAME.prompt.yaml`, else the one shipped inside promptreg.
pub fn judge_in(source: Arc<dyn Source>, analysis: Analysis) -> Result<CompiledPrompt> {
    let file = analysis.judge_file();
    let id = file.trim_end_matches(".prompt.yaml");
    let loaded = if source.read(&file)?.is_some() {
        LoadedPrompt::read(source, id, &file)?
    } else {
        let overlay = Overlay::new(source, &file, Some(analysis.builtin().as_bytes().to_vec()));
        LoadedPrompt::read(Arc::new(overlay), id, &file)?
    };
    loaded.compile()
}

/// The score criteria: the registry's `promptreg/criteria.yaml` (`criteria: [{name, weight,
/// description}]`), else promptreg's six.
pub fn criteria(registry: &Registry) -> Result<Vec<Value>> {
    criteria_in(registry.work().as_ref())
}

/// The score criteria as `source` has them.
pub fn criteria_in(source: &dyn Source) -> Result<Vec<Value>> {
    let Some(bytes) = source.read(CRITERIA_FILE)? else {
        return Ok(default_criteria());
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::Usage(format!("{CRITERIA_FILE} is not UTF-8 text")))?;
    let value: Value =
        serde_yaml::from_str(&text).map_err(|e| Error::Usage(format!("{CRITERIA_FILE}: {e}")))?;
    let list = value
        .get("criteria")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| {
            Error::Usage(format!(
                "{CRITERIA_FILE}: `criteria` must be a non-empty list"
            ))
        })?;
    for (i, c) in list.iter().enumerate() {
        let ok = c.get("name").is_some_and(Value::is_string)
            && c.get("weight")
                .and_then(Value::as_f64)
                .is_some_and(|w| w > 0.0)
            && c.get("description").is_some_and(Value::is_string);
        if !ok {
            return Err(Error::Usage(format!(
                "{CRITERIA_FILE}: criteria[{i}] needs `name` (text), `weight` (a number above 0) and `description` (text)"
            )));
        }
    }
    Ok(list.clone())
}

/// The model `judge` runs on for `client`: `model` (the caller's), else the client's `--model`,
/// else the judge model (`--judge-model`, `PROMPTREG_JUDGE_MODEL`, `model.judgeModel`), else
/// the judge file's own `model`, else the fallback (`PROMPTREG_MODEL`, `model.model`).
pub fn judge_model(
    analysis: Analysis,
    judge: &CompiledPrompt,
    client: &CachedClient,
    model: Option<&str>,
) -> Result<String> {
    let config = client.client().config();
    model_for(
        judge,
        model
            .or(config.model.as_deref())
            .or(config.judge_model.as_deref()),
        config.fallback_model.as_deref(),
    )
    .ok_or_else(|| {
        Error::Usage(format!(
            "no judge model for `analyze {}`: pass --model, set PROMPTREG_JUDGE_MODEL or PROMPTREG_MODEL, or write `model: {{judgeModel: NAME}}` in promptreg.yaml",
            analysis.name()
        ))
    })
}

fn default_criteria() -> Vec<Value> {
    [
        ("clarity", 0.25, "the instructions say unambiguously what to do"),
        ("specificity", 0.2, "the task, audience and expected result are precise"),
        ("context", 0.2, "the model gets the background and inputs it needs"),
        ("structure", 0.15, "the prompt is organised in a logical order with clear sections"),
        ("output format", 0.1, "the form of the answer is specified"),
        ("constraints", 0.1, "limits, edge cases and what not to do are stated"),
    ]
    .into_iter()
    .map(|(name, weight, description)| json!({ "name": name, "weight": weight, "description": description }))
    .collect()
}

/// Runs `analysis` of the prompt `id` whose file text is `text`, with `judge` on `client`
/// (`model` overrides the judge's and the fallback's model). `criteria` is for `score`.
pub fn analyze(
    analysis: Analysis,
    id: &str,
    text: &str,
    judge: &CompiledPrompt,
    criteria: &[Value],
    client: &CachedClient,
    model: Option<&str>,
) -> Result<Value> {
    let mut request = RenderRequest::new()
        .value("id", id)?
        .value("prompt", text)?;
    if judge
        .prompt()
        .variables
        .as_ref()
        .is_some_and(|v| v.contains_key("criteria"))
    {
        request = request.value("criteria", criteria)?;
    }
    let rendered = request.render(judge)?.rendered;
    let model = judge_model(analysis, judge, client, model)?;
    let body = request_body(&rendered, Some(&model))?;
    let reply = client.complete(&body)?;
    let bad = |what: String| {
        Error::Model(format!(
            "judge model `{model}` did not answer `analyze {}` as asked: {what}",
            analysis.name()
        ))
    };
    let value = parse_json(&reply.content).map_err(bad)?;
    shape(analysis, &value, criteria).map_err(bad)
}

/// The reply as JSON; a reply wrapped in a Markdown code fence is unwrapped.
fn parse_json(reply: &str) -> std::result::Result<Value, String> {
    let trimmed = reply.trim();
    let inner = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.strip_suffix("```"))
        .unwrap_or(trimmed);
    match serde_json::from_str::<Value>(inner.trim()) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err("the reply is JSON but not an object".into()),
        Err(e) => {
            let start: String = trimmed.chars().take(80).collect();
            Err(format!("the reply is not JSON ({e}): {start}"))
        }
    }
}

/// Checks the judge's reply and builds the analysis's result.
fn shape(
    analysis: Analysis,
    value: &Value,
    criteria: &[Value],
) -> std::result::Result<Value, String> {
    match analysis {
        Analysis::Score => shape_score(value, criteria),
        Analysis::Risk => shape_risk(value),
        Analysis::Balance => shape_balance(value),
        Analysis::Heatmap => shape_heatmap(value),
        Analysis::Improve => {
            let prompt = string(value, "prompt")?;
            let changes = strings(value, "changes")?;
            Ok(json!({ "prompt": prompt, "changes": changes }))
        }
    }
}

fn field<'a>(value: &'a Value, path: &str) -> std::result::Result<&'a Value, String> {
    let key = path.rsplit('.').next().unwrap_or(path);
    value.get(key).ok_or_else(|| format!("`{path}` is missing"))
}

fn string(value: &Value, path: &str) -> std::result::Result<String, String> {
    field(value, path)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("`{path}` is not text"))
}

fn strings(value: &Value, path: &str) -> std::result::Result<Vec<String>, String> {
    let list = field(value, path)?
        .as_array()
        .ok_or_else(|| format!("`{path}` is not a list"))?;
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("`{path}[{i}]` is not text"))
        })
        .collect()
}

fn number(value: &Value, path: &str, min: f64, max: f64) -> std::result::Result<f64, String> {
    let n = field(value, path)?
        .as_f64()
        .ok_or_else(|| format!("`{path}` is not a number"))?;
    if n < min || n > max {
        return Err(format!("`{path}` is {n}, outside {min} to {max}"));
    }
    Ok(n)
}

fn list<'a>(value: &'a Value, path: &str) -> std::result::Result<&'a Vec<Value>, String> {
    field(value, path)?
        .as_array()
        .ok_or_else(|| format!("`{path}` is not a list"))
}

fn shape_score(value: &Value, criteria: &[Value]) -> std::result::Result<Value, String> {
    let given = list(value, "criteria")?;
    let mut out = Vec::new();
    let (mut total, mut weights) = (0.0, 0.0);
    for (i, c) in criteria.iter().enumerate() {
        let name = c["name"].as_str().unwrap_or_default();
        let weight = c["weight"].as_f64().unwrap_or(0.0);
        let found = given
            .iter()
            .find(|g| {
                g.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .or_else(|| given.get(i))
            .ok_or_else(|| format!("`criteria` has no score for `{name}`"))?;
        let path = format!("criteria[{i}]");
        let score = number(found, &format!("{path}.score"), 0.0, 100.0)?;
        let feedback = string(found, &format!("{path}.feedback"))?;
        total += score * weight;
        weights += weight;
        out.push(json!({ "name": name, "score": score, "weight": weight, "feedback": feedback }));
    }
    let overall = if weights > 0.0 {
        (total / weights).round()
    } else {
        0.0
    };
    Ok(json!({
        "score": overall,
        "rating": rating(overall),
        "criteria": out,
        "strengths": strings(value, "strengths")?,
        "improvements": strings(value, "improvements")?,
    }))
}

const LEVELS: &[&str] = &["none", "low", "medium", "high"];

fn shape_risk(value: &Value) -> std::result::Result<Value, String> {
    let mut out = Map::new();
    let mut overall = 0;
    for kind in ["bias", "ethical", "safety"] {
        let part = field(value, kind)?;
        let level = string(part, &format!("{kind}.level"))?.to_lowercase();
        let rank = LEVELS
            .iter()
            .position(|l| *l == level)
            .ok_or_else(|| format!("`{kind}.level` is `{level}`, not none, low, medium or high"))?;
        overall = overall.max(rank);
        let issues = list(part, &format!("{kind}.issues"))?
            .iter()
            .enumerate()
            .map(|(i, issue)| {
                let path = format!("{kind}.issues[{i}]");
                Ok(json!({
                    "text": string(issue, &format!("{path}.text"))?,
                    "issue": string(issue, &format!("{path}.issue"))?,
                    "revision": string(issue, &format!("{path}.revision"))?,
                }))
            })
            .collect::<std::result::Result<Vec<_>, String>>()?;
        out.insert(kind.into(), json!({ "level": level, "issues": issues }));
    }
    let mut result = Map::new();
    result.insert("level".into(), LEVELS[overall].into());
    result.extend(out);
    Ok(Value::Object(result))
}

fn shape_balance(value: &Value) -> std::result::Result<Value, String> {
    let mut phrases = Vec::new();
    for (name, _, _) in IDEAL_BALANCE {
        phrases.push(strings(value, name)?);
    }
    let total: usize = phrases.iter().map(Vec::len).sum();
    let categories: Vec<Value> = IDEAL_BALANCE
        .iter()
        .zip(phrases)
        .map(|((name, min, max), phrases)| {
            let percent = if total == 0 {
                0.0
            } else {
                (phrases.len() as f64 * 1000.0 / total as f64).round() / 10.0
            };
            let status = if percent < *min {
                "low"
            } else if percent > *max {
                "high"
            } else {
                "ok"
            };
            json!({
                "name": name, "count": phrases.len(), "percent": percent,
                "ideal": { "min": min, "max": max }, "status": status, "phrases": phrases,
            })
        })
        .collect();
    Ok(json!({ "total": total, "categories": categories }))
}

fn shape_heatmap(value: &Value) -> std::result::Result<Value, String> {
    let phrases = list(value, "phrases")?
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let path = format!("phrases[{i}]");
            let attention = number(p, &format!("{path}.attention"), 1.0, 5.0)?;
            if attention.fract() != 0.0 {
                return Err(format!(
                    "`{path}.attention` is {attention}, not a whole number"
                ));
            }
            Ok(json!({
                "text": string(p, &format!("{path}.text"))?,
                "attention": attention as u8,
                "reason": string(p, &format!("{path}.reason"))?,
            }))
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    Ok(json!({ "phrases": phrases }))
}

/// The heatmap as an HTML page: each phrase on a background from pale (1) to strong (5), its
/// reason as a tooltip.
pub fn heatmap_html(id: &str, heatmap: &Value) -> String {
    let colours = ["#f4f8fb", "#d6e9f8", "#fde7a9", "#fbb36a", "#f0625a"];
    let mut body = String::new();
    for p in heatmap["phrases"].as_array().into_iter().flatten() {
        let attention = p["attention"].as_u64().unwrap_or(1).clamp(1, 5) as usize;
        body.push_str(&format!(
            "<span class=\"a{attention}\" style=\"background:{}\" title=\"{}: {}\">{}</span>\n",
            colours[attention - 1],
            attention,
            escape_html(p["reason"].as_str().unwrap_or("")),
            escape_html(p["text"].as_str().unwrap_or(""))
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Attention heatmap: {id}</title>\n\
         <style>body{{font-family:system-ui,sans-serif;max-width:50em;margin:2em auto;line-height:2}}span{{padding:.1em .2em;border-radius:.2em}}</style>\n\
         </head>\n<body>\n<h1>Attention heatmap: {id}</h1>\n<p>Attention from 1 (pale) to 5 (red); hover a phrase for the reason.</p>\n<p>\n{body}</p>\n</body>\n</html>\n",
        id = escape_html(id)
    )
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_weighted_and_banded() {
        let reply = json!({
            "criteria": default_criteria().iter().map(|c| json!({ "name": c["name"], "score": 80, "feedback": "fine" })).collect::<Vec<_>>(),
            "strengths": ["short"], "improvements": ["add examples"],
        });
        let result = shape_score(&reply, &default_criteria()).expect("score");
        assert_eq!(result["score"], 80.0);
        assert_eq!(result["rating"], "Good");
        assert_eq!(result["criteria"][0]["weight"], 0.25);
        assert_eq!(
            [rating(49.0), rating(50.0), rating(84.0), rating(85.0)],
            ["Poor", "Fair", "Good", "Excellent"]
        );
        let mut bad = reply.clone();
        bad["criteria"][2]["score"] = json!("high");
        assert_eq!(
            shape_score(&bad, &default_criteria()).unwrap_err(),
            "`criteria[2].score` is not a number"
        );
    }

    #[test]
    fn risk_takes_the_highest_level() {
        let none = json!({ "level": "none", "issues": [] });
        let reply = json!({
            "bias": none, "ethical": none,
            "safety": { "level": "Medium", "issues": [{ "text": "{{ input }}", "issue": "injection", "revision": "<input>{{ input }}</input>" }] },
        });
        let result = shape_risk(&reply).expect("risk");
        assert_eq!(result["level"], "medium");
        assert_eq!(result["safety"]["issues"][0]["issue"], "injection");
        let bad =
            json!({ "bias": none, "ethical": { "level": "severe", "issues": [] }, "safety": none });
        assert_eq!(
            shape_risk(&bad).unwrap_err(),
            "`ethical.level` is `severe`, not none, low, medium or high"
        );
    }

    #[test]
    fn balance_counts_against_ideal_ranges() {
        let reply = json!({ "instructions": ["a", "b", "c", "d", "e", "f"], "entities": ["x"], "concepts": ["y", "z"], "details": ["w"] });
        let result = shape_balance(&reply).expect("balance");
        assert_eq!(result["total"], 10);
        assert_eq!(result["categories"][0]["percent"], 60.0);
        assert_eq!(result["categories"][0]["status"], "high");
        assert_eq!(result["categories"][1]["status"], "ok");
        assert_eq!(result["categories"][3]["status"], "low");
    }

    #[test]
    fn heatmap_and_json_replies() {
        let reply =
            json!({ "phrases": [{ "text": "Be <brief>", "attention": 5, "reason": "an order" }] });
        let result = shape_heatmap(&reply).expect("heatmap");
        assert!(
            heatmap_html("p", &result).contains("title=\"5: an order\">Be &lt;brief&gt;</span>")
        );
        let bad = json!({ "phrases": [{ "text": "x", "attention": 7, "reason": "r" }] });
        assert_eq!(
            shape_heatmap(&bad).unwrap_err(),
            "`phrases[0].attention` is 7, outside 1 to 5"
        );
        assert!(parse_json("```json\n{\"a\": 1}\n```").is_ok());
        assert!(parse_json("Sure! Here it is")
            .unwrap_err()
            .starts_with("the reply is not JSON"));
        assert_eq!(
            parse_json("[1]").unwrap_err(),
            "the reply is JSON but not an object"
        );
    }
}

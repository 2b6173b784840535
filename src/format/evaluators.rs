//! A GitHub Models file's `evaluators`, read as `gh models eval` reads them
//! (github/gh-models, `cmd/eval/eval.go`); running them is `promptreg::model::evaluator`'s.
//! Reading is shared: `validate` reports what `eval` would refuse, at its line.

use serde_json::{Map, Value};

/// How a `string` evaluator compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The reply is exactly the text.
    Equals,
    /// The reply contains the text, ignoring case.
    Contains,
    /// The reply starts with the text, ignoring case.
    StartsWith,
    /// The reply ends with the text, ignoring case.
    EndsWith,
}

/// One scored answer of an `llm` evaluator.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The text looked for in the judge's reply.
    pub choice: String,
    /// Its score.
    pub score: f64,
}

/// An `llm` evaluator (or a built-in one).
#[derive(Debug, Clone, PartialEq)]
pub struct LlmEvaluator {
    /// The judge model.
    pub model_id: String,
    /// The user message, templated.
    pub prompt: String,
    /// The system message, as written.
    pub system_prompt: Option<String>,
    /// The answers and their scores, in order.
    pub choices: Vec<Choice>,
}

/// What an evaluator does.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// A string comparison with a templated text.
    String(Check, String),
    /// A judge model.
    Llm(LlmEvaluator),
    /// A named evaluator (`github/similarity`, ...).
    Uses(String),
}

/// One evaluator of a prompt file.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluator {
    /// Its name, as written.
    pub name: String,
    /// What it does.
    pub method: Method,
}

/// What is wrong with an evaluator, and where (a JSON pointer into the prompt file, such as
/// `/evaluators/0/llm/prompt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluatorError {
    /// Where: a JSON pointer into the file.
    pub path: String,
    /// What, naming the evaluator and the field (`evaluators[0]: `x`: llm.prompt: missing`).
    pub message: String,
}

impl std::fmt::Display for EvaluatorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EvaluatorError {}

/// The built-in evaluators `uses: github/NAME` may name.
pub const BUILTINS: [&str; 5] = [
    "similarity",
    "coherence",
    "fluency",
    "relevance",
    "groundedness",
];

/// A problem at a pointer below the evaluator.
type Found = (String, String);

fn at(path: &str, message: impl Into<String>) -> Found {
    (path.to_string(), message.into())
}

/// Reads a file's `evaluators` (absent or null: none). The error names the evaluator and the
/// field at fault.
pub fn parse(value: Option<&Value>) -> Result<Vec<Evaluator>, EvaluatorError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(EvaluatorError {
                path: "/evaluators".into(),
                message: "`evaluators` must be a list".into(),
            })
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            parse_one(item).map_err(|(below, message)| EvaluatorError {
                path: format!("/evaluators/{i}{below}"),
                message: format!("evaluators[{i}]: {message}"),
            })
        })
        .collect()
}

fn parse_one(item: &Value) -> Result<Evaluator, Found> {
    let Value::Object(map) = item else {
        return Err(at(
            "",
            "an evaluator must be a mapping with `name` and `string`, `llm` or `uses`",
        ));
    };
    let name = text(map, "name")
        .map_err(|e| at("/name", e))?
        .unwrap_or_default();
    let method = if let Some(string) = map.get("string").filter(|v| !v.is_null()) {
        let Value::Object(string) = string else {
            return Err(at(
                "/string",
                format!("`{name}`: `string` must be a mapping"),
            ));
        };
        let checks = [
            ("equals", Check::Equals),
            ("contains", Check::Contains),
            ("startsWith", Check::StartsWith),
            ("endsWith", Check::EndsWith),
        ];
        let mut found = None;
        for (key, check) in checks {
            let pattern = text(string, key)
                .map_err(|e| at(&format!("/string/{key}"), format!("`{name}`: {e}")))?;
            if let Some(pattern) = pattern.filter(|p| !p.is_empty()) {
                found = Some(Method::String(check, pattern));
                break;
            }
        }
        found.ok_or_else(|| {
            at(
                "/string",
                format!("`{name}`: `string` needs one of `equals`, `contains`, `startsWith`, `endsWith`"),
            )
        })?
    } else if let Some(llm) = map.get("llm").filter(|v| !v.is_null()) {
        let Value::Object(llm) = llm else {
            return Err(at("/llm", format!("`{name}`: `llm` must be a mapping")));
        };
        Method::Llm(
            parse_llm(llm)
                .map_err(|(path, e)| at(&format!("/llm{path}"), format!("`{name}`: llm.{e}")))?,
        )
    } else if let Some(uses) = text(map, "uses")
        .map_err(|e| at("/uses", format!("`{name}`: {e}")))?
        .filter(|u| !u.is_empty())
    {
        Method::Uses(uses)
    } else {
        return Err(at(
            "",
            format!("`{name}` has no evaluation method: give it `string`, `llm` or `uses`"),
        ));
    };
    Ok(Evaluator { name, method })
}

/// Reads an `llm` evaluator's mapping; the error's path is below it.
pub(crate) fn parse_llm(llm: &Map<String, Value>) -> Result<LlmEvaluator, Found> {
    let model_id = text(llm, "modelId")
        .map_err(|e| at("/modelId", e))?
        .unwrap_or_default();
    let prompt = text(llm, "prompt")
        .map_err(|e| at("/prompt", e))?
        .ok_or_else(|| at("", "prompt: missing"))?;
    let system_prompt = text(llm, "systemPrompt")
        .map_err(|e| at("/systemPrompt", e))?
        .filter(|s| !s.is_empty());
    let choices = match llm.get("choices") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let choice = match c.get("choice") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    Some(Value::Bool(b)) => b.to_string(),
                    _ => {
                        return Err(at(
                            &format!("/choices/{i}"),
                            format!("choices[{i}].choice: missing or not text"),
                        ))
                    }
                };
                let score = match c.get("score") {
                    None | Some(Value::Null) => 0.0,
                    Some(v) => v.as_f64().ok_or_else(|| {
                        at(
                            &format!("/choices/{i}/score"),
                            format!("choices[{i}].score: not a number"),
                        )
                    })?,
                };
                Ok(Choice { choice, score })
            })
            .collect::<Result<_, Found>>()?,
        Some(_) => return Err(at("/choices", "choices: must be a list")),
    };
    Ok(LlmEvaluator {
        model_id,
        prompt,
        system_prompt,
        choices,
    })
}

/// A text field: absent or null is `None`; numbers and booleans are read as text (YAML's
/// `contains: 42`).
fn text(map: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(format!("`{key}` must be text")),
    }
}

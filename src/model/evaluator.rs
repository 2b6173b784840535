//! A GitHub Models file's `evaluators`, read and applied with the semantics of `gh models
//! eval` (github/gh-models, `cmd/eval/eval.go`):
//!
//! - `string`: the first of `equals` (exact), `contains`, `startsWith`, `endsWith` (these three
//!   ignore case) that is set, templated with the test case's values; score 1 or 0;
//! - `llm`: the judge `modelId` gets `systemPrompt` (not templated) and `prompt` templated with
//!   the test case's values and `completion` (the reply); the first of `choices` whose `choice`
//!   the judge's lowercased reply contains gives the score, and the evaluator passes when that
//!   score is above 0 (no choice matched: score 0, failed);
//! - `uses: github/NAME`: the built-in `llm` evaluators `similarity`, `coherence`, `fluency`,
//!   `relevance` and `groundedness` ([`builtin`], in promptreg's own words; a registry's
//!   `promptreg/evaluators/NAME.yaml` replaces one, [`builtin_in`]); any other name fails the
//!   evaluator.
//!
//! Templating is gh-models' own: each `{{key}}` of the values replaced literally, unknown
//! placeholders left as they are (not minijinja).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::format::evaluators::parse_llm;
pub use crate::format::evaluators::{
    parse, Check, Choice, Evaluator, EvaluatorError, LlmEvaluator, Method,
};
use crate::snapshot::work::Source;

/// The result of one evaluator on one reply, in gh-models' JSON shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationResult {
    /// The evaluator's name.
    pub evaluator_name: String,
    /// 0 to 1.
    pub score: f64,
    /// Whether it passed.
    pub passed: bool,
    /// What was checked.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
}

/// gh-models' templating: every `{{key}}` of `values` replaced by the value (text as it is,
/// numbers and booleans as written, `null` as Go prints it, `<nil>`; lists and mappings as
/// JSON); other placeholders are left unchanged.
pub fn template(text: &str, values: &Map<String, Value>) -> String {
    let mut out = text.to_string();
    for (key, value) in values {
        let placeholder = format!("{{{{{key}}}}}");
        if !out.contains(&placeholder) {
            continue;
        }
        let shown = match value {
            Value::String(s) => s.clone(),
            Value::Null => "<nil>".to_string(),
            other => other.to_string(),
        };
        out = out.replace(&placeholder, &shown);
    }
    out
}

/// Applies a `string` evaluator to `reply`.
pub fn run_string(
    name: &str,
    check: Check,
    pattern: &str,
    values: &Map<String, Value>,
    reply: &str,
) -> EvaluationResult {
    let expected = template(pattern, values);
    let (lower_reply, lower_expected) = (reply.to_lowercase(), expected.to_lowercase());
    let (passed, details) = match check {
        Check::Equals => (
            reply == expected,
            format!("Expected exact match: '{expected}'"),
        ),
        Check::Contains => (
            lower_reply.contains(&lower_expected),
            format!("Expected to contain: '{expected}'"),
        ),
        Check::StartsWith => (
            lower_reply.starts_with(&lower_expected),
            format!("Expected to start with: '{expected}'"),
        ),
        Check::EndsWith => (
            lower_reply.ends_with(&lower_expected),
            format!("Expected to end with: '{expected}'"),
        ),
    };
    EvaluationResult {
        evaluator_name: name.to_string(),
        score: if passed { 1.0 } else { 0.0 },
        passed,
        details,
    }
}

/// The judge request of an `llm` evaluator: its system prompt, its prompt templated with the
/// test case's values and `completion`, to its model (or `judge_model`, which wins), streamed
/// as gh-models asks for it.
pub fn judge_request(
    llm: &LlmEvaluator,
    values: &Map<String, Value>,
    reply: &str,
    judge_model: Option<&str>,
) -> Value {
    let mut data = values.clone();
    data.insert("completion".into(), Value::String(reply.to_string()));
    let mut messages = Vec::new();
    if let Some(system) = &llm.system_prompt {
        messages.push(serde_json::json!({ "role": "system", "content": system }));
    }
    messages.push(serde_json::json!({ "role": "user", "content": template(&llm.prompt, &data) }));
    let model = judge_model.unwrap_or(&llm.model_id);
    serde_json::json!({
        "messages": messages,
        "model": model,
        "stream": streams(model),
    })
}

/// Whether gh-models streams requests to `model` (all but `o1-mini` and `o1-preview`).
pub fn streams(model: &str) -> bool {
    !matches!(model, "o1-mini" | "o1-preview")
}

/// Scores a judge's reply against the evaluator's choices.
pub fn score_judge(name: &str, llm: &LlmEvaluator, judge_reply: &str) -> EvaluationResult {
    let reply = judge_reply.trim().to_lowercase();
    for choice in &llm.choices {
        if reply.contains(&choice.choice.to_lowercase()) {
            return EvaluationResult {
                evaluator_name: name.to_string(),
                score: choice.score,
                passed: choice.score > 0.0,
                details: format!("LLM evaluation matched choice: '{}'", choice.choice),
            };
        }
    }
    EvaluationResult {
        evaluator_name: name.to_string(),
        score: 0.0,
        passed: false,
        details: format!("LLM evaluation response '{reply}' did not match any defined choices"),
    }
}

/// The result of a `uses:` naming no built-in evaluator.
pub fn unknown_plugin(name: &str, uses: &str) -> EvaluationResult {
    EvaluationResult {
        evaluator_name: name.to_string(),
        score: 0.0,
        passed: false,
        details: format!("Plugin evaluator '{uses}' not found"),
    }
}

/// The built-in evaluator `uses` names (`github/similarity`, `github/coherence`,
/// `github/fluency`, `github/relevance`, `github/groundedness`): the names, inputs, judge model
/// and scale of gh-models' built-ins, in promptreg's own words (`builtin_evaluators.yaml`).
/// Each scores one to five as 0, 0.25, 0.5, 0.75, 1.
pub fn builtin(uses: &str) -> Option<LlmEvaluator> {
    let name = uses.strip_prefix("github/")?;
    let all: Value = serde_yaml::from_str(include_str!("builtin_evaluators.yaml")).ok()?;
    let llm = all.get(name)?.as_object()?;
    let mut llm = parse_llm(llm).ok()?;
    llm.choices = stars();
    Some(llm)
}

/// The five answers of a built-in evaluator and their scores: `1` is 0, `5` is 1.
fn stars() -> Vec<Choice> {
    (1..=5)
        .map(|stars| Choice {
            choice: stars.to_string(),
            score: f64::from(stars - 1) * 0.25,
        })
        .collect()
}

/// The file a registry overrides built-in evaluator `name` with.
pub fn override_file(name: &str) -> String {
    format!("promptreg/evaluators/{name}.yaml")
}

/// The evaluator `uses` names as `source` (a working copy or a commit) has it: the registry's
/// own `promptreg/evaluators/NAME.yaml` when there is one (an `llm` evaluator's mapping:
/// `prompt`, and optionally `systemPrompt`, `modelId` and `choices`; without `choices` it
/// scores one to five as the built-ins do), else the built-in. `None` for a name that is
/// neither. A file that does not parse is an error naming it, never a silent fallback.
pub fn builtin_in(source: &dyn Source, uses: &str) -> Result<Option<LlmEvaluator>> {
    let Some(name) = uses.strip_prefix("github/") else {
        return Ok(None);
    };
    let shipped = builtin(uses);
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !plain {
        return Ok(shipped);
    }
    let file = override_file(name);
    let Some(bytes) = source.read(&file)? else {
        return Ok(shipped);
    };
    let invalid = |why: String| {
        Error::Usage(format!(
            "{file} overrides evaluator `{uses}` but {why}; fix it, or delete it to use the built-in"
        ))
    };
    let text = String::from_utf8(bytes).map_err(|_| invalid("is not UTF-8".into()))?;
    let value: Value =
        serde_yaml::from_str(&text).map_err(|e| invalid(format!("is not YAML: {e}")))?;
    let map = value
        .as_object()
        .ok_or_else(|| invalid("is not a mapping".into()))?;
    let mut llm = parse_llm(map).map_err(|(_, why)| invalid(why))?;
    if llm.model_id.is_empty() {
        llm.model_id = shipped
            .as_ref()
            .map_or_else(|| "openai/gpt-4o".to_string(), |b| b.model_id.clone());
    }
    if llm.choices.is_empty() {
        llm.choices = stars();
    }
    Ok(Some(llm))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Map<String, Value> {
        serde_json::json!({ "expected": "Paris", "n": 3, "flag": true })
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn templates_as_gh_models() {
        assert_eq!(
            template(
                "{{expected}} {{ expected }} {{n}} {{flag}} {{other}}",
                &values()
            ),
            "Paris {{ expected }} 3 true {{other}}"
        );
    }

    #[test]
    fn string_checks() {
        let v = values();
        let run = |check, pattern, reply| run_string("e", check, pattern, &v, reply).passed;
        assert!(run(Check::Equals, "{{expected}}", "Paris"));
        assert!(!run(Check::Equals, "{{expected}}", "paris"));
        assert!(run(Check::Contains, "{{expected}}", "It is PARIS."));
        assert!(!run(Check::Contains, "{{expected}}", "Lyon"));
        assert!(run(Check::StartsWith, "paris", "Paris, France"));
        assert!(!run(Check::StartsWith, "France", "Paris, France"));
        assert!(run(Check::EndsWith, "FRANCE", "Paris, France"));
        assert!(!run(Check::EndsWith, "Paris", "Paris, France"));
        let result = run_string("e", Check::Contains, "{{expected}}", &v, "x");
        assert_eq!(result.details, "Expected to contain: 'Paris'");
        assert_eq!(result.score, 0.0);
    }

    #[test]
    fn parses_every_kind_and_names_the_bad_field() {
        let yaml = r#"
- name: s
  string: { startsWith: "a", contains: "b" }
- name: l
  llm: { modelId: m, prompt: "p {{completion}}", choices: [{ choice: "1", score: 0 }, { choice: good, score: 1 }] }
- name: u
  uses: github/similarity
"#;
        let value: Value = serde_yaml::from_str(yaml).expect("yaml");
        let evaluators = parse(Some(&value)).expect("parse");
        // gh-models checks `contains` before `startsWith`.
        assert_eq!(
            evaluators[0].method,
            Method::String(Check::Contains, "b".into())
        );
        assert!(matches!(&evaluators[1].method, Method::Llm(l) if l.choices.len() == 2));
        assert_eq!(
            evaluators[2].method,
            Method::Uses("github/similarity".into())
        );
        let bad: Value = serde_yaml::from_str(
            "- name: x\n  llm: { modelId: m, prompt: p, choices: [{ choice: a, score: high }] }",
        )
        .expect("yaml");
        let err = parse(Some(&bad)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "evaluators[0]: `x`: llm.choices[0].score: not a number"
        );
        assert_eq!(err.path, "/evaluators/0/llm/choices/0/score");
        let none: Value = serde_yaml::from_str("- name: y").expect("yaml");
        let err = parse(Some(&none)).unwrap_err();
        assert!(err.to_string().contains("no evaluation method"), "{err}");
        assert_eq!(err.path, "/evaluators/0");
    }

    #[test]
    fn judges_by_the_first_choice_contained() {
        let llm = builtin("github/similarity").expect("similarity");
        assert_eq!(llm.model_id, "openai/gpt-4o");
        assert!(llm
            .prompt
            .ends_with("Candidate answer:\n{{completion}}\n\nYour rating (one digit, 1 to 5):"));
        let r = score_judge("sim", &llm, " 4\n");
        assert_eq!((r.score, r.passed), (0.75, true));
        let r = score_judge("sim", &llm, "1");
        assert_eq!((r.score, r.passed), (0.0, false));
        let r = score_judge("sim", &llm, "No idea");
        assert!(!r.passed);
        assert_eq!(
            r.details,
            "LLM evaluation response 'no idea' did not match any defined choices"
        );
        for name in [
            "similarity",
            "coherence",
            "fluency",
            "relevance",
            "groundedness",
        ] {
            let llm = builtin(&format!("github/{name}")).expect(name);
            assert!(llm.prompt.contains("{{completion}}"), "{name}");
            assert!(llm.system_prompt.is_some(), "{name}");
        }
        assert!(builtin("github/nope").is_none());
        assert!(builtin("similarity").is_none());
    }

    #[test]
    fn judge_request_shape() {
        let llm = builtin("github/groundedness").expect("groundedness");
        let mut v = values();
        v.insert("input".into(), "Where?".into());
        let body = judge_request(&llm, &v, "In Paris", None);
        assert_eq!(body["model"], "openai/gpt-4o");
        assert_eq!(body["stream"], true);
        assert_eq!(body["messages"][0]["role"], "system");
        let user = body["messages"][1]["content"].as_str().unwrap_or("");
        assert!(user.contains("Source material:\nParis\n\nRequest:\nWhere?\n\nReply:\nIn Paris\n"));
        let body = judge_request(&llm, &v, "x", Some("local-judge"));
        assert_eq!(body["model"], "local-judge");
    }
}

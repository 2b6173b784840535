//! `eval`: every test case of a prompt through the model, then the file's evaluators on each
//! reply, as `gh models eval` runs them; results in gh-models' JSON shape
//! (`testResults[].evaluationResults[]`, `summary.passRate`).
//!
//! Test cases run concurrently, at most [`ModelConfig::jobs`](crate::model::config::ModelConfig)
//! at once; every call goes through the [`CachedClient`], so an unchanged prompt costs no calls.

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::cache::CachedClient;
use crate::model::evaluator::{self, EvaluationResult, Evaluator, Method};
use crate::render::chat::request_body;
use crate::render::request::RenderRequest;
use crate::render::CompiledPrompt;

/// One test case's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    /// The test case's values.
    pub test_case: Map<String, Value>,
    /// The model's reply, trimmed.
    pub model_response: String,
    /// Each evaluator's result, in file order.
    pub evaluation_results: Vec<EvaluationResult>,
}

impl TestResult {
    /// Whether every evaluator passed.
    pub fn passed(&self) -> bool {
        self.evaluation_results.iter().all(|r| r.passed)
    }
}

/// The counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Test cases run.
    pub total_tests: usize,
    /// Test cases where every evaluator passed.
    pub passed_tests: usize,
    /// The others.
    pub failed_tests: usize,
    /// Percent passed (100 without test cases, as gh-models counts).
    pub pass_rate: f64,
}

/// A prompt's evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptEval {
    /// The prompt's id.
    pub id: String,
    /// Its `name`.
    pub name: String,
    /// Its `description`.
    pub description: String,
    /// The model the test cases ran on.
    pub model: String,
    /// Each test case, in order.
    pub test_results: Vec<TestResult>,
    /// The counts.
    pub summary: Summary,
}

impl PromptEval {
    /// Whether every test case passed.
    pub fn passed(&self) -> bool {
        self.summary.failed_tests == 0
    }
}

/// The model a request for `prompt` goes to: the caller's choice, else the prompt's, else the
/// fallback (`PROMPTREG_MODEL`).
pub fn model_for(
    prompt: &CompiledPrompt,
    chosen: Option<&str>,
    fallback: Option<&str>,
) -> Option<String> {
    chosen
        .or(prompt.prompt().model.as_deref())
        .or(fallback)
        .map(str::to_string)
}

/// Evaluates every test case of `prompt`, with the built-in evaluators promptreg ships.
pub fn evaluate(prompt: &CompiledPrompt, client: &CachedClient) -> Result<PromptEval> {
    run_all(prompt, client, &|uses| Ok(evaluator::builtin(uses)))
}

/// Evaluates every test case of `prompt`, with the built-in evaluators as `source` (the working
/// copy or the commit the prompt comes from) overrides them (`promptreg/evaluators/NAME.yaml`).
pub fn evaluate_in(
    source: &dyn crate::snapshot::work::Source,
    prompt: &CompiledPrompt,
    client: &CachedClient,
) -> Result<PromptEval> {
    run_all(prompt, client, &|uses| evaluator::builtin_in(source, uses))
}

/// Evaluates every test case of `prompt`, `uses:` evaluators found by `named`.
fn run_all(
    prompt: &CompiledPrompt,
    client: &CachedClient,
    named: &dyn Fn(&str) -> Result<Option<evaluator::LlmEvaluator>>,
) -> Result<PromptEval> {
    let config = client.client().config();
    let mut evaluators = evaluator::parse(prompt.prompt().evaluators.as_ref())
        .map_err(|e| Error::Usage(format!("`{}`: {e}", prompt.id())))?;
    // `uses:` is resolved once, before any model call: a broken override stops the run.
    for e in &mut evaluators {
        if let Method::Uses(uses) = &e.method {
            if let Some(llm) = named(uses)? {
                e.method = Method::Llm(llm);
            }
        }
    }
    let model = model_for(
        prompt,
        config.model.as_deref(),
        config.fallback_model.as_deref(),
    );
    let rows = prompt.prompt().test_data.len();
    let results: Mutex<Vec<Option<Result<TestResult>>>> =
        Mutex::new((0..rows).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..config.jobs.min(rows.max(1)) {
            scope.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= rows {
                    break;
                }
                let result = run_case(prompt, n, model.as_deref(), &evaluators, client);
                results.lock()[n] = Some(result);
            });
        }
    });
    let mut test_results = Vec::with_capacity(rows);
    for (n, result) in results.into_inner().into_iter().enumerate() {
        let result = result.ok_or_else(|| Error::Model(format!("test case {n} did not run")))?;
        test_results.push(result?);
    }
    let passed_tests = test_results.iter().filter(|t| t.passed()).count();
    let summary = Summary {
        total_tests: rows,
        passed_tests,
        failed_tests: rows - passed_tests,
        pass_rate: if rows == 0 {
            100.0
        } else {
            passed_tests as f64 / rows as f64 * 100.0
        },
    };
    Ok(PromptEval {
        id: prompt.id().to_string(),
        name: prompt.prompt().name.clone().unwrap_or_default(),
        description: prompt.prompt().description.clone().unwrap_or_default(),
        model: model.unwrap_or_default(),
        test_results,
        summary,
    })
}

/// Test case `n`: render, call, evaluate.
fn run_case(
    prompt: &CompiledPrompt,
    n: usize,
    model: Option<&str>,
    evaluators: &[Evaluator],
    client: &CachedClient,
) -> Result<TestResult> {
    let values = prompt.prompt().test_data[n].clone();
    let rendered = RenderRequest::new().test_case(n).render(prompt)?.rendered;
    let mut body = request_body(&rendered, model)?;
    let stream = body
        .get("model")
        .and_then(Value::as_str)
        .is_some_and(evaluator::streams);
    if let Value::Object(map) = &mut body {
        map.insert("stream".into(), Value::Bool(stream));
    }
    let reply = client
        .complete(&body)
        .map_err(|e| Error::Model(format!("`{}` test case {n}: {e}", prompt.id())))?;
    let reply = reply.content.trim().to_string();
    let judge_model = client.client().config().judge_model.as_deref();
    let mut evaluation_results = Vec::with_capacity(evaluators.len());
    for e in evaluators {
        let result = match &e.method {
            Method::String(check, pattern) => {
                evaluator::run_string(&e.name, *check, pattern, &values, &reply)
            }
            Method::Llm(llm) => judge(&e.name, llm, &values, &reply, judge_model, client)?,
            // Names that are no built-in were left as they are.
            Method::Uses(uses) => evaluator::unknown_plugin(&e.name, uses),
        };
        evaluation_results.push(result);
    }
    Ok(TestResult {
        test_case: values,
        model_response: reply,
        evaluation_results,
    })
}

fn judge(
    name: &str,
    llm: &evaluator::LlmEvaluator,
    values: &Map<String, Value>,
    reply: &str,
    judge_model: Option<&str>,
    client: &CachedClient,
) -> Result<EvaluationResult> {
    let body = evaluator::judge_request(llm, values, reply, judge_model);
    let answer = client
        .complete(&body)
        .map_err(|e| Error::Model(format!("evaluator `{name}`: {e}")))?;
    Ok(evaluator::score_judge(name, llm, &answer.content))
}

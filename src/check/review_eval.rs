//! `review --eval`: for each changed prompt, its evaluator results and score before and after,
//! so a pull request shows whether a change made the prompt better. Before is the merge base,
//! after the head; every call goes through the cache, so an unchanged side costs nothing.

use serde::Serialize;

use crate::check::review::Review;
use crate::error::{Error, Result};
use crate::git::oid::ObjectId;
use crate::model::analyze::{analyze, criteria, judge, Analysis};
use crate::model::cache::CachedClient;
use crate::model::eval::evaluate_in;
use crate::registry::{find_file, LoadedPrompt, Registry};

/// One side of a changed prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvalSide {
    /// Test cases whose evaluators all passed.
    pub passed_tests: usize,
    /// Test cases.
    pub total_tests: usize,
    /// Evaluator results that failed, over all test cases.
    pub failed_evaluators: usize,
    /// `analyze score`'s overall score, when a judge model is configured.
    pub score: Option<f64>,
    /// Its rating band.
    pub rating: Option<String>,
}

/// A changed prompt before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalChange {
    /// The prompt's id at head (its old id when it was removed).
    pub id: String,
    /// At the merge base; `None` when it did not exist.
    pub before: Option<EvalSide>,
    /// At head; `None` when it was removed.
    pub after: Option<EvalSide>,
}

/// Evaluates each changed prompt of `review` on both sides. `judge_model` chooses the model of
/// the score (without one, the score judge's `model` or `PROMPTREG_MODEL`; with none of those,
/// no score).
pub fn evaluate_review(
    registry: &Registry,
    review: &Review,
    client: &CachedClient,
    judge_model: Option<&str>,
) -> Result<Vec<EvalChange>> {
    let before_commit = review.merge_base.as_deref().unwrap_or(&review.base.commit);
    let before_commit = commit(before_commit)?;
    let after_commit = commit(&review.head.commit)?;
    let criteria = criteria(registry)?;
    let score_judge = judge(registry, Analysis::Score)?;
    let mut out = Vec::new();
    for change in &review.prompts {
        let old_id = change.renamed_from.as_deref().unwrap_or(&change.id);
        let side = |id: &str, at: ObjectId| -> Result<Option<EvalSide>> {
            let Some(loaded) = load(registry, id, at)? else {
                return Ok(None);
            };
            let text = loaded.text.clone();
            let compiled = loaded.compile()?;
            // Each side with its own commit's evaluator overrides.
            let source = registry.commit_source(at)?;
            let result = evaluate_in(source.as_ref(), &compiled, client)?;
            let failed_evaluators = result
                .test_results
                .iter()
                .flat_map(|t| &t.evaluation_results)
                .filter(|e| !e.passed)
                .count();
            let scored = analyze(
                Analysis::Score,
                id,
                &text,
                &score_judge,
                &criteria,
                client,
                judge_model,
            );
            let (score, rating) = match scored {
                Ok(value) => (
                    value["score"].as_f64(),
                    value["rating"].as_str().map(str::to_string),
                ),
                // No judge model anywhere: the evaluators alone.
                Err(Error::Usage(_)) => (None, None),
                Err(e) => return Err(e),
            };
            Ok(Some(EvalSide {
                passed_tests: result.summary.passed_tests,
                total_tests: result.summary.total_tests,
                failed_evaluators,
                score,
                rating,
            }))
        };
        out.push(EvalChange {
            id: change.id.clone(),
            before: side(old_id, before_commit)?,
            after: side(&change.id, after_commit)?,
        });
    }
    Ok(out)
}

fn commit(hex: &str) -> Result<ObjectId> {
    ObjectId::from_hex(hex).ok_or_else(|| Error::NotFound(format!("`{hex}` is not a commit id")))
}

/// Prompt `id` as it is at `commit`, if it exists there.
fn load(registry: &Registry, id: &str, commit: ObjectId) -> Result<Option<LoadedPrompt>> {
    let source = registry.commit_source(commit)?;
    let root = registry.root().display().to_string();
    match find_file(source.as_ref(), id, &root) {
        Ok(file) => LoadedPrompt::read(source, id, &file).map(Some),
        Err(Error::UnknownPrompt { .. } | Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The Markdown section of the results: one row per changed prompt.
pub fn markdown(changes: &[EvalChange]) -> String {
    let mut out = String::from("\n### Evaluation\n\n| prompt | test cases passed | failed evaluators | score |\n| --- | --- | --- | --- |\n");
    let tests = |s: &Option<EvalSide>| {
        s.as_ref().map_or("-".to_string(), |s| {
            format!("{}/{}", s.passed_tests, s.total_tests)
        })
    };
    let failed = |s: &Option<EvalSide>| {
        s.as_ref()
            .map_or("-".to_string(), |s| s.failed_evaluators.to_string())
    };
    let score = |s: &Option<EvalSide>| match s.as_ref().and_then(|s| s.score.zip(s.rating.clone()))
    {
        Some((score, rating)) => format!("{score:.0} ({rating})"),
        None => "-".to_string(),
    };
    for c in changes {
        out.push_str(&format!(
            "| `{}` | {} → {} | {} → {} | {} → {} |\n",
            c.id,
            tests(&c.before),
            tests(&c.after),
            failed(&c.before),
            failed(&c.after),
            score(&c.before),
            score(&c.after)
        ));
    }
    out
}

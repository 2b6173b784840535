//! The analyses as POST routes (`--analyses`): Zatomic's score, risk, balance and heatmap of a
//! version, asked of the judge model the server was started with. Results are cached by
//! content under the git dir (the judge's request is a function of the version's blob, the
//! judge prompt, the criteria and the model), so a second request for an unchanged version
//! makes no model call. At most `jobs` analyses talk to the model at once; the others wait.

// A problem becomes the response at once: its size is paid once per failed request.
#![allow(clippy::result_large_err)]

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::Error;
use crate::model::analyze::{analyze, criteria_in, judge_in, judge_model, Analysis};
use crate::serve::http::{fresh_json, read_body, Params, Problem};
use crate::serve::prompts::{facts, index_of, VersionQuery};
use crate::serve::state::{Judge, Shared};

/// What to analyse with.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnalyzeBody {
    /// The judge model, instead of the server's.
    #[serde(default)]
    model: Option<String>,
}

/// An analysis of one version.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AnalysisDoc {
    id: String,
    version: Option<u32>,
    commit: String,
    blob: String,
    /// `score`, `risk`, `balance` or `heatmap`.
    analysis: String,
    /// The judge model that answered.
    model: String,
    /// The analysis, in the shape `promptreg analyze ANALYSIS --format json` prints.
    #[schema(value_type = Object)]
    result: Value,
}

/// Analyses a prompt at its default, or at the version the path or query names.
#[utoipa::path(post, path = "/v1/analyze/{analysis}/{id}",
    params(
        ("analysis" = String, Path, description = "`score`, `risk`, `balance` or `heatmap`"),
        ("id" = String, Path, description = "The prompt id (it may contain `/`), optionally with `@N`, `@LABEL` or `@COMMIT`"),
        VersionQuery),
    request_body(content = Option<AnalyzeBody>, description = "Optional: the judge model"),
    responses((status = 200, body = AnalysisDoc), (status = 400, body = Problem), (status = 403, body = Problem, description = "the server was started without --analyses"), (status = 404, body = Problem), (status = 422, body = Problem), (status = 502, body = Problem, description = "the model failed or did not answer as asked"), (status = 503, body = Problem, description = "as many analyses as the server runs and queues are in, or every render slot stayed taken while the version was looked up and compiled (`Retry-After`)")))]
pub(crate) async fn analyze_route(
    State(state): State<Shared>,
    Path((name, path)): Path<(String, String)>,
    Params(query): Params<VersionQuery>,
    body: axum::body::Body,
) -> Response {
    let bytes = match read_body(body).await {
        Ok(bytes) => bytes,
        Err(problem) => return problem.into_response(),
    };
    match answer(state, &name, &path, &query, &bytes).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn answer(
    state: Shared,
    name: &str,
    path: &str,
    query: &VersionQuery,
    bytes: &[u8],
) -> Result<Response, Problem> {
    let Some(analyst) = &state.analyst else {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "analyses-off",
            "this server does not run analyses: it was started without --analyses",
        )
        .with_hint("start the server with --analyses and a model endpoint (--endpoint, PROMPTREG_ENDPOINT or `model` in promptreg.yaml)"));
    };
    let analysis = Analysis::from_name(name)
        .filter(|a| *a != Analysis::Improve)
        .ok_or_else(|| {
            Problem::new(
                StatusCode::NOT_FOUND,
                "unknown-analysis",
                format!("there is no analysis `{name}`"),
            )
            .with_hint("the analyses are score, risk, balance and heatmap")
        })?;
    let request: AnalyzeBody = crate::serve::http::json_object(bytes, "an analysis request", true)
        .map_err(|p| p.with_hint("send nothing, or JSON like {\"model\": \"openai/gpt-4o\"}"))?;
    let current = state.current.load_full();
    // The version is looked up (a commit is found in git, history walked back to it) and
    // compiled on the blocking pool, under its time limit, like every other compile.
    let looked_up = {
        let (state, current, path) = (state.clone(), current.clone(), path.to_string());
        let query = query.clone();
        crate::serve::pool::run(move || -> Result<_, Problem> {
            let (reference, resolved) = crate::serve::prompts::resolve(&current, &path, &query)?;
            let compiled = state.compiled(&current, reference.id(), &resolved)?;
            let index = index_of(&current)?;
            let facts = facts(&current.snapshot, index, &compiled, &resolved)?;
            let (number, commit, blob) = (facts.number, facts.commit.clone(), facts.blob.clone());
            Ok((reference, compiled, number, commit, blob))
        })
        .await
    };
    let (reference, compiled, number, commit, blob) = match looked_up {
        Ok(found) => found?,
        // Every slot taken, or the time limit: that answer.
        Err(response) => return Ok(response),
    };
    // The judge and the criteria are the served commit's, as every other answer is.
    let served = current.snapshot.commit();
    let judge = analyst.judge(analysis.name(), served, || {
        let source = current.snapshot.registry().commit_source(served)?;
        Ok(Judge {
            prompt: judge_in(source.clone(), analysis)?,
            criteria: criteria_in(source.as_ref())?,
        })
    })?;
    let client = analyst.client();
    let model = judge_model(analysis, &judge.prompt, &client, request.model.as_deref())?;
    let admitted = analyst.admit().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too-many-analyses",
            "every analysis this server runs or queues is taken",
        )
        .with_hint(
            "retry later; the server runs `jobs` analyses at once (model.jobs in promptreg.yaml)",
        )
    })?;
    let permit = analyst.slot().await.map_err(|_| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            "the server is shutting down",
        )
    })?;
    let id = reference.id().to_string();
    let text = compiled.source_text().to_string();
    let chosen = model.clone();
    let result = tokio::task::spawn_blocking(move || {
        let _slot = (admitted, permit);
        analyze(
            analysis,
            &id,
            &text,
            &judge.prompt,
            &judge.criteria,
            &client,
            Some(&chosen),
        )
    })
    .await
    .map_err(|e| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the analysis stopped: {e}"),
        )
    })?
    .map_err(|e: Error| Problem::from(&e))?;
    let doc = AnalysisDoc {
        id: reference.id().to_string(),
        version: number,
        commit,
        blob,
        analysis: analysis.name().to_string(),
        model,
        result,
    };
    fresh_json(&doc)
}

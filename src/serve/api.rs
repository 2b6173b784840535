//! The `/v1` read routes of the registry as a whole, one concept each, answered from the snapshot
//! a request loads once: the prompt list, the manifest, and the operations routes. One prompt's
//! document and versions are in `prompts.rs`, rendering in `render.rs`, events and the push hook
//! in `notify.rs`.
//!
//! Ids contain `/`, so the concept comes first and the id last: `/v1/prompts/support/triage`,
//! `/v1/versions/support/triage`, `/v1/render/support/triage`. Every id has one URL, whatever
//! its last segment is (`/v1/prompts/a/versions` is prompt `a/versions`). A version is chosen
//! with the CLI's reference syntax (`support/triage@3`, `@staging`, `@1a2b3c4`) or the query
//! (`?version=3`, `?label=staging`, `?commit=1a2b3c4`).

// A problem becomes the response at once: its size is paid once per failed request.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::serve::http::{cached_json, etag, to_json, Params, Problem, SHORT};
use crate::serve::state::Shared;

/// The most prompts one page of the list holds.
const MAX_PAGE: usize = 1000;

// ---------------------------------------------------------------------------------------
// The list

/// Which prompts, and which page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only prompts with this tag.
    tag: Option<String>,
    /// Only prompts whose id, name or description contains this text (any case).
    q: Option<String>,
    /// Prompts per page (1 to 1000; 100 when not given).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Where the page starts: the `next_cursor` of the page before.
    cursor: Option<String>,
}

/// One prompt in the list.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PromptRow {
    id: String,
    name: Option<String>,
    description: Option<String>,
    tags: Vec<String>,
    /// Committed versions.
    versions: u32,
    latest: Option<u32>,
    /// The manifest's default, else the latest.
    default: Option<u32>,
    /// Labels pointing at the prompt, with their versions.
    labels: BTreeMap<String, u32>,
}

/// A page of the list.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PromptPage {
    /// The commit the list is of.
    commit: String,
    prompts: Vec<PromptRow>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// Lists the prompts.
#[utoipa::path(get, path = "/v1/prompts", params(ListQuery),
    responses((status = 200, body = PromptPage), (status = 304, description = "unchanged"), (status = 400, body = Problem)))]
pub(crate) async fn list(
    State(state): State<Shared>,
    Params(query): Params<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let current = state.current.load_full();
    let tag = etag(&["l", &current.commit]);
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "usage",
            format!("limit must be 1 to {MAX_PAGE}, not {limit}"),
        )
        .into_response();
    }
    cached_json(&headers, &tag, SHORT, || {
        let needle = query.q.as_deref().map(str::to_lowercase);
        let start = match &query.cursor {
            Some(after) => current
                .rows
                .partition_point(|r| r.id.as_str() <= after.as_str()),
            None => 0,
        };
        let mut matching = current.rows[start..].iter().filter(|row| {
            query.tag.as_ref().is_none_or(|t| row.tags.contains(t))
                && needle
                    .as_ref()
                    .is_none_or(|n| row.haystack.contains(n.as_str()))
        });
        let prompts: Vec<PromptRow> = matching
            .by_ref()
            .take(limit)
            .map(|row| PromptRow {
                id: row.id.clone(),
                name: row.name.clone(),
                description: row.description.clone(),
                tags: row.tags.clone(),
                versions: row.versions,
                latest: row.latest,
                default: row.default,
                labels: row.labels.clone(),
            })
            .collect();
        let next_cursor = match matching.next() {
            Some(_) => prompts.last().map(|p| p.id.clone()),
            None => None,
        };
        to_json(&PromptPage {
            commit: current.commit.clone(),
            prompts,
            next_cursor,
        })
    })
}

// ---------------------------------------------------------------------------------------
// The manifest

/// `defaults.yaml` at the commit being served.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ManifestDoc {
    commit: String,
    /// The version each prompt id gets by default (prompts not named get their latest).
    defaults: BTreeMap<String, u32>,
    /// Label name to (prompt id to version).
    labels: BTreeMap<String, BTreeMap<String, u32>>,
}

/// The defaults and labels.
#[utoipa::path(get, path = "/v1/manifest",
    responses((status = 200, body = ManifestDoc), (status = 304, description = "unchanged")))]
pub(crate) async fn manifest(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let current = state.current.load_full();
    let tag = etag(&["m", &current.manifest_blob]);
    cached_json(&headers, &tag, SHORT, || {
        let manifest = current.snapshot.manifest();
        to_json(&ManifestDoc {
            commit: current.commit.clone(),
            defaults: manifest.defaults.clone(),
            labels: manifest.labels.clone(),
        })
    })
}

// ---------------------------------------------------------------------------------------
// Operations

/// Whether a snapshot is loaded, and which.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Ready {
    ready: bool,
    /// Serving an older snapshot than it should: a fetch or a new tip failed.
    degraded: bool,
    /// Why, when degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    commit: String,
    /// Seconds since the snapshot was loaded.
    age_seconds: f64,
    prompts: usize,
}

/// Alive.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "alive", body = String)))]
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// A snapshot is loaded.
#[utoipa::path(get, path = "/readyz", responses((status = 200, body = Ready)))]
pub(crate) async fn readyz(State(state): State<Shared>) -> Response {
    let current = state.current.load_full();
    let reason = state.degraded();
    let ready = Ready {
        ready: true,
        degraded: reason.is_some(),
        reason,
        commit: current.commit.clone(),
        age_seconds: current.loaded.elapsed().as_secs_f64(),
        prompts: current.rows.len(),
    };
    match to_json(&ready) {
        Ok(bytes) => (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            bytes,
        )
            .into_response(),
        Err(problem) => problem.into_response(),
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", body = String)))]
pub(crate) async fn metrics(State(state): State<Shared>) -> Response {
    state.metrics.streams(state.events.open_streams());
    (
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

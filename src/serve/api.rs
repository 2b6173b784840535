//! The `/v1` routes: one concept each, answered from the snapshot a request loads once.
//!
//! Ids contain `/`, so the concept comes first and the id last: `/v1/prompts/support/triage`,
//! `/v1/versions/support/triage`, `/v1/render/support/triage`. Every id has one URL, whatever
//! its last segment is (`/v1/prompts/a/versions` is prompt `a/versions`). A version is chosen
//! with the CLI's reference syntax (`support/triage@3`, `@staging`, `@1a2b3c4`) or the query
//! (`?version=3`, `?label=staging`, `?commit=1a2b3c4`).

// A problem becomes the response at once: its size is paid once per failed request.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::broadcast;
use utoipa::{IntoParams, ToSchema};

use crate::error::Error;
use crate::format::prompt::Body;
use crate::history::VersionIndex;
use crate::registry::reference::{Reference, Selector};
use crate::registry::Resolved;
use crate::render::request::RenderRequest;
use crate::render::{CompiledPrompt, Output};
use crate::serve::current::Current;
use crate::serve::http::{
    cached_json, etag, fresh_json, read_body, to_json, to_json_vec, Problem, IMMUTABLE, SHORT,
};
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
    Query(query): Query<ListQuery>,
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
// One prompt

/// Which version: at most one of these, and not together with `@` in the path.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct VersionQuery {
    /// A version number (1-based).
    version: Option<u32>,
    /// A label of `defaults.yaml`.
    label: Option<String>,
    /// A commit (7 to 40 hex digits): the version current at it.
    commit: Option<String>,
    /// `versions` adds every version of the prompt, newest first.
    expand: Option<String>,
}

/// A declared variable.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VariableDoc {
    name: String,
    #[serde(rename = "type")]
    ty: &'static str,
    required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    default: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

/// A message before rendering.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MessageDoc {
    role: String,
    content: String,
    /// Prompt tokens of the template text (o200k_base).
    tokens: usize,
}

/// One version of a prompt.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionDoc {
    version: u32,
    commit: String,
    blob: String,
    author: String,
    email: String,
    /// RFC 3339, in the commit's own offset.
    time: String,
    /// The commit message: the change note.
    message: String,
    /// Whether applications get this version by default.
    default: bool,
    /// Labels that point at it.
    labels: Vec<String>,
}

/// A prompt at one version: the parsed file as data, and its source.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PromptDoc {
    id: String,
    file: String,
    /// The version number (absent in a shallow clone, where versions have no numbers).
    version: Option<u32>,
    commit: String,
    blob: String,
    author: Option<String>,
    email: Option<String>,
    time: Option<String>,
    message: Option<String>,
    name: Option<String>,
    description: Option<String>,
    model: Option<String>,
    #[serde(rename = "modelParameters")]
    #[schema(value_type = Object)]
    model_parameters: Map<String, Value>,
    variables: Vec<VariableDoc>,
    /// The chat form (absent for a single template).
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<MessageDoc>>,
    /// The single-template form.
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<String>,
    #[serde(rename = "testData")]
    #[schema(value_type = Vec<Object>)]
    test_data: Vec<Map<String, Value>>,
    tags: Vec<String>,
    #[serde(rename = "responseFormat", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    response_format: Option<Value>,
    #[serde(rename = "jsonSchema", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    json_schema: Option<Value>,
    /// Prompt tokens of every template, before rendering.
    tokens: usize,
    /// The file's text.
    source: String,
    /// With `expand=versions`: every version, newest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    versions: Option<Vec<VersionDoc>>,
}

/// The reference a path (`ID` or `ID@SELECTOR`) and a query name.
pub(crate) fn reference(path: &str, query: &VersionQuery) -> Result<Reference, Problem> {
    let parsed = Reference::parse(path).map_err(Problem::from)?;
    let chosen: Vec<Selector> = [
        query.version.map(Selector::Version),
        query.label.clone().map(Selector::Name),
        query.commit.clone().map(Selector::Name),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(hex) = &query.commit {
        if hex.len() < 7 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "usage",
                format!("commit `{hex}` is not 7 to 40 hex digits"),
            ));
        }
    }
    match chosen.len() {
        0 => Ok(parsed),
        1 if *parsed.selector() == Selector::Default => {
            let selector = chosen.into_iter().next().unwrap_or(Selector::Default);
            Reference::new(parsed.id(), selector).map_err(Problem::from)
        }
        _ => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "usage",
            "name the version once: `@` in the path or one of version, label and commit",
        )),
    }
}

/// The version facts of a resolved prompt: number, commit, blob and the version itself.
pub(crate) struct Facts<'a> {
    pub number: Option<u32>,
    pub commit: String,
    pub blob: String,
    info: Option<&'a crate::git::CommitInfo>,
}

pub(crate) fn facts<'a>(
    current: &'a Current,
    index: Option<&'a VersionIndex>,
    compiled: &CompiledPrompt,
    resolved: &Resolved,
) -> Result<Facts<'a>, Error> {
    match (resolved, index) {
        (Resolved::Version { number, commit }, Some(index)) => {
            let file = compiled.file().to_string();
            let version = (*number as usize)
                .checked_sub(1)
                .and_then(|i| index.versions(&file).get(i));
            Ok(Facts {
                number: Some(*number),
                commit: commit.to_string(),
                blob: version.map_or_else(String::new, |v| v.blob.to_string()),
                info: version.map(|v| index.commit(v)),
            })
        }
        (Resolved::Version { commit, .. } | Resolved::Tip { commit }, _) => {
            let source = current.snapshot.registry().commit_source(*commit)?;
            let blob = source.blob_id(compiled.file())?;
            Ok(Facts {
                number: None,
                commit: commit.to_string(),
                blob: blob.map_or_else(String::new, |b| b.to_string()),
                info: None,
            })
        }
        (Resolved::Work, _) => Err(Error::Usage("the working copy is never served".into())),
    }
}

fn versions_of(current: &Current, index: &VersionIndex, id: &str) -> Vec<VersionDoc> {
    let Some(file) = index.file_of(id) else {
        return Vec::new();
    };
    let versions = index.versions(&file);
    crate::registry::marked_versions(index, versions, current.snapshot.manifest(), id)
        .into_iter()
        .map(|m| VersionDoc {
            version: m.version.number,
            commit: m.commit.id.to_string(),
            blob: m.version.blob.to_string(),
            author: m.commit.author.clone(),
            email: m.commit.email.clone(),
            time: crate::git::time::rfc3339(m.commit.time, m.commit.offset_minutes),
            message: m.commit.message.clone(),
            default: m.default,
            labels: m.labels,
        })
        .collect()
}

fn prompt_doc(
    compiled: &CompiledPrompt,
    facts: &Facts<'_>,
    versions: Option<Vec<VersionDoc>>,
) -> PromptDoc {
    let prompt = compiled.prompt();
    let count = crate::render::tokens::count;
    let (messages, template, tokens) = match &prompt.body {
        Body::Messages(messages) => {
            let docs: Vec<MessageDoc> = messages
                .iter()
                .map(|m| MessageDoc {
                    role: m.role.to_string(),
                    content: m.content.clone(),
                    tokens: count(&m.content),
                })
                .collect();
            let total = docs.iter().map(|m| m.tokens).sum();
            (Some(docs), None, total)
        }
        Body::Template(text) => (None, Some(text.clone()), count(text)),
    };
    PromptDoc {
        id: compiled.id().to_string(),
        file: compiled.file().to_string(),
        version: facts.number,
        commit: facts.commit.clone(),
        blob: facts.blob.clone(),
        author: facts.info.map(|i| i.author.clone()),
        email: facts.info.map(|i| i.email.clone()),
        time: facts
            .info
            .map(|i| crate::git::time::rfc3339(i.time, i.offset_minutes)),
        message: facts.info.map(|i| i.message.clone()),
        name: prompt.name.clone(),
        description: prompt.description.clone(),
        model: prompt.model.clone(),
        model_parameters: prompt.model_parameters.clone(),
        variables: prompt
            .variables
            .iter()
            .flatten()
            .map(|(name, v)| VariableDoc {
                name: name.clone(),
                ty: v.ty.as_str(),
                required: v.required,
                default: v.default.clone(),
                description: v.description.clone(),
            })
            .collect(),
        messages,
        template,
        test_data: prompt.test_data.clone(),
        tags: prompt.tags.clone(),
        response_format: prompt.response_format.clone(),
        json_schema: prompt.json_schema.clone(),
        tokens,
        source: compiled.source_text().to_string(),
        versions,
    }
}

/// The snapshot's version index, `None` in a shallow clone.
pub(crate) fn index_of(current: &Current) -> Result<Option<&VersionIndex>, Problem> {
    match current.snapshot.index() {
        Ok(index) => Ok(Some(index)),
        Err(err) if err.kind() == crate::error::ErrorKind::NoHistory => Ok(None),
        Err(err) => Err(Problem::from(err)),
    }
}

/// One prompt at its default, or at the version the path or query names.
#[utoipa::path(get, path = "/v1/prompts/{id}",
    params(("id" = String, Path, description = "The prompt id (it may contain `/`), optionally with `@N`, `@LABEL` or `@COMMIT`"), VersionQuery),
    responses((status = 200, body = PromptDoc), (status = 304, description = "unchanged"), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn prompt(
    State(state): State<Shared>,
    Path(path): Path<String>,
    Query(query): Query<VersionQuery>,
    headers: HeaderMap,
) -> Response {
    let current = state.current.load_full();
    let answer = || -> Result<Response, Problem> {
        let reference = reference(&path, &query)?;
        let expand = match query.expand.as_deref() {
            None => false,
            Some("versions") => true,
            Some(other) => {
                return Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "usage",
                    format!("expand=`{other}` is not known; use expand=versions"),
                ))
            }
        };
        let resolved = current.snapshot.resolve(&reference)?;
        let compiled = state.compiled(&current, reference.id(), &resolved)?;
        let index = index_of(&current)?;
        let facts = facts(&current, index, &compiled, &resolved)?;
        // A version by number never changes; with the list of versions it grows.
        let immutable = matches!(reference.selector(), Selector::Version(_)) && !expand;
        let tag = if expand {
            etag(&["p", &facts.commit, &facts.blob, "x", &current.commit])
        } else {
            etag(&["p", &facts.commit, &facts.blob])
        };
        let cache = if immutable { IMMUTABLE } else { SHORT };
        Ok(cached_json(&headers, &tag, cache, || {
            if expand {
                let versions = index.map(|index| versions_of(&current, index, reference.id()));
                return to_json(&prompt_doc(
                    &compiled,
                    &facts,
                    Some(versions.unwrap_or_default()),
                ));
            }
            // One version's document never changes: it is built once.
            state.body(&tag, || to_json_vec(&prompt_doc(&compiled, &facts, None)))
        }))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

// ---------------------------------------------------------------------------------------
// Versions

/// Every version of a prompt.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionList {
    id: String,
    /// The commit the list is of.
    commit: String,
    default: Option<u32>,
    latest: Option<u32>,
    /// Newest first.
    versions: Vec<VersionDoc>,
}

/// The versions of a prompt, newest first, with the default and label marks.
#[utoipa::path(get, path = "/v1/versions/{id}",
    params(("id" = String, Path, description = "The prompt id (it may contain `/`)")),
    responses((status = 200, body = VersionList), (status = 304, description = "unchanged"), (status = 404, body = Problem)))]
pub(crate) async fn versions(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let current = state.current.load_full();
    let answer = || -> Result<Response, Problem> {
        let reference = Reference::parse(&id)?;
        if *reference.selector() != Selector::Default {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "usage",
                "the versions of a prompt are listed by id alone, without `@`",
            ));
        }
        let index = index_of(&current)?.ok_or_else(|| {
            Problem::from(Error::NoHistory(
                "this is a shallow clone, so versions cannot be numbered".into(),
            ))
        })?;
        if index.file_of(reference.id()).is_none() {
            current
                .snapshot
                .discovery()
                .file(reference.id(), &state.root)
                .map_err(Problem::from)?;
        }
        let tag = etag(&["v", &current.commit]);
        Ok(cached_json(&headers, &tag, SHORT, || {
            let versions = versions_of(&current, index, reference.id());
            let latest = versions.first().map(|v| v.version);
            to_json(&VersionList {
                id: reference.id().to_string(),
                commit: current.commit.clone(),
                default: current
                    .snapshot
                    .manifest()
                    .get(None, reference.id())
                    .or(latest),
                latest,
                versions,
            })
        }))
    };
    answer().unwrap_or_else(IntoResponse::into_response)
}

// ---------------------------------------------------------------------------------------
// Render

/// What to render with.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenderBody {
    /// The values, by variable name.
    #[serde(default)]
    #[schema(value_type = Object)]
    variables: Map<String, Value>,
    /// Refuse variables the prompt does not use.
    #[serde(default)]
    strict: bool,
    /// Start from test case N of the prompt's `testData` (0-based).
    #[serde(default, rename = "testCase")]
    test_case: Option<usize>,
}

/// A rendered prompt, ready for a chat API.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RenderDoc {
    id: String,
    version: Option<u32>,
    commit: String,
    model: Option<String>,
    #[serde(rename = "modelParameters")]
    #[schema(value_type = Object)]
    model_parameters: Map<String, Value>,
    /// The rendered messages (a single-template prompt is one user message).
    messages: Vec<RenderedMessage>,
    /// Given names the prompt does not use.
    unused: Vec<String>,
    /// The body of an OpenAI-compatible chat-completions request, when the prompt names a
    /// model.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    request: Option<Value>,
}

/// A rendered message.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RenderedMessage {
    role: String,
    content: String,
}

/// Renders a prompt at its default, or at the version the path or query names.
#[utoipa::path(post, path = "/v1/render/{id}",
    params(("id" = String, Path, description = "The prompt id (it may contain `/`), optionally with `@N`, `@LABEL` or `@COMMIT`"), VersionQuery),
    request_body = RenderBody,
    responses((status = 200, body = RenderDoc), (status = 400, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn render(
    State(state): State<Shared>,
    Path(path): Path<String>,
    Query(query): Query<VersionQuery>,
    body: axum::body::Body,
) -> Response {
    let bytes = match read_body(body).await {
        Ok(bytes) => bytes,
        Err(problem) => return problem.into_response(),
    };
    let current = state.current.load_full();
    let answer = || -> Result<Response, Problem> {
        let request: RenderBody = if bytes.iter().all(u8::is_ascii_whitespace) {
            RenderBody::default()
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "bad-body",
                    format!("the request body is not a render request: {e}"),
                )
                .with_hint("send JSON like {\"variables\": {\"name\": \"value\"}}")
            })?
        };
        let reference = reference(&path, &query)?;
        let resolved = current.snapshot.resolve(&reference)?;
        let compiled = state.compiled(&current, reference.id(), &resolved)?;
        let mut render = RenderRequest::new().strict(request.strict);
        if let Some(n) = request.test_case {
            render = render.test_case(n);
        }
        let render = render.values(&request.variables)?;
        let outcome = render.render(&compiled)?;
        let (number, commit) = match resolved {
            Resolved::Version { number, commit } => (Some(number), commit.to_string()),
            Resolved::Tip { commit } => (None, commit.to_string()),
            Resolved::Work => (None, current.commit.clone()),
        };
        let rendered = outcome.rendered;
        let request_body = crate::render::chat::request_body(&rendered, None).ok();
        let messages = match &rendered.output {
            Output::Messages { messages } => messages
                .iter()
                .map(|m| RenderedMessage {
                    role: m.role.to_string(),
                    content: m.content.clone(),
                })
                .collect(),
            Output::Text { text } => vec![RenderedMessage {
                role: "user".into(),
                content: text.clone(),
            }],
        };
        let doc = RenderDoc {
            id: rendered.id.clone(),
            version: number,
            commit,
            model: rendered.model.clone(),
            model_parameters: rendered.model_parameters.clone(),
            messages,
            unused: outcome.unused,
            request: request_body,
        };
        fresh_json(&doc)
    };
    answer().unwrap_or_else(IntoResponse::into_response)
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

/// The change events, from after `Last-Event-ID` when it is given.
#[utoipa::path(get, path = "/v1/events",
    params(("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event")),
    responses((status = 200, description = "`text/event-stream`: one `snapshot` event per new snapshot, its data a Change", body = crate::serve::events::Change), (status = 503, body = Problem, description = "every event stream the server keeps open is taken (`Retry-After`)")))]
pub(crate) async fn events(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let after: u64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    // Each stream holds a connection and a receiver for as long as the client likes: their
    // number is bounded, and one over the bound is told to come back.
    let Some(slot) = state.events.open_stream() else {
        let mut response = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too-many-streams",
            "every event stream this server keeps open is taken",
        )
        .with_hint("retry later, or raise --max-event-streams")
        .into_response();
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("5"),
        );
        return response;
    };
    // Subscribe first, then replay what was kept: nothing falls between the two, and what
    // is in both is sent once.
    let receiver = state.events.sender.subscribe();
    let replay = state.events.since(after);
    let last = replay.last().map_or(after, |c| c.seq);
    let replayed = futures_util::stream::iter(
        replay
            .into_iter()
            .map(|c| Ok::<Event, Infallible>(crate::serve::events::event(&c))),
    );
    let closing = state.events.closing.subscribe();
    let live = futures_util::stream::unfold(
        (receiver, last, closing, slot),
        |(mut receiver, last, mut closing, slot)| async move {
            loop {
                if *closing.borrow() {
                    return None;
                }
                let received = tokio::select! {
                    received = receiver.recv() => received,
                    _ = closing.changed() => return None,
                };
                match received {
                    Ok(change) if change.seq <= last => continue,
                    Ok(change) => {
                        let seq = change.seq;
                        return Some((
                            Ok::<Event, Infallible>(crate::serve::events::event(&change)),
                            (receiver, seq, closing, slot),
                        ));
                    }
                    // Too slow a reader missed some: it reconnects with its last id and gets
                    // the rest from what is kept.
                    Err(broadcast::error::RecvError::Lagged(_)) => return None,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    use futures_util::StreamExt;
    Sse::new(replayed.chain(live))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// A push webhook (GitHub, GitLab, Gitea): checked, then a fetch starts at once.
#[utoipa::path(post, path = "/v1/hooks/push",
    request_body(content = String, description = "The push event, as the git host sends it"),
    responses((status = 202, description = "a fetch was started"), (status = 401, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn hook(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let Some(following) = state.following.as_ref() else {
        return Problem::new(
            StatusCode::CONFLICT,
            "not-following",
            "this server does not follow a remote, so a push webhook has nothing to fetch",
        )
        .with_hint("start it with --follow REMOTE")
        .into_response();
    };
    let bytes = match crate::serve::http::read_body_limited(
        body,
        crate::serve::follow::MAX_HOOK_BODY,
    )
    .await
    {
        Ok(bytes) => bytes,
        Err(problem) => return problem.into_response(),
    };
    let Some(secret) = following.follow.hook_secret.as_deref() else {
        tracing::warn!("push webhook refused: no hook secret is configured");
        return Problem::new(
            StatusCode::UNAUTHORIZED,
            "unsigned",
            "this server takes no webhooks: it has no hook secret",
        )
        .with_hint("give the secret with --hook-secret-file FILE or PROMPTREG_HOOK_SECRET")
        .into_response();
    };
    if !crate::serve::follow::signed(&headers, &bytes, secret) {
        tracing::warn!("push webhook refused: bad or missing signature");
        return Problem::new(
            StatusCode::UNAUTHORIZED,
            "bad-signature",
            "the webhook's signature does not match the secret",
        )
        .with_hint("GitHub and Gitea sign with X-Hub-Signature-256, GitLab sends X-Gitlab-Token")
        .into_response();
    }
    following.wake.notify_one();
    (StatusCode::ACCEPTED, "fetching\n").into_response()
}

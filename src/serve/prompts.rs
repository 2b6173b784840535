//! One prompt over HTTP: its document at a version (`/v1/prompts/ID`) and its versions
//! (`/v1/versions/ID`), and the reference a request names.

// A problem becomes the response at once: its size is paid once per failed request.
#![allow(clippy::result_large_err)]

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::error::Error;
use crate::format::prompt::Body;
use crate::history::VersionIndex;
use crate::registry::reference::{Reference, Selector};
use crate::registry::Resolved;
use crate::render::CompiledPrompt;
use crate::serve::current::Current;
use crate::serve::http::{cached_json, etag, id_tag, to_json, to_json_vec, Params, Problem, SHORT};
use crate::serve::state::Shared;

// ---------------------------------------------------------------------------------------
// One prompt

/// Which version. With more than one (or with `@` in the path too), every one must name the
/// same version, else the answer is 404.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct VersionQuery {
    /// A version number (1-based).
    #[param(minimum = 1)]
    version: Option<u32>,
    /// A label of `defaults.yaml`.
    #[param(min_length = 1)]
    label: Option<String>,
    /// A commit (7 to 40 hex digits): the version current at it.
    #[param(pattern = "^[0-9a-fA-F]{7,40}$")]
    commit: Option<String>,
}

/// Which version, and what the document adds.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PromptQuery {
    /// A version number (1-based).
    #[param(minimum = 1)]
    version: Option<u32>,
    /// A label of `defaults.yaml`.
    #[param(min_length = 1)]
    label: Option<String>,
    /// A commit (7 to 40 hex digits): the version current at it.
    #[param(pattern = "^[0-9a-fA-F]{7,40}$")]
    commit: Option<String>,
    /// `versions` adds every version of the prompt, newest first.
    #[param(inline, value_type = Option<Expand>)]
    expand: Option<String>,
}

/// What a prompt's document can add.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum Expand {
    /// Every version, newest first.
    Versions,
}

/// A declared variable.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VariableDoc {
    name: String,
    #[serde(rename = "type")]
    ty: &'static str,
    required: bool,
    /// The default value, of the variable's type.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
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
    /// `text`, `json_object` or `json_schema` (as the file says it).
    #[serde(rename = "responseFormat", skip_serializing_if = "Option::is_none")]
    response_format: Option<String>,
    /// The JSON schema of a `json_schema` response, as an object (a file may hold it as JSON
    /// text, as GitHub Models' files do; it is parsed).
    #[serde(rename = "jsonSchema", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    json_schema: Option<Map<String, Value>>,
    /// Prompt tokens of every template, before rendering.
    tokens: usize,
    /// The file's text.
    source: String,
    /// Whether applications get this version by default (the manifest's default, else the
    /// latest).
    default: bool,
    /// The labels of `defaults.yaml` that point at this version.
    labels: Vec<String>,
    /// With `expand=versions`: every version, newest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    versions: Option<Vec<VersionDoc>>,
}

/// Whether version `number` of `id` is its default at the served commit, and which labels
/// point at it.
fn marks(
    current: &Current,
    index: Option<&VersionIndex>,
    id: &str,
    number: Option<u32>,
) -> (bool, Vec<String>) {
    let Some(number) = number else {
        return (false, Vec::new());
    };
    let manifest = current.snapshot.manifest();
    let present = current.snapshot.discovery().prompts.contains_key(id);
    let latest = index.and_then(|index| {
        index
            .file_of(id)
            .map(|file| index.versions(&file).len() as u32)
    });
    let default = present
        && match manifest.defaults.get(id) {
            Some(pinned) => *pinned == number,
            None => latest == Some(number),
        };
    let labels = manifest
        .labels
        .iter()
        .filter(|(_, ids)| present && ids.get(id) == Some(&number))
        .map(|(label, _)| label.clone())
        .collect();
    (default, labels)
}

/// The references a path (`ID` or `ID@SELECTOR`) and a query name: one, or the default.
fn references(path: &str, query: &VersionQuery) -> Result<Vec<Reference>, Problem> {
    // A path that is no reference names nothing: 404, as any unknown prompt.
    let parsed = Reference::parse(path).map_err(|err| {
        Problem::new(StatusCode::NOT_FOUND, "bad-reference", err.to_string())
            .with_hint("GET /v1/prompts lists every prompt")
    })?;
    if let Some(version) = query.version {
        if version == 0 {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "usage",
                "version numbers start at 1",
            ));
        }
    }
    if let Some(hex) = &query.commit {
        if hex.len() < 7 || hex.len() > 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "usage",
                format!("commit `{hex}` is not 7 to 40 hex digits"),
            ));
        }
    }
    if query.label.as_deref() == Some("") {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "usage",
            "label is empty",
        ));
    }
    let chosen = [
        query.version.map(Selector::Version),
        query.label.clone().map(Selector::Name),
        query.commit.clone().map(Selector::Name),
    ];
    let mut all = Vec::new();
    if *parsed.selector() != Selector::Default || chosen.iter().all(Option::is_none) {
        all.push(parsed.clone());
    }
    for selector in chosen.into_iter().flatten() {
        let reference = Reference::new(parsed.id(), selector)
            .map_err(|err| Problem::new(StatusCode::NOT_FOUND, "bad-reference", err.to_string()))?;
        all.push(reference);
    }
    Ok(all)
}

/// The version a path and a query name, resolved at the served commit. Several names (`@` in
/// the path, `version`, `label`, `commit`) must all name one version.
pub(crate) fn resolve(
    current: &Current,
    path: &str,
    query: &VersionQuery,
) -> Result<(Reference, Resolved), Problem> {
    let mut chosen: Option<(Reference, Resolved)> = None;
    for reference in references(path, query)? {
        let resolved = current.snapshot.resolve(&reference)?;
        let Some((first, known)) = &chosen else {
            chosen = Some((reference, resolved));
            continue;
        };
        let same = match (known, &resolved) {
            (Resolved::Version { number: a, .. }, Resolved::Version { number: b, .. }) => a == b,
            (a, b) => a == b,
        };
        if !same {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "bad-reference",
                format!("`{first}` and `{reference}` name different versions"),
            )
            .with_hint(
                "name the version once: `@` in the path, or one of version, label and commit",
            ));
        }
        // A number names the version for good: it is the one kept.
        if matches!(reference.selector(), Selector::Version(_)) {
            chosen = Some((reference, resolved));
        }
    }
    chosen.ok_or_else(|| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "no reference was made",
        )
    })
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
    marks: (bool, Vec<String>),
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
        response_format: prompt.response_format.as_ref().map(|format| match format {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        }),
        json_schema: prompt.json_schema.as_ref().and_then(|schema| match schema {
            Value::Object(object) => Some(object.clone()),
            Value::String(text) => serde_json::from_str(text).ok(),
            _ => None,
        }),
        tokens,
        source: compiled.source_text().to_string(),
        default: marks.0,
        labels: marks.1,
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
#[utoipa::path(tag = "api", get, path = "/v1/prompts/{id}",
    params(("id" = String, Path, description = "The prompt id (it may contain `/`), optionally with `@N`, `@LABEL` or `@COMMIT`"), PromptQuery),
    responses((status = 200, body = PromptDoc), (status = 304, description = "unchanged"), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn prompt(
    State(state): State<Shared>,
    Path(path): Path<String>,
    Params(query): Params<PromptQuery>,
    headers: HeaderMap,
) -> Response {
    let current = state.current.load_full();
    let select = VersionQuery {
        version: query.version,
        label: query.label.clone(),
        commit: query.commit.clone(),
    };
    let expand = match query.expand.as_deref() {
        None => false,
        Some("versions") => true,
        Some(other) => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                "usage",
                format!("expand=`{other}` is not known; use expand=versions"),
            )
            .into_response()
        }
    };
    let (reference, resolved) = match resolve(&current, &path, &select) {
        Ok(found) => found,
        Err(problem) => return problem.into_response(),
    };
    // A version compiled before is answered here; one that needs git reads and a compile is
    // answered on the blocking pool, under the time limit, so the async workers stay free.
    let kept = state.is_compiled(&current, reference.id(), &resolved);
    let answer = move || {
        document(&state, &current, &reference, &resolved, expand, &headers)
            .unwrap_or_else(IntoResponse::into_response)
    };
    if kept {
        answer()
    } else {
        crate::serve::pool::on_pool(answer).await
    }
}

/// The document of one version of a prompt, or a 304.
fn document(
    state: &crate::serve::state::State,
    current: &Current,
    reference: &Reference,
    resolved: &Resolved,
    expand: bool,
    headers: &HeaderMap,
) -> Result<Response, Problem> {
    let compiled = state.compiled(current, reference.id(), resolved)?;
    let index = index_of(current)?;
    let facts = facts(current, index, &compiled, resolved)?;
    // The validator names everything the document says: the id (two prompts with the same
    // text at one commit are two documents), the version's commit and blob, and the manifest
    // its default and label marks come from; with the list of versions, the served commit.
    // The marks move, so no document is `immutable`.
    let id = id_tag(reference.id());
    let tag = if expand {
        etag(&["p", &id, &facts.commit, &facts.blob, "x", &current.commit])
    } else {
        etag(&["p", &id, &facts.commit, &facts.blob, &current.manifest_blob])
    };
    // The marks are read only when a body is built: a 304 needs none.
    let marks = || marks(current, index, reference.id(), facts.number);
    Ok(cached_json(headers, &tag, SHORT, || {
        if expand {
            let versions = index.map(|index| versions_of(current, index, reference.id()));
            return to_json(&prompt_doc(
                &compiled,
                &facts,
                marks(),
                Some(versions.unwrap_or_default()),
            ));
        }
        // One version's document never changes: it is built once.
        state.body(&tag, || {
            to_json_vec(&prompt_doc(&compiled, &facts, marks(), None))
        })
    }))
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
#[utoipa::path(tag = "api", get, path = "/v1/versions/{id}",
    params(("id" = String, Path, description = "The prompt id (it may contain `/`)")),
    responses((status = 200, body = VersionList), (status = 304, description = "unchanged"), (status = 404, body = Problem)))]
pub(crate) async fn versions(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let current = state.current.load_full();
    let answer = || -> Result<Response, Problem> {
        // Ids hold no `@`: a path with one names no prompt.
        let reference = Reference::parse(&id)
            .ok()
            .filter(|r| *r.selector() == Selector::Default)
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::NOT_FOUND,
                    "unknown-prompt",
                    format!("no prompt `{}`", id.escape_debug()),
                )
                .with_hint("the versions of a prompt are listed by its id alone, without `@`")
            })?;
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

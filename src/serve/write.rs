//! The write routes (`--allow-writes`, a token that may write): every write is a git commit
//! on the branch `HEAD` names, made in the object database and moved onto the branch by
//! compare-and-swap, so no working copy or index is touched. Writes are serialized; each one
//! answers with the new snapshot's commit, which the next read already serves.

// A problem becomes the response at once: its size is paid once per failed request.
#![allow(clippy::result_large_err)]

use axum::extract::{Extension, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use std::sync::Arc;

use crate::error::Error;
use crate::git::oid::ObjectId;
use crate::git::Identity;
use crate::registry::Snapshot;
use crate::serve::http::read_body;
use crate::serve::http::{etag, to_json, Problem};
use crate::serve::state::Shared;
use crate::write::{apply_to_branch, Branch, Edit};

/// Who is writing: the name of the token, set by the access check.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub String);

/// A new version of a prompt: the file's text, or the prompt as JSON.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum NewVersion {
    /// The file's text.
    Source(NewSource),
    /// The prompt as JSON.
    Prompt(NewPrompt),
}

/// A new version as the file's text.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct NewSource {
    /// The change note: the commit message.
    message: String,
    /// The file's new text (YAML).
    source: String,
}

/// A new version as the prompt in JSON, written as YAML.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct NewPrompt {
    /// The change note: the commit message.
    message: String,
    /// The prompt, as `GET /v1/prompts/ID` gives it or as its file holds it.
    #[schema(value_type = Object)]
    prompt: Value,
}

/// A new version of a prompt, as read (the document's shape is [`NewVersion`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    /// The change note: the commit message.
    message: String,
    /// The file's new text (YAML).
    #[serde(default)]
    source: Option<String>,
    /// Or the prompt as JSON, written as YAML.
    #[serde(default)]
    prompt: Option<serde_json::Map<String, Value>>,
}

/// A version to point a default or label at.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PointBody {
    /// The version (1-based).
    #[serde(deserialize_with = "crate::serve::http::whole")]
    #[schema(minimum = 1)]
    version: u32,
    /// The commit message (one naming the move when not given).
    #[serde(default)]
    message: Option<String>,
}

/// An optional commit message.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessageBody {
    /// The commit message (one naming the change when not given).
    #[serde(default)]
    message: Option<String>,
}

/// What a write made.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Written {
    /// The new commit, which the server now serves.
    commit: String,
    id: String,
    /// The prompt's version after the write (absent after a delete).
    version: Option<u32>,
    /// The commit message.
    message: String,
}

/// The write, once the body is read: the edit, its commit message, and which validator the
/// request's `If-Match` is compared with.
struct Request {
    edit: Edit,
    message: Option<String>,
    validator: Validator,
}

/// What `If-Match` is compared with: the prompt's newest version, or the manifest.
#[derive(Clone, Copy)]
enum Validator {
    Latest,
    Manifest,
}

fn problem(status: StatusCode, kind: &str, detail: impl Into<String>) -> Problem {
    Problem::new(status, kind, detail)
}

/// The answer to a write on a server that takes none.
pub(crate) fn writes_off() -> Response {
    problem(
        StatusCode::FORBIDDEN,
        "writes-off",
        "this server does not take writes: it was started without --allow-writes",
    )
    .with_hint("change prompts through a pull request, or start the server with --allow-writes and an --auth file")
    .into_response()
}

/// The answer to a write, from the snapshot that serves it: the version a default or label
/// now points at, the prompt's newest version after a new version, none after a delete.
fn written(
    state: &crate::serve::state::State,
    edit: &Edit,
    commit: String,
    message: String,
) -> Written {
    let current = state.current.load_full();
    let id = edit.id();
    let latest = || {
        current
            .snapshot
            .index()
            .ok()
            .and_then(|index| index.file_of(id).map(|f| index.versions(&f).len() as u32))
            .filter(|_| current.snapshot.discovery().prompts.contains_key(id))
    };
    let version = match edit {
        Edit::Point { version, .. } => Some(*version),
        Edit::Unpoint { label: None, .. } => latest(),
        Edit::Unpoint { .. } | Edit::Delete { .. } => None,
        _ => latest(),
    };
    Written {
        commit,
        id: id.to_string(),
        version,
        message,
    }
}

/// The branch the server writes to: the one `HEAD` names, moved by compare-and-swap, or on a
/// replica the remote's branch it follows, moved by a push. Its tip is always the snapshot the
/// server serves, refreshed first.
struct Served<'s> {
    state: &'s crate::serve::state::State,
    /// The full ref of `HEAD`'s branch, when not following.
    local: Option<String>,
}

/// How many times a write waits for the served snapshot to catch up with the branch.
const LAG: usize = 3;

impl Branch for Served<'_> {
    fn tip(&mut self) -> Result<Arc<Snapshot>, Error> {
        for _ in 0..LAG {
            self.state.refresh()?;
            let current = self.state.current.load_full();
            let Some(branch) = &self.local else {
                // A replica writes to the branch it follows, on top of the tip it serves.
                return Ok(current.snapshot.clone());
            };
            let repo = self.state.registry.require_repo()?;
            let (head, tip) = repo.head_branch()?;
            drop(repo);
            if head != *branch {
                return Err(Error::Conflict(format!(
                    "HEAD moved from {branch} to {head} while the write was made; nothing was written"
                )));
            }
            if tip.map(|t| t.to_string()).as_deref() == Some(current.commit.as_str()) {
                return Ok(current.snapshot.clone());
            }
            // The snapshot lags the branch by a moment: take the next one.
        }
        Err(Error::Conflict("the branch kept moving; try again".into()))
    }

    fn publish(&mut self, base: ObjectId, commit: ObjectId, message: &str) -> Result<bool, Error> {
        let published = match (&self.local, &self.state.following) {
            (Some(branch), _) => {
                let repo = self.state.registry.require_repo()?;
                match repo.move_branch(branch, Some(base), commit, message) {
                    Ok(()) => true,
                    Err(Error::Conflict(_)) => false,
                    Err(other) => return Err(other),
                }
            }
            (None, Some(following)) => crate::serve::follow::push(
                &following.follow,
                &base.to_string(),
                &commit.to_string(),
            )?,
            (None, None) => return Err(Error::Internal("a write with no branch".into())),
        };
        self.state.refresh()?;
        Ok(published)
    }

    fn describe(&self) -> String {
        match (&self.local, &self.state.following) {
            (Some(branch), _) => branch.trim_start_matches("refs/heads/").to_string(),
            (None, Some(following)) => format!("the remote's {}", following.follow.branch),
            (None, None) => "the branch".into(),
        }
    }
}

/// The validator `If-Match` is compared with, at `snapshot` (`None`: nothing exists).
fn validator_at(snapshot: &Snapshot, id: &str, validator: Validator) -> Option<String> {
    match validator {
        Validator::Latest => latest_etag(snapshot, id),
        Validator::Manifest => crate::serve::current::manifest_blob(snapshot)
            .ok()
            .map(|blob| etag(&["m", &blob])),
    }
}

/// Runs a write: serialized, through the library's [`apply_to_branch`] (planned on the newest
/// tip, planned again when the branch moved), then answered from the snapshot that serves it.
async fn write(
    state: Shared,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    if !state.allow_writes {
        return writes_off();
    }
    let Some(Extension(Caller(name))) = caller else {
        return problem(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a token that may write is needed",
        )
        .into_response();
    };
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let task = tokio::task::spawn_blocking(move || -> Result<(StatusCode, Written), Problem> {
        let _one_at_a_time = state
            .write_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let author: Option<Identity> = state.tokens.as_ref().and_then(|t| t.identity(&name));
        let (local, short) = match &state.following {
            Some(following) => (None, following.follow.branch.clone()),
            None => {
                let repo = state.registry.repo().ok_or_else(|| {
                    problem(
                        StatusCode::CONFLICT,
                        "no-history",
                        "the registry is not in a git repository",
                    )
                })?;
                let (branch, _) = repo.head_branch().map_err(Problem::from)?;
                let short = branch.trim_start_matches("refs/heads/").to_string();
                (Some(branch), short)
            }
        };
        if state
            .tokens
            .as_ref()
            .is_some_and(|t| t.is_protected(&short))
        {
            return Err(problem(
                StatusCode::FORBIDDEN,
                "protected",
                format!("branch {short} is protected in the auth file: change it through a pull request"),
            ));
        }
        let id = request.edit.id().to_string();
        let mut precondition = |tip: &Snapshot| -> Result<(), Error> {
            let Some(expected) = &if_match else {
                return Ok(());
            };
            let tag = validator_at(tip, &id, request.validator);
            let matches = match &tag {
                Some(tag) => expected == "*" || expected.split(',').any(|e| e.trim() == tag),
                None => false,
            };
            if matches {
                return Ok(());
            }
            Err(Error::Stale(format!(
                "If-Match {expected} is not the current version ({})",
                tag.as_deref().unwrap_or("none")
            )))
        };
        let mut branch = Served {
            state: &state,
            local,
        };
        let landed = apply_to_branch(
            &mut branch,
            &request.edit,
            request.message.as_deref(),
            author.as_ref(),
            &mut precondition,
        )
        .map_err(Problem::from)?;
        let (status, commit) = match landed.commit {
            // The same value again: a success that commits nothing.
            None => (StatusCode::OK, landed.base.commit().to_string()),
            Some(commit) => (StatusCode::CREATED, commit.to_string()),
        };
        let message = landed.plan.message().to_string();
        Ok((status, written(&state, landed.plan.edit(), commit, message)))
    });
    match task.await {
        Ok(Ok((status, written))) => match to_json(&written) {
            Ok(body) => {
                let mut response = (status, body).into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
            Err(p) => p.into_response(),
        },
        Ok(Err(problem)) => problem.into_response(),
        Err(err) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the write stopped: {err}"),
        )
        .into_response(),
    }
}

/// The fields of a prompt's document (`GET /v1/prompts/ID`) that describe where and what a
/// version is, rather than what its file says.
const READ_ONLY: [&str; 14] = [
    "id", "file", "version", "commit", "blob", "author", "email", "time", "message", "tokens",
    "source", "default", "labels", "versions",
];

/// A prompt as its file holds it, from either the file's form or the document `GET` returns:
/// the read-only fields dropped, `variables` as a mapping by name, messages without their
/// token counts, and nothing empty or null. So a document can be sent back as it was read.
fn file_form(mut prompt: Map<String, Value>) -> Map<String, Value> {
    for field in READ_ONLY {
        prompt.remove(field);
    }
    if let Some(Value::Array(variables)) = prompt.get("variables").cloned() {
        let mut by_name = Map::new();
        for variable in variables {
            let Value::Object(mut variable) = variable else {
                continue;
            };
            let Some(Value::String(name)) = variable.remove("name") else {
                continue;
            };
            variable.retain(|_, v| !v.is_null());
            by_name.insert(name, Value::Object(variable));
        }
        prompt.insert("variables".into(), Value::Object(by_name));
    }
    if let Some(Value::Array(messages)) = prompt.get_mut("messages") {
        for message in messages.iter_mut() {
            if let Value::Object(message) = message {
                message.remove("tokens");
            }
        }
    }
    prompt.retain(|_, v| match v {
        Value::Null => false,
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
        _ => true,
    });
    prompt
}

fn parse_body<T: for<'de> Deserialize<'de> + Default>(
    bytes: &[u8],
    what: &str,
) -> Result<T, Problem> {
    crate::serve::http::json_object(bytes, what, true)
}

/// A plain id: no `@`, and one a write may name (the library's rule, [`crate::write::check_id`]).
fn plain_id(path: &str) -> Result<String, Problem> {
    // The library's rule refuses `@` too: a write never names a version.
    crate::write::check_id(path).map_err(Problem::from)?;
    Ok(path.to_string())
}

/// The validator of a prompt's newest version in `current`, as `GET /v1/prompts/ID@latest`
/// gives it.
fn latest_etag(snapshot: &Snapshot, id: &str) -> Option<String> {
    let index = snapshot.index().ok()?;
    let file = index.file_of(id)?;
    let version = index.versions(&file).last()?;
    let manifest = crate::serve::current::manifest_blob(snapshot).ok()?;
    Some(etag(&[
        "p",
        &crate::serve::http::id_tag(id),
        &index.commit(version).id.to_string(),
        &version.blob.to_string(),
        &manifest,
    ]))
}

/// Creates the next version of a prompt (or its first).
#[utoipa::path(post, path = "/v1/prompts/{id}",
    params(("id" = String, Path, description = "The prompt id (it may contain `/`)")),
    request_body = NewVersion,
    responses((status = 201, body = Written, description = "committed: the new commit is served"), (status = 200, body = Written, description = "the same value again: nothing was committed"), (status = 400, body = Problem), (status = 403, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn create(
    State(state): State<Shared>,
    caller: Option<Extension<Caller>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let prepared = async {
        let bytes = read_body(body).await?;
        let request: CreateBody = crate::serve::http::json_object(&bytes, "a new version", false).map_err(|p| {
            p.with_hint("send {\"message\": \"what changed\", \"source\": \"<the YAML>\"} or {\"message\": ..., \"prompt\": {...}}")
        })?;
        let id = plain_id(&path)?;
        crate::write::check_message(&request.message).map_err(Problem::from)?;
        let text = match (request.source, request.prompt) {
            (Some(text), None) => text,
            (None, Some(prompt)) => serde_yaml::to_string(&file_form(prompt)).map_err(|e| {
                problem(
                    StatusCode::BAD_REQUEST,
                    "bad-body",
                    format!("the prompt cannot be written as YAML: {e}"),
                )
            })?,
            _ => {
                return Err(problem(
                    StatusCode::BAD_REQUEST,
                    "bad-body",
                    "give exactly one of `source` (YAML text) and `prompt` (JSON)",
                ))
            }
        };
        Ok((id, text, request.message))
    };
    let (id, text, message) = match prepared.await {
        Ok(found) => found,
        Err(p) => return p.into_response(),
    };
    let request = Request {
        edit: Edit::Commit {
            id,
            source: text,
            file: None,
        },
        message: Some(message),
        validator: Validator::Latest,
    };
    write(state, caller, headers, request).await
}

/// Deletes a prompt: a commit that removes its file (and its lines of `defaults.yaml`); its
/// history stays readable by version and commit.
#[utoipa::path(delete, path = "/v1/prompts/{id}",
    params(("id" = String, Path, description = "The prompt id (it may contain `/`)")),
    request_body(content = Option<MessageBody>, description = "An optional commit message"),
    responses((status = 201, body = Written, description = "committed: the new commit is served"), (status = 200, body = Written, description = "the same value again: nothing was committed"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 412, body = Problem)))]
pub(crate) async fn delete(
    State(state): State<Shared>,
    caller: Option<Extension<Caller>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let prepared = async {
        let bytes = read_body(body).await?;
        let request: MessageBody = parse_body(&bytes, "a commit message")?;
        Ok::<_, Problem>((plain_id(&path)?, request.message))
    };
    let (id, message) = match prepared.await {
        Ok(found) => found,
        Err(p) => return p.into_response(),
    };
    let request = Request {
        edit: Edit::Delete { id },
        message,
        validator: Validator::Latest,
    };
    write(state, caller, headers, request).await
}

/// Where a default or label write points.
fn point(
    state: Shared,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    id: String,
    label: Option<String>,
    version: Option<u32>,
    message: Option<String>,
) -> impl std::future::Future<Output = Response> {
    let edit = match version {
        Some(version) => Edit::Point { label, id, version },
        None => Edit::Unpoint { label, id },
    };
    let request = Request {
        edit,
        message,
        validator: Validator::Manifest,
    };
    write(state, caller, headers, request)
}

async fn point_request(
    state: Shared,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    path: &str,
    label: Option<String>,
    body: axum::body::Body,
    set: bool,
) -> Response {
    let prepared = async {
        let bytes = read_body(body).await?;
        let id = plain_id(path)?;
        if let Some(why) = label
            .as_deref()
            .and_then(crate::format::manifest::label_problem)
        {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "usage",
                format!(
                    "`{}` cannot be a label: {why}",
                    label.as_deref().unwrap_or("")
                ),
            ));
        }
        if set {
            let request: PointBody = crate::serve::http::json_object(&bytes, "a version", false)
                .map_err(|p| p.with_hint("send {\"version\": N}"))?;
            Ok((id, Some(request.version), request.message))
        } else {
            let request: MessageBody = parse_body(&bytes, "a commit message")?;
            Ok((id, None, request.message))
        }
    };
    match prepared.await {
        Ok((id, version, message)) => {
            point(state, caller, headers, id, label, version, message).await
        }
        Err(p) => p.into_response(),
    }
}

/// Points a prompt's default at a version.
#[utoipa::path(put, path = "/v1/manifest/defaults/{id}",
    params(("id" = String, Path, description = "The prompt id (it may contain `/`)")),
    request_body = PointBody,
    responses((status = 201, body = Written, description = "committed: the new commit is served"), (status = 200, body = Written, description = "the same value again: nothing was committed"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 412, body = Problem)))]
pub(crate) async fn set_default(
    State(state): State<Shared>,
    caller: Option<Extension<Caller>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    point_request(state, caller, headers, &path, None, body, true).await
}

/// Removes a prompt's default: it gets its latest version again.
#[utoipa::path(delete, path = "/v1/manifest/defaults/{id}",
    params(("id" = String, Path, description = "The prompt id (it may contain `/`)")),
    request_body(content = Option<MessageBody>, description = "An optional commit message"),
    responses((status = 201, body = Written, description = "committed: the new commit is served"), (status = 200, body = Written, description = "the same value again: nothing was committed"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 412, body = Problem)))]
pub(crate) async fn unset_default(
    State(state): State<Shared>,
    caller: Option<Extension<Caller>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    point_request(state, caller, headers, &path, None, body, false).await
}

/// Points a label at a version of a prompt.
#[utoipa::path(put, path = "/v1/manifest/labels/{label}/{id}",
    params(("label" = String, Path, description = "The label"), ("id" = String, Path, description = "The prompt id (it may contain `/`)")),
    request_body = PointBody,
    responses((status = 201, body = Written, description = "committed: the new commit is served"), (status = 200, body = Written, description = "the same value again: nothing was committed"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 412, body = Problem)))]
pub(crate) async fn set_label(
    State(state): State<Shared>,
    caller: Option<Extension<Caller>>,
    Path((label, path)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    point_request(state, caller, headers, &path, Some(label), body, true).await
}

/// Removes a label from a prompt.
#[utoipa::path(delete, path = "/v1/manifest/labels/{label}/{id}",
    params(("label" = String, Path, description = "The label"), ("id" = String, Path, description = "The prompt id (it may contain `/`)")),
    request_body(content = Option<MessageBody>, description = "An optional commit message"),
    responses((status = 201, body = Written, description = "committed: the new commit is served"), (status = 200, body = Written, description = "the same value again: nothing was committed"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 412, body = Problem)))]
pub(crate) async fn unset_label(
    State(state): State<Shared>,
    caller: Option<Extension<Caller>>,
    Path((label, path)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    point_request(state, caller, headers, &path, Some(label), body, false).await
}

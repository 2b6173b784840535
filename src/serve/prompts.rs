//! One prompt over HTTP: its document at a version (`/v1/prompts/ID`) and its versions
//! (`/v1/versions/ID`), and the reference a request names.

// A problem becomes the response at once: its size is paid once per failed request.
#![allow(clippy::result_large_err)]

use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::Error;
use crate::history::VersionIndex;
pub(crate) use crate::registry::document::{
    facts, marks, prompt_doc, versions_of, PromptDoc, VersionDoc,
};
use crate::registry::reference::{Reference, Selector};
use crate::registry::Resolved;
use crate::serve::current::Current;
use crate::serve::http::{
    cached_json, etag, id_tag, to_json, to_json_vec, Answer, Params, Problem, SHORT,
};
use crate::serve::state::Shared;

// ---------------------------------------------------------------------------------------
// One prompt

/// Which version. With more than one (or with `@` in the path too), every one must name the
/// same version, else the answer is 404.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
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

/// Which version, and what the document adds. The fields of [`VersionQuery`] are repeated, not
/// flattened: under `#[serde(flatten)]` serde_urlencoded hands every value over as text, so
/// `version=2` would no longer read as a number.
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

/// Whether the path or the query may name a commit: a `commit` parameter, or a name (after `@`,
/// or as `label`) that is no label of the manifest. Resolving one reads git and walks history.
pub(crate) fn names_a_commit(current: &Current, path: &str, query: &VersionQuery) -> bool {
    let labels = &current.snapshot.manifest().labels;
    let not_a_label = |name: &str| !labels.contains_key(name);
    query.commit.is_some()
        || query.label.as_deref().is_some_and(not_a_label)
        || Reference::parse(path)
            .is_ok_and(|r| matches!(r.selector(), Selector::Name(name) if not_a_label(name)))
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

/// The snapshot's version index, `None` in a shallow clone.
pub(crate) fn index_of(current: &Current) -> Result<Option<&VersionIndex>, Problem> {
    crate::registry::document::index_of(&current.snapshot).map_err(Problem::from)
}

/// One prompt at its default, or at the version the path or query names.
#[utoipa::path(tag = "api", get, path = "/v1/prompts/{id}",
    params(("id" = String, Path, description = "The prompt id (it may contain `/`), optionally with `@N`, `@LABEL` or `@COMMIT`"), PromptQuery),
    responses((status = 200, body = PromptDoc), (status = 304, description = "unchanged"), (status = 404, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem, description = "every render slot stayed taken (`Retry-After`): the first read of a version compiles it, and a read naming a commit looks it up, on the render pool")))]
pub(crate) async fn prompt(State(state): State<Shared>, request: Request) -> Response {
    let current = state.current.load_full();
    // At one commit a request target names one document: a repeated one is answered as it was.
    let target = crate::serve::current::target(request.uri());
    if let Some(answer) = current.answers.get(target) {
        return answer.respond(request.headers());
    }
    let target: Box<str> = target.into();
    let (mut parts, _) = request.into_parts();
    let path = match Path::<String>::from_request_parts(&mut parts, &state).await {
        Ok(Path(path)) => path,
        Err(rejection) => return rejection.into_response(),
    };
    let query = match Params::<PromptQuery>::from_request_parts(&mut parts, &state).await {
        Ok(Params(query)) => query,
        Err(problem) => return problem.into_response(),
    };
    let headers = parts.headers;
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
    // A commit is looked up in git and history walked back to it (up to the whole first-parent
    // chain): a read that may name one is resolved on the blocking pool. Any other is resolved
    // here, and answered here when its version is compiled.
    let found = match names_a_commit(&current, &path, &select) {
        true => None,
        false => match resolve(&current, &path, &select) {
            Ok(found) => Some(found),
            Err(problem) => return problem.into_response(),
        },
    };
    if let Some((reference, resolved)) = &found {
        if state.is_compiled(&current, reference.id(), resolved) {
            return answer(
                &state, &current, reference, resolved, expand, &headers, target,
            );
        }
    }
    // Git reads and a compile: on the blocking pool, under the time limit, so the async
    // workers stay free.
    crate::serve::pool::on_pool(move || {
        match found.map_or_else(|| resolve(&current, &path, &select), Ok) {
            Ok((reference, resolved)) => answer(
                &state, &current, &reference, &resolved, expand, &headers, target,
            ),
            Err(problem) => problem.into_response(),
        }
    })
    .await
}

/// The answer of one version, kept by its request target for the next time it is asked.
fn answer(
    state: &crate::serve::state::State,
    current: &Current,
    reference: &Reference,
    resolved: &Resolved,
    expand: bool,
    headers: &axum::http::HeaderMap,
    target: Box<str>,
) -> Response {
    match document(state, current, reference, resolved, expand) {
        Ok(answer) => {
            let response = answer.respond(headers);
            let size = answer.size();
            current.answers.keep(target, answer, size);
            response
        }
        Err(problem) => problem.into_response(),
    }
}

/// The document of one version of a prompt.
fn document(
    state: &crate::serve::state::State,
    current: &Current,
    reference: &Reference,
    resolved: &Resolved,
    expand: bool,
) -> Result<Answer, Problem> {
    let compiled = state.compiled(current, reference.id(), resolved)?;
    let index = index_of(current)?;
    let facts = facts(&current.snapshot, index, &compiled, resolved)?;
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
    let marks = marks(&current.snapshot, index, reference.id(), facts.number);
    let body = if expand {
        let versions = index.map(|index| versions_of(&current.snapshot, index, reference.id()));
        to_json(&prompt_doc(
            &compiled,
            &facts,
            marks,
            Some(versions.unwrap_or_default()),
        ))?
    } else {
        // One version's document never changes: it is built once.
        state.body(&tag, || {
            to_json_vec(&prompt_doc(&compiled, &facts, marks, None))
        })?
    };
    Ok(Answer::new(&tag, SHORT, body))
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
            let versions = versions_of(&current.snapshot, index, reference.id());
            let latest = versions.first().map(|v| v.version());
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

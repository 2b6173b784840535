//! `POST /v1/render/ID`: a version rendered with the values a request sends.

// A problem becomes the response at once: its size is paid once per failed request.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Request, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::registry::reference::Reference;
use crate::registry::Resolved;
use crate::render::chat::{Messages, RequestBody};
use crate::render::json;
use crate::render::request::RenderRequest;
use crate::serve::current::{target, Current};
use crate::serve::http::{fresh, read_body, unwritable, Params, Problem};
use crate::serve::prompts::{names_a_commit, VersionQuery};
use crate::serve::state::Shared;

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
    #[serde(
        default,
        rename = "testCase",
        deserialize_with = "crate::serve::http::whole_opt"
    )]
    #[schema(minimum = 0, maximum = 4294967295_u64)]
    test_case: Option<u32>,
}

/// A rendered prompt, ready for a chat API.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RenderDoc<'r> {
    id: &'r str,
    version: Option<u32>,
    commit: &'r str,
    model: Option<&'r str>,
    #[serde(rename = "modelParameters")]
    #[schema(value_type = Object)]
    model_parameters: &'r Map<String, Value>,
    /// The rendered messages (a single-template prompt is one user message).
    #[schema(value_type = Vec<RenderedMessage>)]
    messages: Messages<'r>,
    /// Given names the prompt does not use.
    unused: Vec<String>,
    /// Prompt tokens of the rendered messages (o200k_base).
    tokens: usize,
    /// The body of an OpenAI-compatible chat-completions request, when the prompt names a
    /// model.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    request: Option<RequestBody<'r>>,
}

impl RenderDoc<'_> {
    /// The document as JSON: the bytes its `Serialize` writes, written by hand so that the
    /// messages, most of it and in it twice (as rendered, and in the chat request), are
    /// escaped once and fast (`render::json`).
    fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        let text: usize = self.messages.0.messages().map(|(_, c)| c.len()).sum();
        let mut out = Vec::with_capacity(2 * (text + text / 8) + 1024);
        out.extend_from_slice(b"{\"id\":");
        json::write_str(&mut out, self.id);
        out.extend_from_slice(b",\"version\":");
        serde_json::to_writer(&mut out, &self.version)?;
        out.extend_from_slice(b",\"commit\":");
        json::write_str(&mut out, self.commit);
        out.extend_from_slice(b",\"model\":");
        serde_json::to_writer(&mut out, &self.model)?;
        out.extend_from_slice(b",\"modelParameters\":");
        serde_json::to_writer(&mut out, self.model_parameters)?;
        out.extend_from_slice(b",\"messages\":");
        let start = out.len();
        json::write_messages(&mut out, self.messages.0);
        let messages = start..out.len();
        out.extend_from_slice(b",\"unused\":");
        serde_json::to_writer(&mut out, &self.unused)?;
        out.extend_from_slice(b",\"tokens\":");
        serde_json::to_writer(&mut out, &self.tokens)?;
        if let Some(request) = &self.request {
            out.extend_from_slice(b",\"request\":");
            request.write_json(&mut out, messages)?;
        }
        out.push(b'}');
        Ok(out)
    }
}

// Only its schema is used: the document's messages are `chat::Messages`, written by
// `render::json` from the rendered prompt.
/// A rendered message.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct RenderedMessage {
    role: String,
    content: String,
}

/// Renders a prompt at its default, or at the version the path or query names.
#[utoipa::path(tag = "api", post, path = "/v1/render/{id}",
    params(("id" = String, Path, description = "The prompt id (it may contain `/`), optionally with `@N`, `@LABEL` or `@COMMIT`"), VersionQuery),
    request_body(content = Option<RenderBody>, description = "Optional: the values, a test case, strictness"),
    responses((status = 200, body = RenderDoc), (status = 400, body = Problem), (status = 404, body = Problem), (status = 408, body = Problem, description = "the render did not finish within the request's time limit"), (status = 413, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem, description = "every render slot stayed taken (`Retry-After`)")))]
pub(crate) async fn render(State(state): State<Shared>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let current = state.current.load_full();
    // At one commit a request target names one version: a target resolved before is not even
    // parsed again.
    let named = match current.resolutions.get(target(&parts.uri)) {
        Some(version) => Named::Known(version),
        None => match Named::parse(&mut parts, &state).await {
            Ok(named) => named,
            Err(rejected) => return rejected,
        },
    };
    let bytes = match read_body(body).await {
        Ok(bytes) => bytes,
        Err(problem) => return problem.into_response(),
    };
    // A small request for a compiled prompt whose render is linear in its values is answered
    // here: its cost is bounded and small, like a GET's. Otherwise what was read to find that
    // out goes with the work to the pool.
    let (request, named) = if bytes.len() <= INLINE_BODY {
        match inline(&state, &current, named, &bytes) {
            Inline::Answered(answer) => return answer.unwrap_or_else(IntoResponse::into_response),
            Inline::ToPool(request, named) => (Some(request), named),
        }
    } else {
        (None, named)
    };
    // Compiling and rendering are CPU work: they run on the blocking pool, a few at a time, so
    // the async workers stay free (`/healthz` answers while hostile renders run), and under the
    // request's time limit.
    crate::serve::pool::on_pool(move || {
        let answer = || -> Result<Response, Problem> {
            let request = match request {
                Some(request) => request,
                None => read_request(&bytes)?,
            };
            let version = named.resolve(&current)?;
            let (reference, resolved) = &*version;
            let compiled = state.compiled(&current, reference.id(), resolved)?;
            respond(&current, resolved, &compiled, request)
        };
        answer().unwrap_or_else(IntoResponse::into_response)
    })
    .await
}

/// A version a render names, resolved.
type Version = Arc<(Reference, Resolved)>;

/// The version a render request names.
enum Named {
    /// Resolved before, at the commit served.
    Known(Version),
    /// Not yet resolved: the target, and its path and query read.
    Parsed {
        target: Box<str>,
        path: String,
        query: VersionQuery,
    },
}

impl Named {
    /// Reads the path and query of a request (a rejection is the response).
    async fn parse(
        parts: &mut axum::http::request::Parts,
        state: &Shared,
    ) -> Result<Named, Response> {
        let Path(path) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Params(query) = Params::<VersionQuery>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Named::Parsed {
            target: target(&parts.uri).into(),
            path,
            query,
        })
    }

    /// Whether resolving it looks a commit up in git (and walks history back to it).
    fn names_a_commit(&self, current: &Current) -> bool {
        match self {
            Named::Known(_) => false,
            Named::Parsed { path, query, .. } => names_a_commit(current, path, query),
        }
    }

    /// The version, as resolved before, or resolved now at `current` and kept there.
    fn resolve(self, current: &Current) -> Result<Version, Problem> {
        let (target, path, query) = match self {
            Named::Known(version) => return Ok(version),
            Named::Parsed {
                target,
                path,
                query,
            } => (target, path, query),
        };
        let version = Arc::new(crate::serve::prompts::resolve(current, &path, &query)?);
        // The entry and the reference's strings, which the target holds and are no longer.
        let size = std::mem::size_of::<(Reference, Resolved)>() + target.len();
        current.resolutions.keep(target, version.clone(), size);
        Ok(version)
    }
}

/// What [`inline`] made of a render request.
enum Inline {
    /// Answered on the async worker: the document, or the problem.
    Answered(Result<Response, Problem>),
    /// For the blocking pool, with the request read and the version it names.
    ToPool(RenderBody, Named),
}

/// The largest request body rendered without the blocking pool.
const INLINE_BODY: usize = 4 << 10;

/// How much a render without the blocking pool may read, at most: the places the templates
/// read values times the size of the request (which holds the values). What it builds and
/// what its tokens are counted over is a few times that.
const INLINE_READ: usize = 16 << 10;

/// The answer, when the render may run on the async worker: the prompt is compiled, it
/// renders linearly in its values (no loop, call, include or assignment) and the values are
/// few. A request that does not read, or names nothing, is answered here too: finding that out
/// is as cheap.
fn inline(
    state: &crate::serve::state::State,
    current: &Current,
    named: Named,
    bytes: &[u8],
) -> Inline {
    let request = match read_request(bytes) {
        Ok(request) => request,
        Err(problem) => return Inline::Answered(Err(problem)),
    };
    // A test case's values come from the file, whatever their size; a commit not resolved
    // before is looked up in git and its place in history walked.
    if request.test_case.is_some() || named.names_a_commit(current) {
        return Inline::ToPool(request, named);
    }
    let version = match named.resolve(current) {
        Ok(version) => version,
        Err(problem) => return Inline::Answered(Err(problem)),
    };
    let (reference, resolved) = &*version;
    let linear = state
        .kept_compiled(current, reference.id(), resolved)
        .and_then(|compiled| Some((compiled.linear_reads()?, compiled)));
    match linear {
        Some((reads, compiled)) if reads.saturating_mul(bytes.len().max(1)) <= INLINE_READ => {
            Inline::Answered(respond(current, resolved, &compiled, request))
        }
        _ => Inline::ToPool(request, Named::Known(version)),
    }
}

/// A render request, from its body.
fn read_request(bytes: &[u8]) -> Result<RenderBody, Problem> {
    crate::serve::http::json_object(bytes, "a render request", true)
        .map_err(|p| p.with_hint("send JSON like {\"variables\": {\"name\": \"value\"}}"))
}

/// Renders `compiled` with what `request` gives, and the document of it.
fn respond(
    current: &Current,
    resolved: &Resolved,
    compiled: &crate::render::CompiledPrompt,
    request: RenderBody,
) -> Result<Response, Problem> {
    let mut render = RenderRequest::new().strict(request.strict);
    if let Some(n) = request.test_case {
        render = render.test_case(n as usize);
    }
    let outcome = render.variables(request.variables).render_once(compiled)?;
    let mut digits = [0; 40];
    let (number, commit) = match resolved {
        Resolved::Version { number, commit } => (Some(*number), commit.as_hex(&mut digits)),
        Resolved::Tip { commit } => (None, commit.as_hex(&mut digits)),
        Resolved::Work => (None, current.commit.as_str()),
    };
    let rendered = outcome.rendered;
    let doc = RenderDoc {
        id: &rendered.id,
        version: number,
        commit,
        model: rendered.model.as_deref(),
        model_parameters: &rendered.model_parameters,
        messages: Messages(&rendered.output),
        unused: outcome.unused,
        request: RequestBody::new(&rendered, None).ok(),
        tokens: crate::render::tokens::count_rendered(&rendered),
    };
    doc.to_json()
        .map(|json| fresh(json.into()))
        .map_err(unwritable)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use crate::render::chat::{Messages, RequestBody};
    use crate::render::request::RenderRequest;
    use crate::render::CompiledPrompt;
    use crate::serve::render::RenderDoc;

    fn compiled(source: &str) -> CompiledPrompt {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("p.prompt.yaml"), source).expect("write");
        crate::registry::Registry::open(dir.path())
            .and_then(|r| r.load_work("p"))
            .and_then(|p| p.compile())
            .expect("compiles")
    }

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    /// A request rendered once, its values moved, renders and reports what the same request
    /// rendered by reference does: test case first, later inputs winning, unused names once.
    #[test]
    fn a_request_rendered_once_renders_as_one_kept() {
        let p = compiled(
            "variables:\n  n: { type: integer }\n  s: { type: string, default: d }\n\
             template: \"{{ n }} {{ s }}\"\ntestData:\n  - { n: 1, s: a, old: x }\n",
        );
        let requests = [
            RenderRequest::new().variables(map(json!({"n": 2, "extra": 1}))),
            RenderRequest::new()
                .variables(map(json!({"n": 2, "s": "b"})))
                .variables(map(json!({"s": "c", "extra": 1}))),
            RenderRequest::new()
                .test_case(0)
                .variables(map(json!({"s": "b", "extra": 1, "old": 2}))),
            RenderRequest::new()
                .text("n", "7")
                .variables(map(json!({"s": "e", "n": 3})))
                .text("s", "f"),
            RenderRequest::new().variables(Map::new()).text("n", "4"),
        ];
        let expected = [
            ("2 d", vec!["extra"]),
            ("2 c", vec!["extra"]),
            ("1 b", vec!["extra", "old"]),
            ("3 f", vec![]),
            ("4 d", vec![]),
        ];
        for (request, (text, unused)) in requests.into_iter().zip(expected) {
            let kept = request.render(&p).expect("renders");
            let once = request.clone().render_once(&p).expect("renders once");
            assert_eq!(once, kept);
            assert_eq!(once.rendered.to_string(), text);
            assert_eq!(once.unused, unused);
            let (values, _) = request.resolve_values(&p).expect("values");
            assert_eq!(p.render(&values).expect("renders"), once.rendered);
        }
        let strict = RenderRequest::new()
            .strict(true)
            .variables(map(json!({"n": 1, "extra": 1})));
        let err = strict.render_once(&p).expect_err("strict");
        assert_eq!(err.kind(), crate::error::ErrorKind::UnusedVariables);
    }

    /// The document written by hand is, byte for byte, what its `Serialize` writes: with and
    /// without a model (and so a chat request), with parameters (one named `messages`, which
    /// replaces the messages in the request), a response format, one text, and escapes and
    /// non-ASCII in the id, the commit, the values and the templates.
    #[test]
    fn the_document_written_by_hand_is_what_serde_writes() {
        let sources = [
            "model: m\nmessages:\n  - { role: system, content: \"Be \\\"brief\\\".\\n\\tNo {{ x }}\" }\n  \
             - { role: user, content: \"{{ x }} \u{e9} \u{1f600}\" }\n",
            "template: \"{{ x }}\"\n",
            "model: m\nmodelParameters: { maxTokens: 5, messages: 3, topP: 0.5, stop: [\"\\n\"] }\n\
             responseFormat: json_object\ntemplate: \"t {{ x }}\"\n",
        ];
        let mut written = 0;
        for source in sources {
            let p = compiled(source);
            for x in [
                "plain",
                "\"quoted\"\n\u{1}\u{7f}",
                "\u{4e2d}\u{6587} \\ back",
            ] {
                let outcome = RenderRequest::new()
                    .variables(map(json!({"x": x, "extra \"name\"": 1})))
                    .render(&p)
                    .expect("renders");
                let rendered = &outcome.rendered;
                for (id, version, commit) in [
                    (rendered.id.as_str(), Some(3), "0123abcd"),
                    ("a \"quoted\"/\u{e9} id\t", None, "work\n"),
                ] {
                    let doc = RenderDoc {
                        id,
                        version,
                        commit,
                        model: rendered.model.as_deref(),
                        model_parameters: &rendered.model_parameters,
                        messages: Messages(&rendered.output),
                        unused: outcome.unused.clone(),
                        request: RequestBody::new(rendered, None).ok(),
                        tokens: 7,
                    };
                    let expected = serde_json::to_vec(&doc).expect("serializes");
                    assert_eq!(
                        String::from_utf8(doc.to_json().expect("writes")).expect("UTF-8"),
                        String::from_utf8(expected).expect("UTF-8")
                    );
                    written += 1;
                }
            }
        }
        assert_eq!(written, 18);
    }

    /// Values are found by name whether a few (compared one by one) or many (hashed) are given
    /// or declared: in any order, with names the prompt does not use reported, a missing one
    /// and a wrongly typed one refused.
    #[test]
    fn values_are_found_among_few_and_among_many() {
        for declared in [3, 20] {
            let mut source = String::from("variables:\n");
            let mut template = String::new();
            for i in 0..declared {
                let required = if i == 0 {
                    "required: true"
                } else {
                    "default: d"
                };
                source.push_str(&format!("  v{i}: {{ type: string, {required} }}\n"));
                template.push_str(&format!("{{{{ v{i} }}}},"));
            }
            source.push_str(&format!("template: \"{template}\"\n"));
            let p = compiled(&source);
            for given in [1, 2, declared, 30] {
                // Given in reverse order, with two names nobody uses.
                let mut values = Map::new();
                for i in (0..given).rev() {
                    values.insert(format!("v{i}"), Value::from(format!("g{i}")));
                }
                values.insert("zz".into(), Value::from(1));
                values.insert("aa".into(), Value::from(2));
                let outcome = RenderRequest::new()
                    .variables(values.clone())
                    .render_once(&p)
                    .expect("renders");
                let expected: String = (0..declared)
                    .map(|i| {
                        if i < given {
                            format!("g{i},")
                        } else {
                            "d,".into()
                        }
                    })
                    .collect();
                assert_eq!(outcome.rendered.to_string(), expected, "{declared} {given}");
                let mut unused: Vec<String> = (declared..given).map(|i| format!("v{i}")).collect();
                unused.extend(["aa".to_string(), "zz".to_string()]);
                unused.sort();
                assert_eq!(outcome.unused, unused, "{declared} {given}");
                values.remove("v0");
                let missing = RenderRequest::new()
                    .variables(values.clone())
                    .render_once(&p);
                let err = missing.expect_err("v0 is required");
                assert_eq!(err.kind(), crate::error::ErrorKind::MissingVariables);
                values.insert("v0".into(), Value::from(5));
                let wrong = RenderRequest::new().variables(values).render_once(&p);
                assert_eq!(
                    wrong.expect_err("v0 is a string").kind(),
                    crate::error::ErrorKind::WrongType
                );
            }
        }
    }
}

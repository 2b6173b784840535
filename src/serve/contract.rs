//! The API's one table: every route is declared once, by its handler's `#[utoipa::path]`, and
//! both the router and the OpenAPI document are made from that table, so they cannot drift.
//! What every route shares is declared here once too: the errors any request can meet (as
//! `application/problem+json`), the bearer scheme and each route's scope, and the caching
//! headers.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, HttpMethod, OpenApi as Document, RefOr, Response, Schema};
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use crate::serve::auth::Scope;
use crate::serve::http::{Problem, REQUEST_TIMEOUT};
use crate::serve::state::Shared;
use crate::serve::{analyses, api, notify, prompts, render, write};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "promptreg",
        description = "The prompt registry of a git repository: prompts, their versions (one per commit that changed the file) and `defaults.yaml`, served from commits. Ids contain `/`; a version is chosen with `@N`, `@LABEL` or `@COMMIT` after the id, or with the `version`, `label` and `commit` query parameters. Every error is `application/problem+json`: a `Problem` whose `type` names its kind."
    ),
    components(schemas(Problem, crate::serve::events::Change))
)]
struct ApiDoc;

/// The media type of every error.
pub(crate) const PROBLEM: &str = "application/problem+json";

/// Adds one path's handlers: the router gets the path with the id as its last, catch-all
/// segment (ids contain `/`), the document the path as declared.
fn add(
    router: OpenApiRouter<Shared>,
    (schemas, paths, handlers): UtoipaMethodRouter<Shared>,
) -> OpenApiRouter<Shared> {
    let mut router = router;
    for path in paths.paths.keys() {
        let axum_path = match path.strip_suffix("{id}") {
            Some(head) => format!("{head}{{*id}}"),
            None => path.clone(),
        };
        router = router.route(&axum_path, handlers.clone());
    }
    let doc = router.get_openapi_mut();
    for (path, item) in paths.paths {
        match doc.paths.paths.get_mut(&path) {
            Some(known) => known.merge_operations(item),
            None => {
                doc.paths.paths.insert(path, item);
            }
        }
    }
    doc.components
        .get_or_insert_with(Default::default)
        .schemas
        .extend(schemas);
    router
}

/// Every route, and its document. An analysis waits for a model, so it has `analysis_time`
/// rather than the other routes' limit.
pub(crate) fn table(analysis_time: Duration) -> (Router<Shared>, Document) {
    let analyses = add(OpenApiRouter::new(), routes!(analyses::analyze_route)).layer(
        crate::serve::limit::Limit::new(StatusCode::GATEWAY_TIMEOUT, analysis_time),
    );
    let api = [
        routes!(api::list),
        routes!(prompts::prompt, write::create, write::delete),
        routes!(write::set_default, write::unset_default),
        routes!(write::set_label, write::unset_label),
        routes!(prompts::versions),
        routes!(render::render),
        routes!(api::manifest),
        routes!(notify::events),
        routes!(notify::hook),
        routes!(api::healthz),
        routes!(api::readyz),
        routes!(api::metrics),
        routes!(crate::serve::openapi),
    ]
    .into_iter()
    .fold(OpenApiRouter::with_openapi(ApiDoc::openapi()), add)
    .layer(crate::serve::limit::Limit::new(
        StatusCode::REQUEST_TIMEOUT,
        REQUEST_TIMEOUT,
    ));
    let (router, mut doc) = api.merge(analyses).split_for_parts();
    finish(&mut doc);
    (router, doc)
}

/// The document of the routes.
pub(crate) fn document() -> &'static Document {
    static DOC: OnceLock<Document> = OnceLock::new();
    DOC.get_or_init(|| table(REQUEST_TIMEOUT).1)
}

/// Every route as (method, path), from the document.
pub(crate) fn routes() -> &'static [(&'static str, &'static str)] {
    static ROUTES: OnceLock<Vec<(&'static str, &'static str)>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let doc = document();
        let mut all = Vec::new();
        for (path, item) in &doc.paths.paths {
            for (method, operation) in operations(item) {
                if operation.is_some() {
                    all.push((method_name(method), path.as_str()));
                }
            }
        }
        all
    })
}

fn operations(item: &utoipa::openapi::PathItem) -> [(HttpMethod, Option<&Operation>); 4] {
    [
        (HttpMethod::Get, item.get.as_ref()),
        (HttpMethod::Post, item.post.as_ref()),
        (HttpMethod::Put, item.put.as_ref()),
        (HttpMethod::Delete, item.delete.as_ref()),
    ]
}

fn method_name(method: HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "GET",
        HttpMethod::Post => "POST",
        HttpMethod::Put => "PUT",
        HttpMethod::Delete => "DELETE",
        HttpMethod::Head => "HEAD",
        HttpMethod::Patch => "PATCH",
        HttpMethod::Options => "OPTIONS",
        HttpMethod::Trace => "TRACE",
    }
}

/// The scope a route's method needs: what the access check and the document both use. A
/// method the route lacks is the router's 405, whatever its scope.
pub(crate) fn scope_of(method: &str, route: &str) -> Scope {
    let writes =
        matches!(method, "PUT" | "DELETE") || (method == "POST" && route == "/v1/prompts/{id}");
    if writes {
        Scope::Write
    } else if route == "/v1/analyze/{analysis}/{id}" {
        Scope::Analyze
    } else {
        Scope::Read
    }
}

/// The routes no token is asked of: liveness, and the push hook (which carries its own
/// signature; a git host cannot send a bearer token).
pub(crate) fn is_open(route: &str) -> bool {
    route == "/healthz" || route == "/v1/hooks/push"
}

/// The statuses any request to a route can meet, besides what its handler declares.
fn shared_errors(method: &str, route: &str, operation: &Operation) -> Vec<(u16, &'static str)> {
    let mut errors = vec![(
        500,
        "promptreg could not carry on (a task that stopped, a repository that cannot be read)",
    )];
    if route != "/v1/events" {
        errors.push((408, "the request did not finish within its time limit"));
    }
    if !is_open(route) {
        errors.push((
            401,
            "a token is needed (`--auth`), or the one given is unknown",
        ));
        errors.push((
            403,
            "the token may not do this (its scopes); for a write, also: the server takes no writes (`--allow-writes`), or the branch is protected",
        ));
    }
    let has_query = operation
        .parameters
        .as_ref()
        .is_some_and(|p| p.iter().any(|p| p.parameter_in == ParameterIn::Query));
    let has_id = route.contains("{id}") || route.contains("{label}");
    if has_query || has_id || operation.request_body.is_some() {
        errors.push((
            400,
            "the query, the path or the body cannot be read as declared",
        ));
    }
    if operation.request_body.is_some() || method == "POST" {
        errors.push((413, "the body is larger than the server reads (1 MiB)"));
    }
    if matches!(scope_of(method, route), Scope::Write) {
        errors.push((404, "the prompt, version or label does not exist"));
        errors.push((409, "the branch moved under the write in what it changes, or the repository is mid-merge; nothing was written"));
        errors.push((
            412,
            "`If-Match` names a version that is no longer current; nothing was written",
        ));
        errors.push((
            422,
            "the new version has errors; the problem's `diagnostics` say where",
        ));
    }
    errors
}

/// A commit message as [`crate::write::check_message`] takes it: one character that is not
/// whitespace (as Rust's `char::is_whitespace` says), and no NUL.
const MESSAGE: &str = "^[^\\x00]*[^\\x00\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00]*$";

/// The request bodies that carry a commit message.
const WITH_MESSAGE: [&str; 4] = ["NewSource", "NewPrompt", "PointBody", "MessageBody"];

/// Declares what every route shares: errors as `application/problem+json` with the `Problem`
/// schema, the bearer scheme and each route's scope; and the commit message's rule.
fn finish(doc: &mut Document) {
    let components = doc.components.get_or_insert_with(Default::default);
    // A problem's `type` is one of the kinds the server has.
    if let Some(RefOr::T(Schema::Object(problem))) = components.schemas.get_mut("Problem") {
        if let Some(RefOr::T(Schema::Object(kind))) = problem.properties.get_mut("type") {
            kind.enum_values = Some(
                crate::serve::http::KINDS
                    .iter()
                    .map(|k| serde_json::Value::String(format!("urn:promptreg:problem:{k}")))
                    .collect(),
            );
        }
    }
    for name in WITH_MESSAGE {
        if let Some(RefOr::T(Schema::Object(body))) = components.schemas.get_mut(name) {
            if let Some(RefOr::T(Schema::Object(message))) = body.properties.get_mut("message") {
                message.pattern = Some(MESSAGE.to_string());
            }
        }
    }
    components.security_schemes.insert(
        "bearer".into(),
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A token of the server's `--auth` file, with the scopes `read`, `write` or `analyze`. Without `--auth`, reads need no token.",
                ))
                .build(),
        ),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let route = path.as_str();
        let methods: [(&str, &mut Option<Operation>); 4] = [
            ("GET", &mut item.get),
            ("POST", &mut item.post),
            ("PUT", &mut item.put),
            ("DELETE", &mut item.delete),
        ];
        for (method, operation) in methods {
            let Some(operation) = operation.as_mut() else {
                continue;
            };
            for (status, why) in shared_errors(method, route, operation) {
                let key = status.to_string();
                match operation.responses.responses.get_mut(&key) {
                    Some(RefOr::T(known)) if known.description.is_empty() => {
                        known.description = why.to_string();
                    }
                    Some(_) => {}
                    None => {
                        operation
                            .responses
                            .responses
                            .insert(key, RefOr::T(Response::new(why)));
                    }
                }
            }
            declare_parameters(method, route, operation);
            // Every error is a problem, whatever the handler wrote.
            for (status, response) in operation.responses.responses.iter_mut() {
                let is_error = status.starts_with('4') || status.starts_with('5');
                if let (true, RefOr::T(response)) = (is_error, response) {
                    response.content.clear();
                    response.content.insert(
                        PROBLEM.into(),
                        Content::new(Some(RefOr::<Schema>::Ref(
                            utoipa::openapi::Ref::from_schema_name("Problem"),
                        ))),
                    );
                }
            }
            if !is_open(route) {
                let scope = match scope_of(method, route) {
                    Scope::Read => "read",
                    Scope::Write => "write",
                    Scope::Analyze => "analyze",
                };
                let mut security = vec![SecurityRequirement::new("bearer", [scope])];
                if matches!(scope_of(method, route), Scope::Read) {
                    // Reads are open on a server without `--auth`.
                    security.push(SecurityRequirement::default());
                }
                operation.security = Some(security);
            }
        }
    }
}

/// The ids a write may name, as [`crate::write::check_id`] checks them: parts of characters
/// that are not `/`, `@`, `\`, control or bidirectional-override characters, none starting
/// with `.`. (A part named `defaults.yaml` or `promptreg.yaml` is refused too.)
const WRITE_ID: &str = concat!(
    "^[^/@\\\\.\\x00-\\x1f\\x7f-\\x9f\\u200e\\u200f\\u061c\\u202a-\\u202e\\u2066-\\u2069]",
    "[^/@\\\\\\x00-\\x1f\\x7f-\\x9f\\u200e\\u200f\\u061c\\u202a-\\u202e\\u2066-\\u2069]*",
    "(/[^/@\\\\.\\x00-\\x1f\\x7f-\\x9f\\u200e\\u200f\\u061c\\u202a-\\u202e\\u2066-\\u2069]",
    "[^/@\\\\\\x00-\\x1f\\x7f-\\x9f\\u200e\\u200f\\u061c\\u202a-\\u202e\\u2066-\\u2069]*)*$"
);

/// The labels a write may name, as [`crate::format::manifest::label_problem`] checks them: no
/// `@`, space or control character, not starting with `-`, not all digits. (`latest` and `work`
/// are refused too.)
const LABEL: &str = concat!(
    "^([^\\-@ \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\x00-\\x1f\\x7f-\\x9f0-9][^@ \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\x00-\\x1f\\x7f-\\x9f]*",
    "|[0-9]+[^@ \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\x00-\\x1f\\x7f-\\x9f0-9][^@ \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\x00-\\x1f\\x7f-\\x9f]*)$"
);

fn string_schema(pattern: &str, max: Option<usize>) -> RefOr<Schema> {
    RefOr::T(Schema::Object(
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(pattern))
            .max_length(max)
            .build(),
    ))
}

fn header(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    utoipa::openapi::path::ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(utoipa::openapi::Required::False)
        .description(Some(description))
        .schema(Some(RefOr::T(Schema::Object(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .build(),
        ))))
        .build()
}

/// The parameters the table's handlers read but do not declare: what a write may name, and the
/// conditional headers.
fn declare_parameters(method: &str, route: &str, operation: &mut Operation) {
    let write = matches!(scope_of(method, route), Scope::Write);
    let parameters = operation.parameters.get_or_insert_with(Vec::new);
    if write {
        for parameter in parameters.iter_mut() {
            match (parameter.name.as_str(), &parameter.parameter_in) {
                ("id", ParameterIn::Path) => parameter.schema = Some(string_schema(WRITE_ID, None)),
                ("label", ParameterIn::Path) => parameter.schema = Some(string_schema(LABEL, None)),
                _ => {}
            }
        }
        parameters.push(header(
            "If-Match",
            "Write only if this is still the current ETag (of `GET /v1/prompts/ID@latest` for a version or a delete, of `GET /v1/manifest` for a default or a label); else 412",
        ));
    }
    if operation.responses.responses.contains_key("304") {
        parameters.push(header(
            "If-None-Match",
            "The ETag of the answer held: 304 when it is still current",
        ));
    }
}

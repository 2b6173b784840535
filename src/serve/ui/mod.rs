//! The web UI at `/`: pages rendered by the server, over the same answers the API gives.
//!
//! A page asks the API's own router for its data, in process (`GET /v1/prompts/ID`, `POST
//! /v1/render/ID`, `POST /v1/prompts/ID` with `If-Match`), and renders the JSON through a
//! template compiled into the binary; nothing the API does is done a second time here. Reading
//! works as links and forms without JavaScript; `assets/app.js` adds the hover preview, the
//! streamed run, the editor's line numbers and the live banner.
//!
//! - `session`: signing in with a token, the cookie, the cross-site checks;
//! - `pages`: the list, a prompt with its versions, the diff;
//! - `play`: the playground (render, run) and the analyses;
//! - `edit`: the editor, validate, commit (and its conflicts), new prompts, moving a default
//!   or a label.

mod edit;
mod pages;
mod play;
pub(crate) mod session;

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::Environment;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::serve::auth::Scope;
use crate::serve::state::Shared;
use crate::serve::ui::session::{Session, Sessions};

/// The UI's state: the server's, the API router it asks, the sessions.
pub(crate) struct Ui {
    pub state: Shared,
    api: Router,
    pub sessions: Sessions,
}

type UiRef = Arc<Ui>;

/// Whether a path is the UI's (so the API's bearer check does not apply: the UI has its own
/// sign-in).
pub(crate) fn owns(path: &str) -> bool {
    path == "/"
        || [
            "/p/", "/diff/", "/play/", "/run/", "/edit/", "/point/", "/assets/", "/ui/",
        ]
        .iter()
        .any(|p| path.starts_with(p))
        || matches!(path, "/new" | "/signin" | "/signout")
}

/// The UI's routes, answering from `api` (the API's router, with its state).
pub(crate) fn routes(state: Shared, api: Router) -> Router {
    let ui = Arc::new(Ui {
        state,
        api,
        sessions: Sessions::default(),
    });
    Router::new()
        .route("/", get(pages::list))
        .route("/p/{*reference}", get(pages::prompt))
        .route("/diff/{*id}", get(pages::diff))
        .route(
            "/play/{*reference}",
            get(play::form_page).post(play::render),
        )
        .route("/run/{*reference}", post(play::run))
        .route("/edit/{*id}", get(edit::form_page).post(edit::submit))
        .route("/new", get(edit::new_form).post(edit::new_submit))
        .route(
            "/point/{*id}",
            get(edit::point_form).post(edit::point_submit),
        )
        .route("/signin", get(sign_in_form).post(sign_in))
        .route("/signout", post(sign_out))
        .route("/ui/events", get(play::events))
        .route("/ui/versions/{*id}", get(pages::versions))
        .route("/assets/{name}", get(asset))
        .layer(axum::middleware::from_fn_with_state(ui.clone(), guard))
        .with_state(ui)
}

// ---------------------------------------------------------------------------------------
// Who may see what

/// The person behind a request: signed in, or anyone on a server without tokens.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub session: Option<Session>,
    /// Whether this person may commit through the UI (writes on, a token that may write).
    pub may_write: bool,
    /// Whether the server has tokens (and so a sign-in page).
    pub auth: bool,
}

impl Viewer {
    /// Whether this person's token may do `scope` (anyone may, on a server without tokens).
    pub(crate) fn may(&self, ui: &Ui, scope: Scope) -> bool {
        match (&ui.state.tokens, &self.session) {
            (Some(tokens), Some(session)) => session.may(tokens, scope),
            (Some(_), None) => false,
            (None, _) => true,
        }
    }

    /// The template context every page shares.
    fn context(&self, ui: &Ui) -> Value {
        let current = ui.state.current.load();
        json!({
            "signed_in": self.session.as_ref().map(|s| s.name.clone()),
            "csrf": self.session.as_ref().map(|s| s.csrf.clone()).unwrap_or_default(),
            "may_write": self.may_write,
            "writes_on": ui.state.allow_writes,
            "auth": self.auth,
            "commit": current.commit.clone(),
            "short": current.commit.chars().take(10).collect::<String>(),
            "model": ui.state.analyst.is_some(),
        })
    }
}

/// Before every UI route: the security headers, and the sign-in when the server has tokens.
async fn guard(State(ui): State<UiRef>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let open = path.starts_with("/assets/") || path == "/signin";
    let session = ui.sessions.of(request.headers());
    let auth = ui.state.tokens.is_some();
    let viewer = match (&ui.state.tokens, &session) {
        (Some(tokens), Some(s)) => Viewer {
            may_write: ui.state.allow_writes && s.may(tokens, Scope::Write),
            session: session.clone(),
            auth,
        },
        (Some(_), None) if !open => {
            if request.method() == Method::GET {
                let next = encode_query(request.uri().path_and_query().map_or("/", |p| p.as_str()));
                return secure(Redirect::to(&format!("/signin?next={next}")).into_response());
            }
            return secure(refusal(&ui, StatusCode::UNAUTHORIZED, "sign in first"));
        }
        _ => Viewer {
            session: None,
            may_write: false,
            auth,
        },
    };
    // A request that changes something, or that runs a model, comes from these pages alone.
    if request.method() == Method::POST && !session::same_origin(request.headers()) {
        return secure(refusal(
            &ui,
            StatusCode::FORBIDDEN,
            "this form was sent from another site, so it was refused",
        ));
    }
    request.extensions_mut().insert(viewer);
    secure(next.run(request).await)
}

/// The headers every UI answer carries: no inline script, no framing, no other host.
fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A page that says why a request was refused.
fn refusal(ui: &Ui, status: StatusCode, why: &str) -> Response {
    let viewer = Viewer {
        session: None,
        may_write: false,
        auth: ui.state.tokens.is_some(),
    };
    let mut context = viewer.context(ui);
    context["title"] = json!("Refused");
    context["problem"] = json!({ "detail": why });
    page(status, "problem.html", context)
}

// ---------------------------------------------------------------------------------------
// Signing in and out

async fn sign_in_form(
    State(ui): State<UiRef>,
    axum::Extension(viewer): axum::Extension<Viewer>,
    request_uri: axum::http::Uri,
) -> Response {
    let next = query_value(request_uri.query(), "next").unwrap_or_else(|| "/".into());
    let mut context = viewer.context(&ui);
    context["title"] = json!("Sign in");
    context["next"] = json!(safe_next(&next));
    page(StatusCode::OK, "signin.html", context)
}

async fn sign_in(
    State(ui): State<UiRef>,
    axum::Extension(viewer): axum::Extension<Viewer>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = form(&body);
    let token = field(&form, "token").unwrap_or_default();
    let next = safe_next(&field(&form, "next").unwrap_or_else(|| "/".into()));
    let Some(tokens) = &ui.state.tokens else {
        return Redirect::to("/").into_response();
    };
    match ui.sessions.sign_in(tokens, token.trim()) {
        Some((id, session)) => {
            tracing::info!(target: "promptreg::access", token = %session.name, "signed in to the UI");
            let mut response = Redirect::to(&next).into_response();
            response
                .headers_mut()
                .insert(header::SET_COOKIE, session::set_cookie(&headers, &id));
            response
        }
        None => {
            let mut context = viewer.context(&ui);
            context["title"] = json!("Sign in");
            context["next"] = json!(next);
            context["error"] = json!("That token is not known to this server.");
            page(StatusCode::UNAUTHORIZED, "signin.html", context)
        }
    }
}

async fn sign_out(
    State(ui): State<UiRef>,
    axum::Extension(viewer): axum::Extension<Viewer>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(problem) = check_csrf(&ui, &viewer, &body) {
        return problem;
    }
    ui.sessions.sign_out(&headers);
    let mut response = Redirect::to("/signin").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie());
    response
}

/// Where to go after signing in: a path of this server, never another host.
fn safe_next(next: &str) -> String {
    let plain = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if plain {
        next.to_string()
    } else {
        "/".to_string()
    }
}

/// The refusal of a form that changes something without the session's token, if it is one.
pub(crate) fn check_csrf(ui: &Ui, viewer: &Viewer, body: &[u8]) -> Option<Response> {
    let form = form(body);
    let given = field(&form, "csrf").unwrap_or_default();
    let ok = viewer
        .session
        .as_ref()
        .is_some_and(|s| session::same_secret(&s.csrf, &given));
    (!ok).then(|| {
        refusal(
            ui,
            StatusCode::FORBIDDEN,
            "this form's check value is missing or old; reload the page and try again",
        )
    })
}

// ---------------------------------------------------------------------------------------
// Asking the API

/// What the API answered.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub(crate) fn ok(&self) -> bool {
        self.status.is_success()
    }
}

impl Ui {
    /// Asks the API's router, as the signed-in person (the author of what a write commits).
    pub(crate) async fn api(
        &self,
        method: Method,
        uri: &str,
        viewer: &Viewer,
        if_match: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut headers = Vec::new();
        if let Some(tag) = if_match {
            headers.push((header::IF_MATCH, tag));
        }
        let response = self.ask(method, uri, viewer, &headers, body).await;
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 256 * 1024 * 1024)
            .await
            .unwrap_or_default();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// `GET uri` of the API, as the signed-in person.
    pub(crate) async fn get(&self, uri: &str, viewer: &Viewer) -> Answer {
        self.api(Method::GET, uri, viewer, None, None).await
    }

    /// `GET uri` of the API, its answer handed on as it is (the event stream).
    pub(crate) async fn get_raw(
        &self,
        uri: &str,
        viewer: &Viewer,
        last_event_id: Option<&str>,
    ) -> Response {
        let headers: Vec<_> = last_event_id
            .map(|id| (header::HeaderName::from_static("last-event-id"), id))
            .into_iter()
            .collect();
        self.ask(Method::GET, uri, viewer, &headers, None).await
    }

    /// One request to the API's router, in process, with the signed-in token as the caller.
    async fn ask(
        &self,
        method: Method,
        uri: &str,
        viewer: &Viewer,
        headers: &[(header::HeaderName, &str)],
        body: Option<Value>,
    ) -> Response {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(name, *value);
        }
        let body = match body {
            Some(value) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(value.to_string())
            }
            None => Body::empty(),
        };
        let Ok(mut request) = builder.body(body) else {
            return Answer::problem(StatusCode::BAD_REQUEST, "this address cannot be asked for");
        };
        if let Some(session) = &viewer.session {
            request
                .extensions_mut()
                .insert(crate::serve::write::Caller(session.name.clone()));
        }
        match self.api.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

impl Answer {
    /// A problem the UI answers itself, in the API's shape.
    fn problem(status: StatusCode, detail: &str) -> Response {
        (
            status,
            axum::Json(json!({ "status": status.as_u16(), "detail": detail })),
        )
            .into_response()
    }
}

/// A path under the API with `id` (or `ID@N`) percent-encoded, keeping `/` and `@`.
pub(crate) fn api_path(prefix: &str, id: &str) -> String {
    format!("{prefix}{}", encode_path(id))
}

/// Percent-encodes every byte but the unreserved ones, `/` and `@`.
pub(crate) fn encode_path(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' | b'@' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Encodes a value for a query string.
pub(crate) fn encode_query(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A query's value by name.
pub(crate) fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A form body's fields, in order.
pub(crate) fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// A form's field by name (the first).
pub(crate) fn field(form: &[(String, String)], name: &str) -> Option<String> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

// ---------------------------------------------------------------------------------------
// Templates and assets

/// The templates, compiled into the binary; values are escaped as HTML.
fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        env.add_filter("path", |text: String| encode_path(&text));
        env.add_filter("query", |text: String| encode_query(&text));
        env.add_filter("truncate", |text: String, max: usize| {
            match text.char_indices().nth(max) {
                Some((at, _)) => format!("{}…", &text[..at]),
                None => text,
            }
        });
        env.add_filter("short", |text: String| {
            text.chars().take(10).collect::<String>()
        });
        env.add_filter("date", |text: String| {
            text.get(..16).map_or(text.clone(), |d| d.replace('T', " "))
        });
        env.add_filter("pretty", |value: minijinja::Value| {
            serde_json::to_string_pretty(&value).unwrap_or_default()
        });
        for (name, text) in TEMPLATES {
            if let Err(err) = env.add_template(name, text) {
                tracing::error!(template = name, error = %err, "a UI template does not compile");
            }
        }
        env
    })
}

const TEMPLATES: [(&str, &str); 12] = [
    ("_macros.html", include_str!("templates/_macros.html")),
    ("base.html", include_str!("templates/base.html")),
    ("list.html", include_str!("templates/list.html")),
    ("prompt.html", include_str!("templates/prompt.html")),
    ("view.html", include_str!("templates/view.html")),
    ("diff.html", include_str!("templates/diff.html")),
    ("play.html", include_str!("templates/play.html")),
    ("edit.html", include_str!("templates/edit.html")),
    ("point.html", include_str!("templates/point.html")),
    ("new.html", include_str!("templates/new.html")),
    ("signin.html", include_str!("templates/signin.html")),
    ("problem.html", include_str!("templates/problem.html")),
];

/// A page: `name` rendered with `context`.
pub(crate) fn page(status: StatusCode, name: &str, context: Value) -> Response {
    let rendered = templates()
        .get_template(name)
        .and_then(|t| t.render(crate::render::template_value(&context)));
    match rendered {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(template = name, error = %format!("{err:#}"), "a UI page did not render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "the page could not be rendered; the server's log says why",
            )
                .into_response()
        }
    }
}

/// The page for an API problem: its status, detail and hint.
pub(crate) fn problem_page(ui: &Ui, viewer: &Viewer, answer: &Answer) -> Response {
    let mut context = viewer.context(ui);
    context["title"] = json!("Problem");
    context["problem"] = answer.body.clone();
    let status = match answer.status {
        s if s.is_success() => StatusCode::INTERNAL_SERVER_ERROR,
        s => s,
    };
    page(status, "problem.html", context)
}

const ASSETS: [(&str, &str, &str); 2] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
];

async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, text)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            *text,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use crate::serve::ui::*;

    #[test]
    fn every_template_compiles() {
        let env = templates();
        for (name, _) in TEMPLATES {
            assert!(env.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn ids_are_encoded_for_paths_and_next_stays_on_this_server() {
        assert_eq!(encode_path("a/b c@2"), "a/b%20c@2");
        assert_eq!(encode_path("x?y#z%"), "x%3Fy%23z%25");
        assert_eq!(safe_next("/p/a@2"), "/p/a@2");
        assert_eq!(safe_next("//evil.example/"), "/");
        assert_eq!(safe_next("https://evil.example/"), "/");
        assert_eq!(safe_next("/\\evil"), "/");
    }

    #[test]
    fn the_ui_owns_its_paths_and_not_the_api() {
        assert!(owns("/") && owns("/p/a") && owns("/signin") && owns("/assets/app.js"));
        assert!(!owns("/v1/prompts") && !owns("/healthz") && !owns("/openapi.json"));
    }
}

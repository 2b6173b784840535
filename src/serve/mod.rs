//! `promptreg serve`: the registry's HTTP API, over the same library types the CLI uses.
//!
//! The server answers from an immutable [`Snapshot`](crate::registry::Snapshot) of the
//! registry at one commit (`HEAD`, or `--rev`), swapped atomically when the tip moves; the
//! working copy is never served. Uses: `registry`, `render`, `format`, `history`, `git` (ids
//! and times), `error`, `diagnostic`.
//!
//! - `api`: the `/v1` routes and what they answer;
//! - `http`: problem+json, ETags, `If-None-Match`, the caching policies;
//! - `current`: one commit as served (the snapshot and the rows of the list);
//! - `state`: the snapshot being served, its swap, the compiled prompts kept across swaps;
//! - `events`, `follow`: the change log, and fetching a followed remote (their routes are in
//!   `api`, their loops here, so that the files import only downwards);
//! - `analyses`: the analyses of a version as POST routes (`--analyses`), over `model`;
//! - `auth`: bearer tokens and scopes (`--auth FILE`);
//! - `metrics`: `/metrics`;
//! - `log`: the access line of each request, as tracing's formats write it;
//! - `limit`: each route's time limit (408, or 504 for an analysis);
//! - `pool`: the blocking pool that compiles and renders run on, under the time limit;
//! - `ui`: the web UI at `/`, pages over the API's own answers (`--no-ui` turns it off).

pub(crate) mod analyses;
pub(crate) mod api;
pub mod auth;
pub(crate) mod bounded;
pub(crate) mod contract;
pub(crate) mod current;
pub(crate) mod events;
// `promptreg export` (the CLI), built on the server's own router.
#[cfg(feature = "cli")]
pub(crate) mod export;
pub mod follow;
pub(crate) mod http;
pub(crate) mod limit;
pub mod log;
pub(crate) mod metrics;
pub(crate) mod notify;
pub(crate) mod pool;
pub(crate) mod prompts;
pub(crate) mod render;
pub(crate) mod state;
pub(crate) mod ui;
pub(crate) mod write;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::serve::auth::{Scope, Tokens};
use crate::serve::http::Problem;
use crate::serve::state::Shared;
use crate::serve::state::State;

pub use crate::serve::http::REQUEST_TIMEOUT;

/// How the server is run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to listen (`127.0.0.1:8080`; port 0 picks a free one).
    pub listen: SocketAddr,
    /// The tokens of `--auth FILE`; without them, reads are open.
    pub tokens: Option<Tokens>,
    /// Whether the write routes are on (`--allow-writes`; they need tokens that may write).
    pub allow_writes: bool,
    /// The remote to follow (`--follow`); the registry must be pinned to its tracking ref.
    pub follow: Option<follow::Follow>,
    /// The judge model of the analysis routes (`--analyses`); without one they answer 403.
    pub analyses: Option<Arc<crate::model::cache::CachedClient>>,
    /// How many event streams may be open at once (`--max-event-streams`).
    pub max_event_streams: usize,
    /// Whether the web UI is served at `/` (`--no-ui` turns it off).
    pub ui: bool,
}

/// The OpenAPI 3.1 document of the routes, generated from the code.
pub fn openapi_json() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| contract::document().to_pretty_json().unwrap_or_default())
        .clone()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "OpenAPI 3.1", body = Object)))]
pub(crate) async fn openapi() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        openapi_json(),
    )
        .into_response()
}

/// The router over a loaded state: the API, and the web UI beside it (which asks the API's
/// own router for its data).
fn router(state: Shared, with_ui: bool) -> Router {
    // An analysis waits for a model: it has the model's time, not the other routes'.
    let analysis_time = state
        .analyst
        .as_ref()
        .map_or(REQUEST_TIMEOUT, state::Analyst::budget);
    let (routes, _) = contract::table(analysis_time);
    let api: Router = routes.with_state(state.clone());
    let all = match with_ui {
        true => api.clone().merge(ui::routes(state.clone(), api)),
        false => api,
    };
    all.fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(state, around))
}

async fn no_route(request: Request) -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no-route",
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
    .with_hint("GET /openapi.json lists every route")
    .into_response()
}

/// The route a path belongs to, for metrics and logs (never the raw path, whose ids are
/// unbounded).
fn route_of(path: &str) -> &'static str {
    for (_, route) in contract::routes() {
        if let Some(prefix) = route
            .strip_suffix("{label}/{id}")
            .or_else(|| route.strip_suffix("{analysis}/{id}"))
        {
            if path.starts_with(prefix) {
                return route;
            }
            continue;
        }
        match route.strip_suffix("{id}") {
            Some(prefix) if path.starts_with(prefix) => return route,
            None if path == *route => return route,
            _ => {}
        }
    }
    "other"
}

/// Around every request: the token check, the access log line and the metrics.
async fn around(
    axum::extract::State(state): axum::extract::State<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // The path is kept for the log line (a `Uri` shares the request's bytes: no copy).
    let uri = request.uri().clone();
    let path = uri.path();
    // The UI's pages have their own sign-in (a session cookie), and one metrics label.
    let ui_page = state.ui && ui::owns(path);
    let route = if ui_page { "ui" } else { route_of(path) };
    let mut who = std::borrow::Cow::Borrowed("-");
    // A write is a method the route has as a write: a method the route lacks is the router's
    // 405 (with `Allow`) on every server, never a 403 for writes being off.
    let has_method = contract::routes()
        .iter()
        .any(|(m, r)| *r == route && *m == method.as_str());
    let scope = match has_method {
        true => contract::scope_of(method.as_str(), route),
        false => Scope::Read,
    };
    let writes = scope == Scope::Write;
    let response = match (&state.tokens, route) {
        _ if ui_page => next.run(request).await,
        _ if writes && !state.allow_writes => write::writes_off(),
        // Webhooks carry their own signature; a host cannot send a bearer token.
        (Some(tokens), r) if !contract::is_open(r) => {
            let presented = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            match tokens.check(presented, scope) {
                Ok(name) => {
                    who = std::borrow::Cow::Owned(name.to_string());
                    let mut request = request;
                    request
                        .extensions_mut()
                        .insert(write::Caller(name.to_string()));
                    next.run(request).await
                }
                Err(known) => unauthorized(known, scope),
            }
        }
        _ => next.run(request).await,
    };
    // The UI answers its own errors as pages.
    let response = match ui_page {
        true => response,
        false => as_problem(response).await,
    };
    let took = started.elapsed();
    let status = response.status();
    state.metrics.request(route, method.as_str(), status, took);
    tracing::info!(
        target: "promptreg::access",
        method = %method,
        path = %path,
        route,
        status = status.as_u16(),
        micros = took.as_micros() as u64,
        token = %who,
    );
    response
}

/// Every error is `application/problem+json`: one that a layer or an extractor answered in
/// plain text (a query that does not parse, a method a route lacks, a body too large) is turned
/// into a problem with its text as the detail, keeping `Allow`, `Retry-After` and
/// `WWW-Authenticate`.
async fn as_problem(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json"));
    if is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let kind = match status.as_u16() {
        400 => "bad-request",
        405 => "method-not-allowed",
        408 => "timeout",
        413 => "too-large",
        415 => "unsupported-media-type",
        422 => "bad-body",
        _ => "error",
    };
    let detail = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let mut problem = Problem::new(status, kind, detail).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = parts.headers.get(&name) {
            problem.headers_mut().insert(name, value.clone());
        }
    }
    problem
}

fn unauthorized(known: bool, scope: Scope) -> Response {
    if known {
        let what = match scope {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Analyze => "analyze",
        };
        return Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this token may not {what}"),
        )
        .with_hint("the auth file gives each token its scopes: read, write, analyze")
        .into_response();
    }
    let mut response = Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a bearer token is needed: `Authorization: Bearer TOKEN`",
    )
    .with_hint("the server was started with --auth; ask for a token")
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"promptreg\""),
    );
    response
}

/// Serves `registry` until SIGTERM or Ctrl-C, then lets the requests in flight finish.
/// `ready` is called with the address once the server listens.
pub fn run(registry: Registry, options: Options, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("the server's runtime", e))?;
    runtime.block_on(async move {
        let state = {
            let tokens = options.tokens.clone();
            let allow_writes = options.allow_writes;
            let follow = options.follow.clone();
            let analyst = options.analyses.map(state::Analyst::new);
            let max_streams = options.max_event_streams;
            let metrics = metrics::Metrics::new()
                .map_err(|e| Error::Internal(format!("cannot set up the metrics: {e}")))?;
            tokio::task::spawn_blocking(move || {
                State::new(
                    registry,
                    tokens,
                    allow_writes,
                    follow,
                    metrics,
                    analyst,
                    max_streams,
                )
            })
            .await
            .map_err(|e| Error::Internal(format!("the snapshot could not be built: {e}")))??
        };
        let state = Arc::new(state.with_ui(options.ui));
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| Error::io(format!("address {}", options.listen), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io(format!("address {}", options.listen), e))?;
        ready(addr);
        if let Some(why) = state.degraded() {
            tracing::warn!(reason = %why, "serving degraded from the start");
        }
        let refresher = tokio::spawn(follow_tip(state.clone()));
        let follower = tokio::spawn(follow_remote(state.clone()));
        accept(listener, router(state.clone(), options.ui), &state).await;
        refresher.abort();
        follower.abort();
        Ok(())
    })
}

/// How long a client may take to send a request's headers (a slow or stalled client is
/// dropped).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the requests in flight may take to finish after SIGTERM.
const DRAIN: Duration = Duration::from_secs(30);

/// Accepts connections until SIGTERM or Ctrl-C, then lets the requests in flight finish.
async fn accept(listener: tokio::net::TcpListener, app: Router, state: &Shared) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(shutdown());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(err) => {
                        // Out of file descriptors, a connection reset before accept: wait a
                        // moment rather than spin.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            () = &mut stop => break,
        }
    }
    drop(listener);
    // Event streams never end on their own: they end now, so that draining does not wait.
    state.events.close();
    tokio::select! {
        () = graceful.shutdown() => {},
        () = tokio::time::sleep(DRAIN) => {
            tracing::warn!("requests still in flight after {}s; stopping", DRAIN.as_secs());
        },
    }
}

/// Checks the tip every [`state::POLL`] and swaps in a new snapshot when it moved.
async fn follow_tip(state: Shared) {
    let mut ticks = tokio::time::interval(state::POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let state = state.clone();
        if let Err(err) = tokio::task::spawn_blocking(move || state.refresh_logged()).await {
            tracing::warn!(error = %err, "the tip check stopped");
        }
    }
}

/// Fetches every interval, or at once when a webhook wakes it; one fetch at a time, so a storm
/// of hooks becomes one fetch (and one more for what arrived during it).
async fn follow_remote(state: Shared) {
    let Some(following) = state.following.as_ref() else {
        return;
    };
    let interval = following.follow.interval;
    let mut delay = Duration::ZERO;
    let mut failures: u32 = 0;
    loop {
        tokio::select! {
            () = tokio::time::sleep(delay) => {},
            () = following.wake.notified() => {},
        }
        let task_state = state.clone();
        let fetched = tokio::task::spawn_blocking(move || {
            let following = task_state.following.as_ref().map(|f| f.follow.clone());
            match following {
                Some(follow) => follow::fetch(&follow),
                None => Ok(()),
            }
        })
        .await;
        let fetched = match fetched {
            Ok(result) => result,
            Err(e) => Err(Error::Internal(format!("the fetch stopped: {e}"))),
        };
        match fetched {
            Ok(()) => {
                failures = 0;
                delay = interval;
                {
                    let mut health = following.health();
                    health.fetch_error = None;
                    health.last_fetch = Some(SystemTime::now());
                    health.fetches += 1;
                }
                state.metrics.fetch(true);
                let task_state = state.clone();
                let _ = tokio::task::spawn_blocking(move || task_state.refresh_logged()).await;
            }
            Err(err) => {
                failures = failures.saturating_add(1);
                // 1 s, 2 s, 4 s ... up to the interval.
                delay =
                    Duration::from_secs(1u64 << failures.min(16).saturating_sub(1)).min(interval);
                tracing::warn!(error = %err, retry_in_s = delay.as_secs(), "fetch failed; still serving the last snapshot");
                following.health().fetch_error = Some(err.to_string());
                state.metrics.fetch(false);
            }
        }
        state.metrics.degraded(state.degraded().is_some());
    }
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing the requests in flight");
}

#[cfg(test)]
mod tests {
    use crate::serve::*;

    #[test]
    fn the_document_names_exactly_the_routes() {
        let doc: serde_json::Value =
            serde_json::from_str(&openapi_json()).expect("the document is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("item").keys() {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
        documented.sort();
        let mut routes: Vec<(String, String)> = contract::routes()
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
    }

    /// The published contract: any change to a route, a schema or a status shows in review.
    #[test]
    fn the_document_is_as_reviewed() {
        insta::assert_snapshot!("openapi", openapi_json());
    }

    /// Every library error kind is a declared problem kind.
    #[test]
    fn every_error_kind_is_a_declared_problem_kind() {
        use crate::error::ErrorKind;
        // A new kind stops this match from compiling until it is listed here and in KINDS.
        fn listed(kind: ErrorKind) -> ErrorKind {
            match kind {
                ErrorKind::Io
                | ErrorKind::Unreadable
                | ErrorKind::Git
                | ErrorKind::NoHistory
                | ErrorKind::UnknownPrompt
                | ErrorKind::BadReference
                | ErrorKind::NotFound
                | ErrorKind::Invalid
                | ErrorKind::MissingVariables
                | ErrorKind::WrongType
                | ErrorKind::UnusedVariables
                | ErrorKind::Template
                | ErrorKind::RenderLimit
                | ErrorKind::Usage
                | ErrorKind::Unsupported
                | ErrorKind::Refused
                | ErrorKind::Conflict
                | ErrorKind::Stale
                | ErrorKind::Model
                | ErrorKind::Internal => kind,
            }
        }
        let all = [
            ErrorKind::Io,
            ErrorKind::Unreadable,
            ErrorKind::Git,
            ErrorKind::NoHistory,
            ErrorKind::UnknownPrompt,
            ErrorKind::BadReference,
            ErrorKind::NotFound,
            ErrorKind::Invalid,
            ErrorKind::MissingVariables,
            ErrorKind::WrongType,
            ErrorKind::UnusedVariables,
            ErrorKind::Template,
            ErrorKind::RenderLimit,
            ErrorKind::Usage,
            ErrorKind::Unsupported,
            ErrorKind::Refused,
            ErrorKind::Conflict,
            ErrorKind::Stale,
            ErrorKind::Model,
            ErrorKind::Internal,
        ];
        for kind in all.map(listed) {
            assert!(http::KINDS.contains(&kind.as_str()), "{kind}");
        }
    }

    #[test]
    fn routes_of_paths() {
        assert_eq!(route_of("/v1/prompts"), "/v1/prompts");
        assert_eq!(route_of("/v1/prompts/a/versions"), "/v1/prompts/{id}");
        assert_eq!(route_of("/v1/versions/a"), "/v1/versions/{id}");
        assert_eq!(route_of("/nope"), "other");
    }
}

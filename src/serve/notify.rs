//! Telling clients of new commits: the change event stream (`/v1/events`) and the push webhook
//! (`/v1/hooks/push`) that makes a follower fetch at once.

// A problem becomes the response at once: its size is paid once per failed request.
#![allow(clippy::result_large_err)]

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast;

use crate::serve::http::Problem;
use crate::serve::state::Shared;

/// The change events, from after `Last-Event-ID` when it is given.
#[utoipa::path(tag = "api", get, path = "/v1/events",
    params(("Last-Event-ID" = Option<String>, Header, description = "Resume after this event (an event's id is the commit it brings you to): the events after it, or a `resync` event when the server has none for that id")),
    responses((status = 200, description = "`text/event-stream`: one `snapshot` event per new snapshot, its data a `Change` (JSON)", body = String, content_type = "text/event-stream"), (status = 503, body = Problem, description = "every event stream the server keeps open is taken (`Retry-After`)")))]
pub(crate) async fn events(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let after: Option<String> = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    // Each stream holds a connection and a receiver for as long as the client likes: their
    // number is bounded, and one over the bound is told to come back.
    let Some(slot) = state.events.open_stream() else {
        return crate::serve::http::unavailable(
            "too-many-streams",
            "every event stream this server keeps open is taken",
            Some("retry later, or raise --max-event-streams"),
            "5",
        );
    };
    // Subscribe first, then replay what was kept: nothing falls between the two, and what
    // is in both is sent once.
    let receiver = state.events.sender.subscribe();
    let current = state.current.load_full();
    let (replay, resync) = match after.as_deref() {
        // A new client, or one that saw the commit served now: only what comes.
        None => (Vec::new(), None),
        Some(id) if id == current.commit => (Vec::new(), None),
        Some(id) => match state.events.after(id) {
            Some(missed) => (missed, None),
            None => (
                Vec::new(),
                Some(crate::serve::events::resync(&current.commit, id)),
            ),
        },
    };
    // What the receiver holds that was replayed too is sent once.
    let last = replay.last().map_or(0, |c| c.seq);
    let replayed = futures_util::stream::iter(
        resync.into_iter().map(Ok::<Event, Infallible>).chain(
            replay
                .into_iter()
                .map(|c| Ok::<Event, Infallible>(crate::serve::events::event(&c))),
        ),
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

/// How many push webhooks are read at once: the route takes no token, so its work is bounded
/// before anything else.
const HOOKS_AT_ONCE: usize = 4;

/// A push webhook (GitHub, GitLab, Gitea): checked, then a fetch starts at once. The signature
/// is checked as the body streams (nothing of it is kept), after the cheap checks: that the
/// server follows a remote, has a secret, and got a signature header; at most four at once.
#[utoipa::path(tag = "api", post, path = "/v1/hooks/push",
    request_body(content = Object, content_type = "application/json", description = "The push event, as the git host sends it (its content is not read: a push means fetch)"),
    responses((status = 202, description = "a fetch was started", body = String, content_type = "text/plain"), (status = 401, body = Problem, description = "no hook secret, or no signature, or one that does not match"), (status = 409, body = Problem, description = "the server follows no remote"), (status = 503, body = Problem, description = "as many webhooks as the server reads at once are being read (`Retry-After`)")))]
pub(crate) async fn hook(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    static READING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(HOOKS_AT_ONCE);
    let Some(following) = state.following.as_ref() else {
        return Problem::new(
            StatusCode::CONFLICT,
            "not-following",
            "this server does not follow a remote, so a push webhook has nothing to fetch",
        )
        .with_hint("start it with --follow REMOTE")
        .into_response();
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
    let bad_signature = || {
        tracing::warn!("push webhook refused: bad or missing signature");
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "bad-signature",
            "the webhook's signature does not match the secret",
        )
        .with_hint("GitHub and Gitea sign with X-Hub-Signature-256, GitLab sends X-Gitlab-Token")
        .into_response()
    };
    let Some(mut signature) = crate::serve::follow::Signature::from_headers(&headers, secret)
    else {
        return bad_signature();
    };
    let Ok(_reading) = READING.try_acquire() else {
        return crate::serve::http::unavailable(
            "busy",
            "as many webhooks as this server reads at once are being read",
            None,
            "1",
        );
    };
    let read =
        crate::serve::http::stream_body(body, crate::serve::follow::MAX_HOOK_BODY, |piece| {
            signature.update(&piece)
        });
    if let Err(problem) = tokio::time::timeout(crate::serve::http::REQUEST_TIMEOUT, read)
        .await
        .unwrap_or_else(|_| {
            Err(Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "slow-body",
                "the webhook's body did not arrive in time",
            ))
        })
    {
        return problem.into_response();
    }
    if !signature.verify() {
        return bad_signature();
    }
    following.wake.notify_one();
    (
        StatusCode::ACCEPTED,
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        "fetching\n",
    )
        .into_response()
}

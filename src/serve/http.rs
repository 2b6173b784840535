//! HTTP as caches and proxies expect it: problem+json errors (RFC 9457) mapped from the
//! library's error kinds in one place, strong ETags, `If-None-Match`, and the caching
//! policy (every document short-lived and revalidated by ETag).

// A problem becomes the response at once: its size is paid once per failed request.
#![allow(clippy::result_large_err)]

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::diagnostic::Diagnostic;
use crate::error::{Error, ErrorKind};

/// Defaults, labels and lists move with the history: a few seconds, then revalidate.
pub(crate) const SHORT: &str = "public, max-age=5, must-revalidate";

/// An error response: `application/problem+json`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:promptreg:problem:KIND`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The kind, in words.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong: the CLI's message.
    pub detail: String,
    /// What to do about it, when there is something to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The findings of an invalid prompt or a failed render, with file, line and column.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub diagnostics: Vec<Diagnostic>,
}

/// Every kind of problem the server answers: the library's error kinds, then the server's own.
/// The document declares `type` as one of these; a debug build refuses any other.
pub(crate) const KINDS: &[&str] = &[
    // crate::error::ErrorKind::as_str, every one (a test checks).
    "io",
    "unreadable",
    "git",
    "no-history",
    "unknown-prompt",
    "bad-reference",
    "not-found",
    "invalid",
    "missing-variables",
    "wrong-type",
    "unused-variables",
    "template",
    "render-limit",
    "usage",
    "unsupported",
    "refused",
    "conflict",
    "stale",
    "model",
    "internal",
    // The server's own.
    "analyses-off",
    "bad-body",
    "bad-request",
    "bad-signature",
    "busy",
    "error",
    "forbidden",
    "method-not-allowed",
    "no-route",
    "not-following",
    "protected",
    "serialize",
    "shutting-down",
    "slow-body",
    "timeout",
    "too-large",
    "too-many-analyses",
    "too-many-renders",
    "too-many-streams",
    "unauthorized",
    "unknown-analysis",
    "unsigned",
    "unsupported-media-type",
    "writes-off",
];

impl Problem {
    /// A problem of a kind of its own (not a library error).
    pub(crate) fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Problem {
        debug_assert!(
            KINDS.contains(&kind),
            "problem kind `{kind}` is not in KINDS"
        );
        Problem {
            kind: format!("urn:promptreg:problem:{kind}"),
            title: status.canonical_reason().unwrap_or("error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            hint: None,
            diagnostics: Vec::new(),
        }
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Problem {
        self.hint = Some(hint.into());
        self
    }
}

/// The HTTP status of each kind of library error: the one place they are mapped.
pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::UnknownPrompt
        | ErrorKind::BadReference
        | ErrorKind::NotFound
        | ErrorKind::NoHistory => StatusCode::NOT_FOUND,
        ErrorKind::Usage => StatusCode::BAD_REQUEST,
        ErrorKind::MissingVariables
        | ErrorKind::WrongType
        | ErrorKind::UnusedVariables
        | ErrorKind::Template
        | ErrorKind::RenderLimit
        | ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Refused | ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Stale => StatusCode::PRECONDITION_FAILED,
        ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
        // The model behind the server failed, or did not answer as asked.
        ErrorKind::Model => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<&Error> for Problem {
    fn from(err: &Error) -> Problem {
        let status = status_of(err.kind());
        let mut problem = Problem::new(status, err.kind().as_str(), err.to_string());
        problem.hint = match err {
            Error::UnknownPrompt { suggestions, .. } if suggestions.is_empty() => {
                Some("GET /v1/prompts lists every prompt".into())
            }
            Error::Stale(_) => Some(
                "read it again, apply your change to what is there now, and send it with the new ETag".into(),
            ),
            _ => err.hint(),
        };
        problem.diagnostics = match err {
            Error::Invalid { diagnostics, .. } => diagnostics.clone(),
            Error::Render(render) => render.diagnostic().into_iter().cloned().collect(),
            _ => Vec::new(),
        };
        problem
    }
}

impl From<Error> for Problem {
    fn from(err: Error) -> Problem {
        Problem::from(&err)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// A JSON answer that is computed for one request (a render, an analysis): `200`,
/// `application/json`, `Cache-Control: no-store`.
pub(crate) fn fresh_json(value: &impl Serialize) -> Result<Response, Problem> {
    Ok(fresh(to_json(value)?))
}

/// A `200` of JSON already written, that no cache may keep.
pub(crate) fn fresh(json: axum::body::Bytes) -> Response {
    let mut response = (StatusCode::OK, json).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The largest request body read.
pub(crate) const MAX_BODY: usize = 1 << 20;

/// How much of a body over the limit is read and dropped, so that a client still sending it
/// gets the 413 rather than a reset connection; beyond it, the connection is closed.
const DRAIN: usize = 64 << 20;

/// How long a request may take, body included, before it is answered with 408.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The request body, at most [`MAX_BODY`] bytes of it, sent within [`REQUEST_TIMEOUT`]
/// (a route whose answer may take longer, an analysis, still gets its body in that time).
pub(crate) async fn read_body(body: axum::body::Body) -> Result<axum::body::Bytes, Problem> {
    // A small body has mostly arrived with the headers: read it without setting a timer (a
    // timer is a registration in tokio's wheel and its removal, per request).
    let mut read = std::pin::pin!(read_body_limited(body, MAX_BODY));
    let first = std::future::poll_fn(|cx| {
        std::task::Poll::Ready(std::future::Future::poll(read.as_mut(), cx))
    })
    .await;
    if let std::task::Poll::Ready(read) = first {
        return read;
    }
    tokio::time::timeout(REQUEST_TIMEOUT, read)
        .await
        .unwrap_or_else(|_| {
            Err(Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "slow-body",
                format!(
                    "the request body did not arrive within {} s",
                    REQUEST_TIMEOUT.as_secs()
                ),
            ))
        })
}

/// Hands each piece of the request body to `take` as it arrives, keeping none of it; over
/// `limit` bytes in all, a `413` (what follows is read and dropped, up to a bound, so that a
/// client still sending gets the answer rather than a reset connection).
pub(crate) async fn stream_body(
    mut body: axum::body::Body,
    limit: usize,
    mut take: impl FnMut(axum::body::Bytes),
) -> Result<(), Problem> {
    use http_body_util::BodyExt;
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-body",
                format!("the request body could not be read: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total <= limit {
            take(data);
        } else if total > DRAIN.max(limit) {
            break;
        }
    }
    if total > limit {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("the request body is larger than {limit} bytes"),
        ));
    }
    Ok(())
}

/// The request body, at most `limit` bytes of it.
pub(crate) async fn read_body_limited(
    body: axum::body::Body,
    limit: usize,
) -> Result<axum::body::Bytes, Problem> {
    // A body that comes as one piece (most do) is kept as it came, with nothing allocated to
    // gather it; only more pieces are copied, into one.
    let mut first = None;
    let mut more = Vec::new();
    stream_body(body, limit, |data| match first {
        None => first = Some(data),
        Some(_) => more.push(data),
    })
    .await?;
    Ok(match first {
        None => axum::body::Bytes::new(),
        Some(first) if more.is_empty() => first,
        Some(first) => {
            more.insert(0, first);
            axum::body::Bytes::from(more.concat())
        }
    })
}

/// A `503` with `Retry-After`: a bounded resource (render slots, event streams, webhook
/// readers) stayed taken.
pub(crate) fn unavailable(
    kind: &str,
    detail: &str,
    hint: Option<&str>,
    retry_after: &'static str,
) -> Response {
    let mut problem = Problem::new(StatusCode::SERVICE_UNAVAILABLE, kind, detail);
    if let Some(hint) = hint {
        problem = problem.with_hint(hint);
    }
    let mut response = problem.into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(retry_after));
    response
}

/// A strong ETag built from object ids (never from the body).
pub(crate) fn etag(parts: &[&str]) -> String {
    format!("\"{}\"", parts.join("."))
}

/// A prompt id as a part of an ETag: ids may hold characters an ETag cannot (spaces, `"`,
/// non-ASCII), so a digest of it, 16 hex digits.
pub(crate) fn id_tag(id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id.as_bytes());
    let mut digits = [0u8; 16];
    crate::git::oid::hex(&digest[..8], &mut digits).to_string()
}

/// Whether `If-None-Match` already names `etag` (or is `*`).
pub(crate) fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag == etag || tag.strip_prefix("W/") == Some(etag))
}

/// A JSON answer with its validator and caching policy, or 304 when the client has it.
pub(crate) fn cached_json(
    headers: &HeaderMap,
    etag: &str,
    cache: &'static str,
    body: impl FnOnce() -> Result<axum::body::Bytes, Problem>,
) -> Response {
    if not_modified(headers, etag) {
        return validated(
            StatusCode::NOT_MODIFIED.into_response(),
            HeaderValue::from_str(etag).ok(),
            cache,
        );
    }
    match body() {
        Ok(bytes) => Answer::new(etag, cache, bytes).respond(headers),
        Err(problem) => problem.into_response(),
    }
}

/// A JSON document as it is answered: its bytes, its validator and its caching policy. Kept
/// (per snapshot) so that a repeated request is answered without building it again.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    etag: Option<HeaderValue>,
    cache: &'static str,
    body: axum::body::Bytes,
}

impl Answer {
    pub(crate) fn new(etag: &str, cache: &'static str, body: axum::body::Bytes) -> Answer {
        Answer {
            etag: HeaderValue::from_str(etag).ok(),
            cache,
            body,
        }
    }

    /// About how many bytes it holds.
    pub(crate) fn size(&self) -> usize {
        self.body.len() + self.etag.as_ref().map_or(0, HeaderValue::len)
    }

    /// `200` with the document, or `304` when `If-None-Match` names its ETag.
    pub(crate) fn respond(&self, headers: &HeaderMap) -> Response {
        let tag = self.etag.as_ref().and_then(|v| v.to_str().ok());
        let response = match tag {
            Some(tag) if not_modified(headers, tag) => StatusCode::NOT_MODIFIED.into_response(),
            _ => {
                let mut response = (StatusCode::OK, self.body.clone()).into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
        };
        validated(response, self.etag.clone(), self.cache)
    }
}

/// `response` with its `ETag` and `Cache-Control`.
fn validated(mut response: Response, etag: Option<HeaderValue>, cache: &'static str) -> Response {
    let headers = response.headers_mut();
    if let Some(value) = etag {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// The JSON bytes of a response body.
pub(crate) fn to_json(value: &impl Serialize) -> Result<axum::body::Bytes, Problem> {
    to_json_vec(value).map(axum::body::Bytes::from)
}

/// [`to_json`] as a vector.
pub(crate) fn to_json_vec(value: &impl Serialize) -> Result<Vec<u8>, Problem> {
    // Most documents are a few KiB: start there rather than grow from serde_json's 128 bytes.
    let mut out = Vec::with_capacity(4 << 10);
    serde_json::to_writer(&mut out, value)
        .map(|()| out)
        .map_err(unwritable)
}

/// The problem for a document that could not be written.
pub(crate) fn unwritable(e: serde_json::Error) -> Problem {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "serialize",
        format!("the response cannot be written: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use crate::serve::http::*;

    fn read(pieces: &[&'static str], limit: usize) -> Result<axum::body::Bytes, Problem> {
        let frames: Vec<Result<axum::body::Bytes, std::convert::Infallible>> = pieces
            .iter()
            .map(|p| Ok(axum::body::Bytes::from_static(p.as_bytes())))
            .collect();
        let body = axum::body::Body::from_stream(futures_util::stream::iter(frames));
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
            .block_on(read_body_limited(body, limit))
    }

    /// A body in one piece is kept as it came; in several, they are joined in order; over the
    /// limit, 413 whatever the pieces.
    #[test]
    fn bodies_read_whole_in_one_piece_or_many() {
        assert_eq!(read(&[], 10).expect("empty"), "");
        assert_eq!(read(&["{\"a\": 1}"], 10).expect("one"), "{\"a\": 1}");
        assert_eq!(read(&["ab", "", "cd", "e"], 10).expect("many"), "abcde");
        for pieces in [&["0123456789x"][..], &["01234", "56789", "x"]] {
            let problem = read(pieces, 10).expect_err("over the limit");
            assert_eq!(problem.status, 413);
        }
    }

    #[test]
    fn if_none_match_lists_and_weak_tags_match() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"a\", W/\"b\""),
        );
        assert!(not_modified(&headers, "\"a\""));
        assert!(not_modified(&headers, "\"b\""));
        assert!(!not_modified(&headers, "\"c\""));
        assert!(!not_modified(&HeaderMap::new(), "\"a\""));
    }

    #[test]
    fn every_kind_has_a_status() {
        assert_eq!(status_of(ErrorKind::UnknownPrompt), StatusCode::NOT_FOUND);
        assert_eq!(
            status_of(ErrorKind::MissingVariables),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(status_of(ErrorKind::Usage), StatusCode::BAD_REQUEST);
        assert_eq!(status_of(ErrorKind::Git), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(status_of(ErrorKind::Model), StatusCode::BAD_GATEWAY);
    }
}

/// The query of a request as `T`: each parameter's first occurrence counts (a repeated one is
/// not an error), names `T` does not have are ignored, and a value that does not read as its
/// type is a `400` problem naming it.
#[derive(Debug)]
pub(crate) struct Params<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S>
    for Params<T>
{
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Problem> {
        let query = parts.uri.query().unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        let mut first = form_urlencoded::Serializer::new(String::new());
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if seen.insert(name.clone()) {
                first.append_pair(&name, &value);
            }
        }
        serde_urlencoded::from_str(&first.finish())
            .map(Params)
            .map_err(|e| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "usage",
                    format!("the query cannot be read: {e}"),
                )
            })
    }
}

/// A JSON request body as `T`: an object (a JSON array or scalar is refused even where `T`
/// could read one), or `T::default()` when the body is empty and `empty` allows it.
pub(crate) fn json_object<T: serde::de::DeserializeOwned + Default>(
    bytes: &[u8],
    what: &str,
    empty: bool,
) -> Result<T, Problem> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    // JSON's `null` is no body, where none is needed.
    let null = bytes.trim_ascii() == b"null";
    match first {
        None if empty => return Ok(T::default()),
        Some(_) if empty && null => return Ok(T::default()),
        Some(b'{') => {}
        _ => {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-body",
                format!("the request body is not {what}: it must be a JSON object"),
            ))
        }
    }
    serde_json::from_slice(bytes).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-body",
            format!("the request body is not {what}: {e}"),
        )
    })
}

/// A whole number from a JSON body, written as JSON Schema counts integers: `3` or `3.0`.
pub(crate) fn whole<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::Error as _;
    let number = serde_json::Number::deserialize(deserializer)?;
    let value = match (number.as_u64(), number.as_f64()) {
        (Some(n), _) => Some(n),
        (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 => Some(f as u64),
        _ => None,
    };
    value
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| D::Error::custom(format!("{number} is not a whole number in range")))
}

/// [`whole`], for an optional field.
pub(crate) fn whole_opt<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    #[derive(serde::Deserialize)]
    struct Whole<T: TryFrom<u64>>(#[serde(deserialize_with = "whole")] T);
    Ok(Option::<Whole<T>>::deserialize(deserializer)?.map(|w| w.0))
}

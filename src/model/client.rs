//! The HTTP client for OpenAI-compatible chat completions (ureq with rustls): one POST per
//! request, retried with back-off on 429 (honouring `Retry-After`) and 5xx, a timeout on the
//! whole exchange, and replies read either as one JSON document or as server-sent events
//! (`stream: true`), whichever the server sends.
//!
//! Every failure is an [`Error::Model`] naming the model and the endpoint (without user info
//! or query string); the key is only ever written into the request's header.

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::config::{Auth, ModelConfig};

/// The most a reply may hold.
const MAX_REPLY: u64 = 16 * 1024 * 1024;

/// A function told about retries, for a CLI to print a note.
pub type Notify = Arc<dyn Fn(&str) + Send + Sync>;

/// A finished completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The assistant's text (every choice-0 delta joined, for a stream).
    pub content: String,
    /// The whole response, in the non-streaming shape (`choices[0].message`, `usage`), also
    /// for a streamed reply.
    pub response: Value,
}

impl Completion {
    /// The token usage the server reported, if it did.
    pub fn usage(&self) -> Option<&Value> {
        self.response.get("usage").filter(|u| !u.is_null())
    }
}

/// A client for one endpoint. Cheap to share between threads.
#[derive(Clone)]
pub struct Client {
    config: ModelConfig,
    agent: ureq::Agent,
    notify: Option<Notify>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish()
    }
}

/// How one attempt failed.
enum Attempt {
    /// Worth another try after this long (`None`: the back-off).
    Retry(Option<Duration>, String),
    /// Final.
    Fail(Error),
}

impl Client {
    /// A client for `config`.
    pub fn new(config: ModelConfig) -> Client {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("promptreg/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Client {
            config,
            agent,
            notify: None,
        }
    }

    /// Calls `notify` with a line for each retry.
    pub fn with_notify(mut self, notify: Notify) -> Client {
        self.notify = Some(notify);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Posts `body` and returns the completion; `on_delta` gets each piece of text of a
    /// streamed reply as it arrives (a whole reply arrives as one piece).
    pub fn complete(&self, body: &Value, on_delta: &mut dyn FnMut(&str)) -> Result<Completion> {
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("(none)")
            .to_string();
        let text = body.to_string();
        let mut attempt = 0;
        loop {
            match self.attempt(&model, &text, on_delta) {
                Ok(done) => return Ok(done),
                Err(Attempt::Fail(err)) => return Err(err),
                Err(Attempt::Retry(wait, why)) => {
                    if attempt >= self.config.retries {
                        return Err(self.error(
                            &model,
                            &format!("{why} (gave up after {} attempts)", attempt + 1),
                        ));
                    }
                    let backoff = self.config.backoff * 2u32.saturating_pow(attempt);
                    let wait = wait.unwrap_or(backoff).min(self.config.max_wait);
                    if let Some(notify) = &self.notify {
                        notify(&format!(
                            "model `{model}`: {why}; retrying in {:.1}s ({}/{})",
                            wait.as_secs_f64(),
                            attempt + 1,
                            self.config.retries
                        ));
                    }
                    std::thread::sleep(wait);
                    attempt += 1;
                }
            }
        }
    }

    fn error(&self, model: &str, what: &str) -> Error {
        Error::Model(format!(
            "model `{model}` at {}: {what}",
            self.config.display_url()
        ))
    }

    fn attempt(
        &self,
        model: &str,
        body: &str,
        on_delta: &mut dyn FnMut(&str),
    ) -> Result<Completion, Attempt> {
        let mut request = self
            .agent
            .post(&self.config.url)
            .header("Content-Type", "application/json");
        if let Some(key) = &self.config.key {
            request = match self.config.auth {
                Auth::Bearer => request.header("Authorization", format!("Bearer {}", key.expose())),
                Auth::ApiKey => request.header("api-key", key.expose()),
            };
        }
        let response = match request.send(body) {
            Ok(response) => response,
            Err(ureq::Error::Timeout(_)) => {
                return Err(Attempt::Fail(self.error(
                    model,
                    &format!(
                        "no complete answer within {:.0}s (raise it with --timeout)",
                        self.config.timeout.as_secs_f64()
                    ),
                )))
            }
            Err(ureq::Error::ConnectionFailed) | Err(ureq::Error::Io(_)) => {
                return Err(Attempt::Retry(None, "the connection failed".into()))
            }
            Err(err) => return Err(Attempt::Fail(self.error(model, &err.to_string()))),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let event_stream = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        let reader = response
            .into_body()
            .into_with_config()
            .limit(MAX_REPLY)
            .reader();
        if status == 429 {
            return Err(Attempt::Retry(
                retry_after,
                "rate limited (HTTP 429)".into(),
            ));
        }
        if (500..600).contains(&status) {
            let detail = snippet(&read_all(reader));
            return Err(Attempt::Retry(
                retry_after,
                format!("HTTP {status}{detail}"),
            ));
        }
        if status != 200 {
            let detail = snippet(&read_all(reader));
            let what = match status {
                401 | 403 => format!("HTTP {status}, the key was refused{detail}"),
                404 => format!("HTTP 404, no such endpoint or model{detail}"),
                _ => format!("HTTP {status}{detail}"),
            };
            return Err(Attempt::Fail(self.error(model, &what)));
        }
        let done = if event_stream {
            read_stream(reader, on_delta)
        } else {
            read_whole(reader, on_delta)
        };
        done.map_err(|what| Attempt::Fail(self.error(model, &what)))
    }
}

/// `Retry-After` in seconds (a date is left to the back-off).
fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    // Too large a number is a wait longer than anyone waits: the caller caps it.
    match Duration::try_from_secs_f64(seconds) {
        Ok(wait) => Some(wait),
        Err(_) if seconds.is_finite() && seconds > 0.0 => Some(Duration::MAX),
        Err(_) => None,
    }
}

fn read_all(mut reader: impl Read) -> String {
    let mut bytes = Vec::new();
    let _ = reader.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `: first 200 characters` of an error body, on one line; empty for an empty body.
fn snippet(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return String::new();
    }
    let mut short: String = line.chars().take(200).collect();
    if short.len() < line.len() {
        short.push_str("...");
    }
    format!(": {short}")
}

/// A whole JSON reply.
fn read_whole(reader: impl Read, on_delta: &mut dyn FnMut(&str)) -> Result<Completion, String> {
    let text = read_all(reader);
    let response: Value = serde_json::from_str(&text)
        .map_err(|_| format!("the reply is not JSON{}", snippet(&text)))?;
    let content = match response.pointer("/choices/0/message/content") {
        Some(Value::String(content)) => content.clone(),
        Some(Value::Null) => String::new(),
        _ => {
            return Err(format!(
                "the reply has no `choices[0].message.content`{}",
                snippet(&text)
            ))
        }
    };
    on_delta(&content);
    Ok(Completion { content, response })
}

/// A reply as server-sent events: `data: {chunk}` lines up to `data: [DONE]`.
fn read_stream(reader: impl Read, on_delta: &mut dyn FnMut(&str)) -> Result<Completion, String> {
    let mut content = String::new();
    let mut last = Map::new();
    let mut finish = Value::Null;
    let mut usage = Value::Null;
    for line in BufReader::new(reader).lines() {
        let line = line.map_err(|e| format!("the stream broke off: {e}"))?;
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let data = data.trim();
        if data == "[DONE]" {
            break;
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|_| format!("a streamed chunk is not JSON{}", snippet(data)))?;
        if let Some(error) = chunk.get("error") {
            return Err(format!("the stream reported an error: {error}"));
        }
        if let Some(choice) = chunk.pointer("/choices/0") {
            let piece = choice
                .pointer("/delta/content")
                .or_else(|| choice.pointer("/message/content"))
                .and_then(Value::as_str);
            if let Some(piece) = piece {
                on_delta(piece);
                content.push_str(piece);
            }
            if let Some(reason) = choice.get("finish_reason").filter(|r| !r.is_null()) {
                finish = reason.clone();
            }
        }
        if let Some(u) = chunk.get("usage").filter(|u| !u.is_null()) {
            usage = u.clone();
        }
        if let Value::Object(map) = chunk {
            last = map;
        }
    }
    let mut response = Map::new();
    for key in ["id", "created", "model", "system_fingerprint"] {
        if let Some(value) = last.get(key) {
            response.insert(key.into(), value.clone());
        }
    }
    response.insert("object".into(), "chat.completion".into());
    response.insert(
        "choices".into(),
        serde_json::json!([{
            "index": 0,
            "message": { "role": "assistant", "content": content },
            "finish_reason": finish,
        }]),
    );
    response.insert("usage".into(), usage);
    Ok(Completion {
        content,
        response: Value::Object(response),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_stream() {
        let sse = "data: {\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n\
                   data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n\
                   : keep-alive\n\
                   data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n\
                   data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"total_tokens\":3}}\n\n\
                   data: [DONE]\n\n";
        let mut pieces = Vec::new();
        let done =
            read_stream(sse.as_bytes(), &mut |p| pieces.push(p.to_string())).expect("stream");
        assert_eq!(pieces, ["Hel", "lo"]);
        assert_eq!(done.content, "Hello");
        assert_eq!(
            done.usage(),
            Some(&serde_json::json!({ "total_tokens": 3 }))
        );
        assert_eq!(done.response["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn refuses_what_is_not_json() {
        let err = read_whole("<html>oops</html>".as_bytes(), &mut |_| {}).unwrap_err();
        assert_eq!(err, "the reply is not JSON: <html>oops</html>");
        let err = read_whole("{\"choices\":[]}".as_bytes(), &mut |_| {}).unwrap_err();
        assert!(err.starts_with("the reply has no `choices[0].message.content`"));
        assert!(read_stream("data: nope\n".as_bytes(), &mut |_| {}).is_err());
    }

    #[test]
    fn retry_after() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        // A hostile server's number never panics: too long is "as long as we wait at most".
        assert_eq!(parse_retry_after("1e300"), Some(Duration::MAX));
        assert_eq!(parse_retry_after("NaN"), None);
        assert_eq!(parse_retry_after("inf"), None);
    }
}

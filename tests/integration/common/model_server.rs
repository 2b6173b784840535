//! A small OpenAI-compatible chat-completions server on 127.0.0.1 (an ephemeral port), for
//! tests: it answers `POST .../chat/completions` as the API documents it (a
//! `chat.completion` object, or `chat.completion.chunk` server-sent events ending with
//! `data: [DONE]` when the request says `stream: true`), records every request, and plays
//! scripted faults first (429 with `Retry-After`, 500, a slow reply, a reply that is not JSON).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// One request the server got.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Header names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A scripted answer, played before the responder's.
#[derive(Debug, Clone)]
pub enum Fault {
    /// HTTP 429 with `Retry-After: seconds`.
    RateLimited(u32),
    /// HTTP 500 with a JSON error body.
    ServerError,
    /// Waits this long, then answers normally.
    Slow(Duration),
    /// HTTP 200 with an HTML body.
    NotJson,
    /// HTTP 401.
    Unauthorized,
}

type Responder = dyn Fn(&Value) -> String + Send + Sync;

struct State {
    requests: Vec<Recorded>,
    faults: VecDeque<Fault>,
}

/// The running server; it stops when the test process ends.
pub struct ModelServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl ModelServer {
    /// Starts a server whose replies are `responder(request body)`.
    pub fn start(responder: impl Fn(&Value) -> String + Send + Sync + 'static) -> ModelServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State {
            requests: Vec::new(),
            faults: VecDeque::new(),
        }));
        let responder: Arc<Responder> = Arc::new(responder);
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let state = shared.clone();
                let responder = responder.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &state, responder.as_ref());
                });
            }
        });
        ModelServer { port, state }
    }

    /// A server that always answers `text`.
    pub fn answering(text: &str) -> ModelServer {
        let text = text.to_string();
        ModelServer::start(move |_| text.clone())
    }

    /// The base URL to pass as `--endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Plays `fault` on the next request not yet answered (in order).
    pub fn push_fault(&self, fault: Fault) {
        self.state.lock().expect("state").faults.push_back(fault);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().expect("state").requests.clone()
    }

    /// The bodies of every request so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.requests().into_iter().map(|r| r.body).collect()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>, responder: &Responder) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim().to_string();
            if name == "content-length" {
                length = value.parse().unwrap_or(0);
            }
            headers.push((name, value));
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let fault = {
        let mut state = state.lock().expect("state");
        state.requests.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            headers,
            body: body.clone(),
        });
        state.faults.pop_front()
    };
    let mut out = stream;
    if method != "POST" || !path.ends_with("/chat/completions") {
        return respond(
            &mut out,
            404,
            "application/json",
            &[],
            r#"{"error":{"message":"not found"}}"#,
        );
    }
    match fault {
        Some(Fault::RateLimited(seconds)) => {
            let retry = seconds.to_string();
            return respond(
                &mut out,
                429,
                "application/json",
                &[("Retry-After", retry.as_str())],
                r#"{"error":{"message":"Rate limit reached","type":"rate_limit_error"}}"#,
            );
        }
        Some(Fault::ServerError) => {
            return respond(
                &mut out,
                500,
                "application/json",
                &[],
                r#"{"error":{"message":"The server had an error"}}"#,
            );
        }
        Some(Fault::NotJson) => {
            return respond(
                &mut out,
                200,
                "text/html",
                &[],
                "<html><body>Bad gateway</body></html>",
            );
        }
        Some(Fault::Unauthorized) => {
            return respond(
                &mut out,
                401,
                "application/json",
                &[],
                r#"{"error":{"message":"Incorrect API key provided"}}"#,
            );
        }
        Some(Fault::Slow(wait)) => std::thread::sleep(wait),
        None => {}
    }
    let content = responder(&body);
    let model = body.get("model").cloned().unwrap_or(Value::Null);
    let usage = json!({ "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15 });
    if body.get("stream") == Some(&Value::Bool(true)) {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
        out.write_all(head.as_bytes())?;
        let mut chunks = vec![json!({ "role": "assistant", "content": "" })];
        let chars: Vec<char> = content.chars().collect();
        for piece in chars.chunks(4) {
            chunks.push(json!({ "content": piece.iter().collect::<String>() }));
        }
        let last = chunks.len() - 1;
        for (i, delta) in chunks.into_iter().enumerate() {
            let chunk = json!({
                "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1700000000,
                "model": model,
                "choices": [{ "index": 0, "delta": delta, "finish_reason": if i == last { json!("stop") } else { Value::Null } }],
            });
            out.write_all(format!("data: {chunk}\n\n").as_bytes())?;
            out.flush()?;
        }
        if body.pointer("/stream_options/include_usage") == Some(&Value::Bool(true)) {
            let chunk = json!({ "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1700000000, "model": model, "choices": [], "usage": usage });
            out.write_all(format!("data: {chunk}\n\n").as_bytes())?;
        }
        out.write_all(b"data: [DONE]\n\n")?;
        return out.flush();
    }
    let reply = json!({
        "id": "chatcmpl-test", "object": "chat.completion", "created": 1700000000, "model": model,
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": content }, "finish_reason": "stop" }],
        "usage": usage,
    });
    respond(&mut out, 200, "application/json", &[], &reply.to_string())
}

fn respond(
    out: &mut TcpStream,
    status: u16,
    content_type: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Internal Server Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body.as_bytes())?;
    out.flush()
}

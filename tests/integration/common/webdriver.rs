//! A WebDriver client for the UI's tests: the W3C protocol's JSON over HTTP, with the blocking
//! ureq client the tests already use, against a chromedriver on loopback. Only what the tests
//! need: sessions, navigation, elements (found, clicked, typed into, read), scripts, pointer
//! moves and screenshots.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The key W3C WebDriver names an element by in JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How an element is found.
#[derive(Debug, Clone, Copy)]
pub enum By<'a> {
    Css(&'a str),
    XPath(&'a str),
    LinkText(&'a str),
}

impl By<'_> {
    fn json(self) -> Value {
        let (using, value) = match self {
            By::Css(v) => ("css selector", v),
            By::XPath(v) => ("xpath", v),
            By::LinkText(v) => ("link text", v),
        };
        json!({ "using": using, "value": value })
    }
}

/// A WebDriver error: the command's error code and message.
#[derive(Debug)]
pub struct WdError(pub String);

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The session's address and an HTTP agent.
#[derive(Clone)]
struct Conn {
    base: String,
    agent: ureq::Agent,
}

/// One browser session; ended when dropped.
pub struct Session {
    conn: Conn,
}

/// An element of the page.
#[derive(Clone)]
pub struct Element {
    conn: Conn,
    id: String,
}

impl Element {
    /// The element as a script argument.
    pub fn arg(&self) -> Value {
        json!({ ELEMENT: self.id })
    }

    fn at(&self, what: &str) -> String {
        format!("/element/{}/{what}", self.id)
    }

    pub fn click(&self) -> Result<(), WdError> {
        self.conn.command("POST", &self.at("click"), None).map(drop)
    }

    pub fn send_keys(&self, text: &str) -> Result<(), WdError> {
        self.conn
            .command("POST", &self.at("value"), Some(json!({ "text": text })))
            .map(drop)
    }

    pub fn text(&self) -> Result<String, WdError> {
        let text = self.conn.command("GET", &self.at("text"), None)?;
        Ok(text.as_str().unwrap_or_default().to_string())
    }

    pub fn prop(&self, name: &str) -> Result<Option<String>, WdError> {
        let value = self
            .conn
            .command("GET", &self.at(&format!("property/{name}")), None)?;
        Ok(match value {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        })
    }

    pub fn attr(&self, name: &str) -> Result<Option<String>, WdError> {
        let value = self
            .conn
            .command("GET", &self.at(&format!("attribute/{name}")), None)?;
        Ok(value.as_str().map(str::to_string))
    }

    /// Chooses the `<option>` with this value of a `<select>`.
    pub fn select_by_value(&self, value: &str) -> Result<(), WdError> {
        let xpath = format!(".//option[@value='{value}']");
        let option =
            self.conn
                .command("POST", &self.at("element"), Some(By::XPath(&xpath).json()))?;
        self.conn.element(&option)?.click()
    }
}

impl Conn {
    fn element(&self, found: &Value) -> Result<Element, WdError> {
        found[ELEMENT]
            .as_str()
            .map(|id| Element {
                conn: self.clone(),
                id: id.to_string(),
            })
            .ok_or_else(|| WdError(format!("not an element: {found}")))
    }

    /// Sends one command; its `value`, or its error.
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        let url = format!("{}{path}", self.base);
        let sent = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self
                .agent
                .post(&url)
                .send_json(body.unwrap_or_else(|| json!({}))),
        };
        let mut response = sent.map_err(|e| WdError(format!("{method} {path}: {e}")))?;
        let status = response.status().as_u16();
        let answer: Value = response
            .body_mut()
            .read_json()
            .map_err(|e| WdError(format!("{method} {path}: not JSON: {e}")))?;
        let value = answer.get("value").cloned().unwrap_or(Value::Null);
        if status >= 400 {
            return Err(WdError(format!(
                "{method} {path}: {} ({})",
                value["error"].as_str().unwrap_or("error"),
                value["message"]
                    .as_str()
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or_default()
            )));
        }
        Ok(value)
    }
}

impl Session {
    /// Starts a session on the chromedriver at `driver` with these capabilities.
    pub fn start(driver: &str, capabilities: Value) -> Result<Session, WdError> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .new_agent();
        let mut conn = Conn {
            base: driver.trim_end_matches('/').to_string(),
            agent,
        };
        let made = conn.command(
            "POST",
            "/session",
            Some(json!({ "capabilities": { "alwaysMatch": capabilities } })),
        )?;
        let id = made["sessionId"]
            .as_str()
            .ok_or_else(|| WdError(format!("no session id in {made}")))?;
        conn.base = format!("{}/session/{id}", conn.base);
        Ok(Session { conn })
    }

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        self.conn.command(method, path, body)
    }

    pub fn goto(&self, url: &str) -> Result<(), WdError> {
        self.command("POST", "/url", Some(json!({ "url": url })))
            .map(drop)
    }

    pub fn current_url(&self) -> Result<String, WdError> {
        Ok(self
            .command("GET", "/url", None)?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    pub fn source(&self) -> Result<String, WdError> {
        Ok(self
            .command("GET", "/source", None)?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    pub fn find(&self, by: By<'_>) -> Result<Element, WdError> {
        let found = self.command("POST", "/element", Some(by.json()))?;
        self.conn.element(&found)
    }

    pub fn find_all(&self, by: By<'_>) -> Result<Vec<Element>, WdError> {
        let found = self.command("POST", "/elements", Some(by.json()))?;
        found
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| self.conn.element(f))
            .collect()
    }

    /// The element, once it is there (polling for up to `seconds`).
    pub fn wait_for(&self, by: By<'_>, seconds: u64) -> Result<Element, WdError> {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            match self.find(by) {
                Ok(found) => return Ok(found),
                Err(err) if Instant::now() >= deadline => return Err(err),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    pub fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value, WdError> {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    pub fn execute_async(&self, script: &str, args: Vec<Value>) -> Result<Value, WdError> {
        self.command(
            "POST",
            "/execute/async",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Moves the mouse to the middle of `element` (hovering it).
    pub fn hover(&self, element: &Element) -> Result<(), WdError> {
        let actions = json!({ "actions": [{
            "type": "pointer",
            "id": "mouse",
            "parameters": { "pointerType": "mouse" },
            "actions": [{ "type": "pointerMove", "duration": 0, "origin": element.arg(), "x": 0, "y": 0 }],
        }]});
        self.command("POST", "/actions", Some(actions)).map(drop)
    }

    /// The page as a PNG.
    pub fn screenshot(&self) -> Result<Vec<u8>, WdError> {
        let text = self.command("GET", "/screenshot", None)?;
        base64(text.as_str().unwrap_or_default())
            .ok_or_else(|| WdError("the screenshot is not base64".into()))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.command("DELETE", "", None);
    }
}

/// Decodes standard base64 (with padding).
fn base64(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().filter(|c| **c == b'=').count();
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let d = if *c == b'=' { 0 } else { digit(*c)? };
            n |= d << (18 - 6 * i);
        }
        let all = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&all[..3 - pad.min(2)]);
    }
    Some(out)
}

#[test]
fn base64_decodes() {
    assert_eq!(base64("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
    assert_eq!(base64("aGk=").as_deref(), Some(&b"hi"[..]));
    assert_eq!(base64("YWJj").as_deref(), Some(&b"abc"[..]));
}

//! Splitting one rendered template into chat messages at the lines that name a role, as
//! Prompty does: a line holding only `system:`, `user:`, `assistant:` or `developer:`
//! (any case, an optional leading `#`, optional `[name="..."]` attributes) starts a message;
//! text before the first one is a system message; each message's text loses the blank lines
//! at its ends.
//!
//! Strict splitting (Prompty's default) splits only at the template's own role lines: they are
//! replaced before compiling by marker lines that carry a secret, so a value that renders as
//! `user:` cannot start a message (it is refused).

use std::hash::{BuildHasher, Hasher};

use serde_json::{Map, Value};

use crate::format::prompt::{Insert, Message, Role};

/// The roles a role line may name.
pub const ROLES: &[&str] = &["system", "user", "assistant", "developer"];

/// The role a line names, if it is a role line.
///
/// ```
/// use promptreg::render::roles::role_line;
/// assert_eq!(role_line("user:"), Some("user"));
/// assert_eq!(role_line("  # System :  "), Some("system"));
/// assert_eq!(role_line("user[name=\"Alice\"]:"), Some("user"));
/// assert_eq!(role_line("user: hello"), None);
/// assert_eq!(role_line("name: {{item.name}}"), None);
/// ```
pub fn role_line(line: &str) -> Option<&'static str> {
    let rest = line.trim();
    let rest = rest.strip_prefix('#').map_or(rest, str::trim_start);
    let word_end = rest
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    let role = ROLES
        .iter()
        .find(|r| r.eq_ignore_ascii_case(&rest[..word_end]))?;
    let mut rest = &rest[word_end..];
    if let Some(attrs) = rest.strip_prefix('[') {
        let close = attrs.find(']')?;
        rest = &attrs[close + 1..];
    }
    (rest.trim_start() == ":").then_some(role)
}

/// How a rendered chat template is split into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Split {
    /// Prompty, strict: only the template's own role lines.
    Strict,
    /// Prompty, not strict: every role line.
    Lines,
    /// Dotprompt: only `{{role}}` markers.
    Markers,
}

/// The secret that marks the template's own role lines (and inserted inputs) in one compiled
/// prompt: random for each process, so no value can forge it.
#[derive(Debug, Clone)]
pub(crate) struct Marks {
    nonce: String,
}

impl Marks {
    pub(crate) fn new() -> Marks {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0x7072_6f6d_7074_7265);
        Marks {
            nonce: format!("{:016x}", hasher.finish()),
        }
    }

    /// The marker line of a role (without its line end).
    pub(crate) fn role_marker(&self, role: &str) -> String {
        format!("\u{2063}promptreg-role-{}:{role}", self.nonce)
    }

    fn role_of<'a>(&self, line: &'a str) -> Option<&'a str> {
        line.trim()
            .strip_prefix("\u{2063}promptreg-role-")?
            .strip_prefix(self.nonce.as_str())?
            .strip_prefix(':')
    }

    /// The text a template sees for inserted input `name`.
    pub(crate) fn insert(&self, name: &str) -> String {
        format!("\u{2063}promptreg-insert-{}:{name}\u{2063}", self.nonce)
    }

    /// The template with each of its role lines replaced by a marker line (line numbers kept).
    pub(crate) fn mark(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 64);
        for line in template.split_inclusive('\n') {
            let body = line.trim_end_matches(['\n', '\r']);
            match role_line(body) {
                Some(role) => {
                    out.push_str(&self.role_marker(role));
                    out.push_str(&line[body.len()..]);
                }
                None => out.push_str(line),
            }
        }
        out
    }

    /// Splits rendered text into messages. [`Split::Strict`]: only marker lines split and a
    /// role line that a value rendered is an error; [`Split::Lines`]: every role line splits;
    /// [`Split::Markers`] (Dotprompt): only marker lines split, role lines are text, text before
    /// the first marker is a user message, and messages lose the white space at their ends
    /// (empty ones are dropped). Inserted inputs are replaced by their messages (a thread) or
    /// refused (media).
    pub(crate) fn split(
        &self,
        text: &str,
        mode: Split,
        inserts: &[(String, Insert)],
        values: &Map<String, Value>,
    ) -> Result<Vec<Message>, String> {
        let strict = mode == Split::Strict;
        let mut messages = Vec::new();
        let mut role = match mode {
            Split::Markers => "user".to_string(),
            _ => "system".to_string(),
        };
        let mut lines: Vec<&str> = Vec::new();
        let flush = |role: &str, lines: &mut Vec<&str>, out: &mut Vec<Message>| {
            if !lines.is_empty() {
                let content = lines.join("\n");
                out.push(Message {
                    role: Role::from_name(role),
                    content: content.trim_matches('\n').to_string(),
                });
                lines.clear();
            }
        };
        for line in text.lines() {
            let marked = self.role_of(line);
            let found = match marked {
                Some(role) => Some(role.to_string()),
                None if mode == Split::Markers => None,
                None => match role_line(line) {
                    Some(_) if strict => {
                        return Err(format!(
                            "a value rendered the role line `{}`: only the template's own role lines start messages",
                            line.trim()
                        ));
                    }
                    Some(role) => Some(role.to_string()),
                    None => None,
                },
            };
            match found {
                Some(next) => {
                    flush(&role, &mut lines, &mut messages);
                    role = next;
                }
                None => lines.push(line),
            }
        }
        flush(&role, &mut lines, &mut messages);
        if mode == Split::Markers {
            messages.retain_mut(|m| {
                m.content = m.content.trim().to_string();
                !m.content.is_empty()
            });
        }
        if inserts.is_empty() {
            return Ok(messages);
        }
        self.expand(messages, inserts, values)
    }

    /// Puts each inserted input's messages where its marker is.
    fn expand(
        &self,
        messages: Vec<Message>,
        inserts: &[(String, Insert)],
        values: &Map<String, Value>,
    ) -> Result<Vec<Message>, String> {
        let mut out = Vec::with_capacity(messages.len());
        for message in messages {
            let mut rest = message.content.as_str();
            let mut found_any = false;
            loop {
                let found = inserts
                    .iter()
                    .filter_map(|(name, how)| {
                        let marker = self.insert(name);
                        rest.find(&marker).map(|at| (at, marker.len(), name, *how))
                    })
                    .min_by_key(|(at, ..)| *at);
                let Some((at, len, name, how)) = found else {
                    break;
                };
                found_any = true;
                let before = rest[..at].trim_matches('\n');
                if !before.is_empty() {
                    out.push(Message {
                        role: message.role.clone(),
                        content: before.to_string(),
                    });
                }
                out.extend(inserted(name, how, values.get(name.as_str()))?);
                rest = &rest[at + len..];
            }
            if !found_any {
                out.push(message);
                continue;
            }
            let rest = rest.trim_matches('\n');
            if !rest.is_empty() {
                out.push(Message {
                    role: message.role.clone(),
                    content: rest.to_string(),
                });
            }
        }
        Ok(out)
    }
}

/// The messages an inserted input's value gives.
fn inserted(name: &str, how: Insert, value: Option<&Value>) -> Result<Vec<Message>, String> {
    let value = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(value) => value,
    };
    if how == Insert::Media {
        return Err(format!(
            "`{name}` is an image, audio or file input: promptreg renders text messages only, so pass it to the model yourself"
        ));
    }
    let Value::Array(items) = value else {
        return Err(format!(
            "`{name}` is a thread: give a list of messages, each with `role` and `content`"
        ));
    };
    items
        .iter()
        .map(|item| {
            let role = item.get("role").and_then(Value::as_str);
            let content = item.get("content").and_then(Value::as_str);
            match (role, content) {
                (Some(role), Some(content)) => Ok(Message {
                    role: Role::from_name(role),
                    content: content.to_string(),
                }),
                _ => Err(format!(
                    "`{name}` is a thread: each message needs a string `role` and `content`"
                )),
            }
        })
        .collect()
}

//! A rendered prompt as the body of an OpenAI-compatible chat-completions request: the one
//! conversion the server and the model client share.
//!
//! - `model` is the prompt's (or the caller's, which wins);
//! - `messages` are the rendered messages; a single-template prompt is one user message;
//! - `modelParameters` are passed with their names in the API's snake case (`maxTokens` ->
//!   `max_tokens`, `topP` -> `top_p`); a name written both ways keeps the snake-case value;
//! - `responseFormat: json_object` becomes `response_format: {type: json_object}`, and
//!   `json_schema` carries `jsonSchema` (a JSON string, as gh-models writes it, or a mapping).

use std::borrow::Cow;

use indexmap::IndexMap;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::render::{Output, Rendered};

/// The body of a chat-completions request for `rendered`. `model` overrides the prompt's.
///
/// ```
/// use promptreg::render::chat::request_body;
/// use promptreg::Registry;
///
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(
///     dir.path().join("p.prompt.yaml"),
///     "model: openai/gpt-4o-mini\nmodelParameters: { maxTokens: 50, topP: 0.9 }\n\
///      messages:\n  - { role: user, content: hi }\n",
/// ).unwrap();
/// let prompt = Registry::open(dir.path()).unwrap().load_work("p").unwrap().compile().unwrap();
/// let rendered = prompt.render(&serde_json::Map::new()).unwrap();
/// let body = request_body(&rendered, None).unwrap();
/// assert_eq!(body, serde_json::json!({
///     "model": "openai/gpt-4o-mini",
///     "messages": [{ "role": "user", "content": "hi" }],
///     "max_tokens": 50,
///     "top_p": 0.9,
/// }));
/// ```
pub fn request_body(rendered: &Rendered, model: Option<&str>) -> Result<Value> {
    serde_json::to_value(RequestBody::new(rendered, model)?)
        .map_err(|e| Error::Usage(format!("`{}`: {e}", rendered.id)))
}

/// [`request_body`] borrowing from the rendered prompt: written as JSON without building the
/// value first (`serve`'s render documents carry it).
#[derive(Debug)]
pub(crate) struct RequestBody<'r> {
    model: Field<'r>,
    messages: Field<'r>,
    /// The fields after those two, in the order written. A later field of the same name
    /// replaces the earlier in place, as in a JSON object built in order: a model parameter
    /// named `model` overrides the model where it stands.
    rest: IndexMap<Cow<'r, str>, Field<'r>>,
}

#[derive(Debug)]
enum Field<'r> {
    Text(&'r str),
    Messages(&'r Output),
    Value(Cow<'r, Value>),
}

impl<'r> RequestBody<'r> {
    pub(crate) fn new(rendered: &'r Rendered, model: Option<&'r str>) -> Result<RequestBody<'r>> {
        let Some(model) = model.or(rendered.model.as_deref()) else {
            return Err(Error::Usage(format!(
                "`{}` names no model: add `model:` to the prompt file or choose one",
                rendered.id
            )));
        };
        let format = response_format(rendered)?;
        let mut body = RequestBody {
            model: Field::Text(model),
            messages: Field::Messages(&rendered.output),
            // Nothing is allocated for a prompt without parameters.
            rest: IndexMap::with_capacity(
                rendered.model_parameters.len() + usize::from(format.is_some()),
            ),
        };
        for (name, value) in &rendered.model_parameters {
            let api = snake_case(name);
            let key = if api == *name {
                Cow::Borrowed(name.as_str())
            } else if rendered.model_parameters.contains_key(&api) {
                // Written both ways: the snake-case value is the one sent, wherever it stands.
                continue;
            } else {
                Cow::Owned(api)
            };
            body.set(key, Field::Value(Cow::Borrowed(value)));
        }
        if let Some(format) = format {
            body.set(
                Cow::Borrowed("response_format"),
                Field::Value(Cow::Owned(format)),
            );
        }
        Ok(body)
    }

    /// Appends the body as JSON to `out`, the same bytes as its `Serialize`, with the rendered
    /// messages copied from `out[messages]` (where [`crate::render::json::write_messages`]
    /// wrote those of the rendered prompt this body was made from) rather than written again;
    /// a model parameter that replaced them is written as it is.
    #[cfg_attr(not(feature = "serve"), allow(dead_code))]
    pub(crate) fn write_json(
        &self,
        out: &mut Vec<u8>,
        messages: std::ops::Range<usize>,
    ) -> serde_json::Result<()> {
        out.push(b'{');
        for (i, (name, field)) in self.fields().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            crate::render::json::write_str(out, name);
            out.push(b':');
            match field {
                Field::Text(text) => crate::render::json::write_str(out, text),
                Field::Value(value) => serde_json::to_writer(&mut *out, value)?,
                Field::Messages(_) => out.extend_from_within(messages.clone()),
            }
        }
        out.push(b'}');
        Ok(())
    }

    /// The fields, in the order written.
    fn fields(&self) -> impl Iterator<Item = (&str, &Field<'r>)> {
        let first = [("model", &self.model), ("messages", &self.messages)];
        let rest = self.rest.iter().map(|(name, field)| (&**name, field));
        first.into_iter().chain(rest)
    }

    fn set(&mut self, name: Cow<'r, str>, field: Field<'r>) {
        match &*name {
            "model" => self.model = field,
            "messages" => self.messages = field,
            _ => {
                self.rest.insert(name, field);
            }
        }
    }
}

impl Serialize for RequestBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2 + self.rest.len()))?;
        for (name, field) in self.fields() {
            match field {
                Field::Text(text) => map.serialize_entry(name, text)?,
                Field::Value(value) => map.serialize_entry(name, value)?,
                Field::Messages(output) => map.serialize_entry(name, &Messages(output))?,
            }
        }
        map.end()
    }
}

/// The rendered messages as the API's `messages`, `[{role, content}]` (a single text is one
/// user message).
#[derive(Debug)]
pub(crate) struct Messages<'r>(pub(crate) &'r Output);

impl Serialize for Messages<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Message<'m> {
            role: &'m str,
            content: &'m str,
        }
        serializer.collect_seq(
            self.0
                .messages()
                .map(|(role, content)| Message { role, content }),
        )
    }
}

/// `maxTokens` -> `max_tokens`; names already in snake case are kept.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if !out.is_empty() {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The `response_format` of the request, from GitHub Models' `responseFormat` and
/// `jsonSchema`.
fn response_format(rendered: &Rendered) -> Result<Option<Value>> {
    let Some(format) = &rendered.response_format else {
        return Ok(None);
    };
    let kind = match format {
        Value::String(kind) => kind.as_str(),
        // Already in the API's shape (`{type: json_object}`): passed as written.
        Value::Object(_) => return Ok(Some(format.clone())),
        _ => {
            return Err(Error::Usage(format!(
                "`{}`: responseFormat must be `text`, `json_object` or `json_schema`",
                rendered.id
            )))
        }
    };
    match kind {
        "json_schema" => {
            let schema = match &rendered.json_schema {
                Some(Value::String(text)) => serde_json::from_str(text).map_err(|e| {
                    Error::Usage(format!(
                        "`{}`: jsonSchema is not valid JSON ({e}); write the schema as a JSON string with `name` and `schema`",
                        rendered.id
                    ))
                })?,
                Some(other) => other.clone(),
                None => {
                    return Err(Error::Usage(format!(
                        "`{}`: responseFormat json_schema needs a `jsonSchema`",
                        rendered.id
                    )))
                }
            };
            Ok(Some(
                serde_json::json!({ "type": "json_schema", "json_schema": schema }),
            ))
        }
        kind => Ok(Some(serde_json::json!({ "type": kind }))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::prompt::{Message, Role};

    fn rendered(parameters: Value, output: Output, format: Option<&str>) -> Rendered {
        Rendered {
            id: "p".into(),
            model: Some("m".into()),
            model_parameters: match parameters {
                Value::Object(map) => map,
                _ => serde_json::Map::new(),
            },
            output,
            response_format: format.map(Value::from),
            json_schema: None,
        }
    }

    /// What `serve` writes is byte for byte the value `request_body` returns, in its key
    /// order; a later field of the same name replaces the earlier where it stood.
    #[test]
    fn the_written_body_is_the_value_byte_for_byte() {
        let chat = Output::Messages {
            messages: vec![
                Message {
                    role: Role::System,
                    content: "be \"brief\"\n".into(),
                },
                Message {
                    role: Role::User,
                    content: "hi \u{e9}".into(),
                },
            ],
        };
        let text = Output::Text {
            text: "one text".into(),
        };
        let cases = [
            (serde_json::json!({}), chat.clone(), None),
            (
                serde_json::json!({"maxTokens": 1, "max_tokens": 2, "topP": 0.5, "model": "x", "messages": 3}),
                chat,
                Some("json_object"),
            ),
            (serde_json::json!({"temperature": 0}), text, Some("text")),
        ];
        for (parameters, output, format) in cases {
            let r = rendered(parameters, output, format);
            let value = request_body(&r, None).expect("value");
            let written =
                serde_json::to_string(&RequestBody::new(&r, None).expect("body")).expect("json");
            assert_eq!(written, value.to_string());
            // Written by hand, with the messages written before.
            let mut reused = Vec::new();
            crate::render::json::write_messages(&mut reused, &r.output);
            let messages = 0..reused.len();
            let body = RequestBody::new(&r, None).expect("body");
            body.write_json(&mut reused, messages.clone())
                .expect("json");
            assert_eq!(
                String::from_utf8(reused.split_off(messages.end)).expect("UTF-8"),
                value.to_string()
            );
        }
        let r = rendered(
            serde_json::json!({"model": "x", "topP": 1}),
            Output::Text { text: "t".into() },
            None,
        );
        assert_eq!(
            request_body(&r, None).expect("value").to_string(),
            r#"{"model":"x","messages":[{"role":"user","content":"t"}],"top_p":1}"#
        );
    }

    /// Messages, and a single text as one user message, as `chat::Messages` writes them.
    #[test]
    fn messages_are_written_as_serde_json_writes_them() {
        let message = |role: Role, content: &str| Message {
            role,
            content: content.to_string(),
        };
        let outputs = [
            Output::Messages {
                messages: vec![
                    message(Role::System, "Be \"brief\".\nNo\ttabs\\."),
                    message(Role::User, "héllo 😀"),
                ],
            },
            Output::Messages { messages: vec![] },
            Output::Text {
                text: "one text\u{1}".to_string(),
            },
        ];
        for output in outputs {
            let expected = serde_json::to_vec(&Messages(&output)).expect("messages serialize");
            let mut written = b"before".to_vec();
            crate::render::json::write_messages(&mut written, &output);
            assert_eq!(written[6..], expected);
        }
    }
}

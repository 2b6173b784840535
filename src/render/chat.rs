//! A rendered prompt as the body of an OpenAI-compatible chat-completions request: the one
//! conversion the server and the model client share.
//!
//! - `model` is the prompt's (or the caller's, which wins);
//! - `messages` are the rendered messages; a single-template prompt is one user message;
//! - `modelParameters` are passed with their names in the API's snake case (`maxTokens` ->
//!   `max_tokens`, `topP` -> `top_p`); a name written both ways keeps the snake-case value;
//! - `responseFormat: json_object` becomes `response_format: {type: json_object}`, and
//!   `json_schema` carries `jsonSchema` (a JSON string, as gh-models writes it, or a mapping).

use serde_json::{Map, Value};

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
    let mut body = Map::new();
    let model = model.map(str::to_string).or_else(|| rendered.model.clone());
    let Some(model) = model else {
        return Err(Error::Usage(format!(
            "`{}` names no model: add `model:` to the prompt file or choose one",
            rendered.id
        )));
    };
    body.insert("model".into(), Value::String(model));
    let messages = match &rendered.output {
        Output::Messages { messages } => messages
            .iter()
            .map(|m| serde_json::json!({ "role": m.role.as_str(), "content": m.content }))
            .collect(),
        Output::Text { text } => vec![serde_json::json!({ "role": "user", "content": text })],
    };
    body.insert("messages".into(), Value::Array(messages));
    let mut written_snake = Vec::new();
    for (name, value) in &rendered.model_parameters {
        let api = snake_case(name);
        if api == *name {
            written_snake.push(api.clone());
        } else if written_snake.contains(&api) || rendered.model_parameters.contains_key(&api) {
            continue;
        }
        body.insert(api, value.clone());
    }
    if let Some(format) = response_format(rendered)? {
        body.insert("response_format".into(), format);
    }
    Ok(Value::Object(body))
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

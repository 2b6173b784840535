//! Dotprompt files (`.prompt`): a YAML front matter (after an optional comment header) and a
//! Handlebars body whose `{{role "..."}}` helpers start messages.
//!
//! What maps where: `model` is the model; `config` the model parameters (`maxOutputTokens` as
//! `maxTokens`, `stopSequences` as `stop`); `input.schema` (Picoschema, or JSON Schema with
//! `properties`) gives typed variables, each required unless written `name?`; `input.default`
//! gives their defaults; `output.format: json` asks for a JSON object. A schema named by a
//! string (registered in code) cannot be read here: the inputs are then untyped, and a finding
//! says so.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::diagnostic::{Code, Diagnostic};
use crate::format::front;
use crate::format::kind::Format;
use crate::format::prompt::{Body, Parsed, Prompt, Syntax, VarType, Variable};
use crate::format::yaml::{join, Spans};

/// Reads a Dotprompt file.
pub fn parse(file: &str, text: &str) -> Parsed {
    let (parts, mut diagnostics) = front::split(file, text, true);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Parsed {
            prompt: None,
            diagnostics,
        };
    }
    let mut spans = parts.spans;
    let mut root = parts.front;
    let mut take = |key: &str| root.shift_remove(key);
    let model = take("model").and_then(|v| v.as_str().map(str::to_string));
    let description = take("description").and_then(|v| v.as_str().map(str::to_string));
    let config = take("config");
    let input = take("input");
    let output = take("output");
    let mut parameters = Map::new();
    if let Some(Value::Object(config)) = config {
        for (key, value) in config {
            let key = match key.as_str() {
                "maxOutputTokens" => "maxTokens".to_string(),
                "stopSequences" => "stop".to_string(),
                _ => key,
            };
            parameters.insert(key, value);
        }
    }
    // Findings about a variable point at its field in the schema.
    if let Some(Value::Object(schema)) = input.as_ref().and_then(|i| i.get("schema")) {
        for key in schema.keys() {
            let name = key
                .split('(')
                .next()
                .unwrap_or(key)
                .trim_end_matches('?')
                .trim();
            if let Some(span) = spans.get(&join("/input/schema", key)).copied() {
                spans.insert(&join("/variables", name), span);
            }
        }
    }
    if let Some(Value::Object(defaults)) = input.as_ref().and_then(|i| i.get("default")) {
        for name in defaults.keys() {
            let path = join("/variables", name);
            if spans.get(&path).is_none() {
                if let Some(span) = spans.get(&join("/input/default", name)).copied() {
                    spans.insert(&path, span);
                }
            }
        }
    }
    let variables = inputs(file, input, &spans, &mut diagnostics);
    let response_format = match output.as_ref().and_then(|o| o.get("format")) {
        Some(Value::String(f)) if f == "json" => Some(Value::String("json_object".into())),
        _ => None,
    };
    let mut extra = Map::new();
    for (key, value) in root {
        extra.insert(key, value);
    }
    if let Some(output) = output {
        extra.insert("output".into(), output);
    }
    let prompt = Prompt {
        name: None,
        description,
        model,
        model_parameters: parameters,
        variables,
        body: Body::Chat {
            template: parts.body,
            strict: true,
            inserts: Vec::new(),
        },
        test_data: Vec::new(),
        tags: Vec::new(),
        max_prompt_tokens: None,
        syntax: Syntax::Handlebars,
        response_format,
        json_schema: None,
        evaluators: None,
        extra,
        spans,
        format: Format::Dotprompt,
        reads: Vec::new(),
    };
    Parsed {
        prompt: Some(prompt),
        diagnostics,
    }
}

/// The typed variables of `input`: its schema's fields, with `default`'s values.
fn inputs(
    file: &str,
    input: Option<Value>,
    spans: &Spans,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<IndexMap<String, Variable>> {
    let Some(Value::Object(input)) = input else {
        return None;
    };
    let mut variables = IndexMap::new();
    match input.get("schema") {
        Some(Value::Object(schema)) => {
            if schema.get("type").and_then(Value::as_str) == Some("object")
                && schema.contains_key("properties")
            {
                json_schema(schema, &mut variables);
            } else {
                for (key, value) in schema {
                    let (name, optional, ty, description) = field(key, value);
                    variables.insert(
                        name,
                        Variable {
                            ty,
                            required: !optional,
                            default: None,
                            description,
                        },
                    );
                }
            }
        }
        Some(Value::String(named)) => diagnostics.push(
            Diagnostic::new(
                Code::UnknownField,
                file,
                format!("input schema `{named}` is registered in code, which promptreg cannot read: the inputs are untyped"),
            )
            .at(spans.value(&join("/input", "schema")))
            .with_hint("write the schema in Picoschema in the file (`name: string, what it is`) to have the inputs typed and checked"),
        ),
        _ => {}
    }
    if let Some(Value::Object(defaults)) = input.get("default") {
        for (name, value) in defaults {
            let var = variables.entry(name.clone()).or_insert(Variable {
                ty: VarType::Any,
                required: false,
                default: None,
                description: None,
            });
            var.default = Some(value.clone());
            var.required = false;
        }
    }
    Some(variables)
}

/// A JSON Schema's top-level properties.
fn json_schema(schema: &Map<String, Value>, variables: &mut IndexMap<String, Variable>) {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(Value::Object(properties)) = schema.get("properties") {
        for (name, prop) in properties {
            let ty = prop
                .get("type")
                .and_then(Value::as_str)
                .and_then(VarType::from_name)
                .unwrap_or(VarType::Any);
            variables.insert(
                name.clone(),
                Variable {
                    ty,
                    required: required.contains(&name.as_str()),
                    default: prop.get("default").cloned(),
                    description: prop
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                },
            );
        }
    }
}

/// One Picoschema field: `name`, `name?`, `name(type)` or `name?(type, description)` as the
/// key; `type`, `type, description`, `type[]`, a nested mapping (an object) or a list (an
/// enum) as the value. Returns the name, whether it is optional, its type and description.
fn field(key: &str, value: &Value) -> (String, bool, VarType, Option<String>) {
    let (head, paren) = match key.split_once('(') {
        Some((head, rest)) => (head, Some(rest.trim_end_matches(')'))),
        None => (key, None),
    };
    let optional = head.ends_with('?');
    let name = head.trim_end_matches('?').trim().to_string();
    let mut description = None;
    let mut ty = None;
    if let Some(paren) = paren {
        let (kind, desc) = match paren.split_once(',') {
            Some((kind, desc)) => (kind.trim(), Some(desc.trim().to_string())),
            None => (paren.trim(), None),
        };
        description = desc;
        ty = Some(match kind {
            "array" => VarType::Array,
            "object" => VarType::Object,
            "enum" => VarType::String,
            other => VarType::from_name(other).unwrap_or(VarType::Any),
        });
    }
    let from_value = match value {
        Value::String(s) => {
            let (kind, desc) = match s.split_once(',') {
                Some((kind, desc)) => (kind.trim(), Some(desc.trim().to_string())),
                None => (s.trim(), None),
            };
            if description.is_none() {
                description = desc;
            }
            if kind.ends_with("[]") {
                VarType::Array
            } else {
                VarType::from_name(kind).unwrap_or(VarType::Any)
            }
        }
        Value::Object(_) => VarType::Object,
        Value::Array(_) => VarType::String,
        _ => VarType::Any,
    };
    (name, optional, ty.unwrap_or(from_value), description)
}

#[cfg(test)]
mod tests {
    use crate::format::dotprompt::*;

    #[test]
    fn picoschema_fields() {
        let s = |v: &str| Value::String(v.into());
        assert_eq!(
            field("name", &s("string, The user's name")),
            (
                "name".into(),
                false,
                VarType::String,
                Some("The user's name".into())
            )
        );
        assert!(field("style?", &s("string")).1);
        assert_eq!(field("tags", &s("string[]")).2, VarType::Array);
        assert_eq!(
            field("steps(array, the steps)", &s("string")),
            (
                "steps".into(),
                false,
                VarType::Array,
                Some("the steps".into())
            )
        );
        assert_eq!(
            field("obj?(object, nested)", &Value::Null).2,
            VarType::Object
        );
        assert_eq!(field("n", &s("integer")).2, VarType::Integer);
    }

    #[test]
    fn front_matter_after_a_comment_header_maps_to_a_prompt() {
        let text = "# Copyright\n# licence\n\n---\nmodel: googleai/gemini-2.5-flash\nconfig:\n  maxOutputTokens: 10\ninput:\n  schema:\n    who: string\n    mood?: string\n  default:\n    mood: calm\n---\n{{role \"system\"}}\nHi {{who}}\n";
        let parsed = parse("a.prompt", text);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let p = parsed.prompt.expect("prompt");
        assert_eq!(p.model.as_deref(), Some("googleai/gemini-2.5-flash"));
        assert_eq!(p.model_parameters["maxTokens"], 10);
        let vars = p.variables.expect("variables");
        assert!(vars["who"].required);
        assert!(!vars["mood"].required);
        assert_eq!(vars["mood"].default, Some(Value::String("calm".into())));
        assert_eq!(p.syntax, Syntax::Handlebars);
        assert_eq!(p.spans.value("/template").line, 15);
    }
}

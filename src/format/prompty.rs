//! Prompty files (`.prompty`): a YAML front matter in either of Prompty's schemas (the current
//! one: `model: {id, options}`, `inputs` as a list with `kind`; the older one: `model: {api,
//! configuration, parameters}`, `inputs` as a mapping, `sample`) and a Jinja body that is split
//! into messages at its role lines after rendering.
//!
//! What maps where: `model.id` (or the string `model`, or the older `configuration`'s
//! deployment) is the model; `model.options` (`maxOutputTokens` as `maxTokens`) or the older
//! `model.parameters` are the model parameters; inputs are typed variables, each required only
//! when it says `required: true` and has no default (Prompty renders a missing input as
//! nothing); samples and examples are one test case; `metadata.tags` or `tags` are the tags.
//! `${file:PATH}` reads PATH next to the file in the same snapshot; `${env:NAME:DEFAULT}` is
//! DEFAULT and `${env:NAME}` alone is an error: the environment is never read into a prompt, so
//! a served prompt cannot leak a secret. `model.connection` is never read.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::diagnostic::{Code, Diagnostic, Pos};
use crate::format::front;
use crate::format::kind::Format;
use crate::format::prompt::{Body, Insert, Parsed, Prompt, Syntax, VarType, Variable};

/// Reads a file's text at a root-relative path in the prompt's snapshot (`None`: no such
/// file).
pub type ReadFile<'a> = &'a dyn Fn(&str) -> Option<Vec<u8>>;

/// Reads a Prompty file. `read` gives the files that `${file:...}` names.
pub fn parse(file: &str, text: &str, read: ReadFile<'_>) -> Parsed {
    let (parts, mut diagnostics) = front::split(file, text, false);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Parsed {
            prompt: None,
            diagnostics,
        };
    }
    let mut reader = Reader {
        file,
        text,
        read,
        diagnostics: &mut diagnostics,
        reads: Vec::new(),
    };
    let prompt = reader.prompt(parts);
    Parsed {
        prompt,
        diagnostics,
    }
}

struct Reader<'a> {
    file: &'a str,
    text: &'a str,
    read: ReadFile<'a>,
    diagnostics: &'a mut Vec<Diagnostic>,
    /// The files `${file:...}` named.
    reads: Vec<String>,
}

impl Reader<'_> {
    /// The position of the first place `needle` is written in the file.
    fn place(&self, needle: &str) -> Pos {
        self.text
            .find(needle)
            .map_or(Pos::START, |at| Pos::of_offset(self.text, at))
    }

    fn error(&mut self, code: Code, at: Pos, message: String, hint: &str) {
        self.diagnostics.push(
            Diagnostic::new(code, self.file, message)
                .at(at)
                .with_hint(hint),
        );
    }

    fn warn(&mut self, at: Pos, message: String, hint: &str) {
        self.diagnostics.push(
            Diagnostic::new(Code::UnknownField, self.file, message)
                .at(at)
                .with_hint(hint),
        );
    }

    /// Replaces every `${env:...}` and `${file:...}` string in `value`.
    fn resolve(&mut self, value: Value) -> Value {
        match value {
            Value::String(s) => self.reference(s),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|v| self.resolve(v)).collect())
            }
            Value::Object(map) => {
                Value::Object(map.into_iter().map(|(k, v)| (k, self.resolve(v))).collect())
            }
            other => other,
        }
    }

    fn reference(&mut self, s: String) -> Value {
        let Some(inner) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) else {
            return Value::String(s);
        };
        let (protocol, rest) = inner.split_once(':').unwrap_or((inner, ""));
        match protocol.to_ascii_lowercase().as_str() {
            "env" => match rest.split_once(':') {
                Some((_, default)) => Value::String(default.to_string()),
                None => {
                    let at = self.place(&s);
                    self.error(
                        Code::InvalidConfig,
                        at,
                        format!("`{s}` has no default, and promptreg never reads the environment into a prompt"),
                        &format!("write the value, or a default after a second colon: `${{env:{rest}:VALUE}}`"),
                    );
                    Value::Null
                }
            },
            "file" => self.file_value(&s, rest),
            _ => Value::String(s),
        }
    }

    /// The contents of a `${file:PATH}` reference: JSON or YAML parsed, other files as text.
    fn file_value(&mut self, written: &str, path: &str) -> Value {
        let folder = self.file.rsplit_once('/').map_or("", |(dir, _)| dir);
        let joined = if folder.is_empty() {
            path.to_string()
        } else {
            format!("{folder}/{path}")
        };
        let at = self.place(written);
        let normalized = match front::normalize(&joined) {
            Some(p) => p,
            None => {
                self.error(
                    Code::IncludeOutsideRoot,
                    at,
                    format!("`{written}` leaves the registry root"),
                    "files a prompt reads must be under the registry root",
                );
                return Value::Null;
            }
        };
        if !self.reads.contains(&normalized) {
            self.reads.push(normalized.clone());
        }
        let Some(bytes) = (self.read)(&normalized) else {
            self.error(
                Code::IncludeMissing,
                at,
                format!("`{written}`: `{normalized}` does not exist"),
                "paths are relative to the prompt file's folder",
            );
            return Value::Null;
        };
        let text = String::from_utf8_lossy(&bytes);
        let lower = normalized.to_ascii_lowercase();
        if lower.ends_with(".json") {
            match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(e) => {
                    self.error(
                        Code::YamlSyntax,
                        at,
                        format!("`{normalized}` is not valid JSON: {e}"),
                        "fix the file it names",
                    );
                    Value::Null
                }
            }
        } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            serde_yaml::from_str::<serde_yaml::Value>(&text)
                .ok()
                .and_then(|v| serde_json::to_value(v).ok())
                .unwrap_or(Value::Null)
        } else {
            Value::String(text.into_owned())
        }
    }

    fn prompt(&mut self, parts: front::Parts) -> Option<Prompt> {
        let spans = parts.spans;
        let mut root = parts.front;
        // The connection holds keys and endpoints: never read, never kept.
        if let Some(Value::Object(model)) = root.get_mut("model") {
            model.shift_remove("connection");
            if let Some(Value::Object(conf)) = model.get_mut("configuration") {
                for key in [
                    "api_key",
                    "apiKey",
                    "azure_endpoint",
                    "endpoint",
                    "connection",
                ] {
                    conf.shift_remove(key);
                }
            }
        }
        let root = match self.resolve(Value::Object(root)) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let mut root = root;
        let mut take = |key: &str| root.shift_remove(key);
        let name = take("name").and_then(text);
        let description = take("description").and_then(text);
        let metadata = take("metadata");
        let model = take("model");
        let inputs = take("inputs");
        let sample = take("sample");
        let template = take("template");
        let tags = take("tags");
        for key in ["authors", "version", "outputs", "tools", "type", "base"] {
            take(key);
        }

        // Findings about a variable point at its input.
        let mut spans = spans;
        match &inputs {
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let (Some(name), Some(span)) = (
                        item.get("name").and_then(Value::as_str),
                        spans.get(&format!("/inputs/{i}")).copied(),
                    ) {
                        spans.insert(&format!("/variables/{name}"), span);
                    }
                }
            }
            Some(Value::Object(map)) => {
                for name in map.keys() {
                    if let Some(span) = spans.get(&format!("/inputs/{name}")).copied() {
                        spans.insert(&format!("/variables/{name}"), span);
                    }
                }
            }
            _ => {}
        }
        let (model_name, mut parameters) = self.model(model);
        let response_format = parameters.shift_remove("response_format");
        let (variables, inserts, mut test) = self.inputs(inputs);
        if let Some(Value::Object(sample)) = sample {
            for (k, v) in sample {
                test.insert(k, v);
            }
        }
        let strict = self.template(template)?;
        let tags = match metadata
            .as_ref()
            .and_then(|m| m.get("tags"))
            .or(tags.as_ref())
        {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        Some(Prompt {
            name,
            description,
            model: model_name,
            model_parameters: parameters,
            variables,
            body: Body::Chat {
                template: parts.body,
                strict,
                inserts,
            },
            test_data: if test.is_empty() {
                Vec::new()
            } else {
                vec![test]
            },
            tags,
            max_prompt_tokens: None,
            syntax: Syntax::Jinja,
            response_format,
            json_schema: None,
            evaluators: None,
            extra: Map::new(),
            spans,
            format: Format::Prompty,
            reads: std::mem::take(&mut self.reads),
        })
    }

    /// The model's name and parameters, from either schema.
    fn model(&mut self, model: Option<Value>) -> (Option<String>, Map<String, Value>) {
        let mut parameters = Map::new();
        let map = match model {
            Some(Value::String(name)) => return (Some(name), parameters),
            Some(Value::Object(map)) => map,
            _ => return (None, parameters),
        };
        let mut name = map.get("id").and_then(Value::as_str).map(str::to_string);
        if let Some(Value::Object(options)) = map.get("options") {
            for (key, value) in options {
                match key.as_str() {
                    "additionalProperties" => {
                        if let Value::Object(more) = value {
                            parameters.extend(more.clone());
                        }
                    }
                    "maxOutputTokens" => {
                        parameters.insert("maxTokens".into(), value.clone());
                    }
                    _ => {
                        parameters.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        if let Some(Value::Object(older)) = map.get("parameters") {
            parameters.extend(older.clone());
        }
        if let Some(Value::Object(conf)) = map.get("configuration") {
            name = name.or_else(|| {
                ["azure_deployment", "model", "name"]
                    .iter()
                    .find_map(|k| conf.get(*k).and_then(Value::as_str))
                    .map(str::to_string)
            });
        }
        (name, parameters)
    }

    /// The typed variables, the inserted inputs and the test case the inputs' samples make.
    #[allow(clippy::type_complexity)]
    fn inputs(
        &mut self,
        inputs: Option<Value>,
    ) -> (
        Option<IndexMap<String, Variable>>,
        Vec<(String, Insert)>,
        Map<String, Value>,
    ) {
        let mut variables = IndexMap::new();
        let mut inserts = Vec::new();
        let mut test = Map::new();
        let entries: Vec<(String, Value)> = match inputs {
            None | Some(Value::Null) => return (None, inserts, test),
            Some(Value::Array(items)) => items
                .into_iter()
                .filter_map(|item| {
                    let name = item.get("name")?.as_str()?.to_string();
                    Some((name, item))
                })
                .collect(),
            Some(Value::Object(map)) => map.into_iter().collect(),
            Some(_) => {
                let at = self.place("inputs:");
                self.error(
                    Code::WrongType,
                    at,
                    "`inputs` must be a list or a mapping of inputs".into(),
                    "write `inputs:` with `- name: NAME` and `kind: string` under it",
                );
                return (None, inserts, test);
            }
        };
        for (name, spec) in entries {
            let Value::Object(spec) = spec else {
                // The older schema's shorthand: `lastName: Doe` is the input's value.
                let ty = VarType::Any;
                test.insert(name.clone(), spec.clone());
                variables.insert(
                    name,
                    Variable {
                        ty,
                        required: false,
                        default: Some(spec),
                        description: None,
                    },
                );
                continue;
            };
            let kind = spec
                .get("kind")
                .or_else(|| spec.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("string");
            let ty = match kind {
                "string" | "text" => VarType::String,
                "number" | "float" => VarType::Number,
                "integer" | "int" => VarType::Integer,
                "boolean" | "bool" => VarType::Boolean,
                "array" | "list" => VarType::Array,
                "object" | "dict" => VarType::Object,
                // Checked when its messages are put in (a list of `{role, content}`).
                "thread" => {
                    inserts.push((name.clone(), Insert::Thread));
                    VarType::Any
                }
                "image" | "audio" | "file" => {
                    inserts.push((name.clone(), Insert::Media));
                    VarType::Any
                }
                other => {
                    let at = self.place(&format!("kind: {other}"));
                    self.warn(
                        at,
                        format!("input `{name}` has kind `{other}`, which promptreg does not know: any value is taken"),
                        "kinds are string, number, integer, boolean, array, object, thread, image, audio and file",
                    );
                    VarType::Any
                }
            };
            let default = spec.get("default").filter(|v| !v.is_null()).cloned();
            for key in ["sample", "example"] {
                if let Some(v) = spec.get(key).filter(|v| !v.is_null()) {
                    test.insert(name.clone(), v.clone());
                }
            }
            let required = default.is_none()
                && spec.get("required").and_then(Value::as_bool) == Some(true)
                && !inserts.iter().any(|(n, _)| *n == name);
            variables.insert(
                name,
                Variable {
                    ty,
                    required,
                    default,
                    description: spec
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                },
            );
        }
        (Some(variables), inserts, test)
    }

    /// Whether role lines split strictly; `None` (with an error) for a template language
    /// promptreg cannot render.
    fn template(&mut self, template: Option<Value>) -> Option<bool> {
        let (format, strict) = match &template {
            None | Some(Value::Null) => (None, None),
            Some(Value::String(name)) => (Some(name.clone()), None),
            Some(Value::Object(map)) => {
                let format = map.get("format");
                let kind = match format {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Object(f)) => {
                        f.get("kind").and_then(Value::as_str).map(str::to_string)
                    }
                    _ => None,
                };
                let strict = format
                    .and_then(|f| f.get("strict"))
                    .and_then(Value::as_bool);
                (kind, strict)
            }
            Some(_) => (None, None),
        };
        match format.as_deref() {
            None | Some("jinja2") | Some("jinja") | Some("") | Some("*") => {
                Some(strict.unwrap_or(true))
            }
            Some(other) => {
                let at = self.place("template:");
                self.error(
                    Code::PromptBody,
                    at,
                    format!("template format `{other}` is not supported: promptreg renders Prompty bodies with Jinja"),
                    "write the body in Jinja (`{{ name }}`, `{% for %}`) and set `template: jinja2`",
                );
                None
            }
        }
    }
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

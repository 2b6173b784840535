//! The prompt file: a superset of GitHub Models' `.prompt.yml`, read into a typed model.
//!
//! Reading never stops at the first problem: every finding is collected with its position in
//! the file, and a [`Prompt`] is returned whenever the file is usable at all.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::diagnostic::{Code, Diagnostic};
use crate::format::yaml::{self, join, Spans};

/// Top-level fields promptreg knows. Anything else is kept and reported as unknown.
pub(crate) const KNOWN_FIELDS: &[&str] = &[
    "name",
    "description",
    "model",
    "modelParameters",
    "variables",
    "messages",
    "template",
    "testData",
    "tags",
    "maxPromptTokens",
    "syntax",
    "responseFormat",
    "jsonSchema",
    "evaluators",
];

const VARIABLE_FIELDS: &[&str] = &["type", "required", "default", "description"];
const MESSAGE_FIELDS: &[&str] = &["role", "content"];

/// The message roles chat APIs accept.
pub(crate) const ROLES: &[&str] = &["system", "user", "assistant"];

/// A prompt as written in its file.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// Display name.
    pub name: Option<String>,
    /// What the prompt is for.
    pub description: Option<String>,
    /// The model it is written for (passed through).
    pub model: Option<String>,
    /// Model parameters (passed through untouched).
    pub model_parameters: Map<String, Value>,
    /// Declared inputs, in file order; `None` when the file has no `variables` section.
    pub variables: Option<IndexMap<String, Variable>>,
    /// The messages or the single template.
    pub body: Body,
    /// Example inputs, one map per test case.
    pub test_data: Vec<Map<String, Value>>,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// The budget of prompt tokens each test case must stay under.
    pub max_prompt_tokens: Option<u64>,
    /// Template delimiters.
    pub syntax: Syntax,
    /// GitHub Models `responseFormat`, kept as written.
    pub response_format: Option<Value>,
    /// GitHub Models `jsonSchema`, kept as written.
    pub json_schema: Option<Value>,
    /// GitHub Models `evaluators`, kept as written.
    pub evaluators: Option<Value>,
    /// Fields promptreg does not know, kept as written.
    pub extra: Map<String, Value>,
    /// Where each node of the file is.
    pub spans: Spans,
    /// The format the file is written in.
    pub format: crate::format::kind::Format,
    /// Other files the prompt file reads besides its templates' partials (Prompty's
    /// `${file:...}`), root-relative: a change to one is a change to the prompt.
    pub reads: Vec<String>,
}

/// The text of a prompt: chat messages or one template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// The chat form.
    Messages(Vec<Message>),
    /// The single-string form.
    Template(String),
    /// One template whose rendered text is split into messages at the lines that name a
    /// role (`system:`, `user:`, `assistant:`), as Prompty does. With `strict`, only the
    /// template's own role lines split: a rendered value cannot start a message.
    Chat {
        /// The template.
        template: String,
        /// Whether only the template's own role lines split.
        strict: bool,
        /// Inputs whose value is a list of messages put in where the template names them
        /// (Prompty's `thread` inputs), or media the prompt can take but not render (`image`,
        /// `audio`, `file`: rendered as nothing when not given, refused when given).
        inserts: Vec<(String, Insert)>,
    },
}

/// What an input of a [`Body::Chat`] prompt puts where the template names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// A list of `{role, content}` messages, put in as messages.
    Thread,
    /// An image, audio or file input, which promptreg cannot put in a text message.
    Media,
}

/// One chat message before rendering.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// The template text.
    pub content: String,
}

/// Who speaks a message. A role chat APIs do not know is kept as written (and `validate`
/// warns about it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// The instructions.
    System,
    /// The user's turn.
    User,
    /// The model's turn.
    Assistant,
    /// Any other role, as written.
    Other(String),
}

impl Role {
    /// The role from its name: `system`, `user`, `assistant`, else [`Role::Other`].
    pub fn from_name(name: &str) -> Role {
        match name {
            "system" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => Role::Other(other.to_string()),
        }
    }

    /// The role's name, as written in files and chat APIs.
    pub fn as_str(&self) -> &str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Other(name) => name,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A declared input.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    /// The type values must have.
    pub ty: VarType,
    /// Whether a value must be given. Defaults to true unless a default is declared.
    pub required: bool,
    /// The value used when none is given.
    pub default: Option<Value>,
    /// What the variable is for.
    pub description: Option<String>,
}

/// The types a variable can declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VarType {
    /// A string.
    String,
    /// Any number.
    Number,
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// A list.
    Array,
    /// A mapping.
    Object,
    /// Anything.
    Any,
}

impl VarType {
    /// Every type, by name.
    pub const ALL: &'static [(&'static str, VarType)] = &[
        ("string", VarType::String),
        ("number", VarType::Number),
        ("integer", VarType::Integer),
        ("boolean", VarType::Boolean),
        ("array", VarType::Array),
        ("object", VarType::Object),
        ("any", VarType::Any),
    ];

    /// The type's name as written in files.
    pub fn as_str(self) -> &'static str {
        VarType::ALL
            .iter()
            .find(|(_, ty)| *ty == self)
            .map_or("any", |(name, _)| name)
    }

    /// Parses a type name.
    pub fn from_name(name: &str) -> Option<VarType> {
        VarType::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, ty)| *ty)
    }

    /// Whether `value` has this type.
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            VarType::String => value.is_string(),
            VarType::Number => value.is_number(),
            VarType::Integer => value.is_i64() || value.is_u64(),
            VarType::Boolean => value.is_boolean(),
            VarType::Array => value.is_array(),
            VarType::Object => value.is_object(),
            VarType::Any => true,
        }
    }
}

pub use crate::format::kind::Syntax;

use crate::diagnostic::with_article;

/// The name of a JSON value's type, as used in messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The closest of `candidates` to `name`, if it is close enough to be a likely typo.
pub(crate) fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = name.to_lowercase().replace(['_', '-'], "");
    candidates
        .into_iter()
        .map(|c| {
            let distance =
                strsim::osa_distance(name, c).min(strsim::osa_distance(&lower, &c.to_lowercase()));
            (distance, c)
        })
        .filter(|(distance, c)| *distance <= 1.max(c.len() / 3).min(3) && *distance < c.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// The result of reading a prompt file.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The prompt, when the file is usable (it may still have findings).
    pub prompt: Option<Prompt>,
    /// Every finding, errors and warnings.
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

impl Prompt {
    /// Reads a prompt file. `file` names it in findings.
    ///
    /// ```
    /// let parsed = promptreg::Prompt::parse("hello.prompt.yaml", b"template: Hello {{ name }}!\n");
    /// let prompt = parsed.prompt.unwrap();
    /// assert!(parsed.diagnostics.is_empty());
    /// assert_eq!(prompt.body, promptreg::Body::Template("Hello {{ name }}!".into()));
    /// ```
    pub fn parse(file: &str, bytes: &[u8]) -> Parsed {
        let (document, mut diagnostics) = yaml::parse(file, bytes);
        let Some(document) = document else {
            return Parsed {
                prompt: None,
                diagnostics,
            };
        };
        let mut reader = Reader {
            file,
            spans: &document.spans,
            diagnostics: &mut diagnostics,
        };
        let prompt = reader.prompt(document.value);
        let prompt = prompt.map(|mut p| {
            p.spans = document.spans;
            p
        });
        Parsed {
            prompt,
            diagnostics,
        }
    }

    /// Reads a prompt from a mapping read elsewhere (a front matter with the body added as
    /// `template`), with the positions of its nodes.
    pub(crate) fn from_value(
        file: &str,
        value: Value,
        spans: Spans,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Option<Prompt> {
        let mut reader = Reader {
            file,
            spans: &spans,
            diagnostics,
        };
        let prompt = reader.prompt(value);
        prompt.map(|mut p| {
            p.spans = spans;
            p
        })
    }

    /// Every template of the prompt with its path in the file: `/template` or
    /// `/messages/N/content`.
    pub fn templates(&self) -> Vec<(String, &str)> {
        match &self.body {
            Body::Template(text) => vec![("/template".to_string(), text.as_str())],
            Body::Chat { template, .. } => vec![("/template".to_string(), template.as_str())],
            Body::Messages(messages) => messages
                .iter()
                .enumerate()
                .map(|(i, m)| (format!("/messages/{i}/content"), m.content.as_str()))
                .collect(),
        }
    }
}

struct Reader<'a> {
    file: &'a str,
    spans: &'a Spans,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl Reader<'_> {
    fn push(&mut self, code: Code, path: &str, message: String, hint: Option<String>) {
        let mut d = Diagnostic::new(code, self.file, message).at(self.spans.field(path));
        d.hint = hint;
        self.diagnostics.push(d);
    }

    fn wrong_type(&mut self, path: &str, expected: &str, got: &Value) {
        let field = path.trim_start_matches('/').replace('/', ".");
        let message = format!(
            "`{field}` must be {expected}, found {}",
            with_article(type_name(got))
        );
        let pos = self.spans.value(path);
        let mut d = Diagnostic::new(Code::WrongType, self.file, message).at(pos);
        if expected.contains("string") && (got.is_object() || got.is_array()) {
            d.hint = Some("quote the value: YAML reads an unquoted `{{ ... }}` or `[ ... ]` as a mapping or a list".into());
        }
        self.diagnostics.push(d);
    }

    fn unknown(&mut self, path: &str, key: &str, known: &[&str], what: &str) {
        let hint = suggest(key, known.iter().copied()).map(|s| format!("did you mean `{s}`?"));
        let hint = hint.or_else(|| Some(format!("known fields: {}", known.join(", "))));
        self.push(
            Code::UnknownField,
            &join(path, key),
            format!("unknown field `{key}` in {what}; it is kept but not used"),
            hint,
        );
    }

    fn string(&mut self, path: &str, value: Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s),
            other => {
                self.wrong_type(path, "a string", &other);
                None
            }
        }
    }

    fn prompt(&mut self, value: Value) -> Option<Prompt> {
        let mut root = match value {
            Value::Object(map) => map,
            Value::Null => {
                self.push(Code::PromptBody, "", "prompt file is empty".into(), None);
                return None;
            }
            other => {
                self.wrong_type("", "a mapping of fields", &other);
                return None;
            }
        };
        let mut take = |key: &str| root.shift_remove(key);
        let name = take("name");
        let description = take("description");
        let model = take("model");
        let model_parameters = take("modelParameters");
        let variables = take("variables");
        let messages = take("messages");
        let template = take("template");
        let test_data = take("testData");
        let tags = take("tags");
        let max_prompt_tokens = take("maxPromptTokens");
        let syntax = take("syntax");
        let response_format = take("responseFormat");
        let json_schema = take("jsonSchema");
        let evaluators = take("evaluators");
        for key in root.keys() {
            self.unknown("", key, KNOWN_FIELDS, "the prompt file");
        }
        self.evaluators(evaluators.as_ref());
        let body = self.body(messages, template);
        let prompt = Prompt {
            name: name.and_then(|v| self.optional_string("/name", v)),
            description: description.and_then(|v| self.optional_string("/description", v)),
            model: model.and_then(|v| self.optional_string("/model", v)),
            model_parameters: self.mapping("/modelParameters", model_parameters),
            variables: variables.and_then(|v| self.variables(v)),
            body: body?,
            test_data: self.test_data(test_data),
            tags: self.tags(tags),
            max_prompt_tokens: max_prompt_tokens.and_then(|v| self.budget(v)),
            syntax: syntax.map_or(Syntax::Jinja, |v| self.syntax(v)),
            response_format,
            json_schema,
            evaluators,
            extra: root,
            spans: Spans::default(),
            format: crate::format::kind::Format::Yaml,
            reads: Vec::new(),
        };
        Some(prompt)
    }

    /// What `eval` would refuse in `evaluators`, at its line; `uses:` of no built-in is a
    /// warning (the evaluator always fails, as in gh-models).
    fn evaluators(&mut self, evaluators: Option<&Value>) {
        use crate::format::evaluators::{parse, Method, BUILTINS};
        match parse(evaluators) {
            Err(err) => {
                let d = Diagnostic::new(Code::InvalidEvaluator, self.file, err.message)
                    .at(self.spans.value(&err.path))
                    .with_hint("an evaluator has a `name` and one of `string` (equals, contains, startsWith, endsWith), `llm` (modelId, prompt, choices) or `uses: github/NAME`");
                self.diagnostics.push(d);
            }
            Ok(found) => {
                for (i, evaluator) in found.iter().enumerate() {
                    let Method::Uses(uses) = &evaluator.method else {
                        continue;
                    };
                    let known = uses
                        .strip_prefix("github/")
                        .is_some_and(|name| BUILTINS.contains(&name));
                    if !known {
                        let names: Vec<String> =
                            BUILTINS.iter().map(|n| format!("github/{n}")).collect();
                        let hint = suggest(uses, names.iter().map(String::as_str))
                            .map(|s| format!("did you mean `{s}`?"))
                            .unwrap_or_else(|| {
                                format!("the built-in evaluators are {}", names.join(", "))
                            });
                        self.push(
                            Code::UnknownEvaluator,
                            &format!("/evaluators/{i}/uses"),
                            format!("evaluator `{}` uses `{uses}`, which is not a built-in evaluator: it always fails", evaluator.name),
                            Some(hint),
                        );
                    }
                }
            }
        }
    }

    fn optional_string(&mut self, path: &str, value: Value) -> Option<String> {
        if value.is_null() {
            return None;
        }
        self.string(path, value)
    }

    fn mapping(&mut self, path: &str, value: Option<Value>) -> Map<String, Value> {
        match value {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map,
            Some(other) => {
                self.wrong_type(path, "a mapping", &other);
                Map::new()
            }
        }
    }

    fn body(&mut self, messages: Option<Value>, template: Option<Value>) -> Option<Body> {
        match (messages, template) {
            (Some(_), Some(_)) => {
                self.push(
                    Code::PromptBody,
                    "/template",
                    "the prompt has both `messages` and `template`".into(),
                    Some("keep exactly one of the two".into()),
                );
                None
            }
            (None, None) => {
                self.push(
                    Code::PromptBody,
                    "",
                    "the prompt has neither `messages` nor `template`".into(),
                    Some(format!(
                        "add `messages:` (a list of role/content) or `template:` (one string); if `{}` is not a prompt (a workflow, a config file), keep it out with `- \"!{}\"` under `prompts` in promptreg.yaml",
                        self.file, self.file
                    )),
                );
                None
            }
            (None, Some(template)) => self.string("/template", template).map(Body::Template),
            (Some(messages), None) => self.messages(messages).map(Body::Messages),
        }
    }

    fn messages(&mut self, value: Value) -> Option<Vec<Message>> {
        let Value::Array(items) = value else {
            self.wrong_type("/messages", "a list of messages", &value);
            return None;
        };
        if items.is_empty() {
            self.push(
                Code::PromptBody,
                "/messages",
                "`messages` is empty".into(),
                Some("add at least one message with `role` and `content`".into()),
            );
            return None;
        }
        let mut messages = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.into_iter().enumerate() {
            let path = join("/messages", i);
            match self.message(&path, item) {
                Some(m) => messages.push(m),
                None => ok = false,
            }
        }
        ok.then_some(messages)
    }

    fn message(&mut self, path: &str, value: Value) -> Option<Message> {
        let Value::Object(mut map) = value else {
            self.wrong_type(path, "a mapping with `role` and `content`", &value);
            return None;
        };
        let role = map.shift_remove("role");
        let content = map.shift_remove("content");
        for key in map.keys() {
            self.unknown(path, key, MESSAGE_FIELDS, "a message");
        }
        let role = match role {
            Some(v) => self.string(&join(path, "role"), v),
            None => {
                self.push(
                    Code::WrongType,
                    path,
                    "message has no `role`".into(),
                    Some("add `role: system`, `user` or `assistant`".into()),
                );
                None
            }
        };
        let content = match content {
            Some(v) => self.string(&join(path, "content"), v),
            None => {
                self.push(
                    Code::WrongType,
                    path,
                    "message has no `content`".into(),
                    None,
                );
                None
            }
        };
        if let Some(role) = &role {
            if !ROLES.contains(&role.as_str()) {
                let hint = suggest(role, ROLES.iter().copied())
                    .map_or("use system, user or assistant".to_string(), |s| {
                        format!("did you mean `{s}`?")
                    });
                self.push(
                    Code::UnknownRole,
                    &join(path, "role"),
                    format!("unknown role `{role}`"),
                    Some(hint),
                );
            }
        }
        Some(Message {
            role: Role::from_name(&role?),
            content: content?,
        })
    }

    fn variables(&mut self, value: Value) -> Option<IndexMap<String, Variable>> {
        let map = match value {
            Value::Null => return Some(IndexMap::new()),
            Value::Object(map) => map,
            other => {
                self.wrong_type(
                    "/variables",
                    "a mapping of variable names to declarations",
                    &other,
                );
                return None;
            }
        };
        let mut variables = IndexMap::with_capacity(map.len());
        for (name, decl) in map {
            let path = join("/variables", &name);
            if let Some(var) = self.variable(&path, decl) {
                variables.insert(name, var);
            }
        }
        Some(variables)
    }

    fn variable(&mut self, path: &str, value: Value) -> Option<Variable> {
        let mut map = match value {
            Value::Object(map) => map,
            // `name: string` is short for `name: { type: string }`.
            Value::String(ty) => Map::from_iter([("type".to_string(), Value::String(ty))]),
            Value::Null => Map::new(),
            other => {
                self.wrong_type(
                    path,
                    "a mapping (type, required, default, description)",
                    &other,
                );
                return None;
            }
        };
        let ty_path = join(path, "type");
        let ty = match map.shift_remove("type") {
            None | Some(Value::Null) => VarType::Any,
            Some(Value::String(name)) => match VarType::from_name(&name) {
                Some(ty) => ty,
                None => {
                    let names = VarType::ALL.iter().map(|(n, _)| *n);
                    let hint = suggest(&name, names)
                        .map_or_else(String::new, |s| format!("did you mean `{s}`? "));
                    self.push(
                        Code::WrongType,
                        &ty_path,
                        format!("unknown variable type `{name}`"),
                        Some(format!(
                            "{hint}types: string, number, integer, boolean, array, object, any"
                        )),
                    );
                    VarType::Any
                }
            },
            Some(other) => {
                self.wrong_type(&ty_path, "a type name", &other);
                VarType::Any
            }
        };
        let default = map.shift_remove("default");
        if let Some(default) = &default {
            if !ty.accepts(default) && !default.is_null() {
                let message = format!(
                    "default of `{}` must be {}, found {}",
                    path.rsplit('/').next().unwrap_or(path),
                    with_article(ty.as_str()),
                    with_article(type_name(default))
                );
                self.push(Code::WrongType, &join(path, "default"), message, None);
            }
        }
        let required = match map.shift_remove("required") {
            None => default.is_none(),
            Some(Value::Bool(b)) => b,
            Some(other) => {
                self.wrong_type(&join(path, "required"), "true or false", &other);
                default.is_none()
            }
        };
        let description = match map.shift_remove("description") {
            None | Some(Value::Null) => None,
            Some(v) => self.string(&join(path, "description"), v),
        };
        for key in map.keys() {
            self.unknown(path, key, VARIABLE_FIELDS, "a variable declaration");
        }
        Some(Variable {
            ty,
            required,
            default,
            description,
        })
    }

    fn test_data(&mut self, value: Option<Value>) -> Vec<Map<String, Value>> {
        let items = match value {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.wrong_type("/testData", "a list of test cases", &other);
                return Vec::new();
            }
        };
        let mut rows = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            match item {
                Value::Object(row) => rows.push(row),
                other => {
                    self.wrong_type(
                        &join("/testData", i),
                        "a mapping of variable values",
                        &other,
                    );
                    rows.push(Map::new());
                }
            }
        }
        rows
    }

    fn tags(&mut self, value: Option<Value>) -> Vec<String> {
        match value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .filter_map(|(i, v)| self.string(&join("/tags", i), v))
                .collect(),
            Some(other) => {
                self.wrong_type("/tags", "a list of strings", &other);
                Vec::new()
            }
        }
    }

    fn budget(&mut self, value: Value) -> Option<u64> {
        match value.as_u64() {
            Some(n) if n > 0 => Some(n),
            _ => {
                self.wrong_type("/maxPromptTokens", "a positive integer", &value);
                None
            }
        }
    }

    fn syntax(&mut self, value: Value) -> Syntax {
        match value.as_str().and_then(Syntax::from_name) {
            Some(syntax) => syntax,
            None => {
                self.push(
                    Code::WrongType,
                    "/syntax",
                    format!("`syntax` must be `jinja`, `brackets` or `none`, found {value}"),
                    None,
                );
                Syntax::Jinja
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::format::prompt::*;

    #[test]
    fn suggests_close_field_names() {
        assert_eq!(
            suggest("modelParameter", KNOWN_FIELDS.iter().copied()),
            Some("modelParameters")
        );
        assert_eq!(
            suggest("model_parameters", KNOWN_FIELDS.iter().copied()),
            Some("modelParameters")
        );
        assert_eq!(
            suggest("test_data", KNOWN_FIELDS.iter().copied()),
            Some("testData")
        );
        assert_eq!(suggest("completely", KNOWN_FIELDS.iter().copied()), None);
    }

    #[test]
    fn required_defaults_to_true_without_a_default() {
        let text = "variables:\n  a: { type: string }\n  b: { type: string, default: x }\n  c: { required: false }\ntemplate: '{{ a }}{{ b }}{{ c }}'\n";
        let parsed = Prompt::parse("p.prompt.yaml", text.as_bytes());
        let vars = parsed.prompt.expect("prompt").variables.expect("variables");
        assert!(vars["a"].required);
        assert!(!vars["b"].required);
        assert!(!vars["c"].required);
        assert_eq!(vars["c"].ty, VarType::Any);
    }

    #[test]
    fn reports_wrong_types_at_the_value() {
        let text = "template: hi\ntags: 3\nvariables:\n  a: { type: strin }\n";
        let parsed = Prompt::parse("p.prompt.yaml", text.as_bytes());
        let mut found: Vec<_> = parsed
            .diagnostics
            .iter()
            .map(|d| (d.code, d.line))
            .collect();
        found.sort();
        assert_eq!(found, vec![(Code::WrongType, 2), (Code::WrongType, 4)]);
        let ty = parsed
            .diagnostics
            .iter()
            .find(|d| d.line == 4)
            .expect("type finding");
        assert!(ty.hint.as_deref().unwrap_or("").contains("`string`"));
    }

    #[test]
    fn evaluators_eval_cannot_run_are_found_at_their_line() {
        let text = "template: hi\nevaluators:\n  - name: ok\n    string: { contains: a }\n  - name: judge\n    llm:\n      modelId: m\n      prompt: p\n      choices:\n        - { choice: good, score: high }\n";
        let parsed = Prompt::parse("p.prompt.yaml", text.as_bytes());
        let found: Vec<_> = parsed
            .diagnostics
            .iter()
            .map(|d| (d.code, d.line, d.message.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![(
                Code::InvalidEvaluator,
                10,
                "evaluators[1]: `judge`: llm.choices[0].score: not a number"
            )]
        );
        let text = "template: hi\nevaluators:\n  - name: sim\n    uses: github/similarty\n  - name: nothing\n";
        let parsed = Prompt::parse("p.prompt.yaml", text.as_bytes());
        let found: Vec<_> = parsed
            .diagnostics
            .iter()
            .map(|d| (d.code, d.line))
            .collect();
        // The first problem that eval would refuse is reported; the unknown `uses` only once
        // the list reads.
        assert_eq!(found, vec![(Code::InvalidEvaluator, 5)]);
        let text = "template: hi\nevaluators:\n  - name: sim\n    uses: github/similarty\n";
        let parsed = Prompt::parse("p.prompt.yaml", text.as_bytes());
        let unknown = &parsed.diagnostics[0];
        assert_eq!((unknown.code, unknown.line), (Code::UnknownEvaluator, 4));
        assert_eq!(
            unknown.hint.as_deref(),
            Some("did you mean `github/similarity`?")
        );
        let fine = "template: hi\nevaluators:\n  - name: f\n    uses: github/fluency\n  - name: s\n    string: { equals: \"{{expected}}\" }\n";
        assert!(Prompt::parse("p.prompt.yaml", fine.as_bytes())
            .diagnostics
            .is_empty());
    }
}

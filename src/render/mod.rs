//! Rendering a compiled prompt with values: types checked, defaults applied, every missing
//! variable named at once.

pub(crate) mod budget;
pub mod chat;
pub(crate) mod handlebars;
pub(crate) mod json;
pub(crate) mod place;
pub mod refs;
pub mod request;
pub mod roles;
#[doc(hidden)]
// Public only with the `unstable` feature (the benchmarks build an environment directly).
#[cfg(feature = "unstable")]
pub mod template;
#[cfg(not(feature = "unstable"))]
pub(crate) mod template;
pub mod tokens;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::diagnostic::Diagnostic;
use crate::format::prompt::{type_name, Body, Message, Prompt, VarType};
use crate::render::budget::MAX_OUTPUT;
use crate::render::template::{FileContext, Templates};

pub use crate::error::RenderError;

impl RenderError {
    /// The finding for this error when it has a place in a file.
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            RenderError::Template(d) => Some(d),
            _ => None,
        }
    }
}

/// A rendered prompt, ready for a chat API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rendered {
    /// The prompt's id.
    pub id: String,
    /// The model, as written in the file.
    pub model: Option<String>,
    /// Model parameters, as written in the file.
    #[serde(rename = "modelParameters")]
    pub model_parameters: Map<String, Value>,
    /// The rendered messages or text.
    #[serde(flatten)]
    pub output: Output,
    /// GitHub Models `responseFormat`, as written.
    #[serde(rename = "responseFormat", skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    /// GitHub Models `jsonSchema`, as written.
    #[serde(rename = "jsonSchema", skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<Value>,
}

/// The rendered body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Output {
    /// Chat messages.
    Messages {
        /// The messages, in order.
        messages: Vec<Message>,
    },
    /// One text.
    Text {
        /// The text.
        text: String,
    },
}

impl Output {
    /// The rendered text of every message (or the one text), in order.
    pub fn texts(&self) -> Vec<&str> {
        self.messages().map(|(_, content)| content).collect()
    }

    /// Every message's role and content, in order; one text is one user message.
    pub(crate) fn messages(&self) -> impl Iterator<Item = (&str, &str)> {
        let (many, one) = match self {
            Output::Messages { messages } => (messages.as_slice(), None),
            Output::Text { text } => (&[][..], Some(("user", text.as_str()))),
        };
        many.iter()
            .map(|m| (m.role.as_str(), m.content.as_str()))
            .chain(one)
    }
}

impl fmt::Display for Rendered {
    /// The text form: each message under a `--- role ---` header, or the bare text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.output {
            Output::Text { text } => f.write_str(text),
            Output::Messages { messages } => {
                for (i, message) in messages.iter().enumerate() {
                    if i > 0 && !messages[i - 1].content.ends_with('\n') {
                        writeln!(f)?;
                    }
                    writeln!(f, "--- {} ---", message.role)?;
                    f.write_str(&message.content)?;
                }
                Ok(())
            }
        }
    }
}

/// Converts a command-line string to the declared type where it parses as one: `5` for an
/// integer, `true` for a boolean, JSON for arrays and objects. Anything else stays a string,
/// so the type check can say what is wrong.
///
/// ```
/// use promptreg::{VarType, render::coerce};
/// assert_eq!(coerce(Some(VarType::Integer), "5"), serde_json::json!(5));
/// assert_eq!(coerce(Some(VarType::String), "5"), serde_json::json!("5"));
/// assert_eq!(coerce(Some(VarType::Integer), "five"), serde_json::json!("five"));
/// ```
pub fn coerce(ty: Option<VarType>, raw: &str) -> Value {
    let parsed = match ty {
        Some(VarType::Integer) => raw.trim().parse::<i64>().ok().map(Value::from),
        Some(VarType::Number) => raw.trim().parse::<i64>().ok().map(Value::from).or_else(|| {
            raw.trim()
                .parse::<f64>()
                .ok()
                .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
        }),
        Some(VarType::Boolean) => match raw.trim() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        Some(VarType::Array) => serde_json::from_str::<Value>(raw)
            .ok()
            .filter(Value::is_array),
        Some(VarType::Object) => serde_json::from_str::<Value>(raw)
            .ok()
            .filter(Value::is_object),
        _ => None,
    };
    parsed.unwrap_or_else(|| Value::String(raw.to_string()))
}

/// A JSON value as a template value, converted directly rather than through serde's
/// serializer (a third of the library's overhead over a bare render): the same values
/// minijinja's serde conversion makes, with maps keeping their order.
pub(crate) fn template_value(value: &Value) -> minijinja::Value {
    match value {
        Value::Null => minijinja::Value::from(()),
        Value::Bool(b) => minijinja::Value::from(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => minijinja::Value::from(i),
            (None, Some(u)) => minijinja::Value::from(u),
            (None, None) => minijinja::Value::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => minijinja::Value::from(s.as_str()),
        Value::Array(items) => {
            minijinja::Value::from(items.iter().map(template_value).collect::<Vec<_>>())
        }
        Value::Object(map) => minijinja::Value::from_pairs(
            map.iter()
                .map(|(k, v)| (minijinja::Value::from(k.as_str()), template_value(v))),
        ),
    }
}

/// The error for `value` given to declared variable `name` when it is not of its type (`null`
/// is accepted for an optional variable).
fn wrong_type(
    name: &str,
    var: &crate::format::prompt::Variable,
    value: &Value,
) -> Option<RenderError> {
    let optional_null = value.is_null() && !var.required;
    (!var.ty.accepts(value) && !optional_null).then(|| RenderError::WrongType {
        name: name.to_string(),
        expected: var.ty.as_str(),
        given: type_name(value),
    })
}

/// Up to this many names are looked for by comparing each rather than by hashing.
const SCAN: usize = 16;

/// The value given for `name`: among a few values, found by comparing names (the map's own
/// lookup hashes the name with SipHash first).
fn given<'v>(values: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    if values.len() <= SCAN {
        return values
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value);
    }
    values.get(name)
}

/// The values a template sees, looked up by name in a short list: a prompt has a handful of
/// variables, and building a hashed map of them for every render cost more than the lookups.
#[derive(Debug)]
struct Context(Vec<(Arc<str>, minijinja::Value)>);

impl minijinja::value::Object for Context {
    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        self.get_value_by_str(key.as_str()?)
    }

    // What a template's variable lookups call: by name, without a value made of the name.
    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<minijinja::Value> {
        self.0
            .iter()
            .find(|(name, _)| &**name == key)
            .map(|(_, value)| value.clone())
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values(
            self.0
                .iter()
                .map(|(name, _)| minijinja::Value::from(name.clone()))
                .collect(),
        )
    }
}

/// A prompt compiled and ready to render many times.
#[derive(Debug)]
pub struct CompiledPrompt {
    id: String,
    file: String,
    prompt: Prompt,
    text: String,
    templates: Templates,
    /// Each declared variable's name and its default (or none) as a template value, converted
    /// once.
    defaults: Vec<(Arc<str>, minijinja::Value)>,
}

impl CompiledPrompt {
    /// About how much memory this compiled prompt takes: its file's text, parsed, and its
    /// templates compiled (each a few times its text), plus a fixed part. For caches bounded by
    /// bytes.
    pub fn footprint(&self) -> usize {
        self.text.len().saturating_mul(4).saturating_add(4096)
    }

    pub(crate) fn new(
        id: String,
        file: String,
        prompt: Prompt,
        text: String,
        templates: Templates,
    ) -> Self {
        let defaults = prompt
            .variables
            .iter()
            .flatten()
            .map(|(name, var)| {
                let default = var
                    .default
                    .as_ref()
                    .map_or(minijinja::Value::from(()), template_value);
                (Arc::from(name.as_str()), default)
            })
            .collect();
        CompiledPrompt {
            id,
            file,
            prompt,
            text,
            templates,
            defaults,
        }
    }

    /// The prompt's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The file, relative to the registry root.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The file's text, as committed (or as in the working copy).
    pub fn source_text(&self) -> &str {
        &self.text
    }

    /// The prompt as read from its file.
    pub fn prompt(&self) -> &Prompt {
        &self.prompt
    }

    /// When a render of this prompt costs time linear in the values it is given (no loop,
    /// call, include or assignment; see `template::linear_reads`): how many places read them.
    #[cfg_attr(not(feature = "serve"), allow(dead_code))]
    pub(crate) fn linear_reads(&self) -> Option<usize> {
        if self.prompt.syntax == crate::format::prompt::Syntax::Verbatim {
            let text: usize = self.prompt.templates().iter().map(|(_, t)| t.len()).sum();
            return (text <= template::LINEAR_TEXT).then_some(0);
        }
        self.templates.linear_reads()
    }

    /// Every variable the templates read, partials included.
    pub fn free_variables(&self) -> &BTreeSet<String> {
        self.templates.free_variables()
    }

    /// Every partial the templates name.
    pub fn partials(&self) -> &BTreeSet<String> {
        self.templates.partials()
    }

    /// The names the prompt accepts: declared variables, else the templates' free variables.
    pub fn inputs(&self) -> BTreeSet<&str> {
        let mut names: BTreeSet<&str> = self.free_variables().iter().map(String::as_str).collect();
        if let Some(vars) = &self.prompt.variables {
            names.extend(vars.keys().map(String::as_str));
        }
        names
    }

    /// The given names that the prompt neither declares nor uses, sorted.
    pub fn unused<'a>(&self, values: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        // Each name looked up where the inputs are kept (no set of them built per render).
        let mut unused: Vec<String> = values
            .into_iter()
            .filter(|name| !self.declares(name) && !self.free_variables().contains(name.as_str()))
            .cloned()
            .collect();
        unused.sort();
        unused
    }

    /// The required variables not in `values`, sorted.
    pub fn missing(&self, values: &Map<String, Value>) -> Vec<String> {
        let mut missing: Vec<String> = match &self.prompt.variables {
            Some(vars) => vars
                .iter()
                .filter(|(name, var)| var.required && !values.contains_key(*name))
                .map(|(name, _)| name.clone())
                .collect(),
            None => self
                .free_variables()
                .iter()
                .filter(|name| !values.contains_key(*name))
                .cloned()
                .collect(),
        };
        missing.sort();
        missing
    }

    /// Whether the prompt declares a variable `name`. A handful of names are compared one by
    /// one, which costs less than hashing the name once.
    fn declares(&self, name: &str) -> bool {
        if self.defaults.len() <= SCAN {
            return self
                .defaults
                .iter()
                .any(|(declared, _)| &**declared == name);
        }
        self.prompt
            .variables
            .as_ref()
            .is_some_and(|vars| vars.contains_key(name))
    }

    /// Checks `values` against the declarations and completes them with defaults (and `none`
    /// for optional variables without one).
    pub fn context(&self, values: &Map<String, Value>) -> Result<Map<String, Value>, RenderError> {
        self.check(values)?;
        let mut context = values.clone();
        if let Some(vars) = &self.prompt.variables {
            for (name, var) in vars {
                if !values.contains_key(name) {
                    context.insert(name.clone(), var.default.clone().unwrap_or(Value::Null));
                }
            }
        }
        Ok(context)
    }

    /// Checks that every required variable is given and every given declared variable has its
    /// type. Allocates nothing when the values are fine.
    fn check(&self, values: &Map<String, Value>) -> Result<(), RenderError> {
        let complete = match &self.prompt.variables {
            Some(vars) => vars
                .iter()
                .all(|(name, var)| !var.required || values.contains_key(name)),
            None => self
                .free_variables()
                .iter()
                .all(|name| values.contains_key(name)),
        };
        if !complete {
            return Err(RenderError::Missing {
                names: self.missing(values),
            });
        }
        if let Some(vars) = &self.prompt.variables {
            for (name, var) in vars {
                if let Some(err) = values.get(name).and_then(|v| wrong_type(name, var, v)) {
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Renders the prompt with `values`.
    ///
    /// ```
    /// use promptreg::Registry;
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(
    ///     dir.path().join("hello.prompt.yaml"),
    ///     "variables:\n  name: { type: string }\n  n: { type: integer, default: 2 }\n\
    ///      template: \"Hello {{ name }} x{{ n }}\"\n",
    /// ).unwrap();
    /// let registry = Registry::open(dir.path()).unwrap();
    /// let prompt = registry.load_work("hello").unwrap().compile().unwrap();
    /// let values = serde_json::json!({"name": "Ada"});
    /// let rendered = prompt.render(values.as_object().unwrap()).unwrap();
    /// assert_eq!(rendered.to_string(), "Hello Ada x2");
    /// ```
    pub fn render(&self, values: &Map<String, Value>) -> Result<Rendered, RenderError> {
        let inserts = match &self.prompt.body {
            Body::Chat { inserts, .. } if !inserts.is_empty() => inserts.as_slice(),
            _ => &[],
        };
        let marked;
        let given = if inserts.is_empty() {
            values
        } else {
            // An inserted input is a marker in the text, replaced by its messages after.
            let mut with_marks = values.clone();
            for (name, _) in inserts {
                with_marks.insert(
                    name.clone(),
                    Value::String(self.templates.marks.insert(name)),
                );
            }
            marked = with_marks;
            &marked
        };
        let ctx = minijinja::Value::from_object(self.template_context(given)?);
        let verbatim = self.prompt.syntax == crate::format::prompt::Syntax::Verbatim;
        // Part `i` of the templates, rendered.
        let part = |i: usize| -> Result<String, RenderError> {
            if verbatim {
                let text = match &self.prompt.body {
                    Body::Template(text) | Body::Chat { template: text, .. } => text,
                    Body::Messages(messages) => &messages[i].content,
                };
                return Ok(text.clone());
            }
            if let Some(hbs) = &self.templates.handlebars {
                let context = self.context(given)?;
                return hbs.render(&context).map_err(|failure| {
                    RenderError::Template(Box::new(handlebars::render_error(
                        &self.file_context(),
                        failure,
                    )))
                });
            }
            let Some(name) = self.templates.parts.get(i) else {
                return Ok(String::new());
            };
            let text = self
                .templates
                .env
                .get_template(name)
                .and_then(|t| t.render(&ctx))
                .map_err(|err| {
                    let err = self.templates.debug_error(name, &ctx).unwrap_or(err);
                    self.template_error(&err)
                })?;
            if text.len() > MAX_OUTPUT {
                return Err(RenderError::Template(Box::new(Diagnostic::new(
                    crate::diagnostic::Code::RenderFailed,
                    &self.file,
                    format!("rendered text is larger than {MAX_OUTPUT} bytes"),
                ))));
            }
            Ok(text)
        };
        let output = match &self.prompt.body {
            Body::Template(_) => Output::Text { text: part(0)? },
            Body::Chat { strict, .. } => {
                let text = part(0)?;
                let mode = match (self.prompt.syntax, strict) {
                    (crate::format::prompt::Syntax::Handlebars, _) => roles::Split::Markers,
                    (_, true) => roles::Split::Strict,
                    (_, false) => roles::Split::Lines,
                };
                let messages = self
                    .templates
                    .marks
                    .split(&text, mode, inserts, values)
                    .map_err(|message| {
                        RenderError::Template(Box::new(Diagnostic::new(
                            crate::diagnostic::Code::RenderFailed,
                            &self.file,
                            message,
                        )))
                    })?;
                Output::Messages { messages }
            }
            Body::Messages(messages) => Output::Messages {
                messages: messages
                    .iter()
                    .take(self.templates.parts.len())
                    .enumerate()
                    .map(|(i, m)| {
                        Ok(Message {
                            role: m.role.clone(),
                            content: part(i)?,
                        })
                    })
                    .collect::<Result<_, RenderError>>()?,
            },
        };
        Ok(Rendered {
            id: self.id.clone(),
            model: self.prompt.model.clone(),
            model_parameters: self.prompt.model_parameters.clone(),
            output,
            response_format: self.prompt.response_format.clone(),
            json_schema: self.prompt.json_schema.clone(),
        })
    }

    /// Checks `values` like [`CompiledPrompt::context`] and builds what the templates see, in
    /// one pass over the declared variables: each is looked up once, and the given values
    /// that are not declared are looked for only when there are some.
    fn template_context(&self, values: &Map<String, Value>) -> Result<Context, RenderError> {
        let Some(vars) = &self.prompt.variables else {
            self.check(values)?;
            return Ok(Context(
                values
                    .iter()
                    .map(|(name, value)| (Arc::from(name.as_str()), template_value(value)))
                    .collect(),
            ));
        };
        let mut entries = Vec::with_capacity(self.defaults.len().max(values.len()));
        let (mut found, mut missing, mut wrong) = (0, false, None);
        for ((name, var), (key, default)) in vars.iter().zip(&self.defaults) {
            match given(values, name) {
                Some(value) => {
                    found += 1;
                    if wrong.is_none() {
                        wrong = wrong_type(name, var, value);
                    }
                    entries.push((key.clone(), template_value(value)));
                }
                None if var.required => missing = true,
                None => entries.push((key.clone(), default.clone())),
            }
        }
        if missing {
            return Err(RenderError::Missing {
                names: self.missing(values),
            });
        }
        if let Some(err) = wrong {
            return Err(err);
        }
        if found < values.len() {
            for (name, value) in values {
                if !self.declares(name) {
                    entries.push((Arc::from(name.as_str()), template_value(value)));
                }
            }
        }
        Ok(Context(entries))
    }

    /// What maps template lines to lines of the prompt's file.
    pub(crate) fn file_context(&self) -> FileContext<'_> {
        FileContext {
            file: &self.file,
            text: &self.text,
            prompt: &self.prompt,
        }
    }

    fn template_error(&self, err: &minijinja::Error) -> RenderError {
        let ctx = self.file_context();
        let diagnostic =
            template::template_diagnostic(&ctx, err, crate::diagnostic::Code::RenderFailed);
        RenderError::Template(Box::new(diagnostic))
    }
}

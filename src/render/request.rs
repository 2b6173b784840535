//! What to render a prompt with, as a library call: values from the prompt's test data, from
//! any `Serialize` value, and from strings converted to the declared types, later ones
//! overriding earlier ones; then the strict check of values the prompt does not use.
//!
//! ```
//! use promptreg::{Registry, RenderRequest};
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(
//!     dir.path().join("greet.prompt.yaml"),
//!     "variables:\n  name: { type: string }\n  n: { type: integer, default: 1 }\n\
//!      template: \"Hello {{ name }} x{{ n }}\"\ntestData:\n  - name: Ada\n",
//! ).unwrap();
//! let prompt = Registry::open(dir.path()).unwrap().load_work("greet").unwrap().compile().unwrap();
//!
//! let outcome = RenderRequest::new().test_case(0).text("n", "3").render(&prompt).unwrap();
//! assert_eq!(outcome.rendered.to_string(), "Hello Ada x3");
//!
//! #[derive(serde::Serialize)]
//! struct Values { name: &'static str }
//! let outcome = RenderRequest::new().values(&Values { name: "Grace" }).unwrap().render(&prompt).unwrap();
//! assert_eq!(outcome.rendered.to_string(), "Hello Grace x1");
//! ```

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, RenderError, Result};
use crate::render::{coerce, CompiledPrompt, Rendered};

/// One value of a request, in the order it was given.
#[derive(Debug, Clone, PartialEq)]
enum Input {
    /// A value as it is.
    Value(String, Value),
    /// A string, converted to the variable's declared type where it parses as one.
    Text(String, String),
}

/// What to render a prompt with. Build it with the methods, then [`RenderRequest::render`];
/// one request can render many prompts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RenderRequest {
    test: Option<usize>,
    inputs: Vec<Input>,
    strict: bool,
}

/// A render and what it noticed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RenderOutcome {
    /// The rendered prompt.
    pub rendered: Rendered,
    /// Given names the prompt neither declares nor uses, sorted (empty in strict mode, where
    /// they are an error).
    pub unused: Vec<String>,
}

impl RenderRequest {
    /// A request with no values.
    pub fn new() -> RenderRequest {
        RenderRequest::default()
    }

    /// Starts from test case `n` (0-based) of the prompt's `testData`.
    pub fn test_case(mut self, n: usize) -> RenderRequest {
        self.test = Some(n);
        self
    }

    /// Adds every field of `values`, which must serialize to a map (a struct, a map, a JSON
    /// object).
    pub fn values(mut self, values: &impl Serialize) -> Result<RenderRequest> {
        let value = serde_json::to_value(values)
            .map_err(|e| Error::Usage(format!("the values cannot be serialized: {e}")))?;
        match value {
            Value::Object(map) => {
                self.inputs
                    .extend(map.into_iter().map(|(k, v)| Input::Value(k, v)));
                Ok(self)
            }
            Value::Null => Ok(self),
            other => Err(Error::Usage(format!(
                "values must be a mapping of variable names to values, found {}",
                crate::format::prompt::type_name(&other)
            ))),
        }
    }

    /// Adds every entry of `values`, as they are (what [`RenderRequest::values`] does for a
    /// JSON object, without serializing it again).
    pub fn variables(mut self, values: Map<String, Value>) -> RenderRequest {
        self.inputs
            .extend(values.into_iter().map(|(k, v)| Input::Value(k, v)));
        self
    }

    /// Sets one variable to a value.
    pub fn value(
        mut self,
        name: impl Into<String>,
        value: impl Serialize,
    ) -> Result<RenderRequest> {
        let name = name.into();
        let value = serde_json::to_value(value).map_err(|e| {
            Error::Usage(format!("the value of `{name}` cannot be serialized: {e}"))
        })?;
        self.inputs.push(Input::Value(name, value));
        Ok(self)
    }

    /// Sets one variable from a string, converted to its declared type where it parses as one
    /// (`5` for an integer, JSON for an array), as a command-line flag is.
    pub fn text(mut self, name: impl Into<String>, raw: impl Into<String>) -> RenderRequest {
        self.inputs.push(Input::Text(name.into(), raw.into()));
        self
    }

    /// Makes given names the prompt does not use an error rather than a finding.
    pub fn strict(mut self, strict: bool) -> RenderRequest {
        self.strict = strict;
        self
    }

    /// The values for `prompt`: the test case, then the inputs in order (strings converted to
    /// the declared types). Also returns the names given explicitly (not from test data).
    pub fn resolve_values(
        &self,
        prompt: &CompiledPrompt,
    ) -> Result<(Map<String, Value>, Vec<String>)> {
        let mut values = Map::new();
        if let Some(n) = self.test {
            let rows = &prompt.prompt().test_data;
            let row = rows.get(n).ok_or_else(|| {
                Error::NotFound(match rows.len() {
                    0 => format!("`{}` has no test data", prompt.id()),
                    len => format!(
                        "`{}` has {len} test case{} (0 to {}); there is no test case {n}",
                        prompt.id(),
                        if len == 1 { "" } else { "s" },
                        len - 1
                    ),
                })
            })?;
            values.extend(row.clone());
        }
        let declared = prompt.prompt().variables.as_ref();
        // The names given, in order, each once: a set, so many names cost linear time (a
        // `Vec::contains` per name was quadratic: tens of seconds for a hostile request).
        let mut given = indexmap::IndexSet::with_capacity(self.inputs.len());
        for input in &self.inputs {
            let (key, value) = match input {
                Input::Value(key, value) => (key.clone(), value.clone()),
                Input::Text(key, raw) => {
                    let ty = declared.and_then(|vars| vars.get(key)).map(|v| v.ty);
                    (key.clone(), coerce(ty, raw))
                }
            };
            given.insert(key.clone());
            values.insert(key, value);
        }
        Ok((values, given.into_iter().collect()))
    }

    /// Renders `prompt`: types checked, defaults applied, every missing variable named at once.
    pub fn render(&self, prompt: &CompiledPrompt) -> Result<RenderOutcome> {
        let (values, given) = self.resolve_values(prompt)?;
        let unused = prompt.unused(given.iter());
        if self.strict && !unused.is_empty() {
            return Err(Error::Render(RenderError::Unused { names: unused }));
        }
        let rendered = prompt.render(&values)?;
        Ok(RenderOutcome { rendered, unused })
    }
}

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

use indexmap::IndexSet;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, RenderError, Result};
use crate::render::{coerce, CompiledPrompt, Rendered};

/// One value of a request, or several, in the order they were given.
#[derive(Debug, Clone, PartialEq)]
enum Input {
    /// A value as it is.
    Value(String, Value),
    /// Values as they are, kept as the one map they came in.
    Values(Map<String, Value>),
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
    pub fn values(self, values: &impl Serialize) -> Result<RenderRequest> {
        let value = serde_json::to_value(values)
            .map_err(|e| Error::Usage(format!("the values cannot be serialized: {e}")))?;
        match value {
            Value::Object(map) => Ok(self.variables(map)),
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
        self.inputs.push(Input::Values(values));
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
        let Gathered { values, given } = gather(self.test, self.inputs.iter().cloned(), prompt)?;
        let given = match given {
            Some(given) => given.into_iter().collect(),
            None => values.keys().cloned().collect(),
        };
        Ok((values, given))
    }

    /// Renders `prompt`: types checked, defaults applied, every missing variable named at once.
    pub fn render(&self, prompt: &CompiledPrompt) -> Result<RenderOutcome> {
        gather(self.test, self.inputs.iter().cloned(), prompt)?.render(prompt, self.strict)
    }

    /// [`RenderRequest::render`] for a request used once: its values are moved into the
    /// render rather than copied (a server's render of a request body).
    #[cfg_attr(not(feature = "serve"), allow(dead_code))]
    pub(crate) fn render_once(self, prompt: &CompiledPrompt) -> Result<RenderOutcome> {
        gather(self.test, self.inputs.into_iter(), prompt)?.render(prompt, self.strict)
    }
}

/// The values for `prompt`: test case `test`, then `inputs` in order, each name's last value
/// kept.
fn gather(
    test: Option<usize>,
    inputs: impl Iterator<Item = Input>,
    prompt: &CompiledPrompt,
) -> Result<Gathered> {
    let mut values = Map::new();
    // A set, so many names cost linear time (a `Vec::contains` per name was quadratic: tens of
    // seconds for a hostile request).
    let mut given = None;
    if let Some(n) = test {
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
        given = Some(IndexSet::new());
    }
    let declared = prompt.prompt().variables.as_ref();
    for input in inputs {
        match input {
            Input::Value(key, value) => put(&mut values, &mut given, key, value),
            Input::Text(key, raw) => {
                let ty = declared.and_then(|vars| vars.get(&key)).map(|v| v.ty);
                let value = coerce(ty, &raw);
                put(&mut values, &mut given, key, value);
            }
            // The first values given, without a test case: they are the values as they are.
            Input::Values(map) if values.is_empty() && given.is_none() => values = map,
            Input::Values(map) => {
                for (key, value) in map {
                    put(&mut values, &mut given, key, value);
                }
            }
        }
    }
    Ok(Gathered { values, given })
}

/// Sets `key` to `value`, noting the name among those `given` when they are noted.
fn put(
    values: &mut Map<String, Value>,
    given: &mut Option<IndexSet<String>>,
    key: String,
    value: Value,
) {
    if let Some(given) = given {
        given.insert(key.clone());
    }
    values.insert(key, value);
}

/// The values of a request for one prompt.
struct Gathered {
    values: Map<String, Value>,
    /// With a test case, the names the inputs give, in order, each once (without one, those
    /// are the values' names).
    given: Option<IndexSet<String>>,
}

impl Gathered {
    /// The render, with the given names the prompt does not use reported, or refused when
    /// `strict`.
    fn render(self, prompt: &CompiledPrompt, strict: bool) -> Result<RenderOutcome> {
        let unused = match &self.given {
            Some(given) => prompt.unused(given),
            None => prompt.unused(self.values.keys()),
        };
        if strict && !unused.is_empty() {
            return Err(Error::Render(RenderError::Unused { names: unused }));
        }
        let rendered = prompt.render(&self.values)?;
        Ok(RenderOutcome { rendered, unused })
    }
}

//! `promptreg render`: render a prompt with values from flags, a file or its test data.

use std::path::PathBuf;

use clap::Args;
use serde_json::{Map, Value};

use super::output::{eprint, print, render_diagnostics, stderr_color};
use super::{Context, DataFormat, Failure};
use crate::error::Error;
use crate::registry::reference::Reference;
use crate::render::{coerce, CompiledPrompt, RenderError};

/// Render a prompt with values.
///
/// Values come from the prompt's test data (`--test N`), then a file (`--vars`), then flags
/// (`--var`), later ones overriding earlier ones.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The prompt: `ID` (its default), `ID@N`, `ID@latest`, `ID@LABEL`, `ID@COMMIT` or `ID@work`.
    pub reference: String,
    /// A value: `k=v` (a string, converted to the declared type where it parses) or `k:=JSON`.
    #[arg(long = "var", value_name = "K=V", action = clap::ArgAction::Append)]
    pub vars: Vec<String>,
    /// A YAML or JSON file of values (`-` reads standard input).
    #[arg(long = "vars", value_name = "FILE")]
    pub vars_file: Option<PathBuf>,
    /// Use test case N of the prompt's `testData` (0-based).
    #[arg(long, value_name = "N")]
    pub test: Option<usize>,
    /// Make supplied variables the prompt does not use an error, not a warning.
    #[arg(long)]
    pub strict: bool,
    /// Output format: role headers and content, or JSON ready for a chat API.
    #[arg(long, value_enum, default_value_t)]
    pub format: DataFormat,
}

/// One `--var` flag, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum VarFlag {
    /// `k=v`: a string, converted to the declared type where it parses.
    Text(String, String),
    /// `k:=JSON`: a JSON value.
    Json(String, Value),
}

impl VarFlag {
    /// Parses `k=v` or `k:=JSON`.
    pub fn parse(flag: &str) -> Result<VarFlag, String> {
        let Some((key, value)) = flag.split_once('=') else {
            return Err(format!(
                "`--var {flag}` is not `NAME=VALUE` or `NAME:=JSON`"
            ));
        };
        let (key, json) = match key.strip_suffix(':') {
            Some(key) => (key, true),
            None => (key, false),
        };
        if key.is_empty() {
            return Err(format!("`--var {flag}` has no variable name"));
        }
        if json {
            let value = serde_json::from_str(value)
                .map_err(|e| format!("`--var {flag}`: the value is not valid JSON: {e}"))?;
            Ok(VarFlag::Json(key.to_string(), value))
        } else {
            Ok(VarFlag::Text(key.to_string(), value.to_string()))
        }
    }
}

/// The render request once arguments are read: flags parsed, the values file loaded.
#[derive(Debug)]
pub struct RenderRequest {
    /// The prompt to render.
    pub reference: Reference,
    /// Values from `--vars`.
    pub file_values: Map<String, Value>,
    /// Values from `--var`, in order.
    pub flags: Vec<VarFlag>,
    /// The test case to start from.
    pub test: Option<usize>,
    /// Unused variables are errors.
    pub strict: bool,
    /// Output format.
    pub format: DataFormat,
}

impl RenderRequest {
    /// Reads the arguments: parses every flag and loads the values file.
    pub fn from_args(args: RenderArgs) -> Result<RenderRequest, Failure> {
        let reference = Reference::parse(&args.reference)?;
        let flags = args
            .vars
            .iter()
            .map(|f| VarFlag::parse(f))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::Message)?;
        let file_values = match &args.vars_file {
            None => Map::new(),
            Some(path) => read_values(path)?,
        };
        Ok(RenderRequest {
            reference,
            file_values,
            flags,
            test: args.test,
            strict: args.strict,
            format: args.format,
        })
    }

    /// The values for `prompt`: the test case, then the file, then the flags (converted to
    /// the declared types). Also returns the names given explicitly (not from test data).
    pub fn values(
        &self,
        prompt: &CompiledPrompt,
    ) -> Result<(Map<String, Value>, Vec<String>), Failure> {
        let mut values = Map::new();
        if let Some(n) = self.test {
            let rows = &prompt.prompt().test_data;
            let row = rows.get(n).ok_or_else(|| {
                Failure::Message(match rows.len() {
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
        let mut given: Vec<String> = self.file_values.keys().cloned().collect();
        values.extend(self.file_values.clone());
        let declared = prompt.prompt().variables.as_ref();
        for flag in &self.flags {
            let (key, value) = match flag {
                VarFlag::Json(key, value) => (key.clone(), value.clone()),
                VarFlag::Text(key, raw) => {
                    let ty = declared.and_then(|vars| vars.get(key)).map(|v| v.ty);
                    (key.clone(), coerce(ty, raw))
                }
            };
            given.push(key.clone());
            values.insert(key, value);
        }
        Ok((values, given))
    }
}

fn read_values(path: &std::path::Path) -> Result<Map<String, Value>, Failure> {
    let display = path.display().to_string();
    let limit = crate::snapshot::work::MAX_FILE_SIZE;
    let (name, bytes) = if display == "-" {
        (
            "<stdin>".to_string(),
            crate::snapshot::work::read_stdin(limit)?,
        )
    } else {
        let bytes = crate::snapshot::work::read_input(path, &display, limit)?.ok_or_else(|| {
            Failure::from(Error::Usage(format!(
                "values file `{display}` does not exist"
            )))
        })?;
        (display, bytes)
    };
    let (document, diagnostics) = crate::format::yaml::parse(&name, &bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let errors: Vec<_> = diagnostics.into_iter().filter(|d| d.is_error()).collect();
    if !errors.is_empty() {
        return Err(Failure::from(Error::Invalid {
            file: name,
            text: Some(text),
            diagnostics: errors,
        }));
    }
    match document.map(|d| d.value) {
        Some(Value::Object(map)) => Ok(map),
        Some(Value::Null) | None => Ok(Map::new()),
        Some(other) => Err(Failure::Message(format!(
            "{name}: values must be a mapping of variable names to values, found {}",
            crate::format::prompt::type_name(&other)
        ))),
    }
}

/// Runs `render`.
pub fn run(ctx: &Context, args: RenderArgs) -> Result<u8, Failure> {
    let request = RenderRequest::from_args(args)?;
    let registry = ctx.registry()?;
    let resolved = registry.resolve(&request.reference)?;
    let loaded = registry.load_resolved(&request.reference.id, &resolved)?;
    let rendered_what = match resolved {
        crate::registry::Resolved::Version { number, .. } => {
            Some(format!("{}@{number}", request.reference.id))
        }
        crate::registry::Resolved::Tip { .. } => Some(format!("{}@latest", request.reference.id)),
        crate::registry::Resolved::Work => None,
    };
    if let Some(what) = rendered_what {
        match registry.read_work_text(&loaded.file) {
            // Deleted or renamed since: there is no `@work` to point at.
            None if !registry.work_tree().path(&loaded.file).exists() => eprint(&format!(
                "note: rendered {what}; `{}` no longer exists in the working copy\n",
                request.reference.id
            )),
            None => eprint(&format!(
                "note: rendered {what}; the working copy differs (render {}@work to see it)\n",
                request.reference.id
            )),
            Some(work) if work != loaded.text => eprint(&format!(
                "note: rendered {what}; the working copy differs (render {}@work to see it)\n",
                request.reference.id
            )),
            Some(_) => {}
        }
    }
    let source = loaded.source.clone();
    let lookup = move |file: &str| {
        let path = crate::snapshot::work::normalize(file).ok()?;
        String::from_utf8(source.read(&path).ok()??).ok()
    };
    let color = stderr_color();
    if !loaded.warnings.is_empty() {
        eprint(&render_diagnostics(
            &loaded.warnings,
            &|f: &str| (f == loaded.file).then(|| loaded.text.clone()),
            color,
        ));
    }
    let compiled = loaded
        .compile()
        .map_err(|e| Failure::Error(Box::new(e), Some(Box::new(lookup.clone()))))?;
    let (values, given) = request.values(&compiled)?;
    let unused = compiled.unused(given.iter());
    if !unused.is_empty() {
        let err = RenderError::Unused { names: unused };
        if request.strict {
            return Err(Failure::Error(Box::new(Error::Render(err)), None));
        }
        eprint(&format!("warning: {err}\n"));
    }
    let rendered = compiled
        .render(&values)
        .map_err(|e| Failure::Error(Box::new(Error::Render(e)), Some(Box::new(lookup))))?;
    let text = match request.format {
        DataFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&rendered).unwrap_or_default()
        ),
        DataFormat::Text => {
            let mut text = rendered.to_string();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text
        }
    };
    print(&text)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use crate::cli::render::*;

    #[test]
    fn parses_var_flags() {
        assert_eq!(
            VarFlag::parse("a=b=c"),
            Ok(VarFlag::Text("a".into(), "b=c".into()))
        );
        assert_eq!(
            VarFlag::parse("n:=[1,2]"),
            Ok(VarFlag::Json("n".into(), serde_json::json!([1, 2])))
        );
        assert_eq!(
            VarFlag::parse("e="),
            Ok(VarFlag::Text("e".into(), String::new()))
        );
        assert!(VarFlag::parse("novalue").is_err());
        assert!(VarFlag::parse("=x").is_err());
        assert!(VarFlag::parse("j:={").is_err());
    }
}

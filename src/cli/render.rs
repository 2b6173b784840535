//! `promptreg render`: render a prompt with values from flags, a file or its test data.

use std::path::PathBuf;

use clap::Args;
use serde_json::{Map, Value};

use super::output::{eprint, print, render_diagnostics, stderr_color};
use super::{Context, DataFormat, Failure};
use crate::error::Error;
use crate::registry::reference::Reference;
use crate::render::request::RenderRequest;
use crate::render::{RenderError, Rendered};

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
    /// Output format: text, or JSON (`render`: ready for a chat API; `run`: the whole response).
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

/// The arguments once read: the reference parsed, and the values (the values file, then the
/// flags) as a library [`RenderRequest`].
#[derive(Debug)]
pub struct Request {
    /// The prompt to render.
    pub reference: Reference,
    /// What to render it with.
    pub request: RenderRequest,
    /// Output format.
    pub format: DataFormat,
}

impl Request {
    /// Reads the arguments: parses every flag and loads the values file.
    pub fn from_args(args: RenderArgs) -> Result<Request, Failure> {
        let reference = Reference::parse(&args.reference)?;
        let flags = args
            .vars
            .iter()
            .map(|f| VarFlag::parse(f))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::Message)?;
        let mut request = RenderRequest::new().strict(args.strict);
        if let Some(n) = args.test {
            request = request.test_case(n);
        }
        if let Some(path) = &args.vars_file {
            request = request.values(&read_values(path)?)?;
        }
        for flag in flags {
            request = match flag {
                VarFlag::Json(key, value) => request.value(key, value)?,
                VarFlag::Text(key, raw) => request.text(key, raw),
            };
        }
        Ok(Request {
            reference,
            request,
            format: args.format,
        })
    }
}

/// Reads a values file (`-` is standard input): a YAML or JSON mapping.
pub(crate) fn read_values(path: &std::path::Path) -> Result<Map<String, Value>, Failure> {
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
    let request = Request::from_args(args)?;
    let rendered = render(&ctx.registry()?, &request)?;
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

/// Renders what `request` asks for, as `render` does (and `run` before it sends): notes on
/// stderr when the working copy differs, warnings, errors with snippets.
pub(crate) fn render(
    registry: &crate::registry::Registry,
    request: &Request,
) -> Result<Rendered, Failure> {
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
    let outcome = request.request.render(&compiled).map_err(|e| match e {
        Error::Render(RenderError::Template(_)) => {
            Failure::Error(Box::new(e), Some(Box::new(lookup)))
        }
        e => Failure::Error(Box::new(e), None),
    })?;
    if !outcome.unused.is_empty() {
        let names = outcome.unused;
        eprint(&format!("warning: {}\n", RenderError::Unused { names }));
    }
    Ok(outcome.rendered)
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

//! Writing to the terminal: stdout that tolerates a closed pipe, errors on stderr with
//! snippets, colour only on a terminal and never with `NO_COLOR`.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::diagnostic::Diagnostic;
use crate::error::Error;

/// Set once stdout turns out to be a closed pipe.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout.
///
/// A closed pipe (`promptreg list | head`) is not an error, and it does not change the exit
/// code either: the command goes on to its own result (`validate | head -0` still exits 1 on a
/// broken registry, for CI with `pipefail`), and nothing more is written.
pub fn print(text: &str) -> Result<(), Failure> {
    if stdout_closed() {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(Failure::Message(format!("cannot write to stdout: {e}"))),
    }
}

/// Whether stdout was found to be a closed pipe: a command that only prints (`watch`) can stop.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Whether the environment allows colour at all: not with `NO_COLOR` (set and not empty), and
/// not on a terminal that says it has none (`TERM=dumb`).
fn color_allowed() -> bool {
    color_allowed_by(std::env::var_os("NO_COLOR"), std::env::var_os("TERM"))
}

/// [`color_allowed`] for given values of `NO_COLOR` and `TERM`.
fn color_allowed_by(
    no_color: Option<std::ffi::OsString>,
    term: Option<std::ffi::OsString>,
) -> bool {
    no_color.is_none_or(|v| v.is_empty()) && term.is_none_or(|t| t != "dumb")
}

/// Whether stderr gets colour.
pub fn stderr_color() -> bool {
    color_allowed() && std::io::stderr().is_terminal()
}

/// Whether stdout gets colour.
pub fn stdout_color() -> bool {
    color_allowed() && std::io::stdout().is_terminal()
}

/// Writes to stderr, ignoring failures (there is nowhere left to report them).
pub fn eprint(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
}

/// Looks up the text of a file named in a finding, for its snippet.
pub type SourceLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// An owned [`SourceLookup`].
pub type OwnedLookup = Box<dyn Fn(&str) -> Option<String>>;

/// Renders findings for a person, each with its snippet when the file's text is known.
pub fn render_diagnostics(
    diagnostics: &[Diagnostic],
    lookup: SourceLookup<'_>,
    color: bool,
) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let text = lookup(&d.file);
        out.push_str(&d.render_human(text.as_deref(), color));
        out.push_str("\n\n");
    }
    out
}

/// How a command failed, and so what it prints and which code it exits with.
pub enum Failure {
    /// A library error; the lookup gives file texts for snippets.
    Error(Box<Error>, Option<OwnedLookup>),
    /// A plain message; exit 2.
    Message(String),
    /// Problems were found and already printed; exit with this code, print nothing.
    Quiet(u8),
}

impl Failure {
    /// Prints the failure as one line of JSON on stderr (for `--format json`) and returns the
    /// exit code: `{"error": {"kind", "message", "hint", "diagnostics"}}`. Stdout stays empty,
    /// so what a program parses there is always a result.
    pub fn report_json(self) -> u8 {
        let (code, value) = match &self {
            Failure::Quiet(code) => return *code,
            Failure::Message(message) => (2, error_value("usage", message, None, &[])),
            Failure::Error(err, _) => {
                let diagnostics: &[Diagnostic] = match err.as_ref() {
                    Error::Invalid { diagnostics, .. } => diagnostics,
                    Error::Render(crate::render::RenderError::Template(d)) => {
                        std::slice::from_ref(d.as_ref())
                    }
                    _ => &[],
                };
                let code = if err.is_problem() { 1 } else { 2 };
                let value = error_value(kind(err), &err.to_string(), hint(err), diagnostics);
                (code, value)
            }
        };
        eprint(&format!("{value}\n"));
        code
    }

    /// Prints the failure on stderr and returns the exit code.
    pub fn report(self) -> u8 {
        match self {
            Failure::Quiet(code) => code,
            Failure::Message(message) => {
                eprint(&format!("error: {message}\n"));
                2
            }
            Failure::Error(err, lookup) => {
                let code = if err.is_problem() { 1 } else { 2 };
                eprint(&describe(&err, lookup.as_deref()));
                code
            }
        }
    }
}

fn error_value(
    kind: &str,
    message: &str,
    hint: Option<String>,
    diagnostics: &[Diagnostic],
) -> serde_json::Value {
    serde_json::json!({
        "error": {
            "kind": kind,
            "message": message,
            "hint": hint,
            "diagnostics": diagnostics,
        }
    })
}

/// A stable name for the kind of an error, for JSON output.
fn kind(err: &Error) -> &'static str {
    err.kind().as_str()
}

/// What to do about an error, when there is something to say: the library's hint
/// ([`Error::hint`]), said the command line's way where it differs.
fn hint(err: &Error) -> Option<String> {
    match err {
        Error::Render(crate::render::RenderError::Missing { .. }) => Some(
            "pass values with --var NAME=VALUE, --vars FILE, or a test case with --test N".into(),
        ),
        Error::UnknownPrompt { suggestions, .. } if suggestions.is_empty() => {
            Some("`promptreg list` shows every prompt".into())
        }
        _ => err.hint(),
    }
}

/// The text of an error for stderr: `error: ...`, findings with snippets, hints.
pub fn describe(err: &Error, lookup: Option<SourceLookup<'_>>) -> String {
    let color = stderr_color();
    match err {
        Error::Invalid {
            file,
            text,
            diagnostics,
        } => {
            let own = |f: &str| {
                if f == file {
                    text.clone()
                } else {
                    lookup.and_then(|l| l(f))
                }
            };
            let mut out = render_diagnostics(diagnostics, &own, color);
            let errors = diagnostics.iter().filter(|d| d.is_error()).count();
            let prompt_suffix = crate::snapshot::work::PROMPT_SUFFIXES;
            let what = if prompt_suffix.iter().any(|s| file.ends_with(s)) {
                "is not a valid prompt"
            } else {
                "is not valid"
            };
            out.push_str(&format!(
                "error: {file} {what} ({errors} error{})\n",
                if errors == 1 { "" } else { "s" }
            ));
            out
        }
        Error::Render(crate::render::RenderError::Template(d)) => {
            let none = |_: &str| None;
            let lookup: &dyn Fn(&str) -> Option<String> = match lookup {
                Some(l) => l,
                None => &none,
            };
            render_diagnostics(std::slice::from_ref(d.as_ref()), lookup, color)
        }
        other if hint(other).is_some() => {
            format!(
                "error: {other}\n  = help: {}\n",
                hint(other).unwrap_or_default()
            )
        }
        other => {
            let mut out = format!("error: {other}\n");
            let mut cause = std::error::Error::source(other);
            while let Some(c) = cause {
                let text = c.to_string();
                if !out.contains(&text) {
                    out.push_str(&format!("caused by: {text}\n"));
                }
                cause = c.source();
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::color_allowed_by;

    #[test]
    fn no_color_and_dumb_terminals_get_no_colour() {
        let os = |s: &str| Some(std::ffi::OsString::from(s));
        assert!(color_allowed_by(None, os("xterm-256color")));
        assert!(color_allowed_by(os(""), None));
        assert!(!color_allowed_by(os("1"), os("xterm")));
        assert!(!color_allowed_by(None, os("dumb")));
    }
}

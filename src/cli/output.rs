//! Writing to the terminal: stdout that tolerates a closed pipe, errors on stderr with
//! snippets, colour only on a terminal and never with `NO_COLOR`.

use std::io::{IsTerminal, Write};

use crate::diagnostic::Diagnostic;
use crate::error::Error;

/// Writes `text` to stdout. A closed pipe (`promptreg list | head`) is not an error.
pub fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure::Quiet(0)),
        Err(e) => Err(Failure::Message(format!("cannot write to stdout: {e}"))),
    }
}

/// Whether stderr gets colour.
pub fn stderr_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Whether stdout gets colour.
pub fn stdout_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
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
            let what = if crate::source::prompt_id(file).is_some() {
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
        Error::Render(crate::render::RenderError::Missing { .. }) => {
            format!("error: {err}\n  = help: pass values with --var NAME=VALUE, --vars FILE, or a test case with --test N\n")
        }
        Error::UnknownPrompt { suggestions, .. } if !suggestions.is_empty() => {
            let names: Vec<String> = suggestions.iter().map(|s| format!("`{s}`")).collect();
            format!(
                "error: {err}\n  = help: did you mean {}?\n",
                names.join(" or ")
            )
        }
        Error::UnknownPrompt { .. } => {
            format!("error: {err}\n  = help: `promptreg list` shows every prompt\n")
        }
        Error::Unreadable { why, .. } => {
            format!("error: {err}\n  = help: {}\n", why.hint())
        }
        Error::BadReference { available, .. } if !available.is_empty() => {
            format!("error: {err}\n  = help: {available}\n")
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

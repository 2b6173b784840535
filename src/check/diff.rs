//! Differences between two prompt versions: the source, and the rendered output of each test
//! case.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::render::{CompiledPrompt, RenderError, Rendered};

/// A unified diff of two texts with three lines of context; empty when they are equal.
///
/// ```
/// let d = promptreg::check::diff::unified("a\nb\n", "a\nc\n", "v1", "v2");
/// assert_eq!(d, "--- v1\n+++ v2\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n");
/// ```
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    let diff = similar::TextDiff::from_lines(old, new);
    let mut out = diff
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .missing_newline_hint(false)
        .to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// The text a rendered prompt is compared by: each message under a `--- role ---` header.
pub(crate) fn rendered_text(result: &Result<Rendered, RenderError>) -> String {
    match result {
        Ok(rendered) => {
            let mut text = rendered.to_string();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text
        }
        Err(err) => format!("(does not render: {err})\n"),
    }
}

/// How one test case renders before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseDiff {
    /// The test case's index in `testData` (or 0 for given values).
    pub test: usize,
    /// Whether both sides render to the same text.
    pub same: bool,
    /// The unified diff of the rendered text (empty when the same).
    pub diff: String,
    /// Prompt tokens before, when it renders.
    pub tokens_before: Option<usize>,
    /// Prompt tokens after, when it renders.
    pub tokens_after: Option<usize>,
    /// The render error before, if any.
    pub error_before: Option<String>,
    /// The render error after, if any.
    pub error_after: Option<String>,
}

/// The start of the reason given for a side that has no prompt at all.
pub(crate) const ABSENT: &str = "absent";

/// One side of a comparison: a compiled prompt, or why there is none.
pub type Side<'a> = Result<&'a CompiledPrompt, String>;

/// A prompt compiled for one side of a comparison, or why it could not be.
pub type Compiled = Result<CompiledPrompt, String>;

/// The side a compiled prompt (or the reason there is none) makes.
pub fn side(compiled: &Compiled) -> Side<'_> {
    compiled.as_ref().map_err(Clone::clone)
}

/// Why a side does not compile, if it is a prompt that does not (not an absent side).
pub(crate) fn compile_error<'s>(side: &'s Side<'_>) -> Option<&'s str> {
    side.as_ref()
        .err()
        .map(String::as_str)
        .filter(|e| !e.starts_with(ABSENT))
}

/// The reason a prompt does not compile, with each finding's place, for a [`Side`].
#[cfg_attr(not(feature = "cli"), allow(dead_code))]
pub(crate) fn compile_failure(err: &crate::error::Error) -> String {
    match err {
        crate::error::Error::Invalid {
            file, diagnostics, ..
        } if !diagnostics.is_empty() => {
            let findings: Vec<String> = diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(|d| {
                    format!(
                        "{}:{}:{}: {}: {}",
                        d.file,
                        d.line,
                        d.column,
                        d.code.as_str(),
                        d.message
                    )
                })
                .collect();
            format!("{file} does not compile: {}", findings.join("; "))
        }
        other => other.to_string(),
    }
}

/// Renders each side with its own test data ([`Cases::own`]) and compares the output; `names`
/// label the two sides in the diffs.
pub(crate) fn render_own_cases(
    old: &Compiled,
    new: &Compiled,
    names: (&str, &str),
) -> Vec<CaseDiff> {
    render_cases(
        side(old),
        side(new),
        Cases::own(side(old), side(new)),
        names,
    )
}

/// The values each side renders a test case with.
#[derive(Debug, Clone, Copy)]
pub struct Cases<'a> {
    /// The old side's test data (or the given values).
    pub before: &'a [Map<String, Value>],
    /// The new side's test data (or the given values).
    pub after: &'a [Map<String, Value>],
}

impl<'a> Cases<'a> {
    /// The same values on both sides.
    pub fn same(values: &'a [Map<String, Value>]) -> Cases<'a> {
        Cases {
            before: values,
            after: values,
        }
    }

    /// Each side's own test data, so a renamed variable with renamed test data renders the same.
    pub fn own(before: Side<'a>, after: Side<'a>) -> Cases<'a> {
        let data = |side: Side<'a>| {
            side.ok()
                .map_or(&[][..], |p| p.prompt().test_data.as_slice())
        };
        Cases {
            before: data(before),
            after: data(after),
        }
    }
}

/// Renders test case `i` on both sides (each with its own values) and compares the output;
/// `names` label the two sides in the diffs.
pub(crate) fn render_cases(
    before: Side<'_>,
    after: Side<'_>,
    cases: Cases<'_>,
    names: (&str, &str),
) -> Vec<CaseDiff> {
    let render = |side: &Side<'_>,
                  values: Option<&Map<String, Value>>|
     -> Option<Result<Rendered, RenderError>> {
        side.as_ref().ok().zip(values).map(|(p, v)| p.render(v))
    };
    let count = cases.before.len().max(cases.after.len());
    (0..count)
        .map(|i| {
            let old = render(&before, cases.before.get(i));
            let new = render(&after, cases.after.get(i));
            let text = |r: &Option<Result<Rendered, RenderError>>, side: &Side<'_>| match r {
                Some(result) => rendered_text(result),
                // An absent side (added or removed prompt, or no such test case) compares as
                // empty text; a prompt that does not compile says why.
                None => side
                    .as_ref()
                    .err()
                    .filter(|e| !e.starts_with(ABSENT))
                    .map_or(String::new(), |e| format!("({e})\n")),
            };
            let (old_text, new_text) = (text(&old, &before), text(&new, &after));
            let tokens = |r: &Option<Result<Rendered, RenderError>>| {
                r.as_ref()
                    .and_then(|r| r.as_ref().ok())
                    .map(crate::render::tokens::count_rendered)
            };
            // A render error, or the reason the side does not compile (an absent side is no error).
            let error = |r: &Option<Result<Rendered, RenderError>>, side: &Side<'_>| {
                r.as_ref()
                    .and_then(|r| r.as_ref().err())
                    .map(ToString::to_string)
                    .or_else(|| compile_error(side).map(str::to_string))
            };
            CaseDiff {
                test: i,
                same: old_text == new_text,
                diff: unified(&old_text, &new_text, names.0, names.1),
                tokens_before: tokens(&old),
                tokens_after: tokens(&new),
                error_before: error(&old, &before),
                error_after: error(&new, &after),
            }
        })
        .collect()
}

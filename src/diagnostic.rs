//! Findings about files: what is wrong, where, and what to do about it.
//!
//! Location is data here; turning a [`Diagnostic`] into a snippet with a caret is a separate step
//! ([`Diagnostic::render_human`]) so that the same finding can also be printed as JSON or as a
//! GitHub workflow annotation.

use std::fmt;

use serde::Serialize;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something to look at; fails validation only with `--deny-warnings`.
    Warning,
    /// The registry is broken: the prompt cannot be used as written.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, $severity:ident;)*) => {
        /// The stable code of a finding. Codes never change meaning; new ones may be added.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $($(#[$doc])* $variant,)*
        }

        impl Code {
            /// Every code, in documentation order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as written in output, e.g. `yaml-syntax`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }

            /// The severity findings with this code have.
            pub fn severity(self) -> Severity {
                match self {
                    $(Code::$variant => Severity::$severity,)*
                }
            }
        }
    };
}

codes! {
    /// The file is not valid YAML (or not UTF-8).
    YamlSyntax = "yaml-syntax", Error;
    /// The same key appears twice in one YAML mapping.
    DuplicateKey = "duplicate-key", Error;
    /// A field has a value of the wrong type.
    WrongType = "wrong-type", Error;
    /// Neither `messages` nor `template` is present, or both are.
    PromptBody = "prompt-body", Error;
    /// A top-level field (or a field of a message or variable) that promptreg does not know.
    UnknownField = "unknown-field", Warning;
    /// A message role other than system, user or assistant.
    UnknownRole = "unknown-role", Warning;
    /// A template that does not compile.
    TemplateSyntax = "template-syntax", Error;
    /// A variable used in a template but not declared under `variables`.
    UndeclaredVariable = "undeclared-variable", Error;
    /// A variable declared under `variables` but used nowhere.
    UnusedVariable = "unused-variable", Warning;
    /// A test case that does not render.
    TestRender = "test-render", Error;
    /// A render with given values failed (`render`; validate reports `test-render`).
    RenderFailed = "render-error", Error;
    /// A render that ran out of its instruction budget (fuel) or of its byte budget: a loop
    /// or a string that grows without bound.
    RenderLimit = "render-limit", Error;
    /// A test case that lacks a required variable.
    TestMissingVariable = "test-missing-variable", Error;
    /// A prompt without test data.
    NoTestData = "no-test-data", Warning;
    /// An `include`, `import` or `extends` of a file that does not exist.
    IncludeMissing = "include-missing", Error;
    /// An `include`, `import` or `extends` of a path outside the registry root.
    IncludeOutsideRoot = "include-outside-root", Error;
    /// Two prompt files with the same id.
    DuplicateId = "duplicate-id", Error;
    /// A path under the root that cannot be a prompt id (holds `@`, not UTF-8).
    InvalidId = "invalid-id", Error;
    /// A manifest entry for a prompt that does not exist.
    ManifestUnknownPrompt = "manifest-unknown-prompt", Error;
    /// A manifest entry for a prompt that was deleted: its versions stay readable by number,
    /// but the entry can never be what `ID` resolves to.
    ManifestDeletedPrompt = "manifest-deleted-prompt", Error;
    /// A manifest entry for a version that does not exist.
    ManifestUnknownVersion = "manifest-unknown-version", Error;
    /// A manifest label whose name a reference can never reach (`latest`, `work`, a number).
    ManifestInvalidLabel = "manifest-invalid-label", Error;
    /// A `promptreg.yaml` that says nothing usable: an unknown field, a bad or empty pattern.
    InvalidConfig = "invalid-config", Error;
    /// A GitHub Models evaluator that `eval` cannot run: no method, a field of the wrong type.
    InvalidEvaluator = "invalid-evaluator", Error;
    /// `uses:` naming an evaluator that is not built in (it always fails, as in gh-models).
    UnknownEvaluator = "unknown-evaluator", Warning;
    /// A key or token written into `promptreg.yaml` (its line is never quoted).
    KeyInConfig = "key-in-config", Error;
    /// A user-supplied variable rendered into a system message.
    InjectionRisk = "injection-risk", Warning;
    /// A test case whose rendered prompt exceeds `maxPromptTokens`.
    TokenBudget = "token-budget", Error;
    /// A file that could not be read, or is too large to be a prompt.
    Unreadable = "unreadable", Error;
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A finding: a code, a severity, a place in a file and a message saying what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The stable code of this kind of finding.
    pub code: Code,
    /// Error or warning.
    pub severity: Severity,
    /// The file, relative to the registry root, `/`-separated.
    pub file: String,
    /// 1-based line in `file` (1 when the finding is about the whole file).
    pub line: usize,
    /// 1-based column in `file`.
    pub column: usize,
    /// One lowercase line saying what is wrong.
    pub message: String,
    /// What to do about it, where that helps.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A finding with the code's own severity, at the start of `file`.
    pub fn new(code: Code, file: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: code.severity(),
            file: file.into(),
            line: 1,
            column: 1,
            message: message.into(),
            hint: None,
        }
    }

    /// Places the finding at a 1-based line and column.
    pub fn at(mut self, pos: Pos) -> Diagnostic {
        self.line = pos.line.max(1);
        self.column = pos.column.max(1);
        self
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// Whether this finding is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the finding rustc-style, with the source line and a caret when `source` is given.
    pub fn render_human(&self, source: Option<&str>, color: bool) -> String {
        use annotate_snippets::{Level, Renderer, Snippet};
        let level = match self.severity {
            Severity::Error => Level::Error,
            Severity::Warning => Level::Warning,
        };
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        // A line that holds a key is never quoted, so that no terminal or CI log shows it.
        let source = source.filter(|_| self.code != Code::KeyInConfig);
        let span = source.and_then(|src| line_span(src, self.line, self.column));
        let (Some(src), Some(span)) = (source, span) else {
            // No text to quote: the header, the location and the hint, in rustc's layout.
            let header = renderer.render(level.title(&self.message).id(self.code.as_str()));
            let mut out = format!(
                "{header}\n  --> {}:{}:{}",
                self.file, self.line, self.column
            );
            if let Some(hint) = &self.hint {
                out.push_str(&format!("\n   = help: {hint}"));
            }
            return out;
        };
        let mut message = level.title(&self.message).id(self.code.as_str()).snippet(
            Snippet::source(src)
                .line_start(1)
                .origin(&self.file)
                .fold(true)
                .annotation(level.span(span)),
        );
        if let Some(hint) = &self.hint {
            message = message.footer(Level::Help.title(hint));
        }
        let out = renderer.render(message).to_string();
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// A 1-based line and column in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Pos {
    /// The position at `line`, `column` (both 1-based).
    pub fn new(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }

    /// The start of a file.
    pub const START: Pos = Pos { line: 1, column: 1 };

    /// The line and column (in characters) of byte `offset` in `text`; the end of the text
    /// for an offset past it or inside a character. Every position computed from an offset
    /// comes from here.
    pub fn of_offset(text: &str, offset: usize) -> Pos {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Pos::new(
            before.matches('\n').count() + 1,
            before[line_start..].chars().count() + 1,
        )
    }
}

/// The byte range of one character at a 1-based line and column of `src`, if it exists.
fn line_span(src: &str, line: usize, column: usize) -> Option<std::ops::Range<usize>> {
    let start = src
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum::<usize>();
    let text = src.get(start..)?.split('\n').next()?;
    if line == 0 || start > src.len() || (text.is_empty() && start == src.len() && line > 1) {
        return None;
    }
    let offset = text
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(text.len(), |(i, _)| i);
    let width = text[offset..].chars().next().map_or(0, char::len_utf8);
    Some(start + offset..start + offset + width)
}

/// Counts errors and warnings in a set of findings.
pub fn count(diagnostics: &[Diagnostic]) -> (usize, usize) {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    (errors, diagnostics.len() - errors)
}

/// A type name with its indefinite article: `an integer`, `a string`.
pub(crate) fn with_article(name: &str) -> String {
    match name {
        "null" => "null".to_string(),
        n if n.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {n}"),
        n => format!("a {n}"),
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnostic::*;

    #[test]
    fn offsets_become_lines_and_character_columns() {
        assert_eq!(Pos::of_offset("ab\ncé{{", 6), Pos::new(2, 3));
        assert_eq!(Pos::of_offset("ab", 0), Pos::START);
        assert_eq!(Pos::of_offset("a\n", 2), Pos::new(2, 1));
        assert_eq!(Pos::of_offset("é", 1), Pos::START);
        assert_eq!(Pos::of_offset("ab", 99), Pos::new(1, 3));
    }
}

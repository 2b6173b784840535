//! Files with a YAML front matter between two `---` lines and a body after it (Prompty,
//! Dotprompt, Markdown): where each part is, and the front matter read with its positions.

use serde_json::{Map, Value};

use crate::diagnostic::{Code, Diagnostic, Pos};
use crate::format::yaml::{self, NodeSpan, ScalarStyle, Spans};

/// A file split into its front matter and body.
#[derive(Debug, Clone, Default)]
pub(crate) struct Parts {
    /// The front matter as a mapping (empty without one), and where its nodes are, in lines of
    /// the whole file.
    pub front: Map<String, Value>,
    /// Where the front matter's nodes are, plus `/template` for the body.
    pub spans: Spans,
    /// The body.
    pub body: String,
}

/// Splits `text`. A front matter starts at the first line when it is `---` (after a byte order
/// mark; with `skip_comments`, after blank lines and `#` comment lines, as Dotprompt files have
/// a licence header) and ends at the next `---` line; the body is the rest, without the blank
/// lines that start it. Without a `---` first line the whole text is the body. The findings are
/// a front matter that is not closed, or not a YAML mapping.
pub(crate) fn split(file: &str, text: &str, skip_comments: bool) -> (Parts, Vec<Diagnostic>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut diagnostics = Vec::new();
    let mut offset = 0;
    let mut line_no = 1;
    // Leading lines skipped before the opening `---`.
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']).trim_end();
        if skip_comments && (bare.trim().is_empty() || bare.trim_start().starts_with('#')) {
            offset += line.len();
            line_no += 1;
            continue;
        }
        break;
    }
    let rest = &text[offset..];
    let first = rest.split_inclusive('\n').next().unwrap_or("");
    if first.trim_end() != "---" {
        return (body_only(text, 1), diagnostics);
    }
    let front_start = offset + first.len();
    let mut at = front_start;
    let mut line = line_no + 1;
    let mut close = None;
    for l in text[front_start..].split_inclusive('\n') {
        if l.trim_end() == "---" {
            close = Some((at, at + l.len()));
            break;
        }
        at += l.len();
        line += 1;
    }
    let Some((front_end, body_start)) = close else {
        diagnostics.push(
            Diagnostic::new(
                Code::YamlSyntax,
                file,
                "the front matter that starts here is never closed",
            )
            .at(Pos::new(line_no, 1))
            .with_hint("end the front matter with a line holding only `---`"),
        );
        return (Parts::default(), diagnostics);
    };
    // The front matter is read with a blank line for each line before it, so positions are
    // the file's own.
    let padded = format!("{}{}", "\n".repeat(line_no), &text[front_start..front_end]);
    let (document, found) = yaml::parse(file, padded.as_bytes());
    diagnostics.extend(found);
    let mut parts = Parts::default();
    match document {
        Some(document) => {
            parts.spans = document.spans;
            match document.value {
                Value::Object(map) => parts.front = map,
                Value::Null => {}
                other => diagnostics.push(
                    Diagnostic::new(
                        Code::WrongType,
                        file,
                        format!(
                            "the front matter must be a mapping of fields, found {}",
                            crate::diagnostic::with_article(crate::format::prompt::type_name(
                                &other
                            ))
                        ),
                    )
                    .at(Pos::new(line_no + 1, 1)),
                ),
            }
        }
        None => return (parts, diagnostics),
    }
    let body = &text[body_start..];
    let body_line = line + 1;
    let parts = with_body(parts, body, body_line);
    (parts, diagnostics)
}

/// A root-relative path with `.` and `..` resolved; `None` when it leaves the root or names
/// no file.
pub(crate) fn normalize(path: &str) -> Option<String> {
    if path.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn body_only(text: &str, line: usize) -> Parts {
    with_body(Parts::default(), text, line)
}

/// Sets the body, without the blank lines that start it, and its span.
fn with_body(mut parts: Parts, body: &str, mut line: usize) -> Parts {
    let mut start = 0;
    for l in body.split_inclusive('\n') {
        if !l.trim().is_empty() {
            break;
        }
        start += l.len();
        line += 1;
    }
    parts.body = body[start..].to_string();
    parts.spans.insert(
        "/template",
        NodeSpan {
            key: None,
            value: Pos::new(line, 1),
            style: ScalarStyle::Body,
        },
    );
    parts
}

#[cfg(test)]
mod tests {
    use crate::format::front::*;

    #[test]
    fn splits_front_matter_and_body() {
        let (parts, found) = split("a.prompty", "---\nname: x\n---\n\nsystem:\nHi\n", false);
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(parts.front["name"], "x");
        assert_eq!(parts.body, "system:\nHi\n");
        assert_eq!(parts.spans.value("/template").line, 5);
        assert_eq!(parts.spans.field("/name").line, 2);
    }

    #[test]
    fn comments_before_the_front_matter_are_skipped_when_asked() {
        let text = "# licence\n\n---\nmodel: m\n---\nHello {{name}}";
        let (parts, _) = split("a.prompt", text, true);
        assert_eq!(parts.front["model"], "m");
        assert_eq!(parts.body, "Hello {{name}}");
        assert_eq!(parts.spans.field("/model").line, 4);
        let (parts, _) = split("a.prompt", text, false);
        assert!(parts.front.is_empty());
        assert_eq!(parts.body, text);
    }

    #[test]
    fn no_front_matter_an_empty_one_and_one_never_closed() {
        let (parts, _) = split("a.md", "\u{feff}# Title\n---\nbody", false);
        assert!(parts.front.is_empty());
        assert_eq!(parts.body, "# Title\n---\nbody");
        let (parts, found) = split("a.md", "---\n---\nbody\n---\n", false);
        assert!(parts.front.is_empty() && found.is_empty());
        assert_eq!(parts.body, "body\n---\n");
        let (_, found) = split("a.md", "---\nname: x\n", false);
        assert_eq!(found[0].line, 1);
        let (_, found) = split("a.md", "---\n- a\n---\n", false);
        assert_eq!(found[0].code, Code::WrongType);
    }
}

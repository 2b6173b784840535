//! Plain text and Markdown prompts: the whole file is one message (a system message unless
//! `promptreg.yaml` says otherwise), rendered as written unless the file or its pattern
//! declares a template syntax, so text full of `{{ }}` stays text.
//!
//! An optional front matter between `---` lines takes the fields of a prompt file (`name`,
//! `description`, `model`, `modelParameters`, `variables`, `testData`, `tags`,
//! `maxPromptTokens`, `syntax`) and `role` (`system`, `user`, or `none` for one template
//! without a role).

use serde_json::{Map, Value};

use crate::diagnostic::{Code, Diagnostic};
use crate::format::front;
use crate::format::kind::{Format, TextOptions, TextRole};
use crate::format::prompt::{Body, Message, Parsed, Prompt, Role, Syntax};
use crate::format::yaml::join;

/// Reads a plain text or Markdown prompt with the options of the pattern that selected it.
pub fn parse(file: &str, text: &str, options: TextOptions) -> Parsed {
    let (parts, mut diagnostics) = front::split(file, text, false);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Parsed {
            prompt: None,
            diagnostics,
        };
    }
    let mut spans = parts.spans;
    let mut front: Map<String, Value> = parts.front;
    let mut role = options.role;
    match front.shift_remove("role") {
        None => {}
        Some(Value::String(r)) if r == "system" => role = Some(TextRole::System),
        Some(Value::String(r)) if r == "user" => role = Some(TextRole::User),
        Some(Value::String(r)) if r == "none" => role = None,
        Some(other) => diagnostics.push(
            Diagnostic::new(
                Code::WrongType,
                file,
                format!("`role` must be `system`, `user` or `none`, found {other}"),
            )
            .at(spans.field("/role")),
        ),
    }
    for key in ["messages", "template"] {
        if front.contains_key(key) {
            diagnostics.push(
                Diagnostic::new(
                    Code::PromptBody,
                    file,
                    format!("`{key}` in the front matter of a text prompt: the text after the front matter is the prompt"),
                )
                .at(spans.field(&join("", key)))
                .with_hint("remove it, or write the prompt as a `.prompt.yml` file"),
            );
            return Parsed {
                prompt: None,
                diagnostics,
            };
        }
    }
    let declared = front.contains_key("syntax");
    front.insert("template".into(), Value::String(parts.body.clone()));
    if let Some(span) = spans.get("/template").copied() {
        spans.insert("/messages/0/content", span);
    }
    let Some(mut prompt) = Prompt::from_value(file, Value::Object(front), spans, &mut diagnostics)
    else {
        return Parsed {
            prompt: None,
            diagnostics,
        };
    };
    if !declared {
        prompt.syntax = options.syntax;
    }
    if prompt.syntax == Syntax::Verbatim && prompt.variables.is_some() {
        diagnostics.push(
            Diagnostic::new(
                Code::UnusedVariable,
                file,
                "the prompt declares variables, but its text is rendered as written",
            )
            .at(prompt.spans.field("/variables"))
            .with_hint("say `syntax: jinja` in the front matter (or in the pattern in promptreg.yaml) to render `{{ name }}`"),
        );
    }
    prompt.format = Format::Text;
    if let Some(role) = role {
        let role = match role {
            TextRole::System => Role::System,
            TextRole::User => Role::User,
        };
        prompt.body = Body::Messages(vec![Message {
            role,
            content: parts.body,
        }]);
    }
    Parsed {
        prompt: Some(prompt),
        diagnostics,
    }
}

//! The text of a new prompt file, valid as it is: what `promptreg new` writes, what the web
//! UI's New prompt starts from, and the example a model is shown to generate one.

/// The text of a new prompt file: a system and a user message, one declared variable and a
/// test case, valid as it is (what `promptreg new` writes).
///
/// ```
/// let text = promptreg::format::skeleton::skeleton("support/triage");
/// assert!(text.starts_with("name: triage\n"));
/// ```
pub fn skeleton(id: &str) -> String {
    let name = id.rsplit('/').next().unwrap_or(id).replace(['-', '_'], " ");
    format!(
        r#"name: {name}
description: TODO say what this prompt is for
model: gpt-4o-mini
modelParameters:
  temperature: 0.2
variables:
  input:
    type: string
    required: true
    description: The user's message
messages:
  - role: system
    content: |
      You are a helpful assistant.
  - role: user
    content: "{{{{ input }}}}"
testData:
  - input: Hello!
tags: []
"#
    )
}

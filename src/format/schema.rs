//! The JSON Schema of the prompt file, for editors (yaml-language-server) and other tools.

/// The JSON Schema (draft 2020-12) of a `.prompt.yaml` file.
///
/// ```
/// let schema: serde_json::Value = serde_json::from_str(promptreg::format::schema::PROMPT_SCHEMA).unwrap();
/// assert_eq!(schema["title"], "promptreg prompt file");
/// ```
pub const PROMPT_SCHEMA: &str = include_str!("prompt.schema.json");

//! Writing a new prompt file from a description with a model: `promptreg new ID --generate
//! TEXT`, and the web UI's New prompt. The model is shown the skeleton `new` writes as the
//! format to follow; what it answers is returned as text, for the caller to validate (the
//! CLI refuses a file with errors, the UI shows the findings in its editor).

use serde_json::json;

use crate::error::{Error, Result};
use crate::model::client::Client;

/// The model used when the settings name none.
const DEFAULT_MODEL: &str = "gpt-4o-mini";

/// What the model is asked to do, in this project's words.
const INSTRUCTIONS: &str = "You write prompt files for promptreg, a prompt registry that keeps \
each prompt as one YAML file. Answer with the file alone: YAML, no explanation, no code fence. \
Follow the example's keys exactly: name, description, model, modelParameters, variables (each \
with type, required and description), messages (role and content, where content is a Jinja \
template that uses the declared variables as {{ name }}), testData (at least one case giving \
every required variable) and tags. Write the system message so that a model given it does what \
the description asks, plainly and specifically.";

/// Asks `client`'s model for a prompt file for `id` that does what `description` says.
pub fn generate(client: &Client, id: &str, description: &str) -> Result<String> {
    let config = client.config();
    let model = config
        .model
        .clone()
        .or_else(|| config.fallback_model.clone())
        .unwrap_or_else(|| DEFAULT_MODEL.to_string());
    let example = crate::format::skeleton::skeleton(id);
    let body = json!({
        "model": model,
        "temperature": 0.2,
        "messages": [
            { "role": "system", "content": format!("{INSTRUCTIONS}\n\nThe example, for a prompt with id `{id}`:\n\n{example}") },
            { "role": "user", "content": format!("Write the file of prompt `{id}`. What it is for:\n\n{description}") },
        ],
    });
    let completion = client.complete(&body, &mut |_| {})?;
    let text = unfenced(&completion.content);
    if text.trim().is_empty() {
        return Err(Error::Model(format!(
            "model `{model}` answered with no text; try again, or start from the skeleton"
        )));
    }
    Ok(text)
}

/// The answer without a Markdown code fence around it, ending in one newline.
fn unfenced(answer: &str) -> String {
    let trimmed = answer.trim();
    let inner = match trimmed.strip_prefix("```") {
        Some(rest) => {
            let body = rest.split_once('\n').map_or("", |(_, body)| body);
            body.trim_end().strip_suffix("```").unwrap_or(body)
        }
        None => trimmed,
    };
    format!("{}\n", inner.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fenced_answer_is_unwrapped() {
        assert_eq!(unfenced("```yaml\nname: a\n```\n"), "name: a\n");
        assert_eq!(unfenced("name: a"), "name: a\n");
        assert_eq!(unfenced("```\nname: a\n```"), "name: a\n");
    }
}

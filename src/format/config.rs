//! The registry's own settings, `promptreg.yaml` at the registry root: which files are
//! prompts.
//!
//! ```yaml
//! prompts:                      # glob patterns, relative to the registry root
//!   - "**/*.prompt.yml"
//!   - "examples/*.yml"
//!   - "!examples/broken_*.yml"  # a leading `!` excludes what matched
//! model:                        # the team's model, for run, eval, analyze and improve
//!   endpoint: https://models.github.ai/inference
//!   model: openai/gpt-4o-mini   # for prompts that name no model
//!   judgeModel: openai/gpt-4o   # for `llm` evaluators and the analyses
//!   keyEnv: TEAM_MODELS_KEY     # the environment variable that holds the key
//!   timeout: 60                 # seconds per request
//!   retries: 3                  # after a 429 or a 5xx
//!   jobs: 4                     # requests at once
//! ```
//!
//! A key never goes in the file (it is committed): `keyEnv` names the variable that holds it.
//!
//! Reading is strict: a syntax error, an unknown field, a value of the wrong type, an empty
//! list or a pattern that cannot match a YAML file is an error naming the file and line, never
//! a silent fall back to the default patterns.

use serde_json::Value;

use crate::diagnostic::{Code, Diagnostic, Pos};
use crate::error::Error;
use crate::format::yaml::{self, join};

/// The settings file's name, at the registry root.
pub const FILE: &str = "promptreg.yaml";

/// The patterns that make a file a prompt when no `promptreg.yaml` says otherwise.
pub(crate) const DEFAULT_PROMPTS: &[&str] = &["**/*.prompt.yaml", "**/*.prompt.yml"];

/// The parsed settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The `prompts` patterns as written (a leading `!` excludes).
    pub prompts: Vec<String>,
    /// The `model` section: where the team's model is (every field optional).
    pub model: ModelSection,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            prompts: DEFAULT_PROMPTS.iter().map(|p| p.to_string()).collect(),
            model: ModelSection::default(),
        }
    }
}

/// The `model` section of `promptreg.yaml`, as written: what the model client uses when
/// neither a flag nor a `PROMPTREG_*` variable says otherwise.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelSection {
    /// `endpoint`: the OpenAI-compatible base URL.
    pub endpoint: Option<String>,
    /// `model`: for prompts that name no model.
    pub model: Option<String>,
    /// `judgeModel`: for `llm` evaluators and the analyses.
    pub judge_model: Option<String>,
    /// `keyEnv`: the name of the environment variable that holds the key.
    pub key_env: Option<String>,
    /// `timeout`: seconds one request may take.
    pub timeout: Option<f64>,
    /// `retries`: after a 429 or a 5xx.
    pub retries: Option<u32>,
    /// `jobs`: requests in flight at once.
    pub jobs: Option<usize>,
}

/// The fields of the `model` section.
const MODEL_FIELDS: [&str; 7] = [
    "endpoint",
    "model",
    "judgeModel",
    "keyEnv",
    "timeout",
    "retries",
    "jobs",
];

/// A checked pattern, as the matcher compiles it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// Whether it excludes (written with a leading `!`).
    pub exclude: bool,
    /// The glob matched against root-relative paths: a pattern without `/` is matched in every
    /// folder (`**/` prepended); a leading `/` anchors it at the root (and is removed).
    pub glob: String,
}

impl Pattern {
    /// Reads one pattern as written, or says what is wrong with it.
    pub fn parse(written: &str) -> Result<Pattern, String> {
        let (exclude, rest) = match written.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, written),
        };
        if rest.trim().is_empty() {
            return Err("a pattern cannot be empty".into());
        }
        if rest.contains('\\') {
            return Err("write paths with `/`, not `\\`".into());
        }
        let glob = match rest.strip_prefix('/') {
            Some(anchored) => anchored.to_string(),
            None if !rest.contains('/') => format!("**/{rest}"),
            None => rest.to_string(),
        };
        if glob.split('/').any(|part| part == ".." || part == ".") {
            return Err("patterns are relative to the registry root: no `.` or `..`".into());
        }
        let yaml = [".yml", ".yaml", ".{yml,yaml}", ".{yaml,yml}"];
        if !exclude && !yaml.iter().any(|s| glob.ends_with(s)) {
            return Err(
                "prompt files are YAML: end the pattern in `.yml` or `.yaml` (e.g. `**/*.yml`)"
                    .into(),
            );
        }
        globset::GlobBuilder::new(&glob)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("not a glob pattern: {}", e.kind()))?;
        Ok(Pattern { exclude, glob })
    }
}

impl Config {
    /// Reads the settings' text. Findings are about `promptreg.yaml`.
    pub fn parse(bytes: &[u8]) -> (Config, Vec<Diagnostic>) {
        let (document, mut diagnostics) = yaml::parse(FILE, bytes);
        let mut config = Config::default();
        let Some(document) = document else {
            return (config, diagnostics);
        };
        let spans = document.spans;
        let root = match document.value {
            Value::Object(map) => map,
            Value::Null => return (config, diagnostics),
            other => {
                diagnostics.push(
                    Diagnostic::new(
                        Code::WrongType,
                        FILE,
                        format!(
                            "promptreg.yaml must be a mapping with `prompts`, found {}",
                            crate::format::prompt::type_name(&other)
                        ),
                    )
                    .at(spans.value("")),
                );
                return (config, diagnostics);
            }
        };
        for (key, value) in root {
            let path = join("", &key);
            if key == "model" {
                config.model = model_section(value, &path, &spans, &mut diagnostics);
                continue;
            }
            if key != "prompts" {
                let hint = match crate::format::prompt::suggest(&key, ["prompts", "model"]) {
                    Some(s) => format!("did you mean `{s}`? promptreg.yaml holds `prompts` and `model`"),
                    None => "promptreg.yaml holds `prompts`, a list of glob patterns, and `model`, the team's model".into(),
                };
                diagnostics.push(
                    Diagnostic::new(
                        Code::InvalidConfig,
                        FILE,
                        format!("unknown field `{key}` in promptreg.yaml"),
                    )
                    .at(spans.field(&path))
                    .with_hint(hint),
                );
                continue;
            }
            let Value::Array(items) = value else {
                diagnostics.push(
                    Diagnostic::new(
                        Code::WrongType,
                        FILE,
                        format!(
                            "`prompts` must be a list of glob patterns, found {}",
                            crate::format::prompt::type_name(&value)
                        ),
                    )
                    .at(spans.value(&path))
                    .with_hint("write `prompts: [\"**/*.prompt.yml\"]`"),
                );
                continue;
            };
            config.prompts = patterns(&items, &spans, &mut diagnostics);
            if !items.is_empty() && config.prompts.iter().all(|p| p.starts_with('!')) {
                diagnostics.push(
                    Diagnostic::new(
                        Code::InvalidConfig,
                        FILE,
                        "`prompts` only excludes: no file would be a prompt",
                    )
                    .at(spans.field(&path))
                    .with_hint("list the files that are prompts, e.g. `**/*.prompt.yml`"),
                );
            }
            if items.is_empty() {
                diagnostics.push(
                    Diagnostic::new(
                        Code::InvalidConfig,
                        FILE,
                        "`prompts` is empty: no file would be a prompt",
                    )
                    .at(spans.field(&path))
                    .with_hint("list glob patterns, or remove `prompts` for the default `**/*.prompt.yaml` and `**/*.prompt.yml`"),
                );
            }
        }
        (config, diagnostics)
    }

    /// Reads settings that must load: any error is an [`Error::Invalid`] naming
    /// `promptreg.yaml` and the line.
    pub fn load(bytes: &[u8]) -> Result<Config, Error> {
        let (config, diagnostics) = Config::parse(bytes);
        if diagnostics.iter().any(Diagnostic::is_error) {
            return Err(Error::Invalid {
                file: FILE.to_string(),
                text: Some(String::from_utf8_lossy(bytes).into_owned()),
                diagnostics,
            });
        }
        Ok(config)
    }

    /// The checked patterns (every one parses after [`Config::load`]).
    pub fn patterns(&self) -> Vec<Pattern> {
        self.prompts
            .iter()
            .filter_map(|p| Pattern::parse(p).ok())
            .collect()
    }
}

/// The `model` section, with a finding for each field that is unknown or of the wrong type.
fn model_section(
    value: Value,
    path: &str,
    spans: &yaml::Spans,
    diagnostics: &mut Vec<Diagnostic>,
) -> ModelSection {
    let mut section = ModelSection::default();
    let map = match value {
        Value::Object(map) => map,
        Value::Null => return section,
        other => {
            diagnostics.push(
                Diagnostic::new(
                    Code::WrongType,
                    FILE,
                    format!(
                        "`model` must be a mapping, found {}",
                        crate::format::prompt::type_name(&other)
                    ),
                )
                .at(spans.value(path))
                .with_hint("write `model:` with `endpoint: URL` and `model: NAME` under it"),
            );
            return section;
        }
    };
    for (key, value) in map {
        let field = join(path, &key);
        let mut wrong = |expected: &str| {
            diagnostics.push(
                Diagnostic::new(
                    Code::WrongType,
                    FILE,
                    format!(
                        "`model.{key}` must be {expected}, found {}",
                        crate::format::prompt::type_name(&value)
                    ),
                )
                .at(spans.value(&field)),
            );
        };
        let text = |value: &Value| value.as_str().map(str::to_string);
        let count = |value: &Value| value.as_u64().filter(|n| *n <= u64::from(u32::MAX));
        match key.as_str() {
            "endpoint" | "model" | "judgeModel" | "keyEnv" => match text(&value) {
                Some(v) if !v.trim().is_empty() => {
                    let v = Some(v.trim().to_string());
                    match key.as_str() {
                        "endpoint" => section.endpoint = v,
                        "model" => section.model = v,
                        "judgeModel" => section.judge_model = v,
                        _ => section.key_env = v,
                    }
                }
                _ => wrong("a non-empty string"),
            },
            "timeout" => match value.as_f64() {
                Some(seconds) if seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0 => {
                    section.timeout = Some(seconds);
                }
                _ => wrong("a positive number of seconds, at most 86400"),
            },
            "retries" => match count(&value) {
                Some(n) => section.retries = u32::try_from(n).ok(),
                None => wrong("a whole number"),
            },
            "jobs" => match count(&value) {
                Some(n) if n > 0 => section.jobs = usize::try_from(n).ok(),
                _ => wrong("a whole number above 0"),
            },
            "key" | "apiKey" | "api_key" | "token" | "secret" => diagnostics.push(
                Diagnostic::new(
                    Code::KeyInConfig,
                    FILE,
                    format!(
                        "`model.{key}`: a key never goes in promptreg.yaml, which is committed"
                    ),
                )
                .at(spans.field(&field))
                .with_hint(
                    "keep the key in an environment variable and name it with `keyEnv: VARIABLE`",
                ),
            ),
            _ => {
                let hint = match crate::format::prompt::suggest(&key, MODEL_FIELDS) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "`model` holds {}",
                        MODEL_FIELDS.map(|f| format!("`{f}`")).join(", ")
                    ),
                };
                diagnostics.push(
                    Diagnostic::new(
                        Code::InvalidConfig,
                        FILE,
                        format!("unknown field `model.{key}` in promptreg.yaml"),
                    )
                    .at(spans.field(&field))
                    .with_hint(hint),
                );
            }
        }
    }
    section
}

/// The patterns of the `prompts` list, with a finding for each one that is not a pattern.
fn patterns(
    items: &[Value],
    spans: &yaml::Spans,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at: Pos = spans.value(&join("/prompts", i));
        let Value::String(written) = item else {
            diagnostics.push(
                Diagnostic::new(
                    Code::WrongType,
                    FILE,
                    format!(
                        "a `prompts` pattern must be a string, found {}",
                        crate::format::prompt::type_name(item)
                    ),
                )
                .at(at)
                .with_hint("quote the pattern: `- \"**/*.yml\"`"),
            );
            continue;
        };
        match Pattern::parse(written) {
            Ok(_) => out.push(written.clone()),
            Err(why) => diagnostics.push(
                Diagnostic::new(
                    Code::InvalidConfig,
                    FILE,
                    format!("bad `prompts` pattern `{written}`"),
                )
                .at(at)
                .with_hint(why),
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::format::config::*;

    fn errors(text: &str) -> Vec<(Code, usize, String)> {
        Config::parse(text.as_bytes())
            .1
            .into_iter()
            .map(|d| (d.code, d.line, d.message))
            .collect()
    }

    #[test]
    fn patterns_without_a_slash_match_in_every_folder() {
        assert_eq!(Pattern::parse("*.yml").unwrap().glob, "**/*.yml");
        assert_eq!(Pattern::parse("/*.yml").unwrap().glob, "*.yml");
        assert_eq!(Pattern::parse("a/*.yml").unwrap().glob, "a/*.yml");
        assert!(Pattern::parse("!a/*").unwrap().exclude);
    }

    #[test]
    fn bad_settings_are_errors_with_lines() {
        let found = errors("prompts:\n  - \"**/*.yml\"\n  - \"**/*.md\"\n  - 3\n  - \"a/[\"\n");
        let lines: Vec<(Code, usize)> = found.iter().map(|(c, l, _)| (*c, *l)).collect();
        assert_eq!(
            lines,
            [
                (Code::InvalidConfig, 3),
                (Code::WrongType, 4),
                (Code::InvalidConfig, 5)
            ],
            "{found:?}"
        );
        assert_eq!(errors("prompt: [\"*.yml\"]\n")[0].0, Code::InvalidConfig);
        assert_eq!(errors("prompts: \"*.yml\"\n")[0].0, Code::WrongType);
        assert_eq!(errors("prompts: []\n")[0].0, Code::InvalidConfig);
        assert_eq!(
            errors("prompts: [\"../*.yml\"]\n")[0].0,
            Code::InvalidConfig
        );
        assert_eq!(errors("prompts: [a\n")[0].0, Code::YamlSyntax);
        assert!(errors("").is_empty());
        assert!(errors("prompts: [\"x/*.{yml,yaml}\", \"!x/y.yml\"]\n").is_empty());
    }

    #[test]
    fn the_model_section_is_read_strictly() {
        let (config, found) = Config::parse(
            b"model:\n  endpoint: http://127.0.0.1:1/v1\n  model: m\n  judgeModel: j\n  keyEnv: K\n  timeout: 2.5\n  retries: 0\n  jobs: 2\n",
        );
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(
            config.model,
            ModelSection {
                endpoint: Some("http://127.0.0.1:1/v1".into()),
                model: Some("m".into()),
                judge_model: Some("j".into()),
                key_env: Some("K".into()),
                timeout: Some(2.5),
                retries: Some(0),
                jobs: Some(2),
            }
        );
        assert_eq!(config.prompts, Config::default().prompts);
        let found = errors("model:\n  apiKey: sk-1\n  timeout: -1\n  jobs: 0\n  modle: x\n");
        let lines: Vec<(Code, usize)> = found.iter().map(|(c, l, _)| (*c, *l)).collect();
        assert_eq!(
            lines,
            [
                (Code::KeyInConfig, 2),
                (Code::WrongType, 3),
                (Code::WrongType, 4),
                (Code::InvalidConfig, 5)
            ],
            "{found:?}"
        );
        assert!(!found.iter().any(|(_, _, m)| m.contains("sk-1")));
        assert_eq!(errors("model: [a]\n")[0].0, Code::WrongType);
        assert_eq!(errors("model: {timeout: 1e300}\n")[0].0, Code::WrongType);
    }

    #[test]
    fn no_prompts_field_is_the_default() {
        assert_eq!(Config::load(b"").unwrap(), Config::default());
        assert_eq!(Config::load(b"{}\n").unwrap(), Config::default());
    }
}

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
use crate::format::kind::{Format, IdRule, TextOptions, TextRole};
use crate::format::prompt::Syntax;
use crate::format::yaml::{self, join};

/// The settings file's name, at the registry root.
pub const FILE: &str = "promptreg.yaml";

/// The patterns that make a file a prompt when no `promptreg.yaml` says otherwise: promptreg's
/// YAML, Prompty, and Dotprompt (whose partials, `_NAME.prompt`, are not prompts).
pub(crate) const DEFAULT_PROMPTS: &[&str] = &[
    "**/*.prompt.yaml",
    "**/*.prompt.yml",
    "**/*.prompty",
    "**/*.prompt",
    "!**/_*.prompt",
];

/// The parsed settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The `prompts` patterns, checked (a leading `!` excludes).
    pub prompts: Vec<Pattern>,
    /// The `model` section: where the team's model is (every field optional).
    pub model: ModelSection,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            prompts: DEFAULT_PROMPTS
                .iter()
                .filter_map(|p| Pattern::parse(p).ok())
                .collect(),
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
    /// The pattern as written (with its `!`).
    pub written: String,
    /// Whether it excludes (written with a leading `!`).
    pub exclude: bool,
    /// The glob matched against root-relative paths: a pattern without `/` is matched in every
    /// folder (`**/` prepended); a leading `/` anchors it at the root (and is removed).
    pub glob: String,
    /// The format of the files it selects; `None`: from each file's extension.
    pub format: Option<Format>,
    /// How a selected file's id is made.
    pub id: IdRule,
    /// For plain text files: how the text becomes a prompt.
    pub text: TextOptions,
}

impl Pattern {
    /// Reads one pattern as written, or says what is wrong with it.
    pub fn parse(written: &str) -> Result<Pattern, String> {
        Pattern::with(written, None)
    }

    /// Reads one pattern whose files are in `format` (`None`: from the extension).
    pub fn with(written: &str, format: Option<Format>) -> Result<Pattern, String> {
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
        if !exclude && format.is_none() && extension_format(&glob).is_none() {
            return Err(format!(
                "say which format the files it selects are in: `- {{ pattern: \"{written}\", format: text }}` (formats: yaml, prompty, dotprompt, text), or end it in a known extension (`.yml`, `.prompty`, `.prompt`, `.md`, `.txt`)"
            ));
        }
        globset::GlobBuilder::new(&glob)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("not a glob pattern: {}", e.kind()))?;
        Ok(Pattern {
            written: written.to_string(),
            exclude,
            glob,
            format,
            id: IdRule::Path,
            text: TextOptions::default(),
        })
    }

    /// The fixed start of the glob, up to the `/` before its first wildcard (`data/patterns/`
    /// of `data/patterns/*/system.md`): what [`IdRule::Folder`] takes off.
    pub fn base(&self) -> &str {
        let wild = self
            .glob
            .find(['*', '?', '[', '{'])
            .unwrap_or(self.glob.len());
        match self.glob[..wild].rfind('/') {
            Some(slash) => &self.glob[..=slash],
            None => "",
        }
    }

    /// One line that changes whenever what the pattern selects, or how, does.
    pub fn key(&self) -> String {
        match (self.format, self.id, self.text == TextOptions::default()) {
            (None, IdRule::Path, true) => self.written.clone(),
            _ => format!(
                "{}\t{}\t{}\t{:?}\t{:?}",
                self.written,
                self.format.map_or("", Format::as_str),
                self.id.as_str(),
                self.text.role,
                self.text.syntax
            ),
        }
    }
}

/// The format a glob's extension gives (`*.{yml,yaml}` is YAML), if it ends in one.
fn extension_format(glob: &str) -> Option<Format> {
    let yaml = [".{yml,yaml}", ".{yaml,yml}"];
    if yaml.iter().any(|s| glob.ends_with(s)) {
        return Some(Format::Yaml);
    }
    Format::of_path(glob)
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
            let before = diagnostics.len();
            config.prompts = patterns(&items, &spans, &mut diagnostics);
            // Only when every pattern read: a bad include is not "only excludes".
            let all_read = diagnostics.len() == before;
            if all_read && !items.is_empty() && config.prompts.iter().all(|p| p.exclude) {
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
                    .with_hint("list glob patterns, or remove `prompts` for the default (`**/*.prompt.yaml`, `**/*.prompt.yml`, `**/*.prompty`, `**/*.prompt`)"),
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

    /// The checked patterns.
    pub fn patterns(&self) -> &[Pattern] {
        &self.prompts
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

/// The fields of a pattern written as a mapping.
const PATTERN_FIELDS: [&str; 5] = ["pattern", "format", "id", "role", "syntax"];

/// The patterns of the `prompts` list, with a finding for each one that is not a pattern.
fn patterns(
    items: &[Value],
    spans: &yaml::Spans,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Pattern> {
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = join("/prompts", i);
        let at: Pos = spans.value(&path);
        let mut bad = |at: Pos, message: String, hint: String| {
            diagnostics.push(
                Diagnostic::new(Code::InvalidConfig, FILE, message)
                    .at(at)
                    .with_hint(hint),
            );
        };
        match item {
            Value::String(written) => match Pattern::parse(written) {
                Ok(pattern) => out.push(pattern),
                Err(why) => bad(at, format!("bad `prompts` pattern `{written}`"), why),
            },
            Value::Object(map) => {
                let Some(written) = map.get("pattern").and_then(Value::as_str) else {
                    bad(
                        at,
                        "a `prompts` entry written as a mapping needs `pattern`".into(),
                        "write `- { pattern: \"data/patterns/*/system.md\", format: text }`".into(),
                    );
                    continue;
                };
                let mut ok = true;
                let field = |key: &str| spans.value(&join(&path, key));
                let mut word = |key: &str, allowed: &[&str]| -> Option<String> {
                    let value = map.get(key)?;
                    match value.as_str().filter(|v| allowed.contains(v)) {
                        Some(v) => Some(v.to_string()),
                        None => {
                            bad(
                                field(key),
                                format!("`{key}` of pattern `{written}` must be one of {}, found {value}", allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")),
                                format!("write `{key}: {}`", allowed[0]),
                            );
                            ok = false;
                            None
                        }
                    }
                };
                let format_names: Vec<&str> = Format::NAMES.iter().map(|(n, _)| *n).collect();
                let format = word("format", &format_names).and_then(|f| Format::from_name(&f));
                let id = word("id", &["path", "folder"]);
                let role = word("role", &["system", "user", "none"]);
                let syntax = word("syntax", &["none", "jinja", "brackets"]);
                for key in map.keys() {
                    if !PATTERN_FIELDS.contains(&key.as_str()) {
                        let hint = match crate::format::prompt::suggest(key, PATTERN_FIELDS) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => format!(
                                "a pattern has {}",
                                PATTERN_FIELDS.map(|f| format!("`{f}`")).join(", ")
                            ),
                        };
                        bad(
                            spans.field(&join(&path, key)),
                            format!("unknown field `{key}` in pattern `{written}`"),
                            hint,
                        );
                        ok = false;
                    }
                }
                let mut pattern = match Pattern::with(written, format) {
                    Ok(pattern) => pattern,
                    Err(why) => {
                        bad(at, format!("bad `prompts` pattern `{written}`"), why);
                        continue;
                    }
                };
                if id.as_deref() == Some("folder") {
                    pattern.id = IdRule::Folder;
                }
                match role.as_deref() {
                    Some("user") => pattern.text.role = Some(TextRole::User),
                    Some("none") => pattern.text.role = None,
                    _ => {}
                }
                if let Some(syntax) = syntax.as_deref().and_then(Syntax::from_name) {
                    pattern.text.syntax = syntax;
                }
                if ok {
                    out.push(pattern);
                }
            }
            other => diagnostics.push(
                Diagnostic::new(
                    Code::WrongType,
                    FILE,
                    format!(
                        "a `prompts` pattern must be a string or a mapping, found {}",
                        crate::format::prompt::type_name(other)
                    ),
                )
                .at(at)
                .with_hint("quote the pattern: `- \"**/*.yml\"`"),
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
        let found = errors("prompts:\n  - \"**/*.yml\"\n  - \"**/*.rs\"\n  - 3\n  - \"a/[\"\n");
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

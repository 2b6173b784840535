//! The registry's own settings, `promptreg.yaml` at the registry root: which files are
//! prompts.
//!
//! ```yaml
//! prompts:                      # glob patterns, relative to the registry root
//!   - "**/*.prompt.yml"
//!   - "examples/*.yml"
//!   - "!examples/broken_*.yml"  # a leading `!` excludes what matched
//! ```
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The `prompts` patterns as written (a leading `!` excludes).
    pub prompts: Vec<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            prompts: DEFAULT_PROMPTS.iter().map(|p| p.to_string()).collect(),
        }
    }
}

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
            if key != "prompts" {
                let hint = match crate::format::prompt::suggest(&key, ["prompts"]) {
                    Some(s) => format!("did you mean `{s}`? promptreg.yaml holds `prompts`"),
                    None => "promptreg.yaml holds `prompts`, a list of glob patterns".into(),
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
    fn no_prompts_field_is_the_default() {
        assert_eq!(Config::load(b"").unwrap(), Config::default());
        assert_eq!(Config::load(b"{}\n").unwrap(), Config::default());
    }
}

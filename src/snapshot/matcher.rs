//! Which files of a snapshot are prompts, and their ids: the one rule behind discovery in the
//! working copy and in commits, `find_file`, the version index and the watcher.
//!
//! A file is a prompt when its root-relative path is not hidden ([`is_hidden`]: `.github`
//! is searched), is not the manifest or the settings file, ends in `.yaml` or `.yml`, and
//! matches the `prompts` patterns of the snapshot's `promptreg.yaml`
//! ([`crate::format::config`]), by default `**/*.prompt.yaml` and `**/*.prompt.yml`. Its id
//! is the path without `.prompt.yaml`/`.prompt.yml`, else without `.yaml`/`.yml` ([`id_of`]).

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result};
use crate::format::config::{self, Config, Pattern};
use crate::format::kind::{Format, IdRule, Kind};

/// Suffixes that make a file a prompt.
pub const PROMPT_SUFFIXES: &[&str] = &[".prompt.yaml", ".prompt.yml"];

/// Whether a root-relative path is hidden: any of its components is a hidden name
/// ([`is_hidden_name`]: `.git`, `.idea`, `.triage.prompt.yaml.swp`, but not `.github`). Hidden
/// paths are never prompts, are never watched and can never be included.
///
/// ```
/// use promptreg::snapshot::matcher::is_hidden;
/// assert!(is_hidden(".git/config"));
/// assert!(is_hidden("partials/.secret.md"));
/// assert!(is_hidden(".github/.secret.md"));
/// assert!(!is_hidden("partials/tone.md"));
/// assert!(!is_hidden(".github/prompts/triage.prompt.yml"));
/// ```
pub fn is_hidden(path: &str) -> bool {
    path.split('/').any(|part| is_hidden_name(part.as_bytes()))
}

/// Whether one path component (a file or folder name, or a git tree entry's name) is hidden:
/// it starts with `.`, except `.github`, where GitHub keeps prompts (`.github/prompts/`). The
/// one rule behind [`is_hidden`], discovery in the working copy and in commits, the version
/// index and the watcher.
pub fn is_hidden_name(name: &[u8]) -> bool {
    name.first() == Some(&b'.') && name != b"." && name != b".." && name != b".github"
}

/// The id a file's path gives under `rule` for a file in `format` (`base`: the pattern's
/// fixed start, for [`IdRule::Folder`]).
fn id_by_rule<'a>(path: &'a str, format: Format, rule: IdRule, base: &str) -> Option<&'a str> {
    let id = match rule {
        IdRule::Path => format
            .suffixes()
            .iter()
            .find_map(|suffix| path.strip_suffix(suffix))
            .or_else(|| {
                let name_start = path.rfind('/').map_or(0, |i| i + 1);
                path[name_start..]
                    .rfind('.')
                    .filter(|dot| *dot > 0)
                    .map(|dot| &path[..name_start + dot])
            })
            .unwrap_or(path),
        IdRule::Folder => {
            let (folder, _) = path.rsplit_once('/')?;
            folder.strip_prefix(base).filter(|rest| !rest.is_empty())?
        }
    };
    (!id.is_empty() && !id.ends_with('/')).then_some(id)
}

/// Which files are prompts in one snapshot, in which format, under which id.
#[derive(Debug, Clone)]
pub struct PromptMatcher {
    /// The patterns, for messages and the cache key.
    patterns: Vec<Pattern>,
    /// `None` for the default patterns, which are matched by suffix.
    globs: Option<Globs>,
}

#[derive(Debug, Clone)]
struct Globs {
    /// The include patterns, in order (the first that matches a file decides its kind).
    include: GlobSet,
    /// For each include pattern: what it says and its fixed start.
    rules: Vec<(Pattern, String)>,
    exclude: GlobSet,
}

impl Default for PromptMatcher {
    fn default() -> PromptMatcher {
        PromptMatcher {
            patterns: Config::default().prompts,
            globs: None,
        }
    }
}

impl PromptMatcher {
    /// The matcher of checked settings.
    pub fn new(config: &Config) -> Result<PromptMatcher> {
        if config.prompts == Config::default().prompts {
            return Ok(PromptMatcher::default());
        }
        let mut include = GlobSetBuilder::new();
        let mut exclude = GlobSetBuilder::new();
        let mut rules = Vec::new();
        for pattern in config.patterns() {
            let glob = GlobBuilder::new(&pattern.glob)
                .literal_separator(true)
                .build()
                .map_err(|e| Error::Usage(format!("{}: {e}", config::FILE)))?;
            if pattern.exclude {
                exclude.add(glob);
            } else {
                include.add(glob);
                rules.push((pattern.clone(), pattern.base().to_string()));
            }
        }
        let build = |set: GlobSetBuilder| {
            set.build()
                .map_err(|e| Error::Usage(format!("{}: {e}", config::FILE)))
        };
        Ok(PromptMatcher {
            patterns: config.prompts.clone(),
            globs: Some(Globs {
                include: build(include)?,
                rules,
                exclude: build(exclude)?,
            }),
        })
    }

    /// The matcher of a snapshot whose `promptreg.yaml` reads as `read` returns it: the default
    /// without one, an [`Error::Invalid`] naming the file and line when it is bad.
    pub fn read(read: &dyn Fn(&str) -> Result<Option<Vec<u8>>>) -> Result<PromptMatcher> {
        match read(config::FILE)? {
            None => Ok(PromptMatcher::default()),
            Some(bytes) => PromptMatcher::new(&Config::load(&bytes)?),
        }
    }

    /// The patterns as written.
    pub fn patterns(&self) -> Vec<&str> {
        self.patterns.iter().map(|p| p.written.as_str()).collect()
    }

    /// A key that changes whenever the patterns do (the version index is stored with it).
    pub fn key(&self) -> String {
        self.patterns
            .iter()
            .map(Pattern::key)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether a root-relative path is a prompt file.
    pub fn is_prompt(&self, path: &str) -> bool {
        self.prompt_id(path).is_some()
    }

    /// The id of a root-relative path, if it is a prompt file.
    pub fn prompt_id<'a>(&self, path: &'a str) -> Option<&'a str> {
        self.kind_of(path).map(|(id, _)| id)
    }

    /// The id and kind of a root-relative path, if it is a prompt file.
    pub fn kind_of<'a>(&self, path: &'a str) -> Option<(&'a str, Kind)> {
        if path == config::FILE || path == crate::format::manifest::FILE || is_hidden(path) {
            return None;
        }
        match &self.globs {
            None => {
                let format = default_format(path)?;
                let id = id_by_rule(path, format, IdRule::Path, "")?;
                Some((id, Kind::of(format)))
            }
            Some(globs) => {
                if globs.exclude.is_match(path) {
                    return None;
                }
                let first = globs.include.matches(path).into_iter().min()?;
                let (pattern, base) = globs.rules.get(first)?;
                let format = pattern.format.or_else(|| Format::of_path(path))?;
                let id = id_by_rule(path, format, pattern.id, base)?;
                Some((
                    id,
                    Kind {
                        format,
                        text: pattern.text,
                    },
                ))
            }
        }
    }

    /// The files that would hold prompt `id`, in the order they are tried (a pattern whose
    /// files cannot be named from an id names none: the caller scans).
    pub fn files_of(&self, id: &str) -> Vec<String> {
        let mut candidates: Vec<String> = Vec::new();
        let mut add = |file: String| {
            if !candidates.contains(&file) {
                candidates.push(file);
            }
        };
        let all = [
            Format::Yaml,
            Format::Prompty,
            Format::Dotprompt,
            Format::Text,
        ];
        match &self.globs {
            None => {
                for format in [Format::Yaml, Format::Prompty, Format::Dotprompt] {
                    for suffix in format.suffixes() {
                        add(format!("{id}{suffix}"));
                    }
                }
            }
            Some(globs) => {
                for (pattern, base) in &globs.rules {
                    match pattern.id {
                        IdRule::Path => {
                            let formats: Vec<Format> =
                                pattern.format.map_or(all.to_vec(), |f| vec![f]);
                            for format in formats {
                                for suffix in format.suffixes() {
                                    add(format!("{id}{suffix}"));
                                }
                            }
                            if let Some(dot) = pattern.glob.rfind("*.") {
                                let ext = &pattern.glob[dot + 1..];
                                if !ext.contains(['*', '?', '[', '{', '/']) {
                                    add(format!("{id}{ext}"));
                                }
                            }
                        }
                        IdRule::Folder => {
                            if let Some((_, name)) = pattern.glob.rsplit_once('/') {
                                if !name.contains(['*', '?', '[', '{']) {
                                    add(format!("{base}{id}/{name}"));
                                }
                            }
                        }
                    }
                }
            }
        }
        candidates
            .into_iter()
            .filter(|file| self.prompt_id(file) == Some(id))
            .collect()
    }
}

/// The format of a file the default patterns select: `.prompt.yaml`/`.prompt.yml`,
/// `.prompty`, and `.prompt` unless its name starts with `_` (a Dotprompt partial).
fn default_format(path: &str) -> Option<Format> {
    if PROMPT_SUFFIXES.iter().any(|s| path.ends_with(s)) {
        return Some(Format::Yaml);
    }
    if path.ends_with(".prompty") {
        return Some(Format::Prompty);
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    (path.ends_with(".prompt") && !name.starts_with('_')).then_some(Format::Dotprompt)
}

#[cfg(test)]
mod tests {
    use crate::snapshot::matcher::*;

    fn matcher(patterns: &[&str]) -> PromptMatcher {
        let config = Config {
            prompts: patterns
                .iter()
                .map(|p| Pattern::parse(p).expect("pattern"))
                .collect(),
            ..Config::default()
        };
        PromptMatcher::new(&config).expect("matcher")
    }

    #[test]
    fn the_default_is_the_prompt_suffix() {
        let m = PromptMatcher::default();
        assert_eq!(
            m.prompt_id("support/triage.prompt.yaml"),
            Some("support/triage")
        );
        assert_eq!(m.prompt_id("a.prompt.yml"), Some("a"));
        assert_eq!(
            m.prompt_id(".github/prompts/a.prompt.yml"),
            Some(".github/prompts/a")
        );
        assert_eq!(m.prompt_id("a.yaml"), None);
        assert_eq!(m.prompt_id(".prompt.yaml"), None);
        assert_eq!(m.prompt_id(".git/a.prompt.yaml"), None);
        assert_eq!(m.prompt_id(".vscode/a.prompt.yaml"), None);
        assert_eq!(m.prompt_id("a/chat.prompty"), Some("a/chat"));
        assert_eq!(m.prompt_id("recipe.robot.prompt"), Some("recipe.robot"));
        assert_eq!(m.prompt_id("partials/_style.prompt"), None);
        assert_eq!(
            m.kind_of("a.prompty").map(|(_, k)| k.format),
            Some(Format::Prompty)
        );
        assert_eq!(
            m.files_of("a"),
            ["a.prompt.yaml", "a.prompt.yml", "a.prompty", "a.prompt"]
        );
    }

    #[test]
    fn patterns_choose_the_files_and_ids_drop_the_suffix() {
        let m = matcher(&["examples/*.yml", "*_prompt.yml", "!examples/skip.yml"]);
        assert_eq!(m.prompt_id("examples/sample.yml"), Some("examples/sample"));
        assert_eq!(m.prompt_id("examples/deep/sample.yml"), None);
        assert_eq!(m.prompt_id("examples/skip.yml"), None);
        assert_eq!(m.prompt_id("x/y/z_prompt.yml"), Some("x/y/z_prompt"));
        assert_eq!(m.prompt_id("x.prompt.yaml"), None);
        assert_eq!(
            m.files_of("examples/sample"),
            ["examples/sample.prompt.yml", "examples/sample.yml"]
        );
        assert_eq!(m.files_of("x_prompt"), ["x_prompt.yml"]);
        let all = matcher(&["**/*.yaml"]);
        assert_eq!(all.prompt_id("a/b.prompt.yaml"), Some("a/b"));
        assert_eq!(all.prompt_id("defaults.yaml"), None);
        assert_eq!(all.prompt_id("promptreg.yaml"), None);
        assert_eq!(all.prompt_id("sub/defaults.yaml"), Some("sub/defaults"));
        assert_eq!(all.prompt_id(".hidden/a.yaml"), None);
    }
}

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
use crate::format::config::{self, Config};

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

/// What is stripped from a prompt file's path to make its id, tried in order.
pub const ID_SUFFIXES: &[&str] = &[".prompt.yaml", ".prompt.yml", ".yaml", ".yml"];

/// The id a prompt file's root-relative path gives: the path without `.prompt.yaml` or
/// `.prompt.yml`, else without `.yaml` or `.yml`. Whether the file is a prompt at all is the
/// [`PromptMatcher`]'s to say.
///
/// ```
/// use promptreg::snapshot::matcher::id_of;
/// assert_eq!(id_of("support/triage.prompt.yaml"), Some("support/triage"));
/// assert_eq!(id_of("examples/sample_prompt.yml"), Some("examples/sample_prompt"));
/// assert_eq!(id_of("notes.md"), None);
/// ```
pub fn id_of(path: &str) -> Option<&str> {
    ID_SUFFIXES
        .iter()
        .find_map(|suffix| path.strip_suffix(suffix))
        .filter(|id| !id.is_empty() && !id.ends_with('/'))
}

/// Which files are prompts in one snapshot.
#[derive(Debug, Clone)]
pub struct PromptMatcher {
    /// The patterns as written, for messages and the cache key.
    patterns: Vec<String>,
    /// `None` for the default patterns, which are matched by suffix.
    globs: Option<Globs>,
}

#[derive(Debug, Clone)]
struct Globs {
    include: GlobSet,
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
        for pattern in config.patterns() {
            let glob = GlobBuilder::new(&pattern.glob)
                .literal_separator(true)
                .build()
                .map_err(|e| Error::Usage(format!("{}: {e}", config::FILE)))?;
            if pattern.exclude {
                exclude.add(glob);
            } else {
                include.add(glob);
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
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// A key that changes whenever the patterns do (the version index is stored with it).
    pub fn key(&self) -> String {
        self.patterns.join("\n")
    }

    /// Whether a root-relative path is a prompt file.
    pub fn is_prompt(&self, path: &str) -> bool {
        self.prompt_id(path).is_some()
    }

    /// The id of a root-relative path, if it is a prompt file.
    pub fn prompt_id<'a>(&self, path: &'a str) -> Option<&'a str> {
        if path == config::FILE || path == crate::format::manifest::FILE || is_hidden(path) {
            return None;
        }
        match &self.globs {
            None => PROMPT_SUFFIXES
                .iter()
                .find_map(|suffix| path.strip_suffix(suffix))
                .filter(|id| !id.is_empty() && !id.ends_with('/')),
            Some(globs) => {
                let id = id_of(path)?;
                (globs.include.is_match(path) && !globs.exclude.is_match(path)).then_some(id)
            }
        }
    }

    /// The files that would hold prompt `id`, in the order they are tried.
    pub fn files_of(&self, id: &str) -> Vec<String> {
        ID_SUFFIXES
            .iter()
            .map(|suffix| format!("{id}{suffix}"))
            .filter(|file| self.prompt_id(file) == Some(id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::snapshot::matcher::*;

    fn matcher(patterns: &[&str]) -> PromptMatcher {
        let config = Config {
            prompts: patterns.iter().map(|p| p.to_string()).collect(),
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
        assert_eq!(m.files_of("a"), ["a.prompt.yaml", "a.prompt.yml"]);
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

//! Which prompts a registry holds: the files of one snapshot by id, and one prompt's file read
//! and parsed.

use crate::diagnostic::{Code, Diagnostic};
use crate::error::{Error, Result};
use crate::format::kind::{Format, Kind};
use crate::format::prompt::{suggest, Prompt};
use crate::registry::open::Registry;
use crate::render::template::{FileContext, Templates};
use crate::render::CompiledPrompt;
use crate::snapshot::work::Source;
use std::collections::BTreeMap;
use std::sync::Arc;

impl Registry {
    /// The working copy's prompt files.
    pub fn discover_work(&self) -> Result<Discovery> {
        Discovery::scan(self.shared.work.as_ref())
    }

    /// Reads prompt `id` from the working copy.
    pub fn load_work(&self, id: &str) -> Result<LoadedPrompt> {
        let source = self.work();
        let file = find_file(source.as_ref(), id, &self.root_name())?;
        LoadedPrompt::read(source, id, &file)
    }
}

/// The prompt files of one snapshot, by id.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Each usable id and its root-relative file.
    pub prompts: BTreeMap<String, String>,
    /// Ids claimed by more than one file, with every file.
    pub conflicts: BTreeMap<String, Vec<String>>,
    /// Findings about file names: duplicate and invalid ids.
    pub diagnostics: Vec<Diagnostic>,
}

impl Discovery {
    /// Finds the prompt files of a snapshot.
    pub fn scan(source: &dyn Source) -> Result<Discovery> {
        let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut discovery = Discovery::default();
        let matcher = source.matcher()?;
        for file in source.prompt_files()? {
            let Some(id) = matcher.prompt_id(&file) else {
                continue;
            };
            if id.contains('@') || id.contains('\u{FFFD}') {
                discovery.diagnostics.push(
                    Diagnostic::new(
                        Code::InvalidId,
                        &file,
                        format!("`{id}` cannot be a prompt id"),
                    )
                    .with_hint("ids are paths without `@` and in UTF-8; rename the file"),
                );
                continue;
            }
            by_id.entry(id.to_string()).or_default().push(file);
        }
        for (id, files) in by_id {
            if files.len() == 1 {
                discovery
                    .prompts
                    .extend(files.into_iter().map(|f| (id.clone(), f)));
                continue;
            }
            for file in &files {
                let others: Vec<&str> = files
                    .iter()
                    .filter(|f| *f != file)
                    .map(String::as_str)
                    .collect();
                discovery.diagnostics.push(
                    Diagnostic::new(
                        Code::DuplicateId,
                        file,
                        format!("prompt id `{id}` is also defined by {}", others.join(", ")),
                    )
                    .with_hint("keep one file per id: remove or rename the other"),
                );
            }
            discovery.conflicts.insert(id, files);
        }
        Ok(discovery)
    }

    /// The file of `id`, or an error that says why there is none.
    pub fn file(&self, id: &str, root: &str) -> Result<&str> {
        if let Some(file) = self.prompts.get(id) {
            return Ok(file);
        }
        if let Some(files) = self.conflicts.get(id) {
            return Err(Error::Invalid {
                file: files.join(", "),
                text: None,
                diagnostics: self
                    .diagnostics
                    .iter()
                    .filter(|d| files.contains(&d.file))
                    .cloned()
                    .collect(),
            });
        }
        let mut suggestions: Vec<String> = suggest(id, self.prompts.keys().map(String::as_str))
            .map(str::to_string)
            .into_iter()
            .collect();
        let similar: Vec<String> = self
            .prompts
            .keys()
            .filter(|k| {
                (k.ends_with(&format!("/{id}")) || k.contains(id)) && !suggestions.contains(k)
            })
            .take(3)
            .cloned()
            .collect();
        suggestions.extend(similar);
        Err(Error::UnknownPrompt {
            id: id.to_string(),
            root: root.to_string(),
            suggestions,
        })
    }
}

/// A prompt read from a snapshot, valid enough to compile.
#[derive(Debug, Clone)]
pub struct LoadedPrompt {
    /// The prompt's id.
    pub id: String,
    /// Its file, relative to the registry root.
    pub file: String,
    /// The file's text.
    pub text: String,
    /// The parsed prompt.
    pub prompt: Prompt,
    /// Warnings found while reading it.
    pub warnings: Vec<Diagnostic>,
    /// The snapshot it came from, for its partials.
    pub source: Arc<dyn Source>,
}

impl LoadedPrompt {
    /// Reads a prompt file's text on its own, with no registry around it (a copy kept apart
    /// from its registry, such as a client's fallback): `file` is the name it had there. Its
    /// partials cannot be read, so a template that includes one does not render.
    pub fn from_text(id: &str, file: &str, text: &str) -> Result<LoadedPrompt> {
        let alone: Arc<dyn Source> = Arc::new(crate::snapshot::overlay::Overlay::new(
            Arc::new(crate::snapshot::work::Empty("a prompt file on its own")),
            file,
            Some(text.as_bytes().to_vec()),
        ));
        LoadedPrompt::read(alone, id, file)
    }

    /// Reads and checks the prompt file `file` of `source`.
    pub(crate) fn read(source: Arc<dyn Source>, id: &str, file: &str) -> Result<LoadedPrompt> {
        let bytes = source.read(file)?.ok_or_else(|| {
            Error::NotFound(format!(
                "`{file}` does not exist in the {}",
                source.describe()
            ))
        })?;
        let kind = source
            .matcher()
            .ok()
            .and_then(|m| m.kind_of(file).map(|(_, kind)| kind))
            .unwrap_or_else(|| Kind::of(Format::of_path(file).unwrap_or_default()));
        let parsed = parse_kind(kind, file, &bytes, source.as_ref());
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if parsed.has_errors() {
            return Err(Error::Invalid {
                file: file.to_string(),
                text: Some(text),
                diagnostics: parsed.diagnostics,
            });
        }
        let Some(prompt) = parsed.prompt else {
            return Err(Error::Invalid {
                file: file.to_string(),
                text: Some(text),
                diagnostics: parsed.diagnostics,
            });
        };
        Ok(LoadedPrompt {
            id: id.to_string(),
            file: file.to_string(),
            text,
            prompt,
            warnings: parsed.diagnostics,
            source,
        })
    }

    /// Compiles the templates, checking that every partial they name exists inside the root.
    pub fn compile(self) -> Result<CompiledPrompt> {
        let ctx = FileContext {
            file: &self.file,
            text: &self.text,
            prompt: &self.prompt,
        };
        match Templates::compile(&ctx, self.source.clone()) {
            Ok(templates) => Ok(CompiledPrompt::new(
                self.id,
                self.file,
                self.prompt,
                self.text,
                templates,
            )),
            Err(diagnostics) => Err(Error::Invalid {
                file: self.file,
                text: Some(self.text),
                diagnostics,
            }),
        }
    }
}

/// Reads a prompt file's bytes in its format; the files a Prompty file's `${file:...}` names
/// come from `source`.
pub(crate) fn parse_kind(
    kind: Kind,
    file: &str,
    bytes: &[u8],
    source: &dyn Source,
) -> crate::format::prompt::Parsed {
    if kind.format == Format::Yaml {
        return Prompt::parse(file, bytes);
    }
    let text = match crate::format::yaml::decode(file, bytes) {
        Ok(text) => text,
        Err(d) => {
            return crate::format::prompt::Parsed {
                prompt: None,
                diagnostics: vec![*d],
            }
        }
    };
    match kind.format {
        Format::Prompty => {
            let read = |path: &str| -> Option<Vec<u8>> {
                if crate::snapshot::work::is_hidden(path) {
                    return None;
                }
                source.read(path).ok().flatten()
            };
            crate::format::prompty::parse(file, text, &read)
        }
        Format::Dotprompt => crate::format::dotprompt::parse(file, text),
        _ => crate::format::text::parse(file, text, kind.text),
    }
}

/// The file of prompt `id` in a snapshot, found by its possible names (the snapshot's
/// `Source::matcher` says which) rather than by scanning every file; a full scan only
/// explains a failure (suggestions, conflicts).
pub(crate) fn find_file(source: &dyn Source, id: &str, root: &str) -> Result<String> {
    let plausible = crate::snapshot::work::normalize(id).is_ok_and(|n| n == id)
        && !id.contains('@')
        && !crate::snapshot::work::is_hidden(id);
    if plausible {
        let mut found = Vec::new();
        for file in source.matcher()?.files_of(id) {
            if source.exists(&file)? {
                found.push(file);
            }
        }
        if found.len() == 1 {
            return Ok(found.remove(0));
        }
    }
    let discovery = Discovery::scan(source)?;
    discovery.file(id, root).map(str::to_string)
}

/// A file of the working copy that looks like a prompt but that no pattern selects, with the
/// `prompts` entry that would select it and its like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookalike {
    /// The file, relative to the registry root.
    pub file: String,
    /// The `prompts` entry to add, as YAML.
    pub entry: String,
}

/// Most files looked at when looking for prompts that no pattern selects.
const LOOK_LIMIT: usize = 20_000;

impl Registry {
    /// Files of the working copy that look like prompts but that no pattern selects, each with
    /// the `prompts` entry that would take it: for `list` to say more than "nothing found". A
    /// file looks like a prompt when it is a Prompty or Dotprompt file, a YAML file with a
    /// top-level `messages:` or `template:` line, or Markdown or text named `system.md`,
    /// `user.md` or `*.prompt.md`, or kept under a `prompts` or `patterns` folder.
    pub fn lookalikes(&self) -> Result<Vec<Lookalike>> {
        let matcher = self.work().matcher()?;
        let root = self.root().to_path_buf();
        let mut out = Vec::new();
        let walk = walkdir::WalkDir::new(&root)
            .follow_links(false)
            .into_iter()
            .filter_entry(|e| {
                e.depth() == 0
                    || !crate::snapshot::matcher::is_hidden_name(
                        e.file_name().to_string_lossy().as_bytes(),
                    )
            })
            .filter_map(std::result::Result::ok)
            .filter(|e| e.file_type().is_file())
            .take(LOOK_LIMIT);
        for entry in walk {
            let Ok(rel) = entry.path().strip_prefix(&root) else {
                continue;
            };
            let file = rel.to_string_lossy().replace('\\', "/");
            if matcher.is_prompt(&file)
                || file == crate::format::config::FILE
                || file == crate::format::manifest::FILE
            {
                continue;
            }
            if let Some(entry) = lookalike_entry(&file, entry.path()) {
                out.push(Lookalike { file, entry });
            }
        }
        Ok(out)
    }
}

/// The `prompts` entry that would select `file` (at `path` on disk), if it looks like a prompt.
fn lookalike_entry(file: &str, path: &std::path::Path) -> Option<String> {
    let (dir, name) = file.rsplit_once('/').unwrap_or(("", file));
    let under = |pattern: &str| {
        if dir.is_empty() {
            pattern.to_string()
        } else {
            format!("{dir}/{pattern}")
        }
    };
    match Format::of_path(file)? {
        Format::Prompty => Some("\"**/*.prompty\"".into()),
        Format::Dotprompt => Some("\"**/*.prompt\"".into()),
        Format::Yaml => {
            let bytes =
                crate::snapshot::work::read_input(path, file, crate::snapshot::work::MAX_FILE_SIZE)
                    .ok()
                    .flatten()?;
            let text = String::from_utf8_lossy(&bytes);
            let prompt_like = text
                .lines()
                .any(|l| l.starts_with("messages:") || l.starts_with("template:"));
            prompt_like.then(|| format!("\"{}\"", under(&format!("*{}", extension(name)))))
        }
        Format::Text => {
            let in_folder = file
                .split('/')
                .any(|part| part == "prompts" || part == "patterns");
            if name == "system.md" || name == "user.md" {
                // One folder per prompt (fabric's `data/patterns/NAME/system.md`).
                let parent = dir.rsplit_once('/').map_or("", |(p, _)| p);
                let pattern = if parent.is_empty() {
                    format!("*/{name}")
                } else {
                    format!("{parent}/*/{name}")
                };
                Some(format!("{{ pattern: \"{pattern}\", id: folder }}"))
            } else if name.ends_with(".prompt.md") {
                Some("\"**/*.prompt.md\"".into())
            } else if in_folder {
                Some(format!("\"{}\"", under(&format!("*{}", extension(name)))))
            } else {
                None
            }
        }
    }
}

/// A file name's last extension, with its dot.
fn extension(name: &str) -> &str {
    name.rfind('.').map_or("", |dot| &name[dot..])
}

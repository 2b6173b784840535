//! The files a prompt file reads besides itself, found from its text alone: Jinja partials
//! (`include`, `import`, `from`, `extends`), Prompty's `${file:...}`, Dotprompt's partials.
//! The version index uses this to make a version of a prompt at every commit that changes one
//! of them, so that one version always renders one text.
//!
//! Texts that cannot name another file are recognised by a byte search before anything is
//! parsed: most prompts include nothing, and the index reads many versions.

use memchr::memmem;

use crate::format::kind::{Format, Kind};
use crate::format::prompt::{Prompt, Syntax};

/// A file another file reads: the first of `candidates` that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// Root-relative paths, tried in order (one for all but Dotprompt partials).
    pub candidates: Vec<String>,
    /// How the file is read, for the files it reads in turn; `None` for data (`${file:}`).
    pub reads: Option<Reads>,
}

/// How a file is read, which decides what it can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reads {
    /// A prompt file of this kind.
    Prompt(Kind),
    /// A Jinja partial in this syntax.
    Jinja(Syntax),
    /// A Dotprompt partial.
    Handlebars,
}

/// The files `text` (at root-relative `path`, read as `reads`) names.
pub fn references(reads: Reads, path: &str, text: &str) -> Vec<Ref> {
    let folder = path.rsplit_once('/').map_or("", |(dir, _)| dir);
    match reads {
        Reads::Prompt(kind) => match kind.format {
            Format::Yaml => {
                if !may_include(text) {
                    return Vec::new();
                }
                // The whole file read as one template names the partials its templates name
                // (YAML around them is text to Jinja), unless YAML escapes inside a tag make it
                // fail to parse: then the file is read as a prompt.
                if !text.contains("syntax:") {
                    if let Some(names) = crate::render::template::parsed_names(text, Syntax::Jinja)
                    {
                        return names
                            .into_iter()
                            .filter_map(|(name, _)| crate::format::front::normalize(&name))
                            .map(|file| Ref {
                                candidates: vec![file],
                                reads: Some(Reads::Jinja(Syntax::Jinja)),
                            })
                            .collect();
                    }
                }
                let parsed = Prompt::parse(path, text.as_bytes());
                let Some(prompt) = parsed.prompt else {
                    return Vec::new();
                };
                let mut out = Vec::new();
                for (_, template) in prompt.templates() {
                    out.extend(jinja(template, prompt.syntax));
                }
                out
            }
            Format::Text => {
                if !may_include(text) {
                    return Vec::new();
                }
                let parsed = crate::format::text::parse(path, text, kind.text);
                match parsed.prompt {
                    Some(p) if p.syntax != Syntax::Verbatim => p
                        .templates()
                        .into_iter()
                        .flat_map(|(_, t)| jinja(t, p.syntax))
                        .collect(),
                    _ => Vec::new(),
                }
            }
            Format::Prompty => {
                let mut out = Vec::new();
                let finder = memmem::Finder::new("${file:");
                for at in finder.find_iter(text.as_bytes()) {
                    let rest = &text[at + 7..];
                    let Some(end) = rest.find('}') else { continue };
                    let joined = if folder.is_empty() {
                        rest[..end].to_string()
                    } else {
                        format!("{folder}/{}", &rest[..end])
                    };
                    if let Some(file) = crate::format::front::normalize(&joined) {
                        out.push(Ref {
                            candidates: vec![file],
                            reads: None,
                        });
                    }
                }
                if may_include(text) {
                    out.extend(jinja(text, Syntax::Jinja));
                }
                out
            }
            Format::Dotprompt => handlebars(folder, text),
        },
        Reads::Jinja(syntax) => {
            if may_include(text) {
                jinja(text, syntax)
            } else {
                Vec::new()
            }
        }
        Reads::Handlebars => handlebars(folder, text),
    }
}

/// Whether a text can hold a Jinja tag that names a file (in either syntax).
fn may_include(text: &str) -> bool {
    let bytes = text.as_bytes();
    ["include", "import", "extends"]
        .iter()
        .any(|word| memmem::find(bytes, word.as_bytes()).is_some())
}

/// The partials a Jinja template names (constants only).
fn jinja(template: &str, syntax: Syntax) -> Vec<Ref> {
    crate::render::template::names_in(template, syntax)
        .into_iter()
        .filter_map(|(name, _)| crate::format::front::normalize(&name))
        .map(|file| Ref {
            candidates: vec![file],
            reads: Some(Reads::Jinja(syntax)),
        })
        .collect()
}

/// The partials a Dotprompt body names, each with the files it may be.
fn handlebars(folder: &str, text: &str) -> Vec<Ref> {
    if memmem::find(text.as_bytes(), b"{{").is_none()
        || (memmem::find(text.as_bytes(), b">").is_none())
    {
        return Vec::new();
    }
    crate::render::handlebars::partial_names(text)
        .into_iter()
        .map(|name| Ref {
            candidates: crate::render::handlebars::partial_files(folder, &name),
            reads: Some(Reads::Handlebars),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::format::kind::{Format, Kind};
    use crate::render::refs::*;

    fn files(text: &str) -> Vec<String> {
        references(Reads::Prompt(Kind::of(Format::Yaml)), "a.prompt.yaml", text)
            .into_iter()
            .flat_map(|r| r.candidates)
            .collect()
    }

    #[test]
    fn yaml_prompts_name_their_partials_however_they_are_quoted() {
        assert_eq!(files("template: '{% include \"p/a.md\" %}'\n"), ["p/a.md"]);
        // Escaped quotes inside a tag: the file does not parse as one template, so it is read
        // as a prompt.
        assert_eq!(
            files("template: \"{% include \\\"p/b.md\\\" %}\"\n"),
            ["p/b.md"]
        );
        assert_eq!(
            files("syntax: brackets\ntemplate: \"[% include 'p/c.md' %] {{ x }}\"\n"),
            ["p/c.md"]
        );
        assert!(files("template: \"{{ x }} imports nothing\"\n").is_empty());
    }
}

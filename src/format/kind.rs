//! The formats a prompt file can be written in, and what a `prompts` pattern says about the
//! files it selects: their format, how their id is made, and (for plain text) how the text
//! becomes a prompt.

/// The format of a prompt file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// promptreg's own YAML, a superset of GitHub Models' `.prompt.yml`.
    #[default]
    Yaml,
    /// Microsoft's Prompty: YAML front matter, a Jinja body split into messages at role lines.
    Prompty,
    /// Google's Dotprompt: YAML front matter, a Handlebars body, Picoschema inputs.
    Dotprompt,
    /// Plain text or Markdown, with an optional front matter.
    Text,
}

impl Format {
    /// Every format by the names `promptreg.yaml` accepts (`markdown` and `md` are `text`).
    pub const NAMES: &'static [(&'static str, Format)] = &[
        ("yaml", Format::Yaml),
        ("prompty", Format::Prompty),
        ("dotprompt", Format::Dotprompt),
        ("text", Format::Text),
        ("markdown", Format::Text),
        ("md", Format::Text),
    ];

    /// The format's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Prompty => "prompty",
            Format::Dotprompt => "dotprompt",
            Format::Text => "text",
        }
    }

    /// The format of a name in `promptreg.yaml`.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, f)| *f)
    }

    /// The format a file name's extension implies: `.yml`/`.yaml`, `.prompty`, `.prompt`,
    /// `.md`/`.markdown`/`.txt`/`.text`; `None` for any other.
    ///
    /// ```
    /// use promptreg::format::kind::Format;
    /// assert_eq!(Format::of_path("a/b.prompt.yml"), Some(Format::Yaml));
    /// assert_eq!(Format::of_path("chat.prompty"), Some(Format::Prompty));
    /// assert_eq!(Format::of_path("recipe.robot.prompt"), Some(Format::Dotprompt));
    /// assert_eq!(Format::of_path("data/patterns/x/system.md"), Some(Format::Text));
    /// assert_eq!(Format::of_path("main.rs"), None);
    /// ```
    pub fn of_path(path: &str) -> Option<Format> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let (_, ext) = name.rsplit_once('.')?;
        Some(match ext.to_ascii_lowercase().as_str() {
            "yml" | "yaml" => Format::Yaml,
            "prompty" => Format::Prompty,
            "prompt" => Format::Dotprompt,
            "md" | "markdown" | "txt" | "text" => Format::Text,
            _ => return None,
        })
    }

    /// What is taken off a file's path to make its id (with [`IdRule::Path`]), tried in order.
    pub fn suffixes(self) -> &'static [&'static str] {
        match self {
            Format::Yaml => &[".prompt.yaml", ".prompt.yml", ".yaml", ".yml"],
            Format::Prompty => &[".prompty"],
            Format::Dotprompt => &[".prompt"],
            Format::Text => &[".md", ".markdown", ".txt", ".text"],
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a file's id is made from its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IdRule {
    /// The root-relative path without the format's suffix: `support/triage.prompty` is
    /// `support/triage`.
    #[default]
    Path,
    /// The folder that holds the file, relative to the pattern's fixed start (the part before
    /// its first wildcard): with `data/patterns/*/system.md`, `data/patterns/summarize/system.md`
    /// is `summarize`.
    Folder,
}

impl IdRule {
    /// The rule's name in `promptreg.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdRule::Path => "path",
            IdRule::Folder => "folder",
        }
    }
}

/// How a plain text file becomes a prompt when its front matter does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TextOptions {
    /// The role of the one message, or `None` for one template without a role.
    pub role: Option<TextRole>,
    /// The template syntax; [`Syntax::Verbatim`] (the default) renders the text as written.
    pub syntax: Syntax,
}

impl Default for TextOptions {
    fn default() -> TextOptions {
        TextOptions {
            role: Some(TextRole::System),
            syntax: Syntax::Verbatim,
        }
    }
}

/// The role of a plain text prompt's one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextRole {
    /// A system message (the default).
    System,
    /// A user message.
    User,
}

/// What a `prompts` pattern says about a file it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Kind {
    /// The file's format.
    pub format: Format,
    /// For plain text: how the text becomes a prompt.
    pub text: TextOptions,
}

impl Kind {
    /// A kind of `format` with the default text options.
    pub fn of(format: Format) -> Kind {
        Kind {
            format,
            text: TextOptions::default(),
        }
    }
}

/// Template delimiters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Syntax {
    /// `{{ var }}`, `{% block %}`, `{# comment #}`.
    #[default]
    Jinja,
    /// `[[ var ]]`, `[% block %]`, `[# comment #]`.
    Brackets,
    /// Handlebars with Dotprompt's helpers (`.prompt` files only).
    Handlebars,
    /// No template at all: the text is the output, as written (plain text and Markdown
    /// prompts that declare no syntax, so text full of braces stays text).
    Verbatim,
}

impl Syntax {
    /// The names `syntax:` accepts.
    pub const NAMES: &'static [(&'static str, Syntax)] = &[
        ("jinja", Syntax::Jinja),
        ("default", Syntax::Jinja),
        ("brackets", Syntax::Brackets),
        ("none", Syntax::Verbatim),
        ("verbatim", Syntax::Verbatim),
    ];

    /// The syntax of a name as written in a file.
    pub fn from_name(name: &str) -> Option<Syntax> {
        Syntax::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
    }
}

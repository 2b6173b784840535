//! The library's error type: what went wrong, in one lowercase line, with causes kept.

use std::path::PathBuf;

use crate::diagnostic::Diagnostic;

/// Everything that can go wrong in promptreg. Branch on [`Error::kind`]; the variants carry
/// the details for messages, and new ones may be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("cannot access {}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file that promptreg refuses to read: not a regular file, too large, outside the root
    /// or hidden.
    #[error("{}", why.message(file))]
    Unreadable {
        /// The file as named to the user (root-relative inside the registry).
        file: String,
        /// Why it is refused.
        why: Refusal,
    },
    /// A git operation failed.
    #[error("git: {0}")]
    Git(#[source] GitError),
    /// Versions are needed but the registry has no usable history.
    #[error("{0}")]
    NoHistory(String),
    /// No prompt has this id.
    #[error("no prompt `{id}` in {root}")]
    UnknownPrompt {
        /// The id asked for.
        id: String,
        /// The registry root.
        root: String,
        /// Close ids, for a hint.
        suggestions: Vec<String>,
    },
    /// A reference that does not resolve.
    #[error("cannot resolve `{reference}`: {reason}")]
    BadReference {
        /// The reference as given.
        reference: String,
        /// Why it does not resolve.
        reason: String,
        /// What would have resolved, for a hint.
        available: String,
    },
    /// A file with errors; the findings say where.
    #[error("{} has {} error(s)", file, diagnostics.iter().filter(|d| d.is_error()).count())]
    Invalid {
        /// The file.
        file: String,
        /// The file's text, for snippets, when it was read.
        text: Option<String>,
        /// Every finding about it.
        diagnostics: Vec<Diagnostic>,
    },
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// A request that cannot be carried out as asked (a bad argument, a bad combination).
    #[error("{0}")]
    Usage(String),
    /// A file or revision the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A repository or setup promptreg cannot work with (bare, SHA-256, a missing identity).
    #[error("{0}")]
    Unsupported(String),
    /// A write refused to protect the user's work.
    #[error("{0}")]
    Refused(String),
    /// A write that lost a race: what it was based on moved meanwhile.
    #[error("{0}")]
    Conflict(String),
    /// A write whose precondition failed: what the caller read last (an `If-Match` validator)
    /// is no longer what is there. Nothing was written.
    #[error("{0}")]
    Stale(String),
    /// A model endpoint failed, or answered with something other than what was asked for
    /// (the message names the model and the endpoint, never the key).
    #[error("{0}")]
    Model(String),
    /// promptreg itself could not carry on: a task that stopped, a runtime that did not start,
    /// an output that could not be written. Not the caller's fault (a server answers 500).
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether this error means "the input has problems" (exit 1) rather than "could not run"
    /// (exit 2).
    pub fn is_problem(&self) -> bool {
        matches!(self, Error::Invalid { .. } | Error::Render(_))
    }

    /// What kind of error this is, for a program to branch on (a server maps kinds to HTTP
    /// statuses, a CLI to exit codes).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } => ErrorKind::Io,
            Error::Unreadable { .. } => ErrorKind::Unreadable,
            Error::Git(_) => ErrorKind::Git,
            Error::NoHistory(_) => ErrorKind::NoHistory,
            Error::UnknownPrompt { .. } => ErrorKind::UnknownPrompt,
            Error::BadReference { .. } => ErrorKind::BadReference,
            Error::Invalid { .. } => ErrorKind::Invalid,
            Error::Render(err) => err.kind(),
            Error::Usage(_) => ErrorKind::Usage,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::Refused(_) => ErrorKind::Refused,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Stale(_) => ErrorKind::Stale,
            Error::Model(_) => ErrorKind::Model,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// What to do about it, when there is something to say: the closest ids for an unknown
    /// prompt, what would have resolved for a bad reference, how to give required variables,
    /// how to read a refused file. The CLI prints it as `hint:`, a server sends it as the
    /// problem's `hint`.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::UnknownPrompt { suggestions, .. } if !suggestions.is_empty() => {
                let names: Vec<String> = suggestions.iter().map(|s| format!("`{s}`")).collect();
                Some(format!("did you mean {}?", names.join(" or ")))
            }
            Error::BadReference { available, .. } if !available.is_empty() => {
                Some(available.clone())
            }
            Error::Render(RenderError::Missing { .. }) => {
                Some("give every required variable a value under `variables`".into())
            }
            Error::Unreadable { why, .. } => Some(why.hint().into()),
            _ => None,
        }
    }
}

/// The kind of an [`Error`]: stable, and with a stable name ([`ErrorKind::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file or directory could not be read or written.
    Io,
    /// A file promptreg refuses to read (not a regular file, too large, outside the root).
    Unreadable,
    /// A git operation failed.
    Git,
    /// Versions were needed, but there is no usable history.
    NoHistory,
    /// No prompt has the id.
    UnknownPrompt,
    /// A reference that does not resolve (no such version, label or commit).
    BadReference,
    /// A file or revision that does not exist.
    NotFound,
    /// A file with errors (see its diagnostics).
    Invalid,
    /// Required variables without a value.
    MissingVariables,
    /// A value of the wrong type for its variable.
    WrongType,
    /// Values the prompt does not use, in strict mode.
    UnusedVariables,
    /// A template failed while rendering.
    Template,
    /// A render stopped at a limit (instructions or bytes).
    RenderLimit,
    /// A request that cannot be carried out as asked.
    Usage,
    /// A repository or setup promptreg cannot work with.
    Unsupported,
    /// A write refused, to protect the user's work.
    Refused,
    /// A write based on something that moved meanwhile.
    Conflict,
    /// A write whose precondition (what the caller read last) no longer holds.
    Stale,
    /// A model endpoint failed or gave an answer that could not be used.
    Model,
    /// promptreg itself could not carry on (not the caller's fault).
    Internal,
}

impl ErrorKind {
    /// The kind's stable name, e.g. `unknown-prompt`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Io => "io",
            ErrorKind::Unreadable => "unreadable",
            ErrorKind::Git => "git",
            ErrorKind::NoHistory => "no-history",
            ErrorKind::UnknownPrompt => "unknown-prompt",
            ErrorKind::BadReference => "bad-reference",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Invalid => "invalid",
            ErrorKind::MissingVariables => "missing-variables",
            ErrorKind::WrongType => "wrong-type",
            ErrorKind::UnusedVariables => "unused-variables",
            ErrorKind::Template => "template",
            ErrorKind::RenderLimit => "render-limit",
            ErrorKind::Usage => "usage",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Refused => "refused",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Stale => "stale",
            ErrorKind::Model => "model",
            ErrorKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed git operation: libgit2's message, and its error as the cause when there is one.
#[derive(Debug)]
pub struct GitError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl GitError {
    /// A git error with only a message.
    pub(crate) fn new(message: impl Into<String>) -> GitError {
        GitError {
            message: message.into(),
            source: None,
        }
    }

    /// A git error with a message of its own and libgit2's error as the cause.
    pub(crate) fn with_cause(message: impl Into<String>, cause: git2::Error) -> GitError {
        GitError {
            message: message.into(),
            source: Some(Box::new(cause)),
        }
    }
}

impl std::fmt::Display for GitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<git2::Error> for Error {
    fn from(err: git2::Error) -> Error {
        Error::Git(GitError {
            message: err.message().to_string(),
            source: Some(Box::new(err)),
        })
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a render failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// Required variables without a value.
    #[error("missing required variable{}: {}", if names.len() == 1 { "" } else { "s" }, names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))]
    Missing {
        /// Every missing variable, sorted.
        names: Vec<String>,
    },
    /// A value of the wrong type.
    #[error(
        "variable `{name}` must be {}, but the given value is {}",
        crate::diagnostic::with_article(expected),
        crate::diagnostic::with_article(given)
    )]
    WrongType {
        /// The variable.
        name: String,
        /// The declared type.
        expected: &'static str,
        /// The type of the given value.
        given: &'static str,
    },
    /// Values the prompt does not use, refused in strict mode.
    #[error("the prompt does not use variable{} {}", if names.len() == 1 { "" } else { "s" }, names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))]
    Unused {
        /// The unused names.
        names: Vec<String>,
    },
    /// The template failed while rendering; the finding says where.
    #[error("{}", .0.message)]
    Template(Box<Diagnostic>),
}

impl RenderError {
    /// The kind of this failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RenderError::Missing { .. } => ErrorKind::MissingVariables,
            RenderError::WrongType { .. } => ErrorKind::WrongType,
            RenderError::Unused { .. } => ErrorKind::UnusedVariables,
            RenderError::Template(d) if d.code == crate::diagnostic::Code::RenderLimit => {
                ErrorKind::RenderLimit
            }
            RenderError::Template(_) => ErrorKind::Template,
        }
    }
}

/// Why promptreg refuses to read a file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// A FIFO, a device, a socket or a folder: what it is.
    NotRegular(&'static str),
    /// Larger than the limit (the size, when it is known).
    TooLarge {
        /// The file's size, when known.
        size: Option<u64>,
        /// The limit.
        limit: usize,
    },
    /// A symlink that leads out of the registry root.
    OutsideRoot,
    /// Inside the git dir, or hidden (a name that starts with `.`): not for templates.
    Hidden,
}

impl Refusal {
    /// What is wrong with `file`, in one line.
    pub fn message(&self, file: &str) -> String {
        match self {
            Refusal::NotRegular(kind) => format!("`{file}` is {kind}, not a regular file"),
            Refusal::TooLarge {
                size: Some(size),
                limit,
            } => format!("`{file}` is too large ({size} bytes; the limit is {limit} bytes)"),
            Refusal::TooLarge { size: None, limit } => {
                format!("`{file}` is larger than the limit of {limit} bytes")
            }
            Refusal::OutsideRoot => {
                format!("`{file}` is a symlink to a file outside the registry root")
            }
            Refusal::Hidden => format!(
                "`{file}` is in the git dir or hidden (a name starting with `.`), which templates cannot read"
            ),
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Refusal::NotRegular(_) => {
                "promptreg reads only regular files; replace it with one (or with a symlink to one)"
            }
            Refusal::TooLarge { .. } => {
                "prompts, partials and values are text a person edits; split this one into smaller files"
            }
            Refusal::OutsideRoot => {
                "partials must live under the registry root; paths are relative to it"
            }
            Refusal::Hidden => {
                "keep partials in ordinary folders under the registry root, e.g. `partials/`"
            }
        }
    }
}

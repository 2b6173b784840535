//! The library's error type: what went wrong, in one lowercase line, with causes kept.

use std::path::PathBuf;

use crate::diagnostic::Diagnostic;
use crate::render::RenderError;

/// Everything that can go wrong in promptreg.
#[derive(Debug, thiserror::Error)]
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
        why: crate::source::Refusal,
    },
    /// A git operation failed.
    #[error("git: {0}")]
    Git(String),
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
    /// A request that cannot be carried out as asked.
    #[error("{0}")]
    Usage(String),
    /// A write refused to protect the user's work.
    #[error("{0}")]
    Refused(String),
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
}

impl From<git2::Error> for Error {
    fn from(err: git2::Error) -> Error {
        Error::Git(err.message().to_string())
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

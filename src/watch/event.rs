//! The typed events a watcher sends: a prompt's status, a removed prompt, the manifest's
//! status, a problem of the watcher itself.

use std::time::SystemTime;

use crate::diagnostic::Diagnostic;
use crate::render::Rendered;

/// What the watcher reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// A prompt was checked: at start, or because something it depends on was saved.
    Status(Status),
    /// A prompt's file is gone (deleted, or moved with its folder: the new id follows as a
    /// [`Event::Status`]).
    Removed {
        /// When it was noticed.
        time: SystemTime,
        /// The prompt's id.
        id: String,
        /// The file it had, relative to the root.
        file: String,
    },
    /// `defaults.yaml` was saved, created or deleted.
    Manifest(ManifestStatus),
    /// The watcher itself hit a problem (an unreadable folder, a lost file-system watch); it
    /// keeps running.
    Error {
        /// When it happened.
        time: SystemTime,
        /// One line saying what went wrong.
        message: String,
    },
}

impl Event {
    /// When the event was produced.
    pub fn time(&self) -> SystemTime {
        match self {
            Event::Status(s) => s.time,
            Event::Manifest(m) => m.time,
            Event::Removed { time, .. } | Event::Error { time, .. } => *time,
        }
    }

    /// The prompt the event is about, if any.
    pub fn id(&self) -> Option<&str> {
        match self {
            Event::Status(s) => Some(&s.id),
            Event::Removed { id, .. } => Some(id),
            Event::Manifest(_) | Event::Error { .. } => None,
        }
    }
}

/// The verdict on a prompt or the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// No finding.
    Ok,
    /// Warnings only; the first one.
    Warning(Diagnostic),
    /// At least one error; the first one (in the prompt's own file first, by line).
    Error(Diagnostic),
}

impl State {
    /// The verdict on a set of findings, sorted as they should be read.
    pub(super) fn of(diagnostics: &[Diagnostic]) -> State {
        if let Some(d) = diagnostics.iter().find(|d| d.is_error()) {
            State::Error(d.clone())
        } else if let Some(d) = diagnostics.first() {
            State::Warning(d.clone())
        } else {
            State::Ok
        }
    }

    /// Whether there is no error.
    pub fn is_ok(&self) -> bool {
        !matches!(self, State::Error(_))
    }
}

/// Why a prompt was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The watcher started.
    Start,
    /// Its own file was saved, created or moved.
    File,
    /// A partial it includes was saved, created or deleted.
    Partial(String),
    /// Its entry in `defaults.yaml` changed.
    Manifest,
    /// The file system dropped events, so everything was checked again.
    Rescan,
}

impl Cause {
    /// The more specific cause wins when one batch has several.
    pub(super) fn rank(&self) -> u8 {
        match self {
            Cause::File => 4,
            Cause::Partial(_) => 3,
            Cause::Manifest => 2,
            Cause::Rescan => 1,
            Cause::Start => 0,
        }
    }
}

/// One prompt's status after a check.
#[derive(Debug, Clone)]
pub struct Status {
    /// When the check finished.
    pub time: SystemTime,
    /// The prompt's id.
    pub id: String,
    /// Its file, relative to the root.
    pub file: String,
    /// Why it was checked.
    pub cause: Cause,
    /// The verdict.
    pub state: State,
    /// Prompt tokens of the first rendered input (test case 0, test case N, or the given
    /// values), when it renders.
    pub tokens: Option<usize>,
    /// Every finding, the prompt's own file first, by line.
    pub diagnostics: Vec<Diagnostic>,
    /// The rendered output, when [`crate::watch::Options::render`] is set.
    pub rendered: Vec<RenderedCase>,
}

/// One rendered input of a prompt.
#[derive(Debug, Clone)]
pub struct RenderedCase {
    /// The test case, or `None` for given values (or a prompt without test data).
    pub case: Option<usize>,
    /// The output.
    pub rendered: Rendered,
}

/// The manifest's status after a save.
#[derive(Debug, Clone)]
pub struct ManifestStatus {
    /// When it was checked.
    pub time: SystemTime,
    /// The manifest's file name, relative to the root.
    pub file: String,
    /// Whether the file exists (a deleted manifest moves every default back to latest).
    pub present: bool,
    /// The verdict.
    pub state: State,
    /// Every finding.
    pub diagnostics: Vec<Diagnostic>,
    /// Prompts whose default or a label changed, sorted.
    pub changed: Vec<String>,
}

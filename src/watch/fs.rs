//! The file-system side of watching: the notify watcher, debouncing a burst of events into one
//! batch, and the filter that says which paths matter.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _, WatcherKind};

use crate::error::{Error, Result};
use crate::format::config;
use crate::format::manifest;
use crate::snapshot::matcher::PromptMatcher;
use crate::snapshot::work::is_hidden;
use crate::watch::Event;

/// The longest a batch waits for a file that is still open for writing.
const MAX_WAIT: Duration = Duration::from_secs(2);

/// What the watcher thread receives.
pub(super) enum Message {
    Fs(notify::Result<notify::Event>),
    Stop,
}

/// Watches `dir` (the root, canonical) recursively: the control channel (file-system events
/// and stop requests both arrive on it) and the notify watcher, which stops when dropped.
pub(super) fn watch(
    root: &Path,
    dir: &Path,
) -> Result<(Sender<Message>, Receiver<Message>, RecommendedWatcher)> {
    let (control, raw) = mpsc::channel();
    let fs = control.clone();
    let mut notify = notify::recommended_watcher(move |event| {
        let _ = fs.send(Message::Fs(event));
    })
    .map_err(|e| watch_error(root, &e))?;
    notify
        .watch(dir, RecursiveMode::Recursive)
        .map_err(|e| watch_error(root, &e))?;
    Ok((control, raw, notify))
}

fn watch_error(root: &Path, err: &notify::Error) -> Error {
    let hint = match err.kind {
        notify::ErrorKind::MaxFilesWatch => {
            " (the system's limit of watched folders is reached: raise fs.inotify.max_user_watches)"
        }
        _ => "",
    };
    Error::Internal(format!("cannot watch {}: {err}{hint}", root.display()))
}

/// The paths of one burst of events, relative to the root.
#[derive(Debug, Default)]
pub(super) struct Batch {
    pub(super) paths: BTreeSet<String>,
    /// Files that matter and are still open for writing (inotify reports their close).
    pub(super) open: BTreeSet<String>,
    /// The file system dropped events: check everything.
    pub(super) rescan: bool,
}

/// What debouncing needs to know of the session: where the root is, how long to wait, and
/// which files are partials of some prompt (their changes matter even when hidden).
pub(super) struct Debouncer<'a> {
    /// The root, canonical.
    pub root: &'a Path,
    /// How long the file system must stay quiet.
    pub debounce: Duration,
    /// Each prompt's partials.
    pub deps: &'a BTreeMap<String, BTreeSet<String>>,
    /// Which files are prompts.
    pub matcher: &'a PromptMatcher,
    /// Where the watcher's own problems (a lost watch) are reported.
    pub events: &'a Sender<Event>,
}

/// Whether the watcher reports a close after writing (inotify does), so that a batch can wait
/// for files still open for writing.
fn track_closes() -> bool {
    RecommendedWatcher::kind() == WatcherKind::Inotify
}

/// Collecting a batch of events and filtering their paths.
impl Debouncer<'_> {
    /// Waits for a relevant event, then collects until the file system is quiet for the
    /// debounce time and no file that matters is still open for writing. `None` on stop.
    pub(super) fn next_batch(&self, raw: &Receiver<Message>) -> Option<Batch> {
        let mut batch = Batch::default();
        loop {
            match raw.recv().ok()? {
                Message::Stop => return None,
                Message::Fs(event) => {
                    if self.collect(&mut batch, event, false) {
                        break;
                    }
                }
            }
        }
        let started = Instant::now();
        let mut quiet_since = Instant::now();
        loop {
            let quiet = self.debounce.saturating_sub(quiet_since.elapsed());
            let cap = MAX_WAIT.saturating_sub(started.elapsed());
            let wait = if quiet.is_zero() && !batch.open.is_empty() {
                cap.min(self.debounce)
            } else {
                quiet.min(cap)
            };
            if wait.is_zero() {
                return Some(batch);
            }
            match raw.recv_timeout(wait) {
                Ok(Message::Fs(event)) => {
                    if self.collect(&mut batch, event, true) {
                        quiet_since = Instant::now();
                    }
                }
                Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) => {
                    if batch.open.is_empty() || started.elapsed() >= MAX_WAIT {
                        return Some(batch);
                    }
                }
            }
        }
    }

    /// Adds an event's relevant paths to the batch; returns whether it had any. A close after
    /// writing counts only inside a batch: it ends a write, it does not start one.
    fn collect(
        &self,
        batch: &mut Batch,
        event: notify::Result<notify::Event>,
        in_batch: bool,
    ) -> bool {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                let _ = self.events.send(Event::Error {
                    time: SystemTime::now(),
                    message: format!("file watch: {err}"),
                });
                return false;
            }
        };
        if event.need_rescan() {
            batch.rescan = true;
            return true;
        }
        let closed = matches!(
            event.kind,
            EventKind::Access(AccessKind::Close(AccessMode::Write))
        );
        if matches!(event.kind, EventKind::Access(_)) && !(closed && in_batch) {
            return false;
        }
        let opens = matches!(
            event.kind,
            EventKind::Create(CreateKind::File) | EventKind::Modify(ModifyKind::Data(_))
        );
        let mut relevant = false;
        for path in &event.paths {
            let Some(rel) = self.relative(path) else {
                continue;
            };
            if is_hidden(&rel) && !self.is_partial(&rel) {
                continue;
            }
            if track_closes() && self.matters(&rel) {
                if closed {
                    batch.open.remove(&rel);
                } else if opens {
                    batch.open.insert(rel.clone());
                }
            }
            if !closed {
                batch.paths.insert(rel);
            }
            relevant = true;
        }
        relevant
    }

    /// A path relative to the root, `/`-separated; `None` for the root itself and outside it.
    fn relative(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(self.root).ok()?;
        let parts: Vec<_> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect();
        (!parts.is_empty()).then(|| parts.join("/"))
    }

    /// Whether a file's content feeds a check: a prompt, the manifest, a known partial.
    fn matters(&self, rel: &str) -> bool {
        let named = self.matcher.is_prompt(rel) || rel == manifest::FILE || rel == config::FILE;
        (named && !is_hidden(rel)) || self.is_partial(rel)
    }

    fn is_partial(&self, rel: &str) -> bool {
        self.deps.values().any(|d| d.contains(rel))
    }
}

#[cfg(test)]
mod tests {
    use crate::watch::fs::*;

    #[test]
    fn hidden_paths() {
        assert!(is_hidden(".git/index"));
        assert!(is_hidden("support/.triage.prompt.yaml.swp"));
        assert!(!is_hidden("support/triage.prompt.yaml"));
        assert!(!is_hidden(".github/prompts/triage.prompt.yml"));
    }
}

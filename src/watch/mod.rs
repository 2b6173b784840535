//! Watching a registry while you edit it: every save re-checks the prompts it affects (the
//! saved prompt, every prompt that includes a saved partial, the prompts whose `defaults.yaml`
//! entries moved) and sends one typed [`Event`] per prompt over a channel.
//!
//! The watcher is library code: it never prints and never exits on a bad file. A file that is
//! invalid half-way through an edit is reported like any other, and the next good save recovers.
//! Bursts of file-system events from one save (write a temporary file and rename it over, or
//! truncate and write) are debounced into one batch, and each affected prompt is reported once
//! per batch.
//!
//! ```
//! use std::time::Duration;
//! use promptreg::watch::{Event, Options, State, Watcher};
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("hello.prompt.yaml"), "template: Hello\ntestData: [{}]\n").unwrap();
//! let (watcher, events) = Watcher::start(dir.path(), Vec::new(), Options::default()).unwrap();
//! match events.recv_timeout(Duration::from_secs(30)).unwrap() {
//!     Event::Status(status) => {
//!         assert_eq!(status.id, "hello");
//!         assert_eq!(status.state, State::Ok);
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! watcher.stop();
//! ```

mod event;
mod fs;
mod session;

use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use notify::RecommendedWatcher;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::registry::Discovery;
use crate::snapshot::work::WorkTree;

pub use self::event::{Cause, Event, ManifestStatus, RenderedCase, State, Status};
use self::fs::Message;
use self::session::Session;

/// How long the file system must stay quiet before a batch of events is processed, by default.
pub const DEBOUNCE: Duration = Duration::from_millis(30);

/// The values each checked prompt is rendered with (its token count comes from the first).
#[derive(Debug, Clone, PartialEq)]
pub enum Inputs {
    /// The prompt's test data: test case N, or (`None`) every test case, tokens counted on
    /// test case 0. A prompt without test data is rendered with no values.
    TestData(Option<usize>),
    /// The same values for every prompt.
    Values(Map<String, Value>),
}

impl Default for Inputs {
    fn default() -> Inputs {
        Inputs::TestData(None)
    }
}

/// How the watcher checks and renders.
#[derive(Debug, Clone)]
pub struct Options {
    /// Render each checked prompt and send the output with its status.
    pub render: bool,
    /// The values prompts are rendered with.
    pub inputs: Inputs,
    /// How long the file system must stay quiet before a burst of events is processed.
    pub debounce: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            render: false,
            inputs: Inputs::default(),
            debounce: DEBOUNCE,
        }
    }
}

/// A running watcher. Dropping it (or [`Watcher::stop`]) ends its thread; the event channel
/// then disconnects.
#[derive(Debug)]
pub struct Watcher {
    control: Sender<Message>,
    notify: Option<RecommendedWatcher>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts watching the registry at `root`: the prompts named by `ids`, or every prompt when
    /// `ids` is empty. The first events are one [`Event::Status`] per prompt (after an
    /// [`Event::Manifest`] when `defaults.yaml` exists and no ids are given).
    ///
    /// Fails when the root cannot be read or watched, or an id names no prompt.
    pub fn start(
        root: &Path,
        ids: Vec<String>,
        options: Options,
    ) -> Result<(Watcher, Receiver<Event>)> {
        let work = WorkTree::new(root)?;
        let work = Arc::new(
            match crate::git::Repo::discover(work.root()).ok().flatten() {
                Some(repo) => work.with_git_dir(repo.git_dir()),
                None => work,
            },
        );
        let matcher = crate::snapshot::work::Source::matcher(work.as_ref())?;
        let discovery = Discovery::scan(work.as_ref())?;
        for id in &ids {
            if !discovery.conflicts.contains_key(id) {
                discovery.file(id, &root.display().to_string())?;
            }
        }
        let (control, raw, notify) = fs::watch(root, work.root())?;
        let (events, receiver) = mpsc::channel();
        let session = Session::new(work, ids, options, discovery, matcher, events);
        let thread = std::thread::Builder::new()
            .name("promptreg-watch".into())
            .spawn(move || session.run(&raw))
            .map_err(|e| Error::io(root, e))?;
        let watcher = Watcher {
            control,
            notify: Some(notify),
            thread: Some(thread),
        };
        Ok((watcher, receiver))
    }

    /// Stops watching and waits for the thread to end.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.notify.take());
        let _ = self.control.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _, WatcherKind};
use serde_json::{Map, Value};

use crate::diagnostic::{Code, Diagnostic};
use crate::error::{Error, Result};
use crate::format::config;
use crate::format::manifest::{self, Manifest};
use crate::format::prompt::Prompt;
use crate::registry::{Discovery, LoadedPrompt, Registry};
use crate::render::template::referenced_templates;
use crate::render::{CompiledPrompt, RenderError, Rendered};
use crate::snapshot::matcher::PromptMatcher;
use crate::snapshot::work::{is_hidden, normalize, Source, WorkTree};

/// How long the file system must stay quiet before a batch of events is processed, by default.
pub const DEBOUNCE: Duration = Duration::from_millis(30);

/// The longest a batch waits for a file that is still open for writing.
const MAX_WAIT: Duration = Duration::from_secs(2);

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
    fn of(diagnostics: &[Diagnostic]) -> State {
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
    fn rank(&self) -> u8 {
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
    /// The rendered output, when [`Options::render`] is set.
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

/// A running watcher. Dropping it (or [`Watcher::stop`]) ends its thread; the event channel
/// then disconnects.
#[derive(Debug)]
pub struct Watcher {
    control: Sender<Message>,
    notify: Option<RecommendedWatcher>,
    thread: Option<JoinHandle<()>>,
}

/// What the watcher thread receives.
enum Message {
    Fs(notify::Result<notify::Event>),
    Stop,
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
        let matcher = work.matcher()?;
        let discovery = Discovery::scan(work.as_ref())?;
        for id in &ids {
            if !discovery.conflicts.contains_key(id) {
                discovery.file(id, &root.display().to_string())?;
            }
        }
        let (control, raw) = mpsc::channel();
        let fs = control.clone();
        let mut notify = notify::recommended_watcher(move |event| {
            let _ = fs.send(Message::Fs(event));
        })
        .map_err(|e| watch_error(root, &e))?;
        notify
            .watch(work.root(), RecursiveMode::Recursive)
            .map_err(|e| watch_error(root, &e))?;
        let (events, receiver) = mpsc::channel();
        let session = Session {
            root: work.root().to_path_buf(),
            source: work,
            selected: ids.into_iter().collect(),
            options,
            discovery,
            matcher,
            deps: BTreeMap::new(),
            manifest: Manifest::default(),
            events,
            track_closes: RecommendedWatcher::kind() == WatcherKind::Inotify,
        };
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

fn watch_error(root: &Path, err: &notify::Error) -> Error {
    let hint = match err.kind {
        notify::ErrorKind::MaxFilesWatch => {
            " (the system's limit of watched folders is reached: raise fs.inotify.max_user_watches)"
        }
        _ => "",
    };
    Error::Usage(format!("cannot watch {}: {err}{hint}", root.display()))
}

/// The paths of one burst of events, relative to the root.
#[derive(Debug, Default)]
struct Batch {
    paths: BTreeSet<String>,
    /// Files that matter and are still open for writing (inotify reports their close).
    open: BTreeSet<String>,
    /// The file system dropped events: check everything.
    rescan: bool,
}

/// The watcher thread's state.
struct Session {
    root: PathBuf,
    source: Arc<WorkTree>,
    selected: BTreeSet<String>,
    options: Options,
    discovery: Discovery,
    /// Which files are prompts (`promptreg.yaml`), re-read when that file changes.
    matcher: Arc<PromptMatcher>,
    /// Each prompt's partials, transitively, whether they exist or not.
    deps: BTreeMap<String, BTreeSet<String>>,
    /// The last manifest that parsed without errors.
    manifest: Manifest,
    events: Sender<Event>,
    track_closes: bool,
}

impl Session {
    fn run(mut self, raw: &Receiver<Message>) {
        let initial = self.start();
        if !self.send(initial) {
            return;
        }
        while let Some(batch) = self.next_batch(raw) {
            let events = self.process(&batch);
            if !self.send(events) {
                return;
            }
        }
    }

    fn send(&self, events: Vec<Event>) -> bool {
        events.into_iter().all(|e| self.events.send(e).is_ok())
    }

    /// Waits for a relevant event, then collects until the file system is quiet for the
    /// debounce time and no file that matters is still open for writing. `None` on stop.
    fn next_batch(&self, raw: &Receiver<Message>) -> Option<Batch> {
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
            let quiet = self.options.debounce.saturating_sub(quiet_since.elapsed());
            let cap = MAX_WAIT.saturating_sub(started.elapsed());
            let wait = if quiet.is_zero() && !batch.open.is_empty() {
                cap.min(self.options.debounce)
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
            if self.track_closes && self.matters(&rel) {
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
        let rel = path.strip_prefix(&self.root).ok()?;
        let parts: Vec<_> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect();
        (!parts.is_empty()).then(|| parts.join("/"))
    }

    /// Whether a file's content feeds a check: a prompt, the manifest, the settings, a known
    /// partial.
    fn matters(&self, rel: &str) -> bool {
        let named = self.matcher.is_prompt(rel) || rel == manifest::FILE || rel == config::FILE;
        (named && !is_hidden(rel)) || self.is_partial(rel)
    }

    fn is_partial(&self, rel: &str) -> bool {
        self.deps.values().any(|d| d.contains(rel))
    }

    /// The checked ids and their files (conflicting ids under their first file).
    fn known(&self) -> BTreeMap<String, String> {
        let mut known = self.discovery.prompts.clone();
        for (id, files) in &self.discovery.conflicts {
            known.insert(id.clone(), files.first().cloned().unwrap_or_default());
        }
        known.retain(|id, _| self.selected.is_empty() || self.selected.contains(id));
        known
    }

    fn is_prompt_file(&self, rel: &str) -> bool {
        self.prompt_files().any(|f| f == rel)
    }

    fn prompt_files(&self) -> impl Iterator<Item = &String> {
        self.discovery
            .prompts
            .values()
            .chain(self.discovery.conflicts.values().flatten())
    }

    /// Whether a path's change can change the set of prompt files: a prompt file that appeared
    /// or vanished, a folder, a vanished path that held prompt files, or the settings.
    fn needs_rescan(&self, rel: &str) -> bool {
        if rel == config::FILE {
            return true;
        }
        let meta = std::fs::metadata(self.root.join(rel));
        if self.matcher.is_prompt(rel) {
            let exists = meta.as_ref().is_ok_and(|m| m.is_file());
            return exists != self.is_prompt_file(rel);
        }
        match meta {
            Ok(meta) => meta.is_dir(),
            Err(_) => {
                let prefix = format!("{rel}/");
                self.prompt_files().any(|f| f.starts_with(&prefix))
            }
        }
    }

    /// The first events: the manifest, then every prompt.
    fn start(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        let mut manifest = self.check_manifest();
        manifest.changed.clear();
        if self.selected.is_empty() && manifest.present {
            events.push(Event::Manifest(manifest));
        }
        for id in self.known().into_keys() {
            events.push(Event::Status(self.check(&id, Cause::Start)));
        }
        events
    }

    /// The events of one batch: removed prompts, the manifest, then each affected prompt once.
    fn process(&mut self, batch: &Batch) -> Vec<Event> {
        let mut events = Vec::new();
        let mut affected: BTreeMap<String, Cause> = BTreeMap::new();
        let mut mark = |id: &str, cause: Cause| match affected.get(id) {
            Some(old) if old.rank() >= cause.rank() => {}
            _ => {
                affected.insert(id.to_string(), cause);
            }
        };
        if batch.rescan || batch.paths.iter().any(|p| self.needs_rescan(p)) {
            let before = self.known();
            let conflicted: BTreeSet<String> = self.discovery.conflicts.keys().cloned().collect();
            if batch.rescan || batch.paths.contains(config::FILE) {
                match self.source.matcher() {
                    Ok(matcher) => self.matcher = matcher,
                    Err(err) => events.push(Event::Error {
                        time: SystemTime::now(),
                        message: format!("cannot read {}: {err}", config::FILE),
                    }),
                }
            }
            match Discovery::scan(self.source.as_ref()) {
                Ok(discovery) => self.discovery = discovery,
                Err(err) => events.push(Event::Error {
                    time: SystemTime::now(),
                    message: format!("cannot list the prompt files: {err}"),
                }),
            }
            let after = self.known();
            for (id, file) in &before {
                if !after.contains_key(id) {
                    self.deps.remove(id);
                    events.push(Event::Removed {
                        time: SystemTime::now(),
                        id: id.clone(),
                        file: file.clone(),
                    });
                }
            }
            for (id, file) in &after {
                let flipped = conflicted.contains(id) != self.discovery.conflicts.contains_key(id);
                if before.get(id) != Some(file) || flipped || batch.paths.contains(file) {
                    mark(id, Cause::File);
                } else if batch.rescan {
                    mark(id, Cause::Rescan);
                }
            }
        }
        let known = self.known();
        for path in &batch.paths {
            if path == manifest::FILE {
                let status = self.check_manifest();
                for id in status.changed.iter().filter(|id| known.contains_key(*id)) {
                    mark(id, Cause::Manifest);
                }
                if self.selected.is_empty() {
                    events.push(Event::Manifest(status));
                }
            }
            if let Some(id) = self.matcher.prompt_id(path) {
                let own = known.get(id).is_some_and(|f| f == path)
                    || self
                        .discovery
                        .conflicts
                        .get(id)
                        .is_some_and(|f| f.contains(path));
                if own && known.contains_key(id) {
                    mark(id, Cause::File);
                }
            }
            for (id, deps) in &self.deps {
                if deps.contains(path) && known.contains_key(id) {
                    mark(id, Cause::Partial(path.clone()));
                }
            }
        }
        for (id, cause) in affected {
            events.push(Event::Status(self.check(&id, cause)));
        }
        events
    }
}

/// Checking one prompt or the manifest.
impl Session {
    /// Validates prompt `id` and renders it with the watcher's inputs.
    fn check(&mut self, id: &str, cause: Cause) -> Status {
        let file = self.known().remove(id).unwrap_or_default();
        let mut rendered = Vec::new();
        let mut tokens = None;
        let mut diagnostics = if let Some(files) = self.discovery.conflicts.get(id) {
            self.deps.remove(id);
            self.discovery
                .diagnostics
                .iter()
                .filter(|d| files.contains(&d.file))
                .cloned()
                .collect()
        } else {
            let source: Arc<dyn Source> = self.source.clone();
            match LoadedPrompt::read(source.clone(), id, &file) {
                Ok(loaded) => {
                    self.deps.insert(
                        id.to_string(),
                        dependencies(source.as_ref(), &loaded.prompt),
                    );
                    let mut diagnostics = crate::check::validate::check_loaded(loaded.clone());
                    if let Ok(compiled) = loaded.compile() {
                        (tokens, rendered) = self.render(&compiled, &file, &mut diagnostics);
                    }
                    diagnostics
                }
                Err(Error::Invalid { diagnostics, .. }) => {
                    self.deps.remove(id);
                    diagnostics
                }
                Err(err) => {
                    self.deps.remove(id);
                    vec![Diagnostic::new(Code::Unreadable, &file, err.to_string())]
                }
            }
        };
        diagnostics.sort_by(|a, b| {
            (a.file != file, &a.file, a.line, a.column).cmp(&(
                b.file != file,
                &b.file,
                b.line,
                b.column,
            ))
        });
        diagnostics.dedup();
        Status {
            time: SystemTime::now(),
            id: id.to_string(),
            state: State::of(&diagnostics),
            file,
            cause,
            tokens,
            diagnostics,
            rendered,
        }
    }

    /// Renders a compiled prompt with the watcher's inputs: the token count of the first
    /// input, and every output when rendering was asked for. Failures of inputs that
    /// validation does not already cover (given values, a missing test case) become findings.
    fn render(
        &self,
        compiled: &CompiledPrompt,
        file: &str,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> (Option<usize>, Vec<RenderedCase>) {
        let rows = &compiled.prompt().test_data;
        let cases: Vec<(Option<usize>, Map<String, Value>)> = match &self.options.inputs {
            Inputs::Values(values) => vec![(None, values.clone())],
            Inputs::TestData(Some(n)) => match rows.get(*n) {
                Some(row) => vec![(Some(*n), row.clone())],
                None => {
                    let has = match rows.len() {
                        0 => "it has no test data".to_string(),
                        1 => "it has only test case 0".to_string(),
                        len => format!("it has test cases 0 to {}", len - 1),
                    };
                    diagnostics.push(
                        Diagnostic::new(
                            Code::TestRender,
                            file,
                            format!("there is no test case {n}"),
                        )
                        .at(compiled.prompt().spans.field("/testData"))
                        .with_hint(has),
                    );
                    Vec::new()
                }
            },
            Inputs::TestData(None) if rows.is_empty() => vec![(None, Map::new())],
            Inputs::TestData(None) => rows
                .iter()
                .cloned()
                .enumerate()
                .map(|(i, r)| (Some(i), r))
                .collect(),
        };
        let given = matches!(self.options.inputs, Inputs::Values(_));
        let mut tokens = None;
        let mut rendered = Vec::new();
        for (i, (case, values)) in cases.into_iter().enumerate() {
            if i > 0 && !self.options.render {
                break;
            }
            match compiled.render(&values) {
                Ok(output) => {
                    if i == 0 {
                        tokens = Some(crate::render::tokens::count_rendered(&output));
                    }
                    if self.options.render {
                        rendered.push(RenderedCase {
                            case,
                            rendered: output,
                        });
                    }
                }
                Err(err) if given => diagnostics.push(values_diagnostic(err, file)),
                // Test cases are checked by validation already.
                Err(_) => {}
            }
        }
        (tokens, rendered)
    }

    /// Reads `defaults.yaml`: its findings, and the prompts whose pointers moved since the last
    /// version that parsed.
    fn check_manifest(&mut self) -> ManifestStatus {
        let (present, (manifest, mut diagnostics)) = match self.source.read(manifest::FILE) {
            Ok(Some(bytes)) => (true, Manifest::parse(&bytes)),
            Ok(None) => (false, (Manifest::default(), Vec::new())),
            Err(err) => (
                true,
                (
                    self.manifest.clone(),
                    vec![Diagnostic::new(
                        Code::Unreadable,
                        manifest::FILE,
                        err.to_string(),
                    )],
                ),
            ),
        };
        let mut changed = Vec::new();
        if !diagnostics.iter().any(Diagnostic::is_error) {
            changed = moved(&self.manifest, &manifest);
            diagnostics.extend(self.manifest_findings(&manifest));
            self.manifest = manifest;
        }
        ManifestStatus {
            time: SystemTime::now(),
            file: manifest::FILE.to_string(),
            present,
            state: State::of(&diagnostics),
            diagnostics,
            changed,
        }
    }

    /// Manifest entries for prompts that do not exist, or versions they do not have (when the
    /// root has history).
    fn manifest_findings(&self, manifest: &Manifest) -> Vec<Diagnostic> {
        let registry = Registry::open(&self.root).ok();
        let count = |id: &str| {
            let (_, versions) = registry.as_ref()?.versions(id).ok()?;
            Some(versions.len())
        };
        let ids = self
            .discovery
            .prompts
            .keys()
            .chain(self.discovery.conflicts.keys());
        let ids: BTreeSet<&str> = ids.map(String::as_str).collect();
        let mut out = Vec::new();
        for (label, id, version) in pointers(manifest) {
            let what = label.map_or("the default".to_string(), |l| format!("label `{l}`"));
            let pos = manifest.position(label, id);
            let versions = count(id);
            if !ids.contains(id.as_str()) && versions.unwrap_or(0) == 0 {
                let hint = crate::format::prompt::suggest(id, ids.iter().copied())
                    .map_or("remove the entry, or add the prompt".to_string(), |s| {
                        format!("did you mean `{s}`?")
                    });
                out.push(
                    Diagnostic::new(
                        Code::ManifestUnknownPrompt,
                        manifest::FILE,
                        format!("{what} names prompt `{id}`, which does not exist"),
                    )
                    .at(pos)
                    .with_hint(hint),
                );
            } else if let Some(count) = versions.filter(|n| version as usize > *n) {
                out.push(
                    Diagnostic::new(
                        Code::ManifestUnknownVersion,
                        manifest::FILE,
                        format!("{what} of `{id}` is version {version}, which does not exist"),
                    )
                    .at(pos)
                    .with_hint(format!(
                        "it has {count} version{}; `promptreg versions {id}` lists them",
                        if count == 1 { "" } else { "s" }
                    )),
                );
            }
        }
        out
    }
}

/// Every pointer of a manifest: (label, id, version), the defaults under no label.
fn pointers(manifest: &Manifest) -> Vec<(Option<&str>, &String, u32)> {
    let defaults = manifest.defaults.iter().map(|(id, v)| (None, id, *v));
    let labels = manifest
        .labels
        .iter()
        .flat_map(|(l, m)| m.iter().map(move |(id, v)| (Some(l.as_str()), id, *v)));
    defaults.chain(labels).collect()
}

/// The prompts whose default or any label differs between two manifests, sorted.
fn moved(before: &Manifest, after: &Manifest) -> Vec<String> {
    let mut labels: BTreeSet<Option<&str>> = BTreeSet::from([None]);
    labels.extend(
        before
            .labels
            .keys()
            .chain(after.labels.keys())
            .map(|l| Some(l.as_str())),
    );
    let ids: BTreeSet<&String> = pointers(before)
        .into_iter()
        .chain(pointers(after))
        .map(|(_, id, _)| id)
        .collect();
    ids.into_iter()
        .filter(|id| {
            labels
                .iter()
                .any(|l| before.get(*l, id) != after.get(*l, id))
        })
        .cloned()
        .collect()
}

/// A finding for values that do not render.
fn values_diagnostic(err: RenderError, file: &str) -> Diagnostic {
    match err {
        RenderError::Template(d) => {
            let mut d = *d;
            d.message = format!("the given values do not render: {}", d.message);
            d
        }
        other => Diagnostic::new(
            Code::TestRender,
            file,
            format!("the given values do not render: {other}"),
        ),
    }
}

/// Every file a prompt's templates include, import or extend by name, transitively, whether
/// it exists or not (so creating a missing partial re-checks the prompt).
fn dependencies(source: &dyn Source, prompt: &Prompt) -> BTreeSet<String> {
    let names = |text: &str| {
        referenced_templates(text, prompt.syntax)
            .into_iter()
            .map(|r| r.name)
            .collect::<Vec<_>>()
    };
    let mut queue: Vec<String> = prompt
        .templates()
        .iter()
        .flat_map(|(_, text)| names(text))
        .collect();
    let mut found = BTreeSet::new();
    while let Some(name) = queue.pop() {
        let Ok(path) = normalize(&name) else {
            continue;
        };
        if found.len() >= 1000 || !found.insert(path.clone()) {
            continue;
        }
        if let Ok(Some(bytes)) = source.read(&path) {
            queue.extend(names(&String::from_utf8_lossy(&bytes)));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use crate::watch::*;

    #[test]
    fn hidden_paths() {
        assert!(is_hidden(".git/index"));
        assert!(is_hidden("support/.triage.prompt.yaml.swp"));
        assert!(!is_hidden("support/triage.prompt.yaml"));
        assert!(!is_hidden(".github/prompts/triage.prompt.yml"));
    }

    #[test]
    fn moved_pointers() {
        let (before, _) =
            Manifest::parse(b"defaults:\n  a: 1\n  b: 2\nlabels:\n  prod:\n    c: 1\n");
        let (after, _) =
            Manifest::parse(b"defaults:\n  a: 1\n  b: 3\nlabels:\n  prod:\n    d: 1\n");
        assert_eq!(moved(&before, &after), ["b", "c", "d"]);
        assert!(moved(&after, &after).is_empty());
    }

    #[test]
    fn dependencies_follow_partials_and_keep_missing_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("p")).expect("mkdir");
        std::fs::write(dir.path().join("p/a.md"), "{% include 'p/b.md' %}").expect("write");
        let source = WorkTree::new(dir.path()).expect("work tree");
        let text = "template: \"{% include 'p/a.md' %}{% import './p/gone.j2' as m %}\"\n";
        let prompt = Prompt::parse("x.prompt.yaml", text.as_bytes())
            .prompt
            .expect("prompt");
        let deps: Vec<String> = dependencies(&source, &prompt).into_iter().collect();
        assert_eq!(deps, ["p/a.md", "p/b.md", "p/gone.j2"]);
    }
}

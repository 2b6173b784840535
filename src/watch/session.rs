//! The watcher thread: the first check of every prompt, then for each batch of saved paths the
//! prompts it affects (their own file, a partial they include, their manifest entries), each
//! checked once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::diagnostic::{Code, Diagnostic};
use crate::error::Error;
use crate::format::config;
use crate::format::manifest::{self, Manifest};
use crate::format::prompt::Prompt;
use crate::registry::{Discovery, LoadedPrompt, Registry};
use crate::render::template::referenced_templates;
use crate::render::{CompiledPrompt, RenderError};
use crate::snapshot::matcher::PromptMatcher;
use crate::snapshot::work::{normalize, Source, WorkTree};
use crate::watch::fs::{Batch, Debouncer, Message};
use crate::watch::{Cause, Event, Inputs, ManifestStatus, Options, RenderedCase, State, Status};

/// The watcher thread's state.
pub(super) struct Session {
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
}

impl Session {
    /// The state of a watcher that has not checked anything yet.
    pub(super) fn new(
        work: Arc<WorkTree>,
        ids: Vec<String>,
        options: Options,
        discovery: Discovery,
        matcher: Arc<PromptMatcher>,
        events: Sender<Event>,
    ) -> Session {
        Session {
            root: work.root().to_path_buf(),
            source: work,
            selected: ids.into_iter().collect(),
            options,
            discovery,
            matcher,
            deps: BTreeMap::new(),
            manifest: Manifest::default(),
            events,
        }
    }

    pub(super) fn run(mut self, raw: &Receiver<Message>) {
        let initial = self.start();
        if !self.send(initial) {
            return;
        }
        while let Some(batch) = self.debouncer().next_batch(raw) {
            let events = self.process(&batch);
            if !self.send(events) {
                return;
            }
        }
    }

    fn debouncer(&self) -> Debouncer<'_> {
        Debouncer {
            root: &self.root,
            debounce: self.options.debounce,
            deps: &self.deps,
            matcher: &self.matcher,
            events: &self.events,
        }
    }

    fn send(&self, events: Vec<Event>) -> bool {
        events.into_iter().all(|e| self.events.send(e).is_ok())
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
    /// root has history): validate's checks.
    fn manifest_findings(&self, manifest: &Manifest) -> Vec<Diagnostic> {
        let registry = Registry::open(&self.root).ok();
        let index = registry.as_ref().and_then(|r| r.index().ok());
        let ids = self
            .discovery
            .prompts
            .keys()
            .chain(self.discovery.conflicts.keys());
        let ids: BTreeSet<&str> = ids.map(String::as_str).collect();
        crate::check::validate::manifest_findings(manifest, &ids, index, &[])
    }
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
    let ids: BTreeSet<&String> = before
        .pointers()
        .chain(after.pointers())
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
            .map(|(name, _)| name)
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
    use crate::watch::session::*;

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

//! A registry: the prompt files under one root, in the working copy or at a commit.

pub mod reference;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use parking_lot::{ReentrantMutex, ReentrantMutexGuard};

use crate::diagnostic::{Code, Diagnostic};
use crate::error::{Error, Result};
use crate::format::manifest::{self, Manifest};
use crate::format::prompt::{suggest, Prompt};
use crate::git::{ObjectId, Repo};
use crate::history::cache;
use crate::history::{Version, VersionIndex};
use crate::registry::reference::{Reference, Selector};
use crate::render::template::{FileContext, Templates};
use crate::render::CompiledPrompt;
use crate::snapshot::commit::CommitSource;
use crate::snapshot::matcher::id_of;
use crate::snapshot::work::{Source, WorkTree};

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
        for file in source.prompt_files()? {
            let Some(id) = id_of(&file) else { continue };
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
    /// Reads and checks the prompt file `file` of `source`.
    pub fn read(source: Arc<dyn Source>, id: &str, file: &str) -> Result<LoadedPrompt> {
        let bytes = source.read(file)?.ok_or_else(|| {
            Error::NotFound(format!(
                "`{file}` does not exist in the {}",
                source.describe()
            ))
        })?;
        let parsed = Prompt::parse(file, &bytes);
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

/// The file of prompt `id` in a snapshot, found by its possible names (the snapshot's
/// [`Source::matcher`] says which) rather than by scanning every file; a full scan only
/// explains a failure (suggestions, conflicts).
pub fn find_file(source: &dyn Source, id: &str, root: &str) -> Result<String> {
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

/// A prompt registry rooted at one directory, with the git repository around it if there is
/// one.
///
/// A `Registry` is `Send + Sync`: the repository is opened once and guarded, and what is read
/// from it (the tip, the version index, the counts) is computed once per `Registry` and then
/// only read. It is one view of the history: the tip is resolved the first time it is needed
/// and kept. A long-lived program takes a [`Snapshot`] per state of the history instead
/// ([`Registry::snapshot`]): each resolves `HEAD` (or the revision) anew and shares the open
/// repository and the caches of this registry.
#[derive(Debug)]
pub struct Registry {
    shared: Arc<Shared>,
    pin: Pin,
    index: OnceLock<Arc<VersionIndex>>,
    /// The tip, once resolved.
    tip: OnceLock<ObjectId>,
    /// How many versions each file has, read from the cache's summary, for `list`.
    version_counts: OnceLock<BTreeMap<String, u32>>,
    /// The manifest, when it is read from a commit (and so never changes).
    committed_manifest: OnceLock<Arc<Manifest>>,
}

/// What the registries of one root share: the working copy, the repository (opened once) and
/// the commit snapshots already opened.
#[derive(Debug)]
struct Shared {
    root: PathBuf,
    work: Arc<WorkTree>,
    /// Reentrant, so that one thread can hold it across calls that take it again; git2's
    /// repository may move between threads but not be used by two at once.
    repo: Option<ReentrantMutex<Repo>>,
    /// Commit snapshots already opened, so each tree of a commit is read once; the newest
    /// [`MAX_OPEN_COMMITS`] are kept.
    commits: Mutex<OpenCommits>,
}

/// How many commit snapshots a registry keeps open.
const MAX_OPEN_COMMITS: usize = 64;

#[derive(Debug, Default)]
struct OpenCommits {
    by_id: std::collections::HashMap<ObjectId, Arc<CommitSource>>,
    /// Oldest first, for eviction.
    order: std::collections::VecDeque<ObjectId>,
}

impl OpenCommits {
    fn insert(&mut self, id: ObjectId, source: Arc<CommitSource>) {
        if self.by_id.insert(id, source).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > MAX_OPEN_COMMITS {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
    }
}

/// Which commit a registry reads versions from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pin {
    /// `HEAD`, resolved once.
    Head,
    /// A revision, resolved once; the manifest is read from its commit.
    Rev(String),
    /// One commit, as a [`Snapshot`] holds it; `head` when it was `HEAD` (the cache is
    /// written back only then).
    Commit { id: ObjectId, head: bool },
}

/// The repository of a registry, held by this thread (see [`Registry::repo`]).
pub type RepoGuard<'a> = ReentrantMutexGuard<'a, Repo>;

/// The registry at one commit: its prompts, its manifest and (on demand) its version index,
/// all read from that commit, and the prompts compiled so far. It never changes, so it can be
/// shared across threads in an `Arc`; [`Registry::snapshot`] takes a new one when the history
/// moves.
#[derive(Debug)]
pub struct Snapshot {
    registry: Registry,
    commit: ObjectId,
    discovery: Discovery,
    manifest: Manifest,
    /// Compiled prompts by id and version number.
    compiled: Mutex<BTreeMap<(String, u32), Arc<CompiledPrompt>>>,
}

/// How many compiled prompts a snapshot keeps.
const MAX_COMPILED: usize = 1024;

impl Snapshot {
    /// The commit.
    pub fn commit(&self) -> ObjectId {
        self.commit
    }

    /// The prompts of the commit, by id.
    pub fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    /// The commit's `defaults.yaml` (empty when it has none).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The registry pinned at this commit, for everything else it reads (versions, summaries,
    /// sources).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The version index of the commit's first-parent history, built (or read from the cache)
    /// the first time it is asked for.
    pub fn index(&self) -> Result<&VersionIndex> {
        self.registry.index()
    }

    /// Resolves a reference at this commit. `ID@work` is refused: a snapshot is committed
    /// content only.
    pub fn resolve(&self, reference: &Reference) -> Result<Resolved> {
        if reference.selector == Selector::Work {
            return Err(Error::Usage(format!(
                "`{reference}` names the working copy, which a snapshot of commit {} does not hold",
                self.commit.short()
            )));
        }
        let named_by_number = matches!(reference.selector, Selector::Version(_))
            || matches!(&reference.selector, Selector::Name(name) if self.manifest.labels.get(name.as_str()).is_none_or(|l| !l.contains_key(&reference.id)));
        if !named_by_number && !self.discovery.prompts.contains_key(&reference.id) {
            // Deleted at this commit: its versions stay readable by number or commit, but it
            // has no default or latest any more.
            let versions = self
                .registry
                .versions(&reference.id)
                .map(|(_, v)| v.len())
                .unwrap_or(0);
            if versions > 0 {
                return Err(Error::BadReference {
                    reference: reference.to_string(),
                    reason: format!(
                        "`{}` was deleted before commit {}",
                        reference.id,
                        self.commit.short()
                    ),
                    available: format!(
                        "its versions stay readable: `{}@1` to `{}@{versions}`",
                        reference.id, reference.id
                    ),
                });
            }
        }
        match self.registry.resolve_numbered(reference)? {
            Resolved::Work => Err(Error::NoHistory(format!(
                "`{}` has no committed versions at commit {}",
                reference.id,
                self.commit.short()
            ))),
            resolved => Ok(resolved),
        }
    }

    /// The compiled prompt a reference names, compiled once per version and kept.
    pub fn prompt(&self, reference: &Reference) -> Result<(Resolved, Arc<CompiledPrompt>)> {
        let resolved = self.resolve(reference)?;
        let number = match resolved {
            Resolved::Version { number, .. } => number,
            // Without numbers (a shallow clone), the tip's file: keyed as version 0.
            _ => 0,
        };
        let key = (reference.id.clone(), number);
        if let Some(found) = self.compiled_prompts().get(&key) {
            return Ok((resolved, found.clone()));
        }
        let compiled = Arc::new(
            self.registry
                .load_resolved(&reference.id, &resolved)?
                .compile()?,
        );
        let mut kept = self.compiled_prompts();
        if kept.len() >= MAX_COMPILED {
            kept.clear();
        }
        kept.insert(key, compiled.clone());
        Ok((resolved, compiled))
    }

    fn compiled_prompts(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<(String, u32), Arc<CompiledPrompt>>> {
        // A cache: a panic while it was held leaves it usable.
        self.compiled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A version of a prompt with the marks `defaults.yaml` gives it: whether `ID` resolves to it
/// (the manifest's default, else the latest) and which labels point at it.
#[derive(Debug, Clone)]
pub struct MarkedVersion<'a> {
    /// The version.
    pub version: &'a Version,
    /// Its commit.
    pub commit: &'a crate::git::CommitInfo,
    /// Whether it is the default.
    pub default: bool,
    /// The labels that point at it.
    pub labels: Vec<String>,
}

/// `versions` of prompt `id` (oldest first, as the index has them), newest first, with the
/// marks `manifest` gives them: the one rule `versions` and the server's version lists share.
pub fn marked_versions<'a>(
    index: &'a VersionIndex,
    versions: &'a [Version],
    manifest: &Manifest,
    id: &str,
) -> Vec<MarkedVersion<'a>> {
    let default = manifest.get(None, id).or(versions.last().map(|v| v.number));
    let labels = manifest.labels_of(id);
    versions
        .iter()
        .rev()
        .map(|v| MarkedVersion {
            version: v,
            commit: index.commit(v),
            default: default == Some(v.number),
            labels: labels
                .iter()
                .filter(|(_, n)| *n == v.number)
                .map(|(l, _)| l.to_string())
                .collect(),
        })
        .collect()
}

/// What a reference resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The working copy.
    Work,
    /// The newest committed content, in a repository whose history cannot be numbered (a
    /// shallow clone).
    Tip {
        /// The tip commit.
        commit: ObjectId,
    },
    /// A committed version.
    Version {
        /// Its number.
        number: u32,
        /// Its commit.
        commit: ObjectId,
    },
}

/// What `list` shows of one prompt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// The id.
    pub id: String,
    /// The file, relative to the root.
    pub file: String,
    /// Number of committed versions.
    pub versions: u32,
    /// The newest version, if any.
    pub latest: Option<u32>,
    /// The default version: the manifest's, else the latest.
    pub default: Option<u32>,
    /// Labels pointing at the prompt, with their versions.
    pub labels: BTreeMap<String, u32>,
    /// Whether the working copy differs from the latest version (or the file is uncommitted
    /// or deleted).
    pub modified: bool,
}

impl Registry {
    /// Opens the registry rooted at `root`, and the git repository around it if any.
    pub fn open(root: impl AsRef<Path>) -> Result<Registry> {
        let root = root.as_ref();
        let meta = std::fs::metadata(root).map_err(|e| Error::io(root, e))?;
        if !meta.is_dir() {
            return Err(Error::Usage(format!(
                "{} is not a directory",
                root.display()
            )));
        }
        let work = WorkTree::new(root)?;
        let repo = Repo::discover(work.root())?;
        // Templates read the working copy; the git dir, wherever it is, is never part of it.
        let work = Arc::new(match &repo {
            Some(repo) => work.with_git_dir(repo.git_dir()),
            None => work,
        });
        let shared = Shared {
            root: root.to_path_buf(),
            work,
            repo: repo.map(ReentrantMutex::new),
            commits: Mutex::new(OpenCommits::default()),
        };
        Ok(Registry::pinned(Arc::new(shared), Pin::Head))
    }

    fn pinned(shared: Arc<Shared>, pin: Pin) -> Registry {
        Registry {
            shared,
            pin,
            index: OnceLock::new(),
            tip: OnceLock::new(),
            version_counts: OnceLock::new(),
            committed_manifest: OnceLock::new(),
        }
    }

    /// The commit `HEAD` (or the revision) names now, resolved anew on every call: cheap (a
    /// ref read), so a long-lived program can poll it to learn that the history moved.
    pub fn current_tip(&self) -> Result<Option<ObjectId>> {
        let Some(repo) = self.repo() else {
            return Ok(None);
        };
        match &self.pin {
            Pin::Head => repo.head(),
            Pin::Rev(rev) => repo.resolve(rev).map(Some),
            Pin::Commit { id, .. } => Ok(Some(*id)),
        }
    }

    /// Reads versions from the first-parent history of `rev` instead of `HEAD`.
    pub fn with_rev(self, rev: Option<String>) -> Registry {
        let pin = match rev {
            Some(rev) => Pin::Rev(rev),
            None => Pin::Head,
        };
        Registry::pinned(self.shared, pin)
    }

    /// The registry as it is now: `HEAD` (or the revision) resolved anew, sharing this
    /// registry's open repository and caches. Everything a snapshot reads is read from its
    /// commit, the manifest included, so it never changes; a long-lived program keeps one per
    /// state of the history (in an `Arc`, across threads) and takes a new one when the
    /// history moves.
    pub fn snapshot(&self) -> Result<Snapshot> {
        self.snapshot_after(None)
    }

    /// [`Registry::snapshot`], with the version index carried on from `previous` (extended
    /// by the new commits, or rebuilt when the history was rewritten) rather than read from
    /// the cache: what a server that follows a moving branch does on every new tip.
    pub fn snapshot_after(&self, previous: Option<&Snapshot>) -> Result<Snapshot> {
        let head = match &self.pin {
            Pin::Head => true,
            Pin::Rev(_) => false,
            Pin::Commit { head, .. } => *head,
        };
        let commit = match &self.pin {
            Pin::Commit { id, .. } => *id,
            _ => Registry::pinned(self.shared.clone(), self.pin.clone()).tip()?,
        };
        let registry = Registry::pinned(self.shared.clone(), Pin::Commit { id: commit, head });
        if let Some(index) = previous.and_then(|p| p.registry.index.get()) {
            let mut index = VersionIndex::clone(index);
            let repo = registry.require_repo()?;
            index.update(&repo, commit)?;
            drop(repo);
            let _ = registry.index.set(Arc::new(index));
        }
        let source = registry.commit_source(commit)?;
        let discovery = Discovery::scan(source.as_ref())?;
        let manifest = registry.manifest()?;
        Ok(Snapshot {
            registry,
            commit,
            discovery,
            manifest,
            compiled: Mutex::new(BTreeMap::new()),
        })
    }

    /// The root as given.
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    /// The root for messages.
    fn root_name(&self) -> String {
        self.shared.root.display().to_string()
    }

    /// The working copy, for writing.
    pub fn work_tree(&self) -> &WorkTree {
        &self.shared.work
    }

    /// The working copy.
    pub fn work(&self) -> Arc<dyn Source> {
        self.shared.work.clone()
    }

    /// The git repository, if the root is inside one, held for this thread until the guard
    /// is dropped.
    pub fn repo(&self) -> Option<RepoGuard<'_>> {
        self.shared.repo.as_ref().map(ReentrantMutex::lock)
    }

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

    /// The registry's settings, `promptreg.yaml` in the working copy, or at the tip of a bare
    /// repository (the defaults without one); a file that does not load is an error naming
    /// its line.
    pub fn settings(&self) -> Result<crate::format::config::Config> {
        // A bare repository has no working copy: its settings are its tip's.
        let bytes = if self.shared.work.is_git_dir() {
            match self.current_tip()? {
                Some(tip) => self.commit_source(tip)?.read(crate::format::config::FILE)?,
                None => None,
            }
        } else {
            self.shared.work.read(crate::format::config::FILE)?
        };
        match bytes {
            Some(bytes) => crate::format::config::Config::load(&bytes),
            None => Ok(crate::format::config::Config::default()),
        }
    }

    /// The text of a root-relative file in the working copy, if it exists.
    pub fn read_work_text(&self, file: &str) -> Option<String> {
        let path = crate::snapshot::work::normalize(file).ok()?;
        let bytes = self.shared.work.read(&path).ok()??;
        String::from_utf8(bytes).ok()
    }

    /// The registry as it is at `commit`, opened once per command.
    pub(crate) fn commit_source(&self, commit: ObjectId) -> Result<Arc<CommitSource>> {
        if let Some(source) = self.open_commits().by_id.get(&commit) {
            return Ok(source.clone());
        }
        // The tip's root tree is worth keeping uncompressed: every render of a latest or
        // unpinned default version reads it. The list of open commits is not held while the
        // repository is read (a thread holding the repository may be waiting for it).
        let at_tip = self.tip().is_ok_and(|tip| tip == commit);
        let source = Arc::new(CommitSource::open(&*self.require_repo()?, commit, at_tip)?);
        self.open_commits().insert(commit, source.clone());
        Ok(source)
    }

    fn open_commits(&self) -> std::sync::MutexGuard<'_, OpenCommits> {
        // The list only caches: a panic while it was held cannot leave it wrong, only short.
        self.shared
            .commits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The commit versions are read from: `--rev`, else `HEAD`.
    pub fn tip(&self) -> Result<ObjectId> {
        if let Some(tip) = self.tip.get() {
            return Ok(*tip);
        }
        if let (Pin::Commit { id, .. }, Some(_)) = (&self.pin, &self.shared.repo) {
            return Ok(*self.tip.get_or_init(|| *id));
        }
        let repo = self.require_repo()?;
        let tip = match &self.pin {
            Pin::Rev(rev) => repo.resolve(rev),
            Pin::Commit { id, .. } => Ok(*id),
            Pin::Head => repo.head()?.ok_or_else(|| {
                Error::NoHistory("the repository has no commits yet, so no prompt has versions; commit a prompt to make its version 1".into())
            }),
        }?;
        Ok(*self.tip.get_or_init(|| tip))
    }

    fn require_repo(&self) -> Result<RepoGuard<'_>> {
        self.repo().ok_or_else(|| {
            Error::NoHistory(format!(
                "{} is not inside a git repository, so prompts have no versions; only the working copy (ID@work) is available",
                self.root_name()
            ))
        })
    }

    /// The version index, from the cache when it is current, else built or extended (and
    /// cached).
    pub fn index(&self) -> Result<&VersionIndex> {
        if let Some(index) = self.index.get() {
            return Ok(index);
        }
        let tip = self.tip()?;
        let at_head = matches!(self.pin, Pin::Head | Pin::Commit { head: true, .. });
        let index = self.index_at(tip, at_head)?;
        Ok(self.index.get_or_init(|| Arc::new(index)))
    }

    /// The version index of the first-parent history of any commit, starting from the cache
    /// when there is one; `store` writes the result back to the cache.
    pub(crate) fn index_at(&self, tip: ObjectId, store: bool) -> Result<VersionIndex> {
        let repo = self.require_repo()?;
        if repo.is_shallow() {
            return Err(Error::NoHistory(
                "this is a shallow clone, so versions cannot be numbered: fetch the whole history with `git fetch --unshallow` (in GitHub Actions: `fetch-depth: 0` on actions/checkout)".into(),
            ));
        }
        let path = cache::path(repo.git_dir(), repo.prefix());
        let index = match cache::load(&path) {
            Some(mut index) => {
                if index.update(&repo, tip)? && store {
                    cache::store(&path, &index);
                }
                index
            }
            None => {
                let index = VersionIndex::build(&repo, tip)?;
                if store {
                    cache::store(&path, &index);
                }
                index
            }
        };
        Ok(index)
    }

    /// How many versions each file has (the newest is that number), as `list` shows them:
    /// from the cache's summary when it is current for the tip, without reading the rest of
    /// it, else from [`Registry::index`].
    pub(crate) fn version_counts(&self) -> Result<std::borrow::Cow<'_, BTreeMap<String, u32>>> {
        use std::borrow::Cow;
        let count = |index: &VersionIndex| {
            index
                .files
                .iter()
                .map(|(file, versions)| (file.clone(), versions.len() as u32))
                .collect()
        };
        if let Some(index) = self.index.get() {
            return Ok(Cow::Owned(count(index)));
        }
        if let Some(counts) = self.version_counts.get() {
            return Ok(Cow::Borrowed(counts));
        }
        let repo = self.require_repo()?;
        if !repo.is_shallow() {
            let tip = self.tip()?;
            let path = cache::path(repo.git_dir(), repo.prefix());
            if let Some(counts) = cache::load_counts(&path, tip, repo.prefix()) {
                return Ok(Cow::Borrowed(self.version_counts.get_or_init(|| counts)));
            }
        }
        let counts = count(self.index()?);
        Ok(Cow::Borrowed(self.version_counts.get_or_init(|| counts)))
    }

    /// The manifest: from the working copy, or from the commit of `--rev`. A manifest that
    /// does not load (see [`Manifest::load`]) is an error, so no default ever falls back to
    /// the latest version because of a bad merge; no `defaults.yaml` at all is an empty one.
    pub fn manifest(&self) -> Result<Manifest> {
        self.manifest_shared().map(|m| (*m).clone())
    }

    /// [`Registry::manifest`], read once when it comes from a commit.
    fn manifest_shared(&self) -> Result<Arc<Manifest>> {
        if let Some(manifest) = self.committed_manifest.get() {
            return Ok(manifest.clone());
        }
        let committed = matches!(self.pin, Pin::Rev(_) | Pin::Commit { .. });
        let manifest = Arc::new(self.read_manifest()?);
        if committed && self.shared.repo.is_some() {
            return Ok(self.committed_manifest.get_or_init(|| manifest).clone());
        }
        Ok(manifest)
    }

    fn read_manifest(&self) -> Result<Manifest> {
        let bytes = match (&self.pin, &self.shared.repo) {
            (Pin::Rev(_) | Pin::Commit { .. }, Some(_)) => {
                self.commit_source(self.tip()?)?.read(manifest::FILE)?
            }
            _ => self.shared.work.read(manifest::FILE)?,
        };
        match bytes {
            Some(bytes) => Manifest::load(&bytes),
            None => Ok(Manifest::default()),
        }
    }

    /// The versions of prompt `id`, oldest first.
    pub fn versions(&self, id: &str) -> Result<(&VersionIndex, Vec<Version>)> {
        let index = self.index()?;
        let versions = index
            .file_of(id)
            .map(|f| index.versions(&f).to_vec())
            .unwrap_or_default();
        Ok((index, versions))
    }

    /// Resolves a reference to the working copy or a committed version.
    pub fn resolve(&self, reference: &Reference) -> Result<Resolved> {
        // The latest version, and a default the manifest does not pin, is the file at the tip:
        // no version numbers, and so no version index, are needed to render it.
        let latest_like = match reference.selector {
            Selector::Latest => true,
            Selector::Default => self.manifest_shared()?.get(None, &reference.id).is_none(),
            _ => false,
        };
        if latest_like && self.shared.repo.is_some() {
            if let Ok(tip) = self.tip() {
                let source = self.commit_source(tip)?;
                if find_file(source.as_ref(), &reference.id, "").is_ok() {
                    return Ok(Resolved::Tip { commit: tip });
                }
            }
        }
        self.resolve_numbered(reference)
    }

    /// Resolves a reference to the working copy or a numbered version (never to
    /// [`Resolved::Tip`] when history can be numbered).
    pub fn resolve_numbered(&self, reference: &Reference) -> Result<Resolved> {
        let id = reference.id.as_str();
        if reference.selector == Selector::Work {
            return Ok(Resolved::Work);
        }
        if reference.selector == Selector::Default && self.shared.repo.is_none() {
            return Ok(Resolved::Work);
        }
        if reference.selector == Selector::Default && matches!(self.tip(), Err(Error::NoHistory(_)))
        {
            return Ok(Resolved::Work);
        }
        let manifest = self.manifest_shared()?;
        let (index, versions) = match self.versions(id) {
            Ok(found) => found,
            Err(Error::NoHistory(why)) => {
                // Without numbers (a shallow clone) the latest version is still the file at the
                // tip, and so is the default unless the manifest pins a number.
                let unpinned =
                    reference.selector == Selector::Default && manifest.get(None, id).is_none();
                if reference.selector == Selector::Latest || unpinned {
                    let tip = self.tip()?;
                    let source = self.commit_source(tip)?;
                    if Discovery::scan(source.as_ref())?.prompts.contains_key(id) {
                        return Ok(Resolved::Tip { commit: tip });
                    }
                    if unpinned && self.discover_work()?.prompts.contains_key(id) {
                        return Ok(Resolved::Work);
                    }
                }
                return Err(Error::NoHistory(why));
            }
            Err(e) => return Err(e),
        };
        let version = |n: u32| -> Result<Resolved> {
            match (n as usize).checked_sub(1).and_then(|i| versions.get(i)) {
                Some(v) => Ok(Resolved::Version {
                    number: v.number,
                    commit: index.commit(v).id,
                }),
                None => Err(self.unresolved(
                    reference,
                    &format!("`{id}` has no version {n}"),
                    &versions,
                    &manifest,
                )),
            }
        };
        if versions.is_empty() {
            if reference.selector == Selector::Default
                && self.discover_work()?.prompts.contains_key(id)
            {
                return Ok(Resolved::Work);
            }
            let discovery = self.discover_work()?;
            discovery.file(id, &self.root_name())?;
            return Err(self.unresolved(
                reference,
                &format!("`{id}` has no committed versions yet"),
                &versions,
                &manifest,
            ));
        }
        match &reference.selector {
            Selector::Work => Ok(Resolved::Work),
            Selector::Default => match manifest.get(None, id) {
                Some(n) => version(n),
                None => version(versions.len() as u32),
            },
            Selector::Latest => version(versions.len() as u32),
            Selector::Version(n) => version(*n),
            Selector::Name(name) => {
                if let Some(n) = manifest.get(Some(name), id) {
                    return version(n);
                }
                if manifest.labels.contains_key(name.as_str()) {
                    let reason = format!("label `{name}` does not point at `{id}`");
                    return Err(self.unresolved(reference, &reason, &versions, &manifest));
                }
                if name.len() >= 7 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return self.resolve_commit(reference, name, index, &versions, &manifest);
                }
                let reason = format!("`{name}` is not a version, a label or a commit");
                Err(self.unresolved(reference, &reason, &versions, &manifest))
            }
        }
    }

    fn resolve_commit(
        &self,
        reference: &Reference,
        hex: &str,
        index: &VersionIndex,
        versions: &[Version],
        manifest: &Manifest,
    ) -> Result<Resolved> {
        let repo = self.require_repo()?;
        let commit = repo.resolve(hex).map_err(|_| {
            self.unresolved(reference, &format!("no commit `{hex}`"), versions, manifest)
        })?;
        // The version current at a commit: the file's blob there, matched to the newest version
        // with that blob that is not newer than the commit.
        let source = self.commit_source(commit)?;
        let file = index.file_of(&reference.id).unwrap_or_default();
        let blob = source.blob_id(&file)?;
        let seq = index.first_parent_seq(&repo, commit)?;
        let found = versions
            .iter()
            .rev()
            .filter(|v| seq.is_none_or(|s| v.seq <= s))
            .find(|v| Some(v.blob) == blob);
        match found {
            Some(v) => Ok(Resolved::Version {
                number: v.number,
                commit: index.commit(v).id,
            }),
            None if blob.is_some() => {
                let reason = format!(
                    "`{}` at commit {} is not a version on the first-parent history (a side-branch commit?)",
                    reference.id,
                    commit.short()
                );
                Err(self.unresolved(reference, &reason, versions, manifest))
            }
            None => {
                let reason = format!(
                    "`{}` does not exist at commit {}",
                    reference.id,
                    commit.short()
                );
                Err(self.unresolved(reference, &reason, versions, manifest))
            }
        }
    }

    fn unresolved(
        &self,
        reference: &Reference,
        reason: &str,
        versions: &[Version],
        manifest: &Manifest,
    ) -> Error {
        let mut available = match versions.len() {
            0 => "it has no committed versions; `ID@work` is the working copy".to_string(),
            1 => "it has version 1".to_string(),
            n => format!("it has versions 1 to {n}"),
        };
        let labels = manifest.labels_of(&reference.id);
        if !labels.is_empty() {
            let names: Vec<String> = labels.iter().map(|(l, v)| format!("{l} (v{v})")).collect();
            available.push_str(&format!("; labels: {}", names.join(", ")));
        }
        if let Selector::Name(name) = &reference.selector {
            // Never the reference that just failed (a label that does not point at this id).
            let candidates = manifest
                .labels
                .keys()
                .map(String::as_str)
                .chain(["latest", "work"])
                .filter(|c| *c != name);
            if let Some(s) = suggest(name, candidates) {
                available.push_str(&format!("; did you mean `{}@{s}`?", reference.id));
            }
        }
        Error::BadReference {
            reference: reference.to_string(),
            reason: reason.to_string(),
            available,
        }
    }

    /// The snapshot a resolved reference reads from.
    pub fn source(&self, resolved: &Resolved) -> Result<Arc<dyn Source>> {
        match resolved {
            Resolved::Work => Ok(self.work()),
            Resolved::Version { commit, .. } | Resolved::Tip { commit } => {
                Ok(self.commit_source(*commit)?)
            }
        }
    }

    /// Reads the prompt a reference names.
    pub fn load(&self, reference: &Reference) -> Result<LoadedPrompt> {
        let resolved = self.resolve(reference)?;
        self.load_resolved(&reference.id, &resolved)
    }

    /// Reads prompt `id` as it is in a resolved snapshot.
    pub fn load_resolved(&self, id: &str, resolved: &Resolved) -> Result<LoadedPrompt> {
        match resolved {
            Resolved::Work => self.load_work(id),
            Resolved::Version { .. } | Resolved::Tip { .. } => {
                let source = self.source(resolved)?;
                let file = find_file(source.as_ref(), id, &source.describe())?;
                LoadedPrompt::read(source, id, &file)
            }
        }
    }

    /// Whether the working copy of `file` differs from `blob` (or does not exist).
    /// The comparison is git's: the working bytes pass through git's line-ending rules first
    /// (`core.autocrlf`, `.gitattributes`), so a clean CRLF checkout is not modified.
    pub(crate) fn work_differs(&self, file: &str, blob: Option<ObjectId>) -> Result<bool> {
        let bytes = self.shared.work.read(file)?;
        Ok(match (bytes, blob) {
            (None, None) => false,
            (Some(bytes), Some(blob)) => self.work_blob_id(file, &bytes) != blob,
            _ => true,
        })
    }

    /// The blob id git gives the working bytes of `file`, after its line-ending rules.
    pub(crate) fn work_blob_id(&self, file: &str, bytes: &[u8]) -> ObjectId {
        match self.repo() {
            Some(repo) => repo.work_blob_id(file, bytes),
            None => Repo::hash_blob(bytes),
        }
    }

    /// One row per prompt: of the working copy, and of the tip when they differ.
    pub fn summaries(&self) -> Result<Vec<Summary>> {
        self.summaries_of(&self.discover_work()?)
    }

    /// [`Registry::summaries`] of the working copy's prompts found already.
    pub(crate) fn summaries_of(&self, discovery: &Discovery) -> Result<Vec<Summary>> {
        let mut files: BTreeMap<String, String> = discovery.prompts.clone();
        let counts = match self.version_counts() {
            Ok(counts) => Some(counts),
            Err(Error::NoHistory(_)) => None,
            Err(e) => return Err(e),
        };
        let manifest = self.manifest()?;
        // The prompt files committed at the tip, with their blobs: outside git there is
        // nothing to compare with; in a repository without commits every file is new.
        let tip_blobs: Option<BTreeMap<String, ObjectId>> = match &self.shared.repo {
            None => None,
            Some(_) => match self.tip() {
                Ok(tip) => Some(self.commit_source(tip)?.prompt_blobs()?),
                Err(Error::NoHistory(_)) => Some(BTreeMap::new()),
                Err(e) => return Err(e),
            },
        };
        // Prompts committed at the tip but deleted from the working copy still show.
        for file in tip_blobs.iter().flat_map(BTreeMap::keys) {
            if let Some(id) = id_of(file) {
                files.entry(id.to_string()).or_insert_with(|| file.clone());
            }
        }
        // Files whose stat git's index vouches for are not read.
        let staged = match (self.repo(), &tip_blobs) {
            (Some(repo), Some(_)) => repo.staged_files(),
            _ => crate::git::StagedFiles::default(),
        };
        let mut rows = Vec::with_capacity(files.len());
        for (id, file) in files {
            let versions = counts
                .as_ref()
                .and_then(|counts| counts.get(&file).copied())
                .unwrap_or(0);
            let latest = (versions > 0).then_some(versions);
            let modified = match &tip_blobs {
                None => false,
                Some(blobs) => {
                    let blob = blobs.get(&file).copied();
                    let clean =
                        blob.is_some_and(|b| staged.unchanged(self.shared.work.root(), &file, b));
                    // A file that cannot be read as a prompt (too large, a FIFO) is not the
                    // committed version; `validate` says why, `list` still lists it.
                    !clean
                        && match self.work_differs(&file, blob) {
                            Ok(differs) => differs,
                            Err(Error::Unreadable { .. }) => true,
                            Err(e) => return Err(e),
                        }
                }
            };
            rows.push(Summary {
                default: manifest.get(None, &id).or(latest),
                labels: manifest
                    .labels_of(&id)
                    .into_iter()
                    .map(|(l, v)| (l.to_string(), v))
                    .collect(),
                latest,
                versions,
                modified,
                id,
                file,
            });
        }
        Ok(rows)
    }
}

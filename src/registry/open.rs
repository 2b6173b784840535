//! Opening a registry: its root, the git repository around it, the revision it is pinned to,
//! the commits it has opened, its version index and its manifest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use parking_lot::{ReentrantMutex, ReentrantMutexGuard};

use crate::error::{Error, Result};
use crate::format::manifest::{self, Manifest};
use crate::git::{ObjectId, Repo};
use crate::history::cache;
use crate::history::VersionIndex;
use crate::snapshot::commit::CommitSource;
use crate::snapshot::work::{Source, WorkTree};

/// A prompt registry rooted at one directory, with the git repository around it if there is
/// one.
///
/// A `Registry` is `Send + Sync`: the repository is opened once and guarded, and what is read
/// from it (the tip, the version index, the counts) is computed once per `Registry` and then
/// only read. It is one view of the history: the tip is resolved the first time it is needed
/// and kept. A long-lived program takes a [`Snapshot`](crate::registry::Snapshot) per state of the history instead
/// ([`Registry::snapshot`]): each resolves `HEAD` (or the revision) anew and shares the open
/// repository and the caches of this registry.
#[derive(Debug)]
pub struct Registry {
    pub(super) shared: Arc<Shared>,
    pub(super) pin: Pin,
    pub(super) index: OnceLock<Arc<VersionIndex>>,
    /// The tip, once resolved.
    pub(super) tip: OnceLock<ObjectId>,
    /// How many versions each file has, read from the cache's summary, for `list`.
    pub(super) version_counts: OnceLock<BTreeMap<String, u32>>,
    /// The manifest, when it is read from a commit (and so never changes).
    pub(super) committed_manifest: OnceLock<Arc<Manifest>>,
}

/// What the registries of one root share: the working copy, the repository (opened once) and
/// the commit snapshots already opened.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) root: PathBuf,
    pub(super) work: Arc<WorkTree>,
    /// Reentrant, so that one thread can hold it across calls that take it again; git2's
    /// repository may move between threads but not be used by two at once.
    pub(super) repo: Option<ReentrantMutex<Repo>>,
    /// Commit snapshots already opened, so each tree of a commit is read once; the newest
    /// [`MAX_OPEN_COMMITS`] are kept.
    pub(super) commits: Mutex<OpenCommits>,
}

/// How many commit snapshots a registry keeps open.
pub(super) const MAX_OPEN_COMMITS: usize = 64;

#[derive(Debug, Default)]
pub(super) struct OpenCommits {
    pub(super) by_id: std::collections::HashMap<ObjectId, Arc<CommitSource>>,
    /// Oldest first, for eviction.
    pub(super) order: std::collections::VecDeque<ObjectId>,
}

impl OpenCommits {
    pub(super) fn insert(&mut self, id: ObjectId, source: Arc<CommitSource>) {
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
pub(super) enum Pin {
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

    pub(super) fn pinned(shared: Arc<Shared>, pin: Pin) -> Registry {
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

    /// The registry read from the first-parent history of `rev` (a branch, a tag, a commit),
    /// sharing this one's open repository and caches.
    pub fn at_rev(&self, rev: &str) -> Registry {
        Registry::pinned(self.shared.clone(), Pin::Rev(rev.to_string()))
    }

    /// The root as given.
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    /// The root for messages.
    pub(super) fn root_name(&self) -> String {
        self.shared.root.display().to_string()
    }

    /// The working copy, for writing (public with the `unstable` feature: an internal type).
    #[cfg(feature = "unstable")]
    pub fn work_tree(&self) -> &WorkTree {
        &self.shared.work
    }

    /// The working copy, for writing.
    #[cfg(not(feature = "unstable"))]
    pub(crate) fn work_tree(&self) -> &WorkTree {
        &self.shared.work
    }

    /// The working copy as a source of files (public with the `unstable` feature).
    #[cfg(feature = "unstable")]
    pub fn work(&self) -> Arc<dyn Source> {
        self.shared.work.clone()
    }

    /// The working copy as a source of files.
    #[cfg(not(feature = "unstable"))]
    pub(crate) fn work(&self) -> Arc<dyn Source> {
        self.shared.work.clone()
    }

    /// The git repository, if the root is inside one, held for this thread until the guard
    /// is dropped. Public only with the `unstable` feature: its type is an internal.
    #[cfg(feature = "unstable")]
    pub fn repo(&self) -> Option<RepoGuard<'_>> {
        self.shared.repo.as_ref().map(ReentrantMutex::lock)
    }

    /// The git repository, if the root is inside one, held for this thread until the guard
    /// is dropped.
    #[cfg(not(feature = "unstable"))]
    pub(crate) fn repo(&self) -> Option<RepoGuard<'_>> {
        self.shared.repo.as_ref().map(ReentrantMutex::lock)
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

    pub(super) fn open_commits(&self) -> std::sync::MutexGuard<'_, OpenCommits> {
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

    pub(crate) fn require_repo(&self) -> Result<RepoGuard<'_>> {
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
    pub(super) fn manifest_shared(&self) -> Result<Arc<Manifest>> {
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

    pub(super) fn read_manifest(&self) -> Result<Manifest> {
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
}

//! The one door to git. Every git2 call of promptreg is in this file, behind [`Repo`]: commits
//! on the first-parent chain, the registry root's tree at a commit, object bytes, git's
//! line-ending rules, and committing one file as a transaction. It knows nothing of prompts,
//! versions or the caches; no git2 type leaves this module. Uses: `error`, `lock`, `oid`,
//! `tree`, `time`.

pub(crate) mod lock;
pub mod oid;
pub(crate) mod store;
pub mod time;
pub(crate) mod tree;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, GitError, Result};
use crate::git::lock::LockFile;
use crate::git::tree::tree_entries;

pub use crate::git::oid::ObjectId;

/// git2's id of one of ours; 20 bytes always make an `Oid`.
trait ToOid {
    fn oid(&self) -> git2::Oid;
}

impl ToOid for ObjectId {
    fn oid(&self) -> git2::Oid {
        git2::Oid::from_bytes(&self.0).unwrap_or(git2::Oid::ZERO_SHA1)
    }
}

fn from_oid(oid: git2::Oid) -> ObjectId {
    let mut out = [0u8; 20];
    out.copy_from_slice(oid.as_bytes());
    ObjectId(out)
}

/// What a version records about its commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// The commit id.
    pub id: ObjectId,
    /// Author name.
    pub author: String,
    /// Author email.
    pub email: String,
    /// Commit time, seconds since the epoch.
    pub time: i64,
    /// Offset of the commit time from UTC, in minutes.
    pub offset_minutes: i32,
    /// The full message.
    pub message: String,
}

/// What git's index records about the staged files under the registry root: enough to tell
/// that a working file is unchanged without reading and hashing it, the way `git status` does.
#[derive(Debug, Default)]
pub struct StagedFiles {
    files: HashMap<String, Staged>,
    /// When the index file was last written, for git's "racy" check.
    written: Option<std::time::SystemTime>,
}

#[derive(Debug, Clone, Copy)]
struct Staged {
    id: ObjectId,
    size: u32,
    mtime_seconds: i32,
    mtime_nanos: u32,
    ino: u32,
}

impl StagedFiles {
    /// Whether the working file `root/file` certainly holds blob `blob`: git's index has that
    /// blob for it, and the file's size, modification time and inode are the ones recorded
    /// then. A file modified in the same instant the index was written ("racily clean" in git's
    /// words), a symlink, or anything unusual answers `false`, and the caller reads the file.
    pub fn unchanged(&self, root: &Path, file: &str, blob: ObjectId) -> bool {
        let Some(staged) = self.files.get(file).filter(|s| s.id == blob) else {
            return false;
        };
        let Ok(meta) = std::fs::symlink_metadata(root.join(file)) else {
            return false;
        };
        let Ok(modified) = meta.modified() else {
            return false;
        };
        if !meta.is_file() || self.written.is_none_or(|written| written <= modified) {
            return false;
        }
        same_stat(&meta, staged)
    }
}

#[cfg(unix)]
fn same_stat(meta: &std::fs::Metadata, staged: &Staged) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.size() as u32 == staged.size
        && meta.mtime() as i32 == staged.mtime_seconds
        && (staged.mtime_nanos == 0 || meta.mtime_nsec() as u32 == staged.mtime_nanos)
        && (staged.ino == 0 || meta.ino() as u32 == staged.ino)
}

#[cfg(not(unix))]
fn same_stat(_meta: &std::fs::Metadata, _staged: &Staged) -> bool {
    false
}

/// The parts of a commit the history walk needs.
#[derive(Debug, Clone, Copy)]
pub struct CommitLinks {
    /// The commit's tree.
    pub tree: ObjectId,
    /// The first parent, if any.
    pub first_parent: Option<ObjectId>,
}

/// A git repository that holds a registry, and where in it the registry root is.
pub struct Repo {
    repo: git2::Repository,
    /// The work tree; the git dir itself for a bare repository.
    workdir: PathBuf,
    /// The registry root relative to the work tree, `/`-separated, empty or ending in `/`.
    prefix: String,
    /// A bare repository: commits only, no work tree.
    bare: bool,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("workdir", &self.workdir)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Sets libgit2's process-wide options for a short-lived process that reads history and
/// fetches nothing: object hash checks and the object cache off, smaller pack windows. They
/// change every git2 user in the process, so only a program that owns the process (the
/// `promptreg` binary) calls this, before it opens a repository; the library never does, and a
/// server that fetches from remotes keeps hash checks on.
pub fn tune_for_short_process() {
    // libgit2 re-hashes every object it reads by default; git itself does not (it leaves
    // that to fsck), and the hashing was three quarters of a cold history walk.
    static RELAX: std::sync::Once = std::sync::Once::new();
    RELAX.call_once(|| {
        git2::opts::strict_hash_verification(false);
        // The object cache keeps every object read (up to 256 MiB): a history walk reads
        // each tree once and keeps what it needs itself.
        git2::opts::enable_caching(false);
        // libgit2 maps pack files in windows of up to 1 GiB and keeps up to 8 GiB mapped;
        // every page a history walk touches then counts as resident memory. Smaller
        // windows and a mapped limit keep a walk of a large repository small.
        // SAFETY: these only set libgit2's global limits; `call_once` runs them once, and
        // the caller runs this before it opens a repository.
        #[allow(unsafe_code)]
        unsafe {
            let _ = git2::opts::set_mwindow_size(32 << 20);
            let _ = git2::opts::set_mwindow_mapped_limit(64 << 20);
        }
    });
}

impl Repo {
    /// Finds the repository that contains `root` (canonical). `Ok(None)` outside git.
    pub fn discover(root: &Path) -> Result<Option<Repo>> {
        let Some(repo) = open_repository(root)? else {
            return Ok(None);
        };
        let Some(workdir) = repo.workdir() else {
            // A bare repository has commits and nothing else: its registry is at its top, and
            // it is read from commits only (`serve`, `export`).
            let git_dir = repo
                .path()
                .canonicalize()
                .map_err(|e| Error::io(repo.path(), e))?;
            if root != git_dir {
                return Err(Error::Unsupported(format!(
                    "{} is inside the bare repository {}; run promptreg at its top (-C {})",
                    root.display(),
                    git_dir.display(),
                    git_dir.display()
                )));
            }
            return Ok(Some(Repo {
                repo,
                workdir: git_dir,
                prefix: String::new(),
                bare: true,
            }));
        };
        let workdir = workdir.canonicalize().map_err(|e| Error::io(workdir, e))?;
        let Ok(rel) = root.strip_prefix(&workdir) else {
            return Ok(None);
        };
        let mut prefix = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if !prefix.is_empty() {
            prefix.push('/');
        }
        Ok(Some(Repo {
            repo,
            workdir,
            prefix,
            bare: false,
        }))
    }

    /// Whether this is a bare repository (no work tree: only its commits can be read).
    pub fn is_bare(&self) -> bool {
        self.bare
    }

    /// The registry root relative to the work tree (`""` or `dir/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The work tree.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// The git dir (`.git`), where the version index cache lives.
    pub fn git_dir(&self) -> &Path {
        self.repo.path()
    }

    /// Whether the repository has a remote of this name.
    pub fn has_remote(&self, name: &str) -> bool {
        self.repo.find_remote(name).is_ok()
    }

    /// Whether this is a shallow clone.
    pub fn is_shallow(&self) -> bool {
        self.repo.is_shallow()
    }

    /// The commit `HEAD` points at; `None` in a repository without commits.
    pub fn head(&self) -> Result<Option<ObjectId>> {
        match self.repo.head() {
            // A branch or a detached HEAD names its commit directly: no need to read it.
            Ok(head) => match head.target() {
                Some(oid) => Ok(Some(from_oid(oid))),
                None => Ok(Some(from_oid(head.peel_to_commit()?.id()))),
            },
            Err(e)
                if e.code() == git2::ErrorCode::UnbornBranch
                    || e.code() == git2::ErrorCode::NotFound =>
            {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Resolves a revision (`main`, `HEAD~2`, `origin/main`, a hex prefix) to a commit.
    pub fn resolve(&self, rev: &str) -> Result<ObjectId> {
        let object = self
            .repo
            .revparse_single(rev)
            .map_err(|e| Error::NotFound(format!("unknown revision `{rev}`: {}", e.message())))?;
        let commit = object
            .peel_to_commit()
            .map_err(|_| Error::NotFound(format!("`{rev}` does not name a commit")))?;
        Ok(from_oid(commit.id()))
    }

    /// The best common ancestor of two commits, if they have one.
    pub fn merge_base(&self, a: ObjectId, b: ObjectId) -> Result<Option<ObjectId>> {
        match self.repo.merge_base(a.oid(), b.oid()) {
            Ok(oid) => Ok(Some(from_oid(oid))),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a raw object's bytes.
    pub fn read_raw(&self, id: ObjectId) -> Result<Vec<u8>> {
        let odb = self.repo.odb()?;
        let object = odb.read(id.oid())?;
        Ok(object.data().to_vec())
    }

    /// A reader for many objects in a row (the history walk).
    pub fn objects(&self) -> Result<Objects<'_>> {
        Ok(Objects {
            odb: self.repo.odb()?,
        })
    }

    /// The metadata of a commit.
    pub fn commit_info(&self, id: ObjectId) -> Result<CommitInfo> {
        let commit = self.repo.find_commit(id.oid())?;
        let author = commit.author();
        let time = commit.time();
        // A commit's `encoding` header says how its message and names are written (git
        // writes it for `i18n.commitEncoding` other than UTF-8); without one they are UTF-8.
        let encoding = commit
            .message_encoding()
            .ok()
            .flatten()
            .and_then(|label| encoding_rs::Encoding::for_label(label.as_bytes()))
            .unwrap_or(encoding_rs::UTF_8);
        let text = |bytes: &[u8]| encoding.decode_without_bom_handling(bytes).0.into_owned();
        Ok(CommitInfo {
            id,
            author: text(author.name_bytes()),
            email: text(author.email_bytes()),
            time: time.seconds(),
            offset_minutes: time.offset_minutes(),
            message: text(commit.message_bytes()),
        })
    }

    /// The tree id of the registry root at `commit`, or `None` when the root does not exist
    /// there.
    pub fn root_tree(
        &self,
        objects: &Objects<'_>,
        commit_tree: ObjectId,
    ) -> Result<Option<ObjectId>> {
        let mut tree = commit_tree;
        for part in self.prefix.split('/').filter(|p| !p.is_empty()) {
            let data = objects.read(tree)?;
            let found = tree_entries(&data)
                .find(|e| e.name == part.as_bytes() && e.is_tree)
                .map(|e| e.id);
            match found {
                Some(id) => tree = id,
                None => return Ok(None),
            }
        }
        Ok(Some(tree))
    }

    /// The registry root's tree at a commit.
    pub fn root_tree_at(&self, commit: ObjectId) -> Result<Option<ObjectId>> {
        let objects = self.objects()?;
        let links = objects.commit_links(commit)?;
        self.root_tree(&objects, links.tree)
    }

    /// The hash a file's bytes would have as a blob.
    pub fn hash_blob(bytes: &[u8]) -> ObjectId {
        git2::Oid::hash_object(git2::ObjectType::Blob, bytes)
            .map_or_else(|_| ObjectId::default(), from_oid)
    }

    /// The blob id of `path` (registry-relative) in the index, if it is staged.
    pub fn index_blob(&self, path: &str) -> Result<Option<ObjectId>> {
        let index = self.repo.index()?;
        let full = format!("{}{}", self.prefix, path);
        Ok(index.get_path(Path::new(&full), 0).map(|e| from_oid(e.id)))
    }

    /// What git's index records about the files under the registry root. An index libgit2
    /// cannot read gives no entries, so every file is read and hashed instead.
    pub fn staged_files(&self) -> StagedFiles {
        let Ok(index) = self.repo.index() else {
            return StagedFiles::default();
        };
        let written = std::fs::metadata(self.repo.path().join("index"))
            .and_then(|m| m.modified())
            .ok();
        let mut files = HashMap::new();
        for entry in index.iter() {
            // Only stage 0: a conflicted file is not clean.
            if (entry.flags >> 12) & 3 != 0 {
                continue;
            }
            let Some(file) = std::str::from_utf8(&entry.path)
                .ok()
                .and_then(|p| p.strip_prefix(self.prefix.as_str()))
            else {
                continue;
            };
            files.insert(
                file.to_string(),
                Staged {
                    id: from_oid(entry.id),
                    size: entry.file_size,
                    mtime_seconds: entry.mtime.seconds(),
                    mtime_nanos: entry.mtime.nanoseconds(),
                    ino: entry.ino,
                },
            );
        }
        StagedFiles { files, written }
    }
    /// Commits one registry file as a new commit on `HEAD`, as one transaction that lands whole
    /// or not at all:
    ///
    /// 1. refuses while a merge, rebase, cherry-pick, revert, `am` or bisect is in progress, for
    ///    a path inside a submodule, and with an index that has conflicts or that libgit2 cannot
    ///    write back as git wrote it (sparse or split);
    /// 2. takes git's own `index.lock` (waiting for another writer, see [`crate::git::lock`]), and
    ///    reads `HEAD` and the index under it;
    /// 3. builds the commit from `HEAD`'s tree with `content(HEAD's bytes)` at `path`, passed
    ///    through git's line-ending rules (`core.autocrlf`, `.gitattributes`) as `git add` does;
    /// 4. writes the new index into the lock file: the path's entry gets the committed blob when
    ///    the index had `HEAD`'s, else `content(staged bytes)`, so a staged change of the same
    ///    file is kept; every other entry is untouched;
    /// 5. moves the branch (or a detached `HEAD`) only if it still points at the parent
    ///    (compare-and-swap), then renames the lock over the index.
    ///
    /// Anything that fails before step 5 leaves refs, index and files as they were.
    pub fn commit_file(
        &self,
        path: &str,
        content: &Content<'_>,
        message: &str,
    ) -> Result<Committed> {
        self.commit_files(&[(path, FileEdit::Content(content))], message)
    }

    /// Commits several registry files at once (new contents or removals) as one commit on
    /// `HEAD`, in the one transaction [`Repo::commit_file`] describes, for each file in turn.
    /// A removed file's index entry goes only when it held `HEAD`'s blob: a staged change of a
    /// file that is removed is refused, never dropped. Working files are left to the caller.
    pub fn commit_files(&self, edits: &[(&str, FileEdit<'_>)], message: &str) -> Result<Committed> {
        self.check_state()?;
        check_message(message)?;
        if edits.is_empty() {
            return Err(Error::Refused("nothing to commit".into()));
        }
        let (author, committer) = self.identities()?;
        let git_dir = self.repo.path().to_path_buf();
        let index_path = git_dir.join("index");
        // Writers of promptreg queue on a lock the system releases if the process dies; git's
        // own `index.lock` is taken inside it, for as long as the index is being rewritten.
        let _writer = crate::git::lock::WriterLock::acquire(&git_dir.join("promptreg.lock"))?;
        let mut lock = LockFile::acquire(&index_path)?;
        let head = self.head_ref()?;
        let parent = match head.target() {
            Some(id) => Some(self.repo.find_commit(id)?),
            None => None,
        };
        let base_tree = parent.as_ref().map(git2::Commit::tree).transpose()?;

        // The new index, prepared in a copy of the current one and moved onto the lock.
        let staging = tempfile::Builder::new()
            .prefix("promptreg-index")
            .tempfile_in(&git_dir)
            .map_err(|e| Error::io(&git_dir, e))?
            .into_temp_path();
        copy_index(&index_path, &staging)?;
        let mut index = git2::Index::open(&staging).map_err(|e| unwritable_index(&e))?;
        if index.has_conflicts() {
            return Err(Error::Refused(
                "git's index has unresolved conflicts: resolve them (`git status` lists them) and run this again".into(),
            ));
        }

        // Each file: its blob in the commit, and what its index entry becomes.
        let mut tree = base_tree.as_ref().map(git2::Tree::id);
        let mut restores = Vec::new();
        let mut changed = false;
        for (path, edit) in edits {
            let full = format!("{}{}", self.prefix, path);
            let removing = matches!(edit, FileEdit::Remove);
            check_change_path(&full, removing, |prefix| {
                base_tree
                    .as_ref()
                    .and_then(|tree| tree.get_path(Path::new(prefix)).ok())
                    .map(|e| e.filemode() as u32)
            })?;
            // What is staged counts too: a file staged at a leading folder of the path, or a
            // submodule.
            check_change_path(&full, removing, |prefix| {
                index.get_path(Path::new(prefix), 0).map(|e| e.mode)
            })?;
            let head_entry = match &base_tree {
                Some(tree) => tree_file(tree, &full, path)?,
                None => None,
            };
            let head_blob = head_entry.map(|(id, _)| id);
            let staged = index.get_path(Path::new(&full), 0);
            let (blob, staged_blob) = match edit {
                FileEdit::Remove => {
                    if staged.as_ref().is_some_and(|e| Some(e.id) != head_blob) {
                        return Err(Error::Refused(format!(
                            "{path} has staged changes; commit them or unstage them (`git restore --staged {path}`) first"
                        )));
                    }
                    (None, None)
                }
                FileEdit::Content(content) => {
                    let head_bytes = match head_blob {
                        Some(id) => Some(self.repo.find_blob(id)?.content().to_vec()),
                        None => None,
                    };
                    let blob = self
                        .repo
                        .blob(&self.to_odb(&full, &content(head_bytes.as_deref())?))?;
                    let staged_blob = match &staged {
                        Some(entry) if Some(entry.id) != head_blob => {
                            let bytes = self.repo.find_blob(entry.id)?.content().to_vec();
                            Some(
                                self.repo
                                    .blob(&self.to_odb(&full, &content(Some(&bytes))?))?,
                            )
                        }
                        // `git rm --cached` staged the file's removal: that stays staged.
                        None if head_blob.is_some() => None,
                        _ => Some(blob),
                    };
                    (Some(blob), staged_blob)
                }
            };
            if blob == head_blob {
                continue;
            }
            changed = true;
            match staged_blob {
                Some(staged_blob) => {
                    let mode = staged
                        .as_ref()
                        .map(|e| e.mode)
                        .or(head_entry.map(|(_, mode)| mode))
                        .unwrap_or(0o100644);
                    // The file's stat only when the working file holds exactly that blob; a
                    // zero stat makes git look at the file again.
                    let work = self.workdir.join(&full);
                    let meta = std::fs::symlink_metadata(&work).ok().filter(|m| {
                        m.is_file()
                            && m.len() <= MAX_WORK_FILE
                            && std::fs::read(&work)
                                .is_ok_and(|bytes| self.odb_hash(&full, &bytes) == staged_blob)
                    });
                    index.add(&index_entry(&full, staged_blob, mode, meta.as_ref()))?;
                }
                None if removing && staged.is_some() => {
                    index.remove_path(Path::new(&full))?;
                }
                None => {}
            }
            let base = tree.map(|id| self.repo.find_tree(id)).transpose()?;
            let parts: Vec<&str> = full.split('/').collect();
            tree = self.replace_parts(base.as_ref(), &parts, blob)?;
            restores.push((full, staged, staged_blob));
        }
        if !changed {
            let names: Vec<&str> = edits.iter().map(|(path, _)| *path).collect();
            return Err(Error::Refused(format!(
                "{} has no changes since HEAD; nothing to commit",
                names.join(", ")
            )));
        }
        index.write().map_err(|e| unwritable_index(&e))?;
        let staging = staging.keep().map_err(|e| Error::io(&git_dir, e.error))?;
        if let Err(e) = lock.replace_with(&staging) {
            let _ = std::fs::remove_file(&staging);
            return Err(e);
        }

        let tree = match tree {
            Some(id) => self.repo.find_tree(id)?,
            None => {
                let empty = self.repo.treebuilder(None)?.write()?;
                self.repo.find_tree(empty)?
            }
        };
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let id = self
            .repo
            .commit(None, &author, &committer, message, &tree, &parents)?;
        crash_point("index-prepared");
        // The index is published before the branch moves: a crash in between leaves the files
        // staged as they would be committed (a harmless state: `git commit` or a second run
        // finishes it), never staging the reverse of a landed commit.
        lock.commit()?;
        crash_point("index-published");
        if let Err(err) = self.move_head(&head, id, message) {
            for (full, staged, written) in &restores {
                self.restore_entry(&index_path, full, staged.as_ref(), *written);
            }
            return Err(err);
        }
        Ok(Committed {
            id: from_oid(id),
            branch: match head {
                Head::Branch { name, .. } => Some(name),
                Head::Detached(_) => None,
            },
        })
    }

    /// Puts the index entry of `full` back as it was before a commit whose branch could not be
    /// moved, unless someone else changed it since (`written` is what the commit staged).
    fn restore_entry(
        &self,
        index_path: &Path,
        full: &str,
        before: Option<&git2::IndexEntry>,
        written: Option<git2::Oid>,
    ) {
        let restore = || -> Result<()> {
            let lock = LockFile::acquire(index_path)?;
            let mut index = git2::Index::open(index_path)?;
            if index.get_path(Path::new(full), 0).map(|e| e.id) != written {
                return Ok(());
            }
            match before {
                Some(entry) => index.add(entry)?,
                None => index.remove_path(Path::new(full))?,
            }
            drop(lock);
            index.write()?;
            Ok(())
        };
        let _ = restore();
    }

    /// Refuses to write while git is in the middle of something.
    fn check_state(&self) -> Result<()> {
        use git2::RepositoryState as S;
        let (what, finish) = match self.repo.state() {
            S::Clean => return Ok(()),
            S::Merge => ("a merge", "finish it with `git commit`, or abort it with `git merge --abort`"),
            S::Revert | S::RevertSequence => ("a revert", "finish it with `git revert --continue`, or abort it with `git revert --abort`"),
            S::CherryPick | S::CherryPickSequence => ("a cherry-pick", "finish it with `git cherry-pick --continue`, or abort it with `git cherry-pick --abort`"),
            S::Bisect => ("a bisect", "end it with `git bisect reset`"),
            S::Rebase | S::RebaseInteractive | S::RebaseMerge => ("a rebase", "finish it with `git rebase --continue`, or abort it with `git rebase --abort`"),
            S::ApplyMailbox | S::ApplyMailboxOrRebase => ("`git am`", "finish it with `git am --continue`, or abort it with `git am --abort`"),
        };
        Err(Error::Refused(format!(
            "{what} is in progress in {}; {finish}, then run this again",
            self.workdir.display()
        )))
    }

    /// What `HEAD` is: a branch (born or not) or a detached commit.
    fn head_ref(&self) -> Result<Head> {
        let head = self.repo.find_reference("HEAD")?;
        match head.symbolic_target()? {
            Some(name) => {
                let target = match self.repo.find_reference(name) {
                    Ok(reference) => Some(reference.peel_to_commit()?.id()),
                    Err(e) if e.code() == git2::ErrorCode::NotFound => None,
                    Err(e) => return Err(e.into()),
                };
                Ok(Head::Branch {
                    name: name.to_string(),
                    target,
                })
            }
            None => Ok(Head::Detached(head.peel_to_commit()?.id())),
        }
    }

    /// Whether `HEAD` is detached (commits land on no branch).
    pub fn head_detached(&self) -> bool {
        matches!(self.head_ref(), Ok(Head::Detached(_)))
    }

    /// Moves `HEAD`'s branch (or a detached `HEAD`) to `new`, only if it still is where `head`
    /// saw it.
    fn move_head(&self, head: &Head, new: git2::Oid, message: &str) -> Result<()> {
        let summary = message.lines().next().unwrap_or_default();
        let moved = match head {
            Head::Branch {
                name,
                target: Some(old),
            } => self
                .repo
                .reference_matching(name, new, true, *old, &format!("commit: {summary}")),
            Head::Branch { name, target: None } => {
                self.repo
                    .reference(name, new, false, &format!("commit (initial): {summary}"))
            }
            Head::Detached(old) => {
                self.repo
                    .reference_matching("HEAD", new, true, *old, &format!("commit: {summary}"))
            }
        };
        match moved {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.code(),
                    git2::ErrorCode::Modified | git2::ErrorCode::Exists | git2::ErrorCode::Locked
                ) =>
            {
                Err(Error::Refused(format!(
                    "the branch moved while committing ({}); nothing was changed, run this again",
                    e.message()
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The author and committer of a new commit, as git takes them: `GIT_AUTHOR_NAME`,
    /// `GIT_AUTHOR_EMAIL`, `GIT_AUTHOR_DATE` (and `GIT_COMMITTER_*`) first, then
    /// `author.*`/`committer.*` and `user.*` from the config, then `EMAIL`.
    fn identities(&self) -> Result<(git2::Signature<'static>, git2::Signature<'static>)> {
        Ok((self.signature("author")?, self.signature("committer")?))
    }

    /// The signature git would give `role` (`author` or `committer`): `GIT_{ROLE}_*`, then
    /// the config, then `EMAIL`.
    fn signature(&self, role: &str) -> Result<git2::Signature<'static>> {
        let config = self.repo.config()?.snapshot()?;
        let who = |role: &str| -> Result<git2::Signature<'static>> {
            let upper = role.to_ascii_uppercase();
            let env = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
            let conf = |key: &str| config.get_string(key).ok().filter(|v| !v.trim().is_empty());
            let name = env(&format!("GIT_{upper}_NAME"))
                .or_else(|| conf(&format!("{role}.name")))
                .or_else(|| conf("user.name"));
            let email = env(&format!("GIT_{upper}_EMAIL"))
                .or_else(|| conf(&format!("{role}.email")))
                .or_else(|| conf("user.email"))
                .or_else(|| env("EMAIL"));
            let (Some(name), Some(email)) = (name, email) else {
                return Err(Error::Usage(format!(
                    "git has no identity for the {role}: set `git config user.name` and `git config user.email`, or GIT_{upper}_NAME and GIT_{upper}_EMAIL"
                )));
            };
            let signature = match env(&format!("GIT_{upper}_DATE")) {
                Some(date) => {
                    let (secs, offset) = crate::git::time::parse_git_date(&date).ok_or_else(|| {
                        Error::Usage(format!(
                            "GIT_{upper}_DATE `{date}` is not a date promptreg reads: use `@SECONDS +ZZZZ` or ISO 8601 (`2024-05-01T12:30:00+02:00`)"
                        ))
                    })?;
                    git2::Signature::new(&name, &email, &git2::Time::new(secs, offset))
                }
                None => git2::Signature::now(&name, &email),
            };
            signature.map_err(|e| {
                Error::Usage(format!("git identity `{name} <{email}>`: {}", e.message()))
            })
        };
        who(role)
    }

    /// How git's line-ending rules apply to a repository path: from `.gitattributes` (`text`,
    /// `eol`, `crlf`) and `core.autocrlf`, as `git add` and checkout apply them.
    fn eol_rule(&self, full: &str) -> EolRule {
        use git2::{AttrCheckFlags, AttrValue};
        let path = Path::new(full);
        let attr = |name: &str| {
            self.repo
                .get_attr_bytes(path, name, AttrCheckFlags::FILE_THEN_INDEX)
                .ok()
                .flatten()
                .map(<[u8]>::to_vec)
        };
        let text = attr("text");
        let eol = attr("eol");
        let crlf_attr = attr("crlf");
        let config = self.repo.config().ok();
        let setting = |key: &str| {
            config
                .as_ref()
                .and_then(|c| c.get_string(key).ok())
                .map(|v| v.to_ascii_lowercase())
        };
        let autocrlf = setting("core.autocrlf");
        let checkout_crlf = match eol.as_deref().map(|e| AttrValue::from_bytes(Some(e))) {
            Some(AttrValue::String("crlf")) => true,
            Some(AttrValue::String("lf")) => false,
            _ => {
                autocrlf.as_deref() == Some("true")
                    || setting("core.eol").as_deref() == Some("crlf")
            }
        };
        let text = text.or(crlf_attr);
        let mode = match text.as_deref().map(|t| AttrValue::from_bytes(Some(t))) {
            Some(AttrValue::False) => TextMode::Binary,
            Some(AttrValue::True) => TextMode::Text,
            Some(AttrValue::String("auto")) => TextMode::Auto,
            _ if eol.is_some() => TextMode::Text,
            _ => match autocrlf.as_deref() {
                Some("true") | Some("input") => TextMode::Auto,
                _ => TextMode::Binary,
            },
        };
        EolRule {
            mode,
            checkout_crlf: checkout_crlf && autocrlf.as_deref() != Some("input"),
        }
    }

    /// A working file's bytes as `git add` would store them (CRLF to LF where git's rules say).
    fn to_odb<'b>(&self, full: &str, bytes: &'b [u8]) -> std::borrow::Cow<'b, [u8]> {
        let rule = self.eol_rule(full);
        let convert = match rule.mode {
            TextMode::Binary => false,
            TextMode::Text => true,
            TextMode::Auto => looks_like_text(bytes),
        };
        if convert && memchr::memmem::find(bytes, b"\r\n").is_some() {
            std::borrow::Cow::Owned(crlf_to_lf(bytes))
        } else {
            std::borrow::Cow::Borrowed(bytes)
        }
    }

    fn odb_hash(&self, full: &str, bytes: &[u8]) -> git2::Oid {
        git2::Oid::hash_object(git2::ObjectType::Blob, &self.to_odb(full, bytes))
            .unwrap_or(git2::Oid::ZERO_SHA1)
    }

    /// The blob id a working file of the registry (root-relative `path`) has for git, after
    /// git's line-ending rules: what `git status` compares with the committed blob.
    pub fn work_blob_id(&self, path: &str, bytes: &[u8]) -> ObjectId {
        if !bytes.contains(&b'\r') {
            return Repo::hash_blob(bytes);
        }
        from_oid(self.odb_hash(&format!("{}{}", self.prefix, path), bytes))
    }

    /// A committed blob's bytes as checkout writes them to the work tree (LF to CRLF where
    /// git's rules say), for a root-relative `path`.
    pub fn to_worktree<'b>(&self, path: &str, bytes: &'b [u8]) -> std::borrow::Cow<'b, [u8]> {
        let rule = self.eol_rule(&format!("{}{}", self.prefix, path));
        let convert = rule.checkout_crlf
            && match rule.mode {
                TextMode::Binary => false,
                TextMode::Text => true,
                TextMode::Auto => looks_like_text(bytes),
            };
        if convert && bytes.contains(&b'\n') && !bytes.contains(&b'\r') {
            let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16);
            for &b in bytes {
                if b == b'\n' {
                    out.push(b'\r');
                }
                out.push(b);
            }
            std::borrow::Cow::Owned(out)
        } else {
            std::borrow::Cow::Borrowed(bytes)
        }
    }

    /// The tree `base` with the file at `parts` set to `blob`, or removed (`None`); folders
    /// left empty go too. `None` when the whole tree is empty.
    fn replace_parts(
        &self,
        base: Option<&git2::Tree<'_>>,
        parts: &[&str],
        blob: Option<git2::Oid>,
    ) -> Result<Option<git2::Oid>> {
        let mut builder = self.repo.treebuilder(base)?;
        match (parts, blob) {
            ([], _) => return Err(Error::Usage("empty path".into())),
            ([name], Some(blob)) => {
                let mode = base
                    .and_then(|t| t.get_name(name))
                    .map_or(0o100644, |e| e.filemode());
                let mode = if mode == 0o100755 { 0o100755 } else { 0o100644 };
                builder.insert(name, blob, mode)?;
            }
            ([name], None) => {
                if builder.get(name)?.is_some() {
                    builder.remove(name)?;
                }
            }
            ([dir, rest @ ..], _) => {
                let sub = base
                    .and_then(|t| t.get_name(dir))
                    .filter(|e| e.kind() == Some(git2::ObjectType::Tree))
                    .map(|e| self.repo.find_tree(e.id()))
                    .transpose()?;
                match self.replace_parts(sub.as_ref(), rest, blob)? {
                    Some(id) => {
                        builder.insert(dir, id, 0o040000)?;
                    }
                    None => {
                        if builder.get(dir)?.is_some() {
                            builder.remove(dir)?;
                        }
                    }
                }
            }
        }
        if builder.is_empty() {
            return Ok(None);
        }
        Ok(Some(builder.write()?))
    }

    /// The branch `HEAD` names (`refs/heads/main`), and the commit it points at (`None` on an
    /// unborn branch). A detached `HEAD` is refused: writes need a branch.
    pub fn head_branch(&self) -> Result<(String, Option<ObjectId>)> {
        match self.head_ref()? {
            Head::Branch { name, target } => Ok((name, target.map(from_oid))),
            Head::Detached(_) => Err(Error::Refused(
                "HEAD is detached, so there is no branch to write to: `git switch` to one".into(),
            )),
        }
    }

    /// Whether a commit identity can be found for the committer (`GIT_COMMITTER_*`, the
    /// config, `EMAIL`), with the reason when not.
    pub fn check_identity(&self) -> Result<()> {
        self.signature("committer").map(|_| ())
    }

    /// Writes the commit of `changes` on top of `base` to the object database, moving no
    /// ref: the tree is built from `base`'s tree, never from the index or the working copy.
    /// `author` is who made the change (else git's author); the committer is git's.
    pub fn build_commit(
        &self,
        base: Option<ObjectId>,
        changes: &[Change],
        message: &str,
        author: Option<&Identity>,
    ) -> Result<ObjectId> {
        check_message(message)?;
        let committer = self.signature("committer")?;
        let author = match author {
            Some(who) => git2::Signature::now(&who.name, &who.email).map_err(|e| {
                Error::Usage(format!(
                    "identity `{} <{}>`: {}",
                    who.name,
                    who.email,
                    e.message()
                ))
            })?,
            None => self.signature("author")?,
        };
        let current = base.map(|b| b.oid());
        let parent = current.map(|id| self.repo.find_commit(id)).transpose()?;
        let mut tree = parent.as_ref().map(|p| p.tree_id());
        for change in changes {
            let (path, removing) = match change {
                Change::Write { path, .. } => (format!("{}{}", self.prefix, path), false),
                Change::Remove { path } => (format!("{}{}", self.prefix, path), true),
            };
            let base_tree = tree.map(|id| self.repo.find_tree(id)).transpose()?;
            check_change_path(&path, removing, |prefix| {
                base_tree
                    .as_ref()
                    .and_then(|tree| tree.get_path(Path::new(prefix)).ok())
                    .map(|e| e.filemode() as u32)
            })?;
            let blob = match change {
                Change::Write { bytes, .. } => Some(self.repo.blob(&self.to_odb(&path, bytes))?),
                Change::Remove { .. } => None,
            };
            let parts: Vec<&str> = path.split('/').collect();
            tree = self.replace_parts(base_tree.as_ref(), &parts, blob)?;
        }
        let tree = match tree {
            Some(id) => self.repo.find_tree(id)?,
            None => {
                let empty = self.repo.treebuilder(None)?.write()?;
                self.repo.find_tree(empty)?
            }
        };
        if parent.as_ref().is_some_and(|p| p.tree_id() == tree.id()) {
            return Err(Error::Refused(
                "the change changes nothing; nothing to commit".into(),
            ));
        }
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let id = self
            .repo
            .commit(None, &author, &committer, message, &tree, &parents)?;
        Ok(from_oid(id))
    }

    /// Commits `changes` (registry-relative paths) on `branch`, which must still point at
    /// `base`: the tree is built from `base`'s tree in the object database and the branch moves
    /// by compare-and-swap. The index and the working copy are never read or written, so
    /// nobody's edits are touched. `author` is who made the change (else git's author); the
    /// committer is git's. A crash at any point leaves the branch where it was or at the new
    /// commit, never between.
    pub fn commit_on_branch(
        &self,
        branch: &str,
        base: Option<ObjectId>,
        changes: &[Change],
        message: &str,
        author: Option<&Identity>,
    ) -> Result<ObjectId> {
        // The committer must be known before anything is written, and a merge, rebase or
        // bisect under way in this repository is not moved underneath.
        self.check_identity()?;
        self.check_state()?;
        let _writer =
            crate::git::lock::WriterLock::acquire(&self.repo.path().join("promptreg.lock"))?;
        let current = match self.repo.find_reference(branch) {
            Ok(reference) => Some(reference.peel_to_commit()?.id()),
            Err(e) if e.code() == git2::ErrorCode::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        if current.map(from_oid) != base {
            return Err(Error::Conflict(format!(
                "{branch} moved to {} while the change was prepared on {}",
                current.map_or("nothing".to_string(), |c| from_oid(c).short()),
                base.map_or("nothing".to_string(), |b| b.short())
            )));
        }
        let id = self
            .build_commit(current.map(from_oid), changes, message, author)?
            .oid();
        crash_point("branch-commit-written");
        let head = Head::Branch {
            name: branch.to_string(),
            target: current,
        };
        self.move_head(&head, id, message).map_err(|e| match e {
            Error::Refused(why) => Error::Conflict(why),
            other => other,
        })?;
        Ok(from_oid(id))
    }
}

/// One file's change in a commit made by [`Repo::commit_on_branch`].
#[derive(Debug, Clone)]
pub enum Change {
    /// The file (registry-relative) gets these bytes.
    Write {
        /// The registry-relative path.
        path: String,
        /// The new content.
        bytes: Vec<u8>,
    },
    /// The file goes.
    Remove {
        /// The registry-relative path.
        path: String,
    },
}

/// Who made a change: the author of its commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The name.
    pub name: String,
    /// The email.
    pub email: String,
}

/// Stops the process at a named point of a write when `PROMPTREG_TEST_CRASH` names it: how the
/// tests check what a crash at each step leaves behind.
fn crash_point(name: &str) {
    if std::env::var_os("PROMPTREG_TEST_CRASH").is_some_and(|v| v == name) {
        std::process::abort();
    }
}

/// Opens the repository of `root` as git finds it: `GIT_DIR` (with `GIT_WORK_TREE`,
/// `core.worktree` or the current directory as the work tree) when set, else the nearest `.git`
/// above `root`. A `.git` file (`git init --separate-git-dir`, a submodule, a linked worktree)
/// makes the folder that holds it the work tree, wherever the git dir is.
fn open_repository(root: &Path) -> Result<Option<git2::Repository>> {
    let failed = |e: git2::Error, what: &Path| {
        if let Some(repo) = sha256_repository(what) {
            return Error::Unsupported(format!(
                "{} is a SHA-256 repository; promptreg reads SHA-1 repositories only",
                repo.display()
            ));
        }
        Error::Git(GitError::with_cause(
            format!(
                "cannot open the repository at {}: {}",
                what.display(),
                e.message()
            ),
            e,
        ))
    };
    let env_path = |key: &str| {
        std::env::var_os(key)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(git_dir) = env_path("GIT_DIR") {
        let repo = git2::Repository::open_bare(&git_dir).map_err(|e| failed(e, &git_dir))?;
        let configured = repo
            .config()
            .ok()
            .and_then(|c| c.get_path("core.worktree").ok())
            .map(|p| repo.path().join(p));
        let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
        let workdir = env_path("GIT_WORK_TREE")
            .map(|w| cwd.join(w))
            .or(configured)
            .unwrap_or(cwd);
        repo.set_workdir(&workdir, false)
            .map_err(|e| failed(e, &workdir))?;
        return Ok(Some(repo));
    }
    let repo = match git2::Repository::discover(root) {
        Ok(repo) => repo,
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
        Err(e) => return Err(failed(e, root)),
    };
    if let Some(work_tree) = env_path("GIT_WORK_TREE") {
        let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
        repo.set_workdir(&cwd.join(work_tree), false)
            .map_err(|e| failed(e, root))?;
    } else if let Some(dot_git) = root
        .ancestors()
        .map(|dir| dir.join(".git"))
        .find(|p| p.exists())
    {
        let is_file = std::fs::symlink_metadata(&dot_git).is_ok_and(|m| m.is_file());
        if let (true, Some(top)) = (is_file, dot_git.parent()) {
            if repo.workdir() != Some(top) {
                repo.set_workdir(top, false).map_err(|e| failed(e, top))?;
            }
        }
    }
    Ok(Some(repo))
}

/// The repository around `path` (its work tree, or its git dir when it has none) when its
/// config says `extensions.objectformat = sha256`: libgit2 cannot open one, and a failure
/// to open should say so plainly.
fn sha256_repository(path: &Path) -> Option<PathBuf> {
    let git_dir = git2::Repository::discover_path(path, None::<&Path>).ok()?;
    let config = git2::Config::open(&git_dir.join("config")).ok()?;
    let format = config.get_string("extensions.objectformat").ok()?;
    if !format.eq_ignore_ascii_case("sha256") {
        return None;
    }
    let git_dir = git_dir.canonicalize().unwrap_or(git_dir);
    Some(match git_dir.file_name() {
        Some(name) if name == ".git" => git_dir.parent().map_or(git_dir.clone(), Path::to_path_buf),
        _ => git_dir,
    })
}

/// The new bytes of a file committed by [`Repo::commit_file`], given its bytes at `HEAD` (or in
/// the index), `None` when it has none there.
pub type Content<'a> = dyn Fn(Option<&[u8]>) -> Result<Vec<u8>> + 'a;

/// What [`Repo::commit_files`] does to one file.
pub enum FileEdit<'a> {
    /// The file gets `content(its bytes at HEAD)`.
    Content(&'a Content<'a>),
    /// The file goes.
    Remove,
}

/// What a commit made by [`Repo::commit_file`] landed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The new commit.
    pub id: ObjectId,
    /// The branch that moved (`refs/heads/main`); `None` for a detached `HEAD`.
    pub branch: Option<String>,
}

enum Head {
    Branch {
        name: String,
        target: Option<git2::Oid>,
    },
    Detached(git2::Oid),
}

impl Head {
    fn target(&self) -> Option<git2::Oid> {
        match self {
            Head::Branch { target, .. } => *target,
            Head::Detached(id) => Some(*id),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextMode {
    Binary,
    Text,
    Auto,
}

#[derive(Debug, Clone, Copy)]
struct EolRule {
    mode: TextMode,
    checkout_crlf: bool,
}

/// Working files larger than this are never read to compare them with a blob.
const MAX_WORK_FILE: u64 = 64 << 20;

/// git's test for `text=auto`: no NUL byte and no lone carriage return.
fn looks_like_text(bytes: &[u8]) -> bool {
    if bytes.contains(&0) {
        return false;
    }
    bytes
        .iter()
        .enumerate()
        .all(|(i, &b)| b != b'\r' || bytes.get(i + 1) == Some(&b'\n'))
}

fn crlf_to_lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The blob id and mode of the regular file at `full` in `tree`; an error for anything that is
/// not a plain file there (a symlink, a submodule, a folder).
fn tree_file(tree: &git2::Tree<'_>, full: &str, path: &str) -> Result<Option<(git2::Oid, u32)>> {
    match tree.get_path(Path::new(full)) {
        Ok(entry) => {
            let mode = entry.filemode() as u32;
            if entry.kind() == Some(git2::ObjectType::Blob) && mode & 0o170000 == 0o100000 {
                Ok(Some((entry.id(), mode)))
            } else {
                Err(Error::Refused(format!(
                    "{path} is not a regular file in git (a symlink, submodule or folder); change it with git"
                )))
            }
        }
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn submodule_refusal(submodule: &str) -> Error {
    Error::Refused(format!(
        "`{submodule}` is a submodule, a repository of its own: run promptreg inside it (`promptreg -C {submodule}`) to commit its prompts"
    ))
}

/// Refuses a change at repository path `full` that git would store as something other than the
/// one file it names: a path that is not a plain relative path (empty, `.` or `..` parts, a
/// `.git` folder, a NUL or a backslash), one that passes through an existing file (writing
/// `a/b` where `a` is a file would turn that file into a folder, and removing it would remove
/// the file), one that would replace a folder, a symlink or a submodule. `kind_at` gives the
/// mode of an entry of the base tree (`None`: absent). The same rule for every writer.
fn check_change_path(
    full: &str,
    removing: bool,
    kind_at: impl Fn(&str) -> Option<u32>,
) -> Result<()> {
    let bad = |why: &str| Err(Error::Refused(format!("`{full}` cannot be written: {why}")));
    if full.is_empty() {
        return bad("the path is empty");
    }
    if full.contains('\0') || full.contains('\\') {
        return bad("a path holds no NUL or backslash");
    }
    let parts: Vec<&str> = full.split('/').collect();
    for part in &parts {
        if part.is_empty() || *part == "." || *part == ".." {
            return bad("it is not a plain relative path");
        }
        if part.eq_ignore_ascii_case(".git") {
            return bad("nothing is written inside a `.git` folder");
        }
    }
    let mut end = 0;
    for (i, part) in parts.iter().enumerate() {
        end += part.len();
        let prefix = &full[..end];
        let last = i + 1 == parts.len();
        match kind_at(prefix) {
            None => {}
            Some(0o160000) => return Err(submodule_refusal(prefix)),
            Some(0o040000) if last => {
                return bad("it is a folder, which a write never replaces");
            }
            Some(0o040000) => {}
            Some(0o120000) if last && !removing => {
                return bad("it is a symlink; change the file it points to instead");
            }
            Some(_) if !last => {
                return Err(Error::Refused(format!(
                    "`{full}` cannot be written: `{prefix}` is a file, and a write never turns a file into a folder"
                )));
            }
            Some(_) => {}
        }
        end += 1;
    }
    Ok(())
}

/// A commit message git can store: no NUL byte.
fn check_message(message: &str) -> Result<()> {
    if message.contains('\0') {
        return Err(Error::Usage(
            "a commit message cannot contain a NUL byte".into(),
        ));
    }
    Ok(())
}

/// Copies the index to `to` with its modification time, so that libgit2 reads the copy with
/// the original's "racily clean" cut-off; no index yet leaves no file, which reads as empty.
fn copy_index(from: &Path, to: &Path) -> Result<()> {
    match std::fs::copy(from, to) {
        Ok(_) => {
            if let Ok(modified) = std::fs::metadata(from).and_then(|m| m.modified()) {
                let _ = std::fs::File::options()
                    .write(true)
                    .open(to)
                    .and_then(|f| f.set_modified(modified));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::remove_file(to).map_err(|e| Error::io(to, e))
        }
        Err(e) => Err(Error::io(from, e)),
    }
}

fn unwritable_index(err: &git2::Error) -> Error {
    Error::Refused(format!(
        "git's index cannot be updated by promptreg ({}): a sparse index (`index.sparse`) or a split index (`core.splitIndex`) is written in a form libgit2 does not write back; commit with git (`git add FILE && git commit`), or turn them off (`git config index.sparse false`, `git config core.splitIndex false`, then `git update-index --no-split-index`)",
        err.message()
    ))
}

fn index_entry(
    path: &str,
    blob: git2::Oid,
    mode: u32,
    meta: Option<&std::fs::Metadata>,
) -> git2::IndexEntry {
    #[cfg(unix)]
    use std::os::unix::fs::MetadataExt;
    let time = |secs: i64, nanos: i64| git2::IndexTime::new(secs as i32, nanos as u32);
    #[cfg(unix)]
    let (ctime, mtime, dev, ino, uid, gid, size) = match meta {
        Some(m) => (
            time(m.ctime(), m.ctime_nsec()),
            time(m.mtime(), m.mtime_nsec()),
            m.dev() as u32,
            m.ino() as u32,
            m.uid(),
            m.gid(),
            m.size() as u32,
        ),
        None => (time(0, 0), time(0, 0), 0, 0, 0, 0, 0),
    };
    #[cfg(not(unix))]
    let (ctime, mtime, dev, ino, uid, gid, size) = {
        let _ = meta;
        (time(0, 0), time(0, 0), 0, 0, 0, 0, 0)
    };
    git2::IndexEntry {
        ctime,
        mtime,
        dev,
        ino,
        mode,
        uid,
        gid,
        file_size: size,
        id: blob,
        flags: (path.len().min(0xfff)) as u16,
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    }
}

/// Reads objects one after another through one handle on the object database.
pub struct Objects<'r> {
    odb: git2::Odb<'r>,
}

impl Objects<'_> {
    /// The raw bytes of an object.
    pub fn read(&self, id: ObjectId) -> Result<Vec<u8>> {
        let object = self.odb.read(id.oid())?;
        Ok(object.data().to_vec())
    }

    /// Calls `f` with the raw bytes of an object, without copying them.
    pub fn with<T>(&self, id: ObjectId, f: impl FnOnce(&[u8]) -> T) -> Result<T> {
        let object = self.odb.read(id.oid())?;
        Ok(f(object.data()))
    }

    /// The tree and first parent of a commit.
    pub fn commit_links(&self, id: ObjectId) -> Result<CommitLinks> {
        self.with(id, parse_commit_links)?
            .ok_or_else(|| Error::Git(GitError::new(format!("commit {id} cannot be parsed"))))
    }
}

fn parse_commit_links(data: &[u8]) -> Option<CommitLinks> {
    let mut tree = None;
    let mut first_parent = None;
    for line in data.split(|&b| b == b'\n') {
        if line.is_empty() {
            break;
        }
        if let Some(hex) = line.strip_prefix(b"tree ") {
            tree = ObjectId::from_hex(std::str::from_utf8(hex).ok()?);
        } else if let Some(hex) = line.strip_prefix(b"parent ") {
            if first_parent.is_none() {
                first_parent = ObjectId::from_hex(std::str::from_utf8(hex).ok()?);
            }
        } else if tree.is_some() && !line.starts_with(b"parent ") {
            break;
        }
    }
    Some(CommitLinks {
        tree: tree?,
        first_parent,
    })
}

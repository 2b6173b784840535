//! Committing files through git's index: the transaction of `commit_file` and `commit_files`
//! (index lock, staged entries kept, compare-and-swap of the branch), and reading what is staged.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::git::branch::{Committed, Head};
use crate::git::lock::LockFile;
use crate::git::oid::ObjectId;
use crate::git::paths::{check_change_path, check_message};
use crate::git::repo::{crash_point, from_oid, Repo, MAX_WORK_FILE};

impl Repo {
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
    pub(super) fn restore_entry(
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
pub(super) struct Staged {
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
pub(super) fn same_stat(meta: &std::fs::Metadata, staged: &Staged) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.size() as u32 == staged.size
        && meta.mtime() as i32 == staged.mtime_seconds
        && (staged.mtime_nanos == 0 || meta.mtime_nsec() as u32 == staged.mtime_nanos)
        && (staged.ino == 0 || meta.ino() as u32 == staged.ino)
}

#[cfg(not(unix))]
pub(super) fn same_stat(_meta: &std::fs::Metadata, _staged: &Staged) -> bool {
    false
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

/// The blob id and mode of the regular file at `full` in `tree`; an error for anything that is
/// not a plain file there (a symlink, a submodule, a folder).
pub(super) fn tree_file(
    tree: &git2::Tree<'_>,
    full: &str,
    path: &str,
) -> Result<Option<(git2::Oid, u32)>> {
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

/// Copies the index to `to` with its modification time, so that libgit2 reads the copy with
/// the original's "racily clean" cut-off; no index yet leaves no file, which reads as empty.
pub(super) fn copy_index(from: &Path, to: &Path) -> Result<()> {
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

pub(super) fn unwritable_index(err: &git2::Error) -> Error {
    Error::Refused(format!(
        "git's index cannot be updated by promptreg ({}): a sparse index (`index.sparse`) or a split index (`core.splitIndex`) is written in a form libgit2 does not write back; commit with git (`git add FILE && git commit`), or turn them off (`git config index.sparse false`, `git config core.splitIndex false`, then `git update-index --no-split-index`)",
        err.message()
    ))
}

pub(super) fn index_entry(
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

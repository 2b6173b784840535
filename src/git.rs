//! The one door to git. Every git2 call of promptreg is in this file, behind [`Repo`], which
//! speaks the registry's words: commits on the first-parent chain, the registry root's tree at a
//! commit, file bytes at a commit, committing one file. No git2 type leaves this module.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::source::{prompt_id, Source};
use crate::tree::{tree_entries, RawTree};

/// A git object id (SHA-1).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ObjectId(pub [u8; 20]);

impl ObjectId {
    /// The id as 40 hex digits.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(40);
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// The first 7 hex digits.
    pub fn short(&self) -> String {
        self.to_hex()[..7].to_string()
    }

    /// Parses 40 hex digits.
    pub fn from_hex(hex: &str) -> Option<ObjectId> {
        let bytes = hex.as_bytes();
        if bytes.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, chunk) in bytes.chunks(2).enumerate() {
            let s = std::str::from_utf8(chunk).ok()?;
            out[i] = u8::from_str_radix(s, 16).ok()?;
        }
        Some(ObjectId(out))
    }

    fn from_oid(oid: git2::Oid) -> ObjectId {
        let mut out = [0u8; 20];
        out.copy_from_slice(oid.as_bytes());
        ObjectId(out)
    }

    fn oid(&self) -> git2::Oid {
        // 20 bytes always make an Oid.
        git2::Oid::from_bytes(&self.0).unwrap_or(git2::Oid::ZERO_SHA1)
    }
}

impl std::fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
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
    workdir: PathBuf,
    /// The registry root relative to the work tree, `/`-separated, empty or ending in `/`.
    prefix: String,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("workdir", &self.workdir)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Repo {
    /// Finds the repository that contains `root` (canonical). `Ok(None)` outside git.
    pub fn discover(root: &Path) -> Result<Option<Repo>> {
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
            // SAFETY: these only set libgit2's global limits; `call_once` runs them once,
            // before this process opens a repository through promptreg.
            #[allow(unsafe_code)]
            unsafe {
                let _ = git2::opts::set_mwindow_size(32 << 20);
                let _ = git2::opts::set_mwindow_mapped_limit(64 << 20);
            }
        });
        let repo = match git2::Repository::discover(root) {
            Ok(repo) => repo,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::Git(format!(
                    "cannot open the repository at {}: {}",
                    root.display(),
                    e.message()
                )))
            }
        };
        let Some(workdir) = repo.workdir() else {
            return Err(Error::Usage(format!(
                "{} is a bare repository; promptreg needs a working tree (clone it without --bare)",
                repo.path().display()
            )));
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
        }))
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

    /// Whether this is a shallow clone.
    pub fn is_shallow(&self) -> bool {
        self.repo.is_shallow()
    }

    /// The commit `HEAD` points at; `None` in a repository without commits.
    pub fn head(&self) -> Result<Option<ObjectId>> {
        match self.repo.head() {
            // A branch or a detached HEAD names its commit directly: no need to read it.
            Ok(head) => match head.target() {
                Some(oid) => Ok(Some(ObjectId::from_oid(oid))),
                None => Ok(Some(ObjectId::from_oid(head.peel_to_commit()?.id()))),
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
            .map_err(|e| Error::Usage(format!("unknown revision `{rev}`: {}", e.message())))?;
        let commit = object
            .peel_to_commit()
            .map_err(|_| Error::Usage(format!("`{rev}` does not name a commit")))?;
        Ok(ObjectId::from_oid(commit.id()))
    }

    /// The best common ancestor of two commits, if they have one.
    pub fn merge_base(&self, a: ObjectId, b: ObjectId) -> Result<Option<ObjectId>> {
        match self.repo.merge_base(a.oid(), b.oid()) {
            Ok(oid) => Ok(Some(ObjectId::from_oid(oid))),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The position of `commit` on the first-parent chain of the index's tip, if it is on it.
    pub fn first_parent_seq(
        &self,
        commit: ObjectId,
        index: &crate::history::VersionIndex,
    ) -> Result<Option<u32>> {
        let objects = self.objects()?;
        let mut next = Some(index.tip);
        let mut seq = index.chain_len;
        while let Some(c) = next {
            seq = seq.saturating_sub(1);
            if c == commit {
                return Ok(Some(seq));
            }
            next = objects.commit_links(c)?.first_parent;
        }
        Ok(None)
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
        Ok(CommitInfo {
            id,
            author: String::from_utf8_lossy(author.name_bytes()).into_owned(),
            email: String::from_utf8_lossy(author.email_bytes()).into_owned(),
            time: time.seconds(),
            offset_minutes: time.offset_minutes(),
            message: String::from_utf8_lossy(commit.message_bytes()).into_owned(),
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
            .map_or_else(|_| ObjectId::default(), ObjectId::from_oid)
    }

    /// The blob id of `path` (registry-relative) in the index, if it is staged.
    pub fn index_blob(&self, path: &str) -> Result<Option<ObjectId>> {
        let index = self.repo.index()?;
        let full = format!("{}{}", self.prefix, path);
        Ok(index
            .get_path(Path::new(&full), 0)
            .map(|e| ObjectId::from_oid(e.id)))
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
                    id: ObjectId::from_oid(entry.id),
                    size: entry.file_size,
                    mtime_seconds: entry.mtime.seconds(),
                    mtime_nanos: entry.mtime.nanoseconds(),
                    ino: entry.ino,
                },
            );
        }
        StagedFiles { files, written }
    }

    /// Commits the working-copy bytes of one registry file as a new commit on `HEAD`, leaving
    /// every other staged and unstaged change as it was. Returns the new commit.
    pub fn commit_file(&self, path: &str, bytes: &[u8], message: &str) -> Result<ObjectId> {
        let signature = self.repo.signature().map_err(|_| {
            Error::Usage(
                "git has no identity: set `git config user.name` and `git config user.email`"
                    .into(),
            )
        })?;
        let head = self.head()?;
        let parent = match head {
            Some(id) => Some(self.repo.find_commit(id.oid())?),
            None => None,
        };
        let full = format!("{}{}", self.prefix, path);
        let blob = self.repo.blob(bytes)?;
        let base_tree = match &parent {
            Some(commit) => Some(commit.tree()?),
            None => None,
        };
        let parts: Vec<&str> = full.split('/').collect();
        let tree = self.replace_in_tree(base_tree.as_ref(), &parts, blob)?;
        let tree = self.repo.find_tree(tree)?;
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let id = self.repo.commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &parents,
        )?;
        // Stage exactly what was committed for this one path; other entries stay untouched.
        let mut index = self.repo.index()?;
        let mode = index
            .get_path(Path::new(&full), 0)
            .map_or(0o100644, |e| e.mode);
        let meta = std::fs::metadata(self.workdir.join(&full)).ok();
        let entry = index_entry(&full, blob, mode, bytes.len(), meta.as_ref());
        index.add(&entry)?;
        index.write()?;
        Ok(ObjectId::from_oid(id))
    }

    fn replace_in_tree(
        &self,
        base: Option<&git2::Tree<'_>>,
        parts: &[&str],
        blob: git2::Oid,
    ) -> Result<git2::Oid> {
        let mut builder = self.repo.treebuilder(base)?;
        match parts {
            [] => return Err(Error::Usage("empty path".into())),
            [name] => {
                let mode = base
                    .and_then(|t| t.get_name(name))
                    .map_or(0o100644, |e| e.filemode());
                let mode = if mode == 0o100755 { 0o100755 } else { 0o100644 };
                builder.insert(name, blob, mode)?;
            }
            [dir, rest @ ..] => {
                let sub = base
                    .and_then(|t| t.get_name(dir))
                    .filter(|e| e.kind() == Some(git2::ObjectType::Tree))
                    .map(|e| self.repo.find_tree(e.id()))
                    .transpose()?;
                let id = self.replace_in_tree(sub.as_ref(), rest, blob)?;
                builder.insert(dir, id, 0o040000)?;
            }
        }
        Ok(builder.write()?)
    }
}

fn index_entry(
    path: &str,
    blob: git2::Oid,
    mode: u32,
    size: usize,
    meta: Option<&std::fs::Metadata>,
) -> git2::IndexEntry {
    #[cfg(unix)]
    use std::os::unix::fs::MetadataExt;
    let time = |secs: i64, nanos: i64| git2::IndexTime::new(secs as i32, nanos as u32);
    #[cfg(unix)]
    let (ctime, mtime, dev, ino, uid, gid) = match meta {
        Some(m) => (
            time(m.ctime(), m.ctime_nsec()),
            time(m.mtime(), m.mtime_nsec()),
            m.dev() as u32,
            m.ino() as u32,
            m.uid(),
            m.gid(),
        ),
        None => (time(0, 0), time(0, 0), 0, 0, 0, 0),
    };
    #[cfg(not(unix))]
    let (ctime, mtime, dev, ino, uid, gid) = {
        let _ = meta;
        (time(0, 0), time(0, 0), 0, 0, 0, 0)
    };
    git2::IndexEntry {
        ctime,
        mtime,
        dev,
        ino,
        mode,
        uid,
        gid,
        file_size: size as u32,
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
            .ok_or_else(|| Error::Git(format!("commit {id} cannot be parsed")))
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

/// The registry's files as they are in one commit.
pub struct CommitSource {
    /// The repository, opened the first time git must be read: at the tip, a render may find
    /// everything it needs in the kept root tree and the working copy.
    repo: Mutex<Option<Repo>>,
    /// The registry root, to open the repository from.
    work_root: PathBuf,
    commit: ObjectId,
    root: Option<ObjectId>,
    /// Trees already read: lookups of several files share their folders.
    trees: Mutex<HashMap<ObjectId, Arc<RawTree>>>,
    /// Where the root's tree may be kept uncompressed ([`crate::cache::tree_path`]).
    root_file: PathBuf,
    /// Whether this is the tip: its root tree is kept when it has to be read from git, and
    /// working-copy files stand in for the blobs they hash to.
    at_tip: bool,
}

impl std::fmt::Debug for CommitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CommitSource({})", self.commit)
    }
}

impl CommitSource {
    /// The registry at `commit` of `repo`. `at_tip` is for the commit read most (the tip of
    /// the history versions come from): its root tree is kept uncompressed under the git dir
    /// and its files are read from the working copy when they hash to the committed blob.
    pub fn open(repo: &Repo, commit: ObjectId, at_tip: bool) -> Result<CommitSource> {
        let root_file = crate::cache::tree_path(repo.git_dir(), repo.prefix());
        let mut trees = HashMap::new();
        let kept = at_tip
            .then(|| crate::cache::load_tree(&root_file, |c, _| c == commit))
            .flatten();
        let root = match kept {
            Some(kept) => {
                trees.insert(kept.tree, Arc::new(kept.raw));
                Some(kept.tree)
            }
            None => repo.root_tree_at(commit)?,
        };
        Ok(CommitSource {
            repo: Mutex::new(None),
            work_root: repo.workdir().join(repo.prefix()),
            commit,
            root,
            trees: Mutex::new(trees),
            root_file,
            at_tip,
        })
    }

    /// The commit.
    pub fn commit(&self) -> ObjectId {
        self.commit
    }

    /// Reads an object's bytes, opening the repository if this is the first read.
    fn read_object(&self, id: ObjectId) -> Result<Vec<u8>> {
        let mut repo = self
            .repo
            .lock()
            .map_err(|_| Error::Git("repository lock poisoned".into()))?;
        if repo.is_none() {
            *repo = Some(Repo::discover(&self.work_root)?.ok_or_else(|| {
                Error::NoHistory(format!("{} is no longer in git", self.work_root.display()))
            })?);
        }
        match repo.as_ref() {
            Some(repo) => repo.read_raw(id),
            None => Err(Error::Git("repository not open".into())),
        }
    }

    fn tree(&self, id: ObjectId) -> Result<Arc<RawTree>> {
        let mut trees = self
            .trees
            .lock()
            .map_err(|_| Error::Git("tree cache lock poisoned".into()))?;
        if let Some(tree) = trees.get(&id) {
            return Ok(tree.clone());
        }
        let is_root = Some(id) == self.root;
        let kept = is_root
            .then(|| crate::cache::load_tree(&self.root_file, |_, tree| tree == id))
            .flatten();
        let tree = match kept {
            Some(kept) => kept.raw,
            None => {
                let tree = RawTree::new(self.read_object(id)?);
                if is_root && self.at_tip {
                    crate::cache::store_tree(&self.root_file, self.commit, id, &tree);
                }
                tree
            }
        };
        let tree = Arc::new(tree);
        trees.insert(id, tree.clone());
        Ok(tree)
    }

    /// The blob id of a root-relative file at this commit.
    pub fn blob_id(&self, path: &str) -> Result<Option<ObjectId>> {
        let Some(mut tree) = self.root else {
            return Ok(None);
        };
        let parts: Vec<&str> = path.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let data = self.tree(tree)?;
            let Some(entry) = data.get(part.as_bytes()) else {
                return Ok(None);
            };
            if last {
                return Ok(entry.is_file.then_some(entry.id));
            }
            if !entry.is_tree {
                return Ok(None);
            }
            tree = entry.id;
        }
        Ok(None)
    }

    /// Every prompt file at this commit with its blob id.
    pub fn prompt_blobs(&self) -> Result<BTreeMap<String, ObjectId>> {
        let Some(root) = self.root else {
            return Ok(BTreeMap::new());
        };
        let mut files = BTreeMap::new();
        let mut stack = vec![(root, String::new())];
        while let Some((tree, dir)) = stack.pop() {
            let data = self.tree(tree)?;
            for entry in data.entries() {
                if crate::source::is_hidden_name(entry.name) {
                    continue;
                }
                let name = String::from_utf8_lossy(entry.name);
                let path = format!("{dir}{name}");
                if entry.is_tree {
                    stack.push((entry.id, format!("{path}/")));
                } else if entry.is_file && prompt_id(&path).is_some() {
                    files.insert(path, entry.id);
                }
            }
        }
        Ok(files)
    }
}

impl Source for CommitSource {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let Some(blob) = self.blob_id(path)? else {
            return Ok(None);
        };
        // At the tip the working copy usually holds the same bytes, and hashing a small file
        // is cheaper than undoing a long chain of deltas in a pack. The hash decides, so a
        // modified file is never taken for the committed one. Only a regular file of a
        // prompt's size is tried: never a symlink (to a device or a pipe, say).
        if self.at_tip {
            let full = self.work_root.join(path);
            let plain = std::fs::symlink_metadata(&full)
                .is_ok_and(|m| m.is_file() && m.len() <= crate::yaml::MAX_FILE_SIZE as u64);
            let read = || crate::source::read_input(&full, path, crate::yaml::MAX_FILE_SIZE);
            if let Some(bytes) = plain.then(|| read().ok().flatten()).flatten() {
                if Repo::hash_blob(&bytes) == blob {
                    return Ok(Some(bytes));
                }
            }
        }
        Ok(Some(self.read_object(blob)?))
    }

    fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.blob_id(path)?.is_some())
    }

    fn prompt_files(&self) -> Result<Vec<String>> {
        Ok(self.prompt_blobs()?.into_keys().collect())
    }

    fn describe(&self) -> String {
        format!("commit {}", self.commit.short())
    }
}

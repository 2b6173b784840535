//! The repository: opening it as git finds it, its refs and objects, and commit metadata.

use std::path::{Path, PathBuf};

use crate::error::{Error, GitError, Result};
use crate::git::tree::tree_entries;

use crate::git::oid::ObjectId;

/// git2's id of one of ours; 20 bytes always make an `Oid`.
pub(super) trait ToOid {
    fn oid(&self) -> git2::Oid;
}

impl ToOid for ObjectId {
    fn oid(&self) -> git2::Oid {
        git2::Oid::from_bytes(&self.0).unwrap_or(git2::Oid::ZERO_SHA1)
    }
}

pub(super) fn from_oid(oid: git2::Oid) -> ObjectId {
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
    pub(super) repo: git2::Repository,
    /// The work tree; the git dir itself for a bare repository.
    pub(super) workdir: PathBuf,
    /// The registry root relative to the work tree, `/`-separated, empty or ending in `/`.
    pub(super) prefix: String,
    /// A bare repository: commits only, no work tree.
    pub(super) bare: bool,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("workdir", &self.workdir)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Whether [`Repo::walk_objects`] reads packs itself: set with libgit2's hash checks off.
static DIRECT_PACKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// How many objects a walk reads through libgit2 before it opens the packs itself (which reads
/// their indexes whole): a walk of a few commits never does.
pub(crate) const PACKS_AFTER: u32 = 64;

#[cfg(any(feature = "cli", feature = "unstable"))]
/// Sets libgit2's process-wide options for a short-lived process that reads history and
/// fetches nothing: object hash checks and the object cache off, smaller pack windows. They
/// change every git2 user in the process, so only a program that owns the process (the
/// `promptreg` binary) calls this, before it opens a repository; the library never does, and a
/// server that fetches from remotes keeps hash checks on.
#[cfg(any(feature = "cli", feature = "unstable"))]
pub fn tune_for_short_process() {
    // libgit2 re-hashes every object it reads by default; git itself does not (it leaves
    // that to fsck), and the hashing was three quarters of a cold history walk.
    static RELAX: std::sync::Once = std::sync::Once::new();
    RELAX.call_once(|| {
        git2::opts::strict_hash_verification(false);
        // Objects are not re-hashed either way, so walks may read packs themselves.
        DIRECT_PACKS.store(true, std::sync::atomic::Ordering::Relaxed);
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

    /// A reader for many objects in a row, through libgit2.
    pub fn objects(&self) -> Result<Objects<'_>> {
        Ok(Objects {
            odb: self.repo.odb()?,
            pack_dir: None,
            packs: std::cell::OnceCell::new(),
            reads: std::cell::Cell::new(0),
        })
    }

    /// A reader for a walk through history, which may read every commit and tree: in a process
    /// that turned libgit2's hash checks off ([`tune_for_short_process`]), it reads packed
    /// objects itself once it has read [`PACKS_AFTER`] (see `git::pack`); otherwise, and for
    /// anything it does not read itself, it is [`Repo::objects`].
    pub fn walk_objects(&self) -> Result<Objects<'_>> {
        self.walk_objects_if(DIRECT_PACKS.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// [`Repo::walk_objects`], reading packs itself when `direct` (a test's choice, where the
    /// process-wide switch is not).
    pub(crate) fn walk_objects_if(&self, direct: bool) -> Result<Objects<'_>> {
        let mut objects = self.objects()?;
        if direct {
            objects.pack_dir = Some(self.repo.commondir().join("objects"));
        }
        Ok(objects)
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
            let found = objects.with(tree, |data| {
                tree_entries(data)
                    .find(|e| e.name == part.as_bytes() && e.is_tree)
                    .map(|e| e.id)
            })?;
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
}

/// Stops the process at a named point of a write when `PROMPTREG_TEST_CRASH` names it: how the
/// tests check what a crash at each step leaves behind.
pub(super) fn crash_point(name: &str) {
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

/// Working files larger than this are never read to compare them with a blob.
pub(super) const MAX_WORK_FILE: u64 = 64 << 20;

/// A handle on the object database of its own, which another thread can own: the repository
/// opened again from its git dir.
pub struct OwnedObjects {
    repo: git2::Repository,
}

impl OwnedObjects {
    /// The raw bytes of an object.
    pub fn read(&self, id: ObjectId) -> Result<Vec<u8>> {
        let odb = self.repo.odb()?;
        let object = odb.read(id.oid())?;
        Ok(object.data().to_vec())
    }
}

impl Repo {
    /// Another handle on this repository's objects, for a thread of its own.
    pub fn owned_objects(&self) -> Result<OwnedObjects> {
        let repo = git2::Repository::open(self.repo.path())?;
        Ok(OwnedObjects { repo })
    }
}

/// An object's raw bytes as the object database read them, held for as long as they are used
/// (reading the trees of a long history, a copy of each was a tenth of the time).
pub struct Held<'o>(HeldBytes<'o>);

enum HeldBytes<'o> {
    Odb(git2::OdbObject<'o>),
    Packed(std::rc::Rc<Vec<u8>>),
}

impl std::ops::Deref for Held<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            HeldBytes::Odb(object) => object.data(),
            HeldBytes::Packed(bytes) => bytes,
        }
    }
}

/// Reads objects one after another through one handle on the object database (and, for a
/// walk, packs read directly: [`Repo::walk_objects`]).
pub struct Objects<'r> {
    odb: git2::Odb<'r>,
    /// The objects folder whose packs a walk reads itself, once it has read enough objects.
    pack_dir: Option<PathBuf>,
    packs: std::cell::OnceCell<Option<crate::git::pack::Packs>>,
    reads: std::cell::Cell<u32>,
}

impl Objects<'_> {
    /// The packs read directly, once opened (`None`: through libgit2).
    fn packs(&self) -> Option<&crate::git::pack::Packs> {
        let dir = self.pack_dir.as_ref()?;
        if let Some(packs) = self.packs.get() {
            return packs.as_ref();
        }
        let reads = self.reads.get() + 1;
        self.reads.set(reads);
        if reads <= PACKS_AFTER {
            return None;
        }
        self.packs
            .get_or_init(|| crate::git::pack::Packs::open(dir))
            .as_ref()
    }

    fn packed(&self, id: ObjectId) -> Option<std::rc::Rc<Vec<u8>>> {
        self.packs()?.read(id)
    }

    /// The raw bytes of an object.
    pub fn read(&self, id: ObjectId) -> Result<Vec<u8>> {
        if let Some(bytes) = self.packed(id) {
            return Ok(bytes.as_ref().clone());
        }
        let object = self.odb.read(id.oid())?;
        Ok(object.data().to_vec())
    }

    /// The raw bytes of an object, where the object database holds them (no copy).
    pub fn read_held(&self, id: ObjectId) -> Result<Held<'_>> {
        if let Some(bytes) = self.packed(id) {
            return Ok(Held(HeldBytes::Packed(bytes)));
        }
        Ok(Held(HeldBytes::Odb(self.odb.read(id.oid())?)))
    }

    /// Calls `f` with the raw bytes of an object, without copying them.
    pub fn with<T>(&self, id: ObjectId, f: impl FnOnce(&[u8]) -> T) -> Result<T> {
        if let Some(bytes) = self.packed(id) {
            return Ok(f(&bytes));
        }
        let object = self.odb.read(id.oid())?;
        Ok(f(object.data()))
    }

    /// The tree and first parent of a commit, and its metadata when the raw object reads as
    /// [`Repo::commit_info`] would read it (`None`: ask it): one read of the object for both.
    pub fn commit(&self, id: ObjectId) -> Result<(CommitLinks, Option<CommitInfo>)> {
        let (links, info) = self.with(id, |data| {
            (parse_commit_links(data), parse_commit_info(id, data))
        })?;
        let links = links
            .ok_or_else(|| Error::Git(GitError::new(format!("commit {id} cannot be parsed"))))?;
        Ok((links, info))
    }

    /// The tree and first parent of a commit.
    pub fn commit_links(&self, id: ObjectId) -> Result<CommitLinks> {
        self.with(id, parse_commit_links)?
            .ok_or_else(|| Error::Git(GitError::new(format!("commit {id} cannot be parsed"))))
    }
}

/// A commit's metadata from its raw object, as [`Repo::commit_info`] reads it through libgit2:
/// the author's name and email, the committer's time and offset, the message without its
/// leading newlines, all decoded from the `encoding` header's charset (UTF-8 without one).
/// `None` for anything out of the ordinary (no author or committer line, one that does not
/// read as `NAME <EMAIL> SECONDS +HHMM`, a header after the message's start), which the caller
/// then reads through libgit2.
pub(crate) fn parse_commit_info(id: ObjectId, data: &[u8]) -> Option<CommitInfo> {
    let mut author = None;
    let mut committer = None;
    let mut encoding = None;
    let mut rest = data;
    loop {
        let end = memchr::memchr(b'\n', rest)?;
        let line = &rest[..end];
        rest = &rest[end + 1..];
        if line.is_empty() {
            break;
        }
        if let Some(value) = line.strip_prefix(b"author ") {
            if author.is_some() {
                return None;
            }
            author = Some(signature(value)?);
        } else if let Some(value) = line.strip_prefix(b"committer ") {
            if committer.is_some() {
                return None;
            }
            committer = Some(signature(value)?);
        } else if let Some(value) = line.strip_prefix(b"encoding ") {
            encoding = Some(value);
        }
    }
    let (name, email, _, _) = author?;
    let (_, _, time, offset_minutes) = committer?;
    let encoding = match encoding {
        None => encoding_rs::UTF_8,
        Some(label) => {
            let label = std::str::from_utf8(label).ok()?;
            encoding_rs::Encoding::for_label(label.as_bytes()).unwrap_or(encoding_rs::UTF_8)
        }
    };
    let text = |bytes: &[u8]| encoding.decode_without_bom_handling(bytes).0.into_owned();
    let start = rest.iter().position(|&b| b != b'\n').unwrap_or(rest.len());
    Some(CommitInfo {
        id,
        author: text(name),
        email: text(email),
        time,
        offset_minutes,
        message: text(&rest[start..]),
    })
}

/// `NAME <EMAIL> SECONDS +HHMM` as (name, email, seconds, offset in minutes); `None` for any
/// other shape (libgit2 is more lenient: those are left to it).
fn signature(value: &[u8]) -> Option<(&[u8], &[u8], i64, i32)> {
    let open = memchr::memchr(b'<', value)?;
    let close = open + 1 + memchr::memchr(b'>', &value[open + 1..])?;
    let name = value[..open].strip_suffix(b" ")?;
    if name.contains(&b'>')
        || name.first().is_some_and(u8::is_ascii_whitespace)
        || name.last().is_some_and(u8::is_ascii_whitespace)
    {
        return None;
    }
    let email = &value[open + 1..close];
    if email.first().is_some_and(u8::is_ascii_whitespace)
        || email.last().is_some_and(u8::is_ascii_whitespace)
    {
        return None;
    }
    let when = std::str::from_utf8(value[close + 1..].strip_prefix(b" ")?).ok()?;
    let (seconds, zone) = when.split_once(' ')?;
    if seconds.is_empty() || !seconds.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: i64 = seconds.parse().ok()?;
    let (sign, digits) = match zone.as_bytes() {
        [b'+', rest @ ..] => (1, rest),
        [b'-', rest @ ..] => (-1, rest),
        _ => return None,
    };
    if digits.len() != 4 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let hours = i32::from(digits[0] - b'0') * 10 + i32::from(digits[1] - b'0');
    let minutes = i32::from(digits[2] - b'0') * 10 + i32::from(digits[3] - b'0');
    Some((name, email, seconds, sign * (hours * 60 + minutes)))
}

fn parse_commit_links(data: &[u8]) -> Option<CommitLinks> {
    let mut tree = None;
    let mut first_parent = None;
    for line in data.split(|&b| b == b'\n') {
        if line.is_empty() {
            break;
        }
        if let Some(hex) = line.strip_prefix(b"tree ") {
            tree = Some(ObjectId::from_hex_bytes(hex)?);
        } else if let Some(hex) = line.strip_prefix(b"parent ") {
            if first_parent.is_none() {
                first_parent = Some(ObjectId::from_hex_bytes(hex)?);
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

#[cfg(test)]
mod tests {
    use crate::git::oid::ObjectId;
    use crate::git::repo::{parse_commit_info, parse_commit_links, Repo};

    /// A walk reads its first [`PACKS_AFTER`] objects through libgit2 and only then opens the
    /// packs; a reader that does not read packs never opens them.
    #[test]
    fn packs_are_opened_after_the_first_objects_of_a_walk() {
        let dir = tempfile::tempdir().expect("temp dir");
        let git = crate::git::pack::tests::packed_repo(dir.path(), 5, 3);
        let repo = Repo::discover(dir.path())
            .expect("open")
            .expect("a repository");
        let head = crate::git::repo::from_oid(git.head().expect("head").target().expect("id"));
        let walk = repo.walk_objects_if(true).expect("objects");
        let plain = repo.walk_objects_if(false).expect("objects");
        for _ in 0..crate::git::repo::PACKS_AFTER {
            walk.commit_links(head).expect("read");
            plain.commit_links(head).expect("read");
        }
        assert!(walk.packs.get().is_none());
        walk.commit_links(head).expect("read");
        plain.commit_links(head).expect("read");
        assert!(walk.packs.get().is_some_and(Option::is_some));
        assert!(plain.packs.get().is_none());
    }

    /// A commit's tree and first parent, and nothing read from a line that does not hold an id.
    #[test]
    fn commit_links_are_read_or_refused() {
        let (t, p, q) = ("1".repeat(40), "2".repeat(40), "3".repeat(40));
        let id = |hex: &str| ObjectId::from_hex(hex).expect("hex");
        let links =
            |raw: String| parse_commit_links(raw.as_bytes()).map(|l| (l.tree, l.first_parent));
        let rest = "author A <a@x> 1 +0000\ncommitter C <c@x> 1 +0000\n\nmessage\n";
        assert_eq!(links(format!("tree {t}\n{rest}")), Some((id(&t), None)));
        assert_eq!(
            links(format!("tree {t}\nparent {p}\nparent {q}\n{rest}")),
            Some((id(&t), Some(id(&p))))
        );
        // A damaged id is a commit that cannot be read, not a root commit or a missing tree.
        for bad in [
            format!("tree {t}\nparent {}\n{rest}", &p[..39]),
            format!("tree {t}\nparent +{}\n{rest}", &p[..39]),
            format!("tree {t}\nparent {p} \n{rest}"),
            format!("tree {}\n{rest}", &t[..39]),
            format!("tree {}g\n{rest}", &t[..39]),
            rest.to_string(),
            String::new(),
        ] {
            assert_eq!(links(bad.clone()), None, "{bad:?}");
        }
    }

    /// The metadata read from a raw commit is libgit2's, or left to it.
    #[test]
    fn raw_commits_read_as_libgit2_reads_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let git = git2::Repository::init(dir.path()).expect("init");
        let odb = git.odb().expect("odb");
        let tree = odb.write(git2::ObjectType::Tree, b"").expect("empty tree");
        let head = |who: &str, when: &str| format!("tree {tree}\n{who} {when}\n");
        let raw: Vec<(Vec<u8>, bool)> = vec![
            (
                format!("{}committer C <c@x> 1700000000 +0530\n\nSubject\n\nBody\n", head("author", "Ada Lovelace <ada@x> 1600000000 -0430")).into_bytes(),
                true,
            ),
            (
                format!("{}committer C <c@x> 1700000000 +0000\n\n\n\nLeading newlines\n", head("author", "A <a@x> 1 +0000")).into_bytes(),
                true,
            ),
            (
                format!("{}committer C <c@x> 1700000000 +0100\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n -----END PGP SIGNATURE-----\n\nSigned\n", head("author", "A <a@x> 5 +0100")).into_bytes(),
                true,
            ),
            (
                [
                    format!("{}committer C <c@x> 1700000000 +0100\nencoding ISO-8859-1\n\n", head("author", "Ren\u{e9} <r@x> 5 +0100"))
                        .replace('\u{e9}', "\u{1}")
                        .into_bytes(),
                    b"Caf\xe9\n".to_vec(),
                ]
                .concat()
                .iter()
                .map(|&b| if b == 1 { 0xe9 } else { b })
                .collect(),
                true,
            ),
            // Shapes left to libgit2.
            (
                format!("{}committer C <c@x> 1700000000 +0100\n\nx\n", head("author", " Spaced   <a@x> 5 +0100")).into_bytes(),
                false,
            ),
            (
                format!("{}committer C <c@x> 1700000000 +0100\n\nx\n", head("author", "A < a@x > 5 +0100")).into_bytes(),
                false,
            ),
            (
                format!("{}committer C <c@x> 1700000000 0100\n\nx\n", head("author", "A <a@x> 5 +0100")).into_bytes(),
                false,
            ),
            (format!("tree {tree}\ncommitter C <c@x> 1 +0000\n\nno author\n").into_bytes(), false),
        ];
        let repo = Repo::discover(dir.path())
            .expect("open")
            .expect("a repository");
        for (bytes, plain) in raw {
            let oid = odb
                .write(git2::ObjectType::Commit, &bytes)
                .expect("write commit");
            let id = crate::git::repo::from_oid(oid);
            let parsed = parse_commit_info(id, &bytes);
            assert_eq!(
                parsed.is_some(),
                plain,
                "{}",
                String::from_utf8_lossy(&bytes)
            );
            let Ok(libgit2) = repo.commit_info(id) else {
                // Refused by libgit2 (no author): refused here too, and the walk asks it.
                assert!(parsed.is_none());
                continue;
            };
            if let Some(parsed) = parsed {
                assert_eq!(parsed, libgit2, "{}", String::from_utf8_lossy(&bytes));
            }
            // What the walk records: the raw reading, else libgit2's.
            let objects = repo.objects().expect("objects");
            let (_, info) = objects.commit(id).expect("commit");
            assert_eq!(info.unwrap_or(libgit2.clone()), libgit2);
        }
    }
}

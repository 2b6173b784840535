//! Where a registry's files are read from: the working copy, or the tree of a commit.
//!
//! Every path is relative to the registry root and `/`-separated, and is checked with
//! [`normalize`] before any read, so nothing outside the root is ever read: not through `..`,
//! not through an absolute path, not through a symlink that points outside.

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::error::Refusal;
use crate::error::{Error, Result};
use crate::git::lock::LockFile;
use crate::snapshot::matcher::PromptMatcher;
#[cfg(any(feature = "cli", feature = "unstable"))]
pub use crate::snapshot::matcher::PROMPT_SUFFIXES;
pub use crate::snapshot::matcher::{is_hidden, is_hidden_name};

/// Why a path cannot be read from the registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path leaves the registry root.
    #[error("`{0}` is outside the registry root")]
    OutsideRoot(String),
    /// The path is empty or not a file name.
    #[error("`{0}` is not a file path")]
    NotAFile(String),
}

/// Resolves `.` and `..` in a root-relative path; refuses absolute paths and paths that leave
/// the root.
///
/// ```
/// use promptreg::snapshot::work::normalize;
/// assert_eq!(normalize("partials/./tone.md").unwrap(), "partials/tone.md");
/// assert!(normalize("../secret.txt").is_err());
/// assert!(normalize("/etc/passwd").is_err());
/// ```
pub fn normalize(path: &str) -> Result<String, PathError> {
    if path.starts_with('/') || path.starts_with('\\') || path.contains(':') && cfg!(windows) {
        return Err(PathError::OutsideRoot(path.to_string()));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathError::OutsideRoot(path.to_string()));
                }
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return Err(PathError::NotAFile(path.to_string()));
    }
    Ok(parts.join("/"))
}

/// Largest file promptreg reads: a prompt, a partial, the manifest, a values file.
pub const MAX_FILE_SIZE: usize = crate::format::yaml::MAX_FILE_SIZE;

/// Reads the file at `path` as input: a regular file (symlinks followed) of at most `limit`
/// bytes, named `name` in errors. `Ok(None)` when nothing is there.
///
/// This is how promptreg reads a file it did not write. FIFOs, devices, sockets and folders are
/// refused, and never waited on (`git::file::open_regular`: opened without blocking and checked
/// on the open handle, so swapping a file for a FIFO between a check and the read changes
/// nothing). A file that grows past `limit` while it is read is refused too.
pub fn read_input(path: &Path, name: &str, limit: usize) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let (file, meta) = match crate::git::file::open_regular(path) {
        Ok(crate::git::file::Opened::File(file, meta)) => (file, meta),
        Ok(crate::git::file::Opened::NotRegular(meta)) => return Err(not_regular(name, &meta)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    if meta.len() > limit as u64 {
        return Err(too_large(name, meta.len(), limit));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() > limit {
        return Err(too_large(name, bytes.len() as u64, limit));
    }
    Ok(Some(bytes))
}

/// Reads standard input as [`read_input`] reads a file: at most `limit` bytes.
#[cfg(any(feature = "cli", feature = "unstable"))]
pub fn read_stdin(limit: usize) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("<stdin>", e))?;
    if bytes.len() > limit {
        return Err(refused("<stdin>", Refusal::TooLarge { size: None, limit }));
    }
    Ok(bytes)
}

fn refused(name: &str, why: Refusal) -> Error {
    Error::Unreadable {
        file: name.to_string(),
        why,
    }
}

fn not_regular(name: &str, meta: &std::fs::Metadata) -> Error {
    refused(name, Refusal::NotRegular(file_kind(meta)))
}

fn too_large(name: &str, size: u64, limit: usize) -> Error {
    refused(
        name,
        Refusal::TooLarge {
            size: Some(size),
            limit,
        },
    )
}

/// What a file that is not a regular file is, for messages.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    let ft = meta.file_type();
    if ft.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ft.is_socket() {
            return "a socket";
        }
        if ft.is_char_device() || ft.is_block_device() {
            return "a device";
        }
    }
    "a special file"
}

/// A snapshot of the registry's files.
pub trait Source: Send + Sync + std::fmt::Debug {
    /// The bytes of the file at a normalized root-relative path, or `None` if there is none.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>>;

    /// Whether a regular file exists at a normalized root-relative path (inside the root).
    fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.read(path)?.is_some())
    }

    /// Every prompt file's root-relative path, sorted.
    fn prompt_files(&self) -> Result<Vec<String>>;

    /// Which files are prompts in this snapshot: as its own `promptreg.yaml` says, by default
    /// `.prompt.yaml` and `.prompt.yml` files. A bad `promptreg.yaml` is an error.
    fn matcher(&self) -> Result<Arc<PromptMatcher>> {
        PromptMatcher::read(&|path| self.read(path)).map(Arc::new)
    }

    /// Names the snapshot in messages: `working copy`, `commit 1a2b3c4`.
    fn describe(&self) -> String;
}

/// A source with no files, described as its text says: a history with no commit, or a prompt
/// file read on its own.
#[derive(Debug)]
pub(crate) struct Empty(pub &'static str);

impl Source for Empty {
    fn read(&self, _path: &str) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }

    fn prompt_files(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn describe(&self) -> String {
        self.0.to_string()
    }
}

/// The files on disk under the registry root.
#[derive(Debug, Clone)]
pub struct WorkTree {
    root: PathBuf,
    /// The repository's git dir (canonical), never read through the working copy: it can be
    /// a folder of any name inside the root (`GIT_DIR`, `--separate-git-dir`).
    git_dir: Option<PathBuf>,
}

impl WorkTree {
    /// The working copy rooted at `root`, which must exist.
    pub fn new(root: &Path) -> Result<WorkTree> {
        let root = root.canonicalize().map_err(|e| Error::io(root, e))?;
        Ok(WorkTree {
            root,
            git_dir: None,
        })
    }

    /// The same working copy, never reading anything under `git_dir`.
    pub fn with_git_dir(mut self, git_dir: &Path) -> WorkTree {
        self.git_dir = git_dir.canonicalize().ok();
        self
    }

    /// Whether the root is a bare repository's git dir: a working copy with no files, that
    /// refuses every write.
    pub fn is_git_dir(&self) -> bool {
        self.in_git_dir(&self.root)
    }

    /// Whether a canonical path is in the git dir.
    fn in_git_dir(&self, canonical: &Path) -> bool {
        self.git_dir
            .as_ref()
            .is_some_and(|git| canonical.starts_with(git))
    }

    /// The canonical registry root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path of a root-relative path.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The file a write of root-relative `rel` must replace: `rel` itself, or, when it is a
    /// symlink, the file it points to (written through, never replaced by a plain file). A
    /// link that leaves the root, or that points at something other than a file, is refused.
    pub fn write_target(&self, rel: &str) -> Result<PathBuf> {
        if self.in_git_dir(&self.root) {
            return Err(Error::Refused(format!(
                "{} is a bare repository: it has no working copy to write {rel} to; clone it, or change it through `promptreg serve --allow-writes`",
                self.root.display()
            )));
        }
        let path = self.root.join(rel);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = path.canonicalize().map_err(|e| Error::io(&path, e))?;
                let is_file = std::fs::metadata(&target).is_ok_and(|m| m.is_file());
                if !target.starts_with(&self.root) || !is_file {
                    return Err(Error::Refused(format!(
                        "{rel} is a symlink to {}, outside the registry root or not a file; not writing through it",
                        target.display()
                    )));
                }
                Ok(target)
            }
            Ok(meta) if !meta.is_file() => Err(Error::Refused(format!(
                "{rel} is not a regular file; not replacing it"
            ))),
            _ => Ok(path),
        }
    }

    /// Writes a root-relative file atomically (a temporary file renamed into place), keeping
    /// the permissions of the file it replaces, and writing through a symlink
    /// ([`WorkTree::write_target`]).
    pub fn write(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        let mut lock = self.lock(rel)?;
        lock.write(bytes)?;
        lock.commit()
    }

    /// Takes the lock of root-relative `rel` (`rel.lock`, beside the file a write replaces, see
    /// [`WorkTree::write_target`]), for a read-modify-write: read the file after taking it,
    /// then [`LockFile::write`] and [`LockFile::commit`]. Writers of the same file queue.
    pub fn lock(&self, rel: &str) -> Result<LockFile> {
        let path = self.write_target(rel)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        LockFile::acquire(&path)
    }

    fn inside(&self, path: &Path) -> bool {
        path.canonicalize()
            .map(|p| p.starts_with(&self.root))
            .unwrap_or(false)
    }
}

impl Source for WorkTree {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let full = self.root.join(path);
        match std::fs::symlink_metadata(&full) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(None),
            Err(e) => return Err(Error::io(full, e)),
            Ok(_) => {}
        }
        let Ok(canonical) = full.canonicalize() else {
            // A dangling symlink, or a loop of them.
            return Ok(None);
        };
        if !canonical.starts_with(&self.root) {
            return Err(refused(path, Refusal::OutsideRoot));
        }
        if self.in_git_dir(&canonical) {
            return Err(refused(path, Refusal::Hidden));
        }
        if full.is_dir() {
            return Ok(None);
        }
        read_input(&full, path, MAX_FILE_SIZE)
    }

    fn exists(&self, path: &str) -> Result<bool> {
        let full = self.root.join(path);
        Ok(full.is_file()
            && full
                .canonicalize()
                .is_ok_and(|p| p.starts_with(&self.root) && !self.in_git_dir(&p)))
    }

    fn prompt_files(&self) -> Result<Vec<String>> {
        let matcher = self.matcher()?;
        let walker = walkdir::WalkDir::new(&self.root)
            .follow_links(true)
            .into_iter()
            .filter_entry(|entry| {
                let hidden =
                    entry.depth() > 0 && is_hidden_name(entry.file_name().as_encoded_bytes());
                // A folder with a `.git` of its own is another repository (a submodule or a
                // nested clone): its files are not the registry's, as they are not git's.
                let nested_repo = entry.depth() > 0
                    && entry.file_type().is_dir()
                    && std::fs::symlink_metadata(entry.path().join(".git")).is_ok();
                !hidden
                    && !nested_repo
                    && (!entry.path_is_symlink() || self.inside(entry.path()))
                    && !self.in_git_dir(entry.path())
            });
        let mut files = Vec::new();
        for entry in walker {
            let entry = match entry {
                Ok(entry) => entry,
                // A loop of symlinks or an unreadable folder: skip it, as git would.
                Err(_) => continue,
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(&self.root) else {
                continue;
            };
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if matcher.is_prompt(&rel) {
                files.push(rel);
            }
        }
        files.sort();
        Ok(files)
    }

    fn describe(&self) -> String {
        "working copy".to_string()
    }
}

#[cfg(test)]
mod tests {
    use crate::snapshot::work::*;

    #[test]
    fn normalize_keeps_paths_inside_the_root() {
        assert_eq!(normalize("a/../b.md"), Ok("b.md".to_string()));
        assert!(matches!(
            normalize("a/../../b.md"),
            Err(PathError::OutsideRoot(_))
        ));
        assert!(matches!(normalize("."), Err(PathError::NotAFile(_))));
    }
}

//! Where a registry's files are read from: the working copy, or the tree of a commit.
//!
//! Every path is relative to the registry root and `/`-separated, and is checked with
//! [`normalize`] before any read, so nothing outside the root is ever read: not through `..`,
//! not through an absolute path, not through a symlink that points outside.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Suffixes that make a file a prompt.
pub const PROMPT_SUFFIXES: &[&str] = &[".prompt.yaml", ".prompt.yml"];

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
/// use promptreg::source::normalize;
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

/// The id of a prompt file's root-relative path, if it is a prompt file.
pub fn prompt_id(path: &str) -> Option<&str> {
    PROMPT_SUFFIXES
        .iter()
        .find_map(|suffix| path.strip_suffix(suffix))
        .filter(|id| !id.is_empty() && !id.ends_with('/'))
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

    /// Names the snapshot in messages: `working copy`, `commit 1a2b3c4`.
    fn describe(&self) -> String;
}

/// The files on disk under the registry root.
#[derive(Debug, Clone)]
pub struct WorkTree {
    root: PathBuf,
}

impl WorkTree {
    /// The working copy rooted at `root`, which must exist.
    pub fn new(root: &Path) -> Result<WorkTree> {
        let root = root.canonicalize().map_err(|e| Error::io(root, e))?;
        Ok(WorkTree { root })
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
        let path = self.write_target(rel)?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        let dir = dir.as_path();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
        std::io::Write::write_all(&mut tmp, bytes).map_err(|e| Error::io(tmp.path(), e))?;
        if let Ok(meta) = std::fs::metadata(&path) {
            let _ = std::fs::set_permissions(tmp.path(), meta.permissions());
        } else {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ =
                    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644));
            }
        }
        tmp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        Ok(())
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
        if !self.inside(&full) {
            return Ok(None);
        }
        if full.is_dir() {
            return Ok(None);
        }
        std::fs::read(&full)
            .map(Some)
            .map_err(|e| Error::io(full, e))
    }

    fn exists(&self, path: &str) -> Result<bool> {
        let full = self.root.join(path);
        Ok(full.is_file() && self.inside(&full))
    }

    fn prompt_files(&self) -> Result<Vec<String>> {
        let walker = walkdir::WalkDir::new(&self.root)
            .follow_links(true)
            .into_iter()
            .filter_entry(|entry| {
                let hidden =
                    entry.depth() > 0 && entry.file_name().to_string_lossy().starts_with('.');
                // A folder with a `.git` of its own is another repository (a submodule or a
                // nested clone): its files are not the registry's, as they are not git's.
                let nested_repo = entry.depth() > 0
                    && entry.file_type().is_dir()
                    && std::fs::symlink_metadata(entry.path().join(".git")).is_ok();
                !hidden && !nested_repo && (!entry.path_is_symlink() || self.inside(entry.path()))
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
            if prompt_id(&rel).is_some() {
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
    use super::*;

    #[test]
    fn ids_strip_either_suffix() {
        assert_eq!(
            prompt_id("support/triage.prompt.yaml"),
            Some("support/triage")
        );
        assert_eq!(prompt_id("a.prompt.yml"), Some("a"));
        assert_eq!(prompt_id("a.yaml"), None);
        assert_eq!(prompt_id(".prompt.yaml"), None);
    }

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

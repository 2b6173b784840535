//! Lock files as git takes them: `PATH.lock` is created exclusively, the new content is written
//! into it, and renaming it over `PATH` both publishes the content and releases the lock. A lock
//! dropped without [`LockFile::commit`] is removed, and `PATH` is as it was.
//!
//! Another writer holding the lock is waited for, up to [`WAIT`]; a lock file older than that
//! when first seen is taken to be left by a crashed process, and is reported at once with what
//! to do, as git does.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, Result};

/// How long a writer waits for another writer's lock.
pub const WAIT: Duration = Duration::from_secs(10);

/// A held lock on one file.
#[derive(Debug)]
pub struct LockFile {
    lock: PathBuf,
    target: PathBuf,
    file: Option<File>,
    held: bool,
}

impl LockFile {
    /// Takes the lock on `target` (`target.lock`), waiting up to [`WAIT`] for another writer.
    pub fn acquire(target: &Path) -> Result<LockFile> {
        let mut lock = target.as_os_str().to_owned();
        lock.push(".lock");
        let lock = PathBuf::from(lock);
        let start = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&lock) {
                Ok(file) => {
                    return Ok(LockFile {
                        lock,
                        target: target.to_path_buf(),
                        file: Some(file),
                        held: true,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(&lock)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok())
                        .is_some_and(|age| age > WAIT);
                    if stale || start.elapsed() > WAIT {
                        return Err(Error::Refused(format!(
                            "{} exists: another git process is writing{}; if none is running, \
                             delete the file and run this again",
                            lock.display(),
                            if stale { "" } else { " (waited 10 s)" }
                        )));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(Error::io(&lock, e)),
            }
        }
    }

    /// Writes the new content into the lock file, with the permissions of the file it will
    /// replace, and flushes it to disk.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Error::Refused(format!("{} was replaced", self.lock.display())))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(&self.lock, e))?;
        if let Ok(meta) = std::fs::metadata(&self.target) {
            let _ = std::fs::set_permissions(&self.lock, meta.permissions());
        }
        Ok(())
    }

    /// Makes `prepared` (a file in the same folder) the lock's content by renaming it over the
    /// lock file: the lock stays held throughout.
    pub fn replace_with(&mut self, prepared: &Path) -> Result<()> {
        self.file = None;
        std::fs::rename(prepared, &self.lock).map_err(|e| Error::io(&self.lock, e))
    }

    /// Publishes the content: renames the lock file over the target, which releases the lock.
    pub fn commit(mut self) -> Result<()> {
        self.file = None;
        std::fs::rename(&self.lock, &self.target).map_err(|e| Error::io(&self.target, e))?;
        self.held = false;
        Ok(())
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        if self.held {
            self.file = None;
            let _ = std::fs::remove_file(&self.lock);
        }
    }
}

/// A lock between writers of promptreg, held on an open file with the system's advisory lock:
/// waited for up to [`WAIT`], and released by the system if the process dies, so a crash never
/// leaves it behind.
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
}

impl WriterLock {
    /// Takes the lock on `path` (created if missing).
    pub fn acquire(path: &Path) -> Result<WriterLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(WriterLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < WAIT => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::Refused(format!(
                        "another promptreg has been writing to this repository for 10 s ({} is locked); run this again when it is done",
                        path.display()
                    )))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::git::lock::*;

    #[test]
    fn commit_publishes_and_drop_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        std::fs::write(&target, "old").unwrap();
        {
            let mut lock = LockFile::acquire(&target).unwrap();
            lock.write(b"new").unwrap();
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        assert!(!dir.path().join("f.lock").exists());
        let mut lock = LockFile::acquire(&target).unwrap();
        lock.write(b"new").unwrap();
        lock.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert!(!dir.path().join("f.lock").exists());
    }

    #[test]
    fn a_stale_lock_is_reported_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        let stale = File::create(dir.path().join("f.lock")).unwrap();
        stale
            .set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        let start = Instant::now();
        let err = LockFile::acquire(&target).unwrap_err().to_string();
        assert!(start.elapsed() < WAIT, "waited for a stale lock");
        assert!(err.contains("f.lock exists"), "{err}");
        assert!(err.contains("delete the file"), "{err}");
        // The stale lock is left for the user to look at.
        assert!(dir.path().join("f.lock").exists());
    }
}

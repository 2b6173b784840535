//! Opening a file promptreg did not write (a prompt, a pack, a cache someone may have replaced)
//! without ever waiting on it.

use std::fs::{File, Metadata};
use std::path::Path;

/// What is at a path opened for reading.
pub(crate) enum Opened {
    /// A regular file (symlinks followed), with its metadata read from the open handle.
    File(File, Metadata),
    /// A FIFO, a device, a socket or a folder: never read.
    NotRegular(Metadata),
}

/// Opens `path` for reading without blocking (a FIFO does not wait for a writer) and checks the
/// open handle, so swapping the file for a FIFO between a check and the read changes nothing.
/// The error is the open's (`NotFound` when nothing is there).
pub(crate) fn open_regular(path: &Path) -> std::io::Result<Opened> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        // A socket cannot be opened at all (ENXIO): say what it is.
        Err(e) => {
            return match std::fs::metadata(path) {
                Ok(meta) if !meta.is_file() => Ok(Opened::NotRegular(meta)),
                _ => Err(e),
            }
        }
    };
    let meta = file.metadata()?;
    Ok(if meta.is_file() {
        Opened::File(file, meta)
    } else {
        Opened::NotRegular(meta)
    })
}

/// A regular file, opened as [`open_regular`] opens it; `None` for anything else or on any
/// failure (for caches, where either means "build it again").
pub(crate) fn regular(path: &Path) -> Option<File> {
    match open_regular(path).ok()? {
        Opened::File(file, _) => Some(file),
        Opened::NotRegular(_) => None,
    }
}

/// The whole of a regular file (see [`regular`]).
pub(crate) fn read_regular(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut file = regular(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

#[cfg(all(test, unix))]
mod tests {
    use crate::git::file::{open_regular, read_regular, regular, Opened};

    /// A FIFO is reported, not waited on (the test would hang otherwise); a file reads whole;
    /// nothing there is `NotFound`.
    #[test]
    fn only_regular_files_are_opened_and_fifos_never_wait() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        assert!(matches!(open_regular(&fifo), Ok(Opened::NotRegular(_))));
        assert!(regular(&fifo).is_none());
        assert!(read_regular(&fifo).is_none());
        assert!(matches!(
            open_regular(dir.path()),
            Ok(Opened::NotRegular(_))
        ));
        let file = dir.path().join("file");
        std::fs::write(&file, b"bytes").expect("write");
        assert_eq!(read_regular(&file).as_deref(), Some(&b"bytes"[..]));
        let missing = open_regular(&dir.path().join("missing"))
            .err()
            .map(|e| e.kind());
        assert_eq!(missing, Some(std::io::ErrorKind::NotFound));
    }
}

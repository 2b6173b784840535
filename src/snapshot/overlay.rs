//! A snapshot with one file replaced (or removed): what a commit would hold, checked before
//! it is made.

use std::sync::Arc;

use crate::error::Result;
use crate::snapshot::work::Source;

/// `base`, except that `file` holds `bytes` (or is gone, for `None`).
#[derive(Debug)]
pub struct Overlay {
    base: Arc<dyn Source>,
    file: String,
    bytes: Option<Vec<u8>>,
}

impl Overlay {
    /// `base` with `file` (a normalized root-relative path) replaced.
    pub fn new(base: Arc<dyn Source>, file: &str, bytes: Option<Vec<u8>>) -> Overlay {
        Overlay {
            base,
            file: file.to_string(),
            bytes,
        }
    }
}

impl Source for Overlay {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        if path == self.file {
            return Ok(self.bytes.clone());
        }
        self.base.read(path)
    }

    fn prompt_files(&self) -> Result<Vec<String>> {
        let mut files = self.base.prompt_files()?;
        files.retain(|f| *f != self.file);
        if self.bytes.is_some() && self.matcher()?.is_prompt(&self.file) {
            files.push(self.file.clone());
            files.sort();
        }
        Ok(files)
    }

    fn describe(&self) -> String {
        format!("{} with {} changed", self.base.describe(), self.file)
    }
}

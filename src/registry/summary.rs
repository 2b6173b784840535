//! One line per prompt: what `list` and the server's prompt list show.

use crate::error::{Error, Result};
use crate::git::ObjectId;
use crate::registry::discovery::Discovery;
use crate::registry::open::Registry;
use crate::snapshot::work::Source;
use std::collections::BTreeMap;

impl Registry {
    /// One row per prompt: of the working copy, and of the tip when they differ.
    pub fn summaries(&self) -> Result<Vec<Summary>> {
        self.summaries_of(&self.discover_work()?)
    }

    /// [`Registry::summaries`] of the working copy's prompts found already.
    pub(crate) fn summaries_of(&self, discovery: &Discovery) -> Result<Vec<Summary>> {
        let mut files: BTreeMap<String, String> = discovery.prompts.clone();
        let counts = match self.version_counts() {
            Ok(counts) => Some(counts),
            Err(Error::NoHistory(_)) => None,
            Err(e) => return Err(e),
        };
        let manifest = self.manifest()?;
        // The prompt files committed at the tip, with their blobs: outside git there is
        // nothing to compare with; in a repository without commits every file is new.
        let tip_blobs: Option<BTreeMap<String, ObjectId>> = match &self.shared.repo {
            None => None,
            Some(_) => match self.tip() {
                Ok(tip) => Some(self.commit_source(tip)?.prompt_blobs()?),
                Err(Error::NoHistory(_)) => Some(BTreeMap::new()),
                Err(e) => return Err(e),
            },
        };
        // Prompts committed at the tip but deleted from the working copy still show.
        let matcher = match &tip_blobs {
            Some(blobs) if !blobs.is_empty() => Some(self.commit_source(self.tip()?)?.matcher()?),
            _ => None,
        };
        for file in tip_blobs.iter().flat_map(BTreeMap::keys) {
            if let Some(id) = matcher.as_ref().and_then(|m| m.prompt_id(file)) {
                files.entry(id.to_string()).or_insert_with(|| file.clone());
            }
        }
        // Files whose stat git's index vouches for are not read.
        let staged = match (self.repo(), &tip_blobs) {
            (Some(repo), Some(_)) => repo.staged_files(),
            _ => crate::git::StagedFiles::default(),
        };
        let mut rows = Vec::with_capacity(files.len());
        for (id, file) in files {
            let versions = counts
                .as_ref()
                .and_then(|counts| counts.get(&file).copied())
                .unwrap_or(0);
            let latest = (versions > 0).then_some(versions);
            let modified = match &tip_blobs {
                None => false,
                Some(blobs) => {
                    let blob = blobs.get(&file).copied();
                    let clean =
                        blob.is_some_and(|b| staged.unchanged(self.shared.work.root(), &file, b));
                    // A file that cannot be read as a prompt (too large, a FIFO) is not the
                    // committed version; `validate` says why, `list` still lists it.
                    !clean
                        && match self.work_differs(&file, blob) {
                            Ok(differs) => differs,
                            Err(Error::Unreadable { .. }) => true,
                            Err(e) => return Err(e),
                        }
                }
            };
            rows.push(Summary {
                default: manifest.get(None, &id).or(latest),
                labels: manifest
                    .labels_of(&id)
                    .into_iter()
                    .map(|(l, v)| (l.to_string(), v))
                    .collect(),
                latest,
                versions,
                modified,
                id,
                file,
            });
        }
        Ok(rows)
    }
}

/// What `list` shows of one prompt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// The id.
    pub id: String,
    /// The file, relative to the root.
    pub file: String,
    /// Number of committed versions.
    pub versions: u32,
    /// The newest version, if any.
    pub latest: Option<u32>,
    /// The default version: the manifest's, else the latest.
    pub default: Option<u32>,
    /// Labels pointing at the prompt, with their versions.
    pub labels: BTreeMap<String, u32>,
    /// Whether the working copy differs from the latest version (or the file is uncommitted
    /// or deleted).
    pub modified: bool,
}

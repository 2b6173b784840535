//! What a write changes (`Edit`), what planning it gives (`Plan`), and the manifest part of an
//! edit applied to any `defaults.yaml` text.

use crate::error::{Error, Result};
use crate::format::manifest::{self, Manifest};
use crate::git::oid::ObjectId;
use crate::git::Change;
use crate::write::rules::label_error;

/// One change to a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Edit {
    /// A new version of a prompt (its first when the id is new): the file's whole text.
    Commit {
        /// The prompt id.
        id: String,
        /// The file's new text.
        source: String,
        /// The file, for a new prompt that should not be `ID.prompt.yaml` (a `.prompt.yml`
        /// file, say); it must be one the registry's patterns select, with the id `id`. An
        /// existing prompt keeps its file.
        file: Option<String>,
    },
    /// Deletes a prompt: its file, and its lines of `defaults.yaml`, in one commit. Its
    /// versions stay readable by number and commit.
    Delete {
        /// The prompt id.
        id: String,
    },
    /// Points a prompt's default (no label) or a label at a version.
    Point {
        /// The label, or `None` for the default.
        label: Option<String>,
        /// The prompt id.
        id: String,
        /// The version.
        version: u32,
    },
    /// Removes a prompt's default (it gets its latest version again) or a label.
    Unpoint {
        /// The label, or `None` for the default.
        label: Option<String>,
        /// The prompt id.
        id: String,
    },
}

impl Edit {
    /// The prompt the edit is about.
    pub fn id(&self) -> &str {
        match self {
            Edit::Commit { id, .. }
            | Edit::Delete { id }
            | Edit::Point { id, .. }
            | Edit::Unpoint { id, .. } => id,
        }
    }
}

/// A planned write: the files to change and the commit message.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The commit the plan was made on (`None`: a history with no commit yet).
    pub(crate) base: Option<ObjectId>,
    pub(crate) edit: Edit,
    pub(crate) changes: Vec<Change>,
    pub(crate) message: String,
    /// The message the caller gave, if any (a plan made again keeps it).
    pub(crate) given_message: Option<String>,
    pub(crate) file: Option<String>,
}

impl Plan {
    /// The commit the plan was made on, `None` in a history with no commit yet.
    pub fn base(&self) -> Option<ObjectId> {
        self.base
    }

    /// The edit planned.
    pub fn edit(&self) -> &Edit {
        &self.edit
    }

    /// The commit message: the one given, or one naming the change.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The prompt's file (registry-relative) that the write changes, if any.
    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }

    /// Whether the write changes nothing (the same value again): applying it commits nothing.
    pub fn is_noop(&self) -> bool {
        self.changes.is_empty()
    }

    /// The registry-relative files changed.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.changes.iter().map(|c| match c {
            Change::Write { path, .. } | Change::Remove { path } => path.as_str(),
        })
    }

    pub(crate) fn changes(&self) -> &[Change] {
        &self.changes
    }
}

/// Applies the `defaults.yaml` part of `edit` to a manifest's text (`HEAD`'s, a staged one or
/// the working copy's), so that the same change lands on each without losing what else each
/// holds. `None` when it changes nothing there.
pub fn edit_manifest(edit: &Edit, text: &str) -> Result<Option<String>> {
    let manifest_error = |why: String| Error::Refused(format!("{}: {why}", manifest::FILE));
    if let Edit::Point {
        label: Some(label), ..
    }
    | Edit::Unpoint {
        label: Some(label), ..
    } = edit
    {
        if let Some(why) = manifest::label_problem(label) {
            return Err(label_error(label, why));
        }
    }
    let edited = match edit {
        Edit::Commit { .. } => return Ok(None),
        Edit::Point { label, id, version } => {
            manifest::edit(text, label.as_deref(), id, *version).map_err(manifest_error)?
        }
        Edit::Unpoint { label, id } => {
            match manifest::remove(text, label.as_deref(), id).map_err(manifest_error)? {
                Some(edited) => edited,
                None => return Ok(None),
            }
        }
        Edit::Delete { id } => {
            let labels: Vec<String> = Manifest::load(text.as_bytes())?
                .labels_of(id)
                .into_iter()
                .map(|(l, _)| l.to_string())
                .collect();
            let mut edited = text.to_string();
            for label in labels.iter().map(|l| Some(l.as_str())).chain([None]) {
                if let Some(next) = manifest::remove(&edited, label, id).map_err(manifest_error)? {
                    edited = next;
                }
            }
            edited
        }
    };
    Manifest::load(edited.as_bytes())?;
    Ok((edited != text).then_some(edited))
}

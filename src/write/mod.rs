//! Writes: every change a front end can make to a registry, planned in one place.
//!
//! An [`Edit`] (a new version of a prompt, a deleted prompt, a default or a label moved or
//! removed) is planned against the registry at one commit by [`plan`]: the id, the label and
//! the message are checked, the new file is validated exactly as `promptreg commit` validates
//! it, and the result is a [`Plan`]: the files to change and the commit message. The CLI
//! applies a plan to the working copy and git's index ([`commit_to_index`]); the server and
//! replicas apply it to a branch by compare-and-swap ([`commit_to_branch`]). Both go through
//! the one rule of [`crate::git`] for what a commit may touch, so a write can never replace a
//! file it does not name.
//!
//! Applying the same edit twice is a success the second time that commits nothing: a plan
//! that changes nothing is [`Plan::is_noop`].

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::manifest::{self, Manifest};
use crate::git::oid::ObjectId;
use crate::git::{Change, Committed, FileEdit, Identity, Repo};
use crate::registry::{LoadedPrompt, Snapshot};
use crate::snapshot::overlay::Overlay;
use crate::snapshot::work::{is_hidden, normalize, Source};

/// The files a write may never create, replace or pass through as a folder, whatever the id
/// says: the manifest and the registry's config.
const RESERVED: [&str; 2] = [manifest::FILE, crate::format::config::FILE];

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

    /// Whether the edit changes `defaults.yaml` alone.
    pub fn is_manifest_only(&self) -> bool {
        matches!(self, Edit::Point { .. } | Edit::Unpoint { .. })
    }
}

/// A planned write: the files to change and the commit message.
#[derive(Debug, Clone)]
pub struct Plan {
    edit: Edit,
    changes: Vec<Change>,
    message: String,
    file: Option<String>,
}

impl Plan {
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

/// Whether `c` is a character no id may hold: a control character (NUL included) or one that
/// reorders text (bidirectional overrides, isolates and marks), which would make an id read as
/// another in a review, a log line or a terminal.
fn forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// Checks that `id` can name a prompt that a write creates: a plain root-relative path
/// (no `.`, `..` or empty parts, no leading or trailing `/`), no hidden part, no `@` (which
/// starts a reference), no backslash, no control or bidirectional-override character, and no
/// part that is `defaults.yaml` or `promptreg.yaml`.
pub fn check_id(id: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::Usage(format!(
            "`{}` cannot be a prompt id: {why}",
            id.escape_debug()
        )))
    };
    if id.is_empty() {
        return bad("it is empty");
    }
    if id.len() > 1024 {
        return bad("it is longer than 1024 bytes");
    }
    if id.chars().any(forbidden_char) {
        return bad("it holds a control or bidirectional-override character");
    }
    if id.contains('@') || id.contains('\\') {
        return bad("`@` and `\\` have other meanings; ids are plain paths");
    }
    if normalize(id).ok().as_deref() != Some(id) {
        return bad(
            "ids are plain paths inside the registry (no `.`, `..`, empty parts or leading `/`)",
        );
    }
    if is_hidden(id) {
        return bad("a part that starts with `.` is hidden, and hidden files are never prompts");
    }
    if let Some(reserved) = id.split('/').find(|part| RESERVED.contains(part)) {
        return bad(&format!(
            "`{reserved}` is the registry's own file, and a prompt's path never passes through it"
        ));
    }
    Ok(())
}

/// Checks that `message` can be a commit message: not empty, no NUL.
pub fn check_message(message: &str) -> Result<()> {
    if message.trim().is_empty() {
        return Err(Error::Usage(
            "the commit message is empty; say what changed".into(),
        ));
    }
    if message.contains('\0') {
        return Err(Error::Usage(
            "the commit message holds a NUL byte, which git cannot store".into(),
        ));
    }
    Ok(())
}

fn label_error(label: &str, why: &str) -> Error {
    Error::Usage(format!(
        "`{label}` cannot be a label: {why}; pick a name such as `production` or `staging`"
    ))
}

/// The message of a default or label move: `Set default of greet to v2 (was v1)`.
pub fn point_message(label: Option<&str>, id: &str, before: Option<u32>, version: u32) -> String {
    format!(
        "Set {} to v{version} (was {})",
        what(label, id),
        before.map_or_else(|| "unset".to_string(), |b| format!("v{b}"))
    )
}

/// The message of a default or label removal: `Remove default of greet (was v2)`.
pub fn unpoint_message(label: Option<&str>, id: &str, before: Option<u32>) -> String {
    format!(
        "Remove {} (was {})",
        what(label, id),
        before.map_or_else(|| "unset".to_string(), |b| format!("v{b}"))
    )
}

fn what(label: Option<&str>, id: &str) -> String {
    match label {
        Some(label) => format!("label {label} of {id}"),
        None => format!("default of {id}"),
    }
}

/// Plans `edit` against the registry at `snapshot`'s commit. `message` is the commit message
/// (a new version needs one; moves and deletes name themselves when it is `None`).
pub fn plan(snapshot: &Snapshot, edit: Edit, message: Option<&str>) -> Result<Plan> {
    let id = edit.id().to_string();
    check_id(&id)?;
    if let Some(message) = message {
        check_message(message)?;
    }
    let base: Arc<dyn Source> = snapshot.registry().commit_source(snapshot.commit())?;
    let manifest_text = || -> Result<String> {
        let bytes = base.read(manifest::FILE)?.unwrap_or_default();
        String::from_utf8(bytes).map_err(|_| {
            Error::Refused(format!(
                "{} is not valid UTF-8 at commit {}; save it as UTF-8 first",
                manifest::FILE,
                snapshot.commit().short()
            ))
        })
    };
    let (changes, default_message, file) = match &edit {
        Edit::Commit { source, .. } => {
            let message = message.ok_or_else(|| {
                Error::Usage("a new version needs a commit message; say what changed".into())
            })?;
            let file = match snapshot.discovery().prompts.get(&id) {
                Some(file) => file.clone(),
                None => {
                    let file = format!("{id}{}", crate::snapshot::matcher::PROMPT_SUFFIXES[0]);
                    if !base.matcher()?.is_prompt(&file) {
                        return Err(Error::Usage(format!(
                            "{file} would not be a prompt: the registry's {} does not select it",
                            crate::format::config::FILE
                        )));
                    }
                    file
                }
            };
            let bytes = source.clone().into_bytes();
            let same = base.read(&file)?.as_deref() == Some(bytes.as_slice());
            let overlay: Arc<dyn Source> =
                Arc::new(Overlay::new(base.clone(), &file, Some(bytes.clone())));
            let loaded = LoadedPrompt::read(overlay, &id, &file)?;
            let errors: Vec<_> = crate::check::validate::check_loaded(loaded)
                .into_iter()
                .filter(|d| d.is_error())
                .collect();
            if !errors.is_empty() {
                return Err(Error::Invalid {
                    file,
                    text: Some(source.clone()),
                    diagnostics: errors,
                });
            }
            let changes = if same {
                Vec::new()
            } else {
                vec![Change::Write {
                    path: file.clone(),
                    bytes,
                }]
            };
            (changes, message.to_string(), Some(file))
        }
        Edit::Delete { .. } => {
            let file = snapshot
                .discovery()
                .file(&id, &snapshot.commit().to_string())?
                .to_string();
            let mut changes = vec![Change::Remove { path: file.clone() }];
            if let Some(edited) = edit_manifest(&edit, &manifest_text()?)? {
                changes.push(Change::Write {
                    path: manifest::FILE.into(),
                    bytes: edited.into_bytes(),
                });
            }
            (changes, format!("Delete {id}"), Some(file))
        }
        Edit::Point { label, .. } | Edit::Unpoint { label, .. } => {
            if let Some(label) = label {
                if let Some(why) = manifest::label_problem(label) {
                    return Err(label_error(label, why));
                }
            }
            let count = count_versions(snapshot, &id)?;
            let label = label.as_deref();
            let before = snapshot.manifest().get(label, &id);
            let default_message = match &edit {
                Edit::Point { version, .. } => {
                    if *version == 0 || *version > count {
                        return Err(Error::BadReference {
                            reference: format!("{id}@{version}"),
                            reason: format!("`{id}` has no version {version}"),
                            available: format!("it has versions 1 to {count}"),
                        });
                    }
                    point_message(label, &id, before, *version)
                }
                _ => unpoint_message(label, &id, before),
            };
            let changes = match edit_manifest(&edit, &manifest_text()?)? {
                Some(edited) => vec![Change::Write {
                    path: manifest::FILE.into(),
                    bytes: edited.into_bytes(),
                }],
                None => Vec::new(),
            };
            (changes, default_message, None)
        }
    };
    let plan = Plan {
        message: message.map_or(default_message, str::to_string),
        edit,
        changes,
        file,
    };
    guard(&plan)?;
    Ok(plan)
}

/// The versions a prompt has, refusing one that has none (a default or label needs one).
fn count_versions(snapshot: &Snapshot, id: &str) -> Result<u32> {
    let index = snapshot.index()?;
    let count = index
        .file_of(id)
        .map_or(0, |f| index.versions(&f).len() as u32);
    if count == 0 {
        snapshot
            .discovery()
            .file(id, &snapshot.commit().to_string())?;
        return Err(Error::BadReference {
            reference: id.to_string(),
            reason: format!("`{id}` has no committed versions"),
            available: String::new(),
        });
    }
    Ok(count)
}

/// The last line of defence: a plan touches only its prompt's own file and `defaults.yaml`,
/// and the prompt's file is never one of the registry's own files.
fn guard(plan: &Plan) -> Result<()> {
    for path in plan.paths() {
        let own = plan.file.as_deref() == Some(path);
        let manifest = path == manifest::FILE && !matches!(plan.edit, Edit::Commit { .. });
        if !(own || manifest) || (own && RESERVED.contains(&path)) {
            return Err(Error::Refused(format!(
                "a write of `{}` would change {path}, which it does not name; nothing was written",
                plan.edit.id()
            )));
        }
    }
    Ok(())
}

/// Commits `plan` on `branch` of `repo`, which must still point at `base` (compare-and-swap):
/// the tree is built in the object database, the index and working copy are not touched. A
/// plan that changes nothing commits nothing and answers `Ok(None)`.
pub fn commit_to_branch(
    repo: &Repo,
    branch: &str,
    base: Option<ObjectId>,
    plan: &Plan,
    author: Option<&Identity>,
) -> Result<Option<ObjectId>> {
    if plan.is_noop() {
        return Ok(None);
    }
    repo.commit_on_branch(branch, base, plan.changes(), plan.message(), author)
        .map(Some)
}

/// Builds the commit of `plan` on top of `base` without moving any ref (a replica pushes it).
/// `Ok(None)` for a plan that changes nothing.
pub fn build_commit(
    repo: &Repo,
    base: Option<ObjectId>,
    plan: &Plan,
    author: Option<&Identity>,
) -> Result<Option<ObjectId>> {
    if plan.is_noop() {
        return Ok(None);
    }
    repo.build_commit(base, plan.changes(), plan.message(), author)
        .map(Some)
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

/// Commits `plan` on `HEAD` through git's index, as `git commit` of those files alone would:
/// every other staged and unstaged change stays as it was (a staged `defaults.yaml` gets the
/// same edit on top of what is staged). The caller updates the working files. A plan that
/// changes nothing commits nothing (`Ok(None)`).
pub fn commit_to_index(repo: &Repo, plan: &Plan) -> Result<Option<Committed>> {
    if plan.is_noop() {
        return Ok(None);
    }
    let manifest_content = |bytes: Option<&[u8]>| -> Result<Vec<u8>> {
        let text = std::str::from_utf8(bytes.unwrap_or_default()).map_err(|_| {
            Error::Refused(format!(
                "{} is not valid UTF-8; save it as UTF-8",
                manifest::FILE
            ))
        })?;
        Ok(edit_manifest(&plan.edit, text)?
            .unwrap_or_else(|| text.to_string())
            .into_bytes())
    };
    let own_bytes: Vec<&[u8]> = plan
        .changes()
        .iter()
        .filter_map(|c| match c {
            Change::Write { path, bytes } if path != manifest::FILE => Some(bytes.as_slice()),
            _ => None,
        })
        .collect();
    let own_content = |_: Option<&[u8]>| -> Result<Vec<u8>> {
        Ok(own_bytes.first().map(|b| b.to_vec()).unwrap_or_default())
    };
    let files: Vec<(&str, FileEdit<'_>)> = plan
        .changes()
        .iter()
        .map(|change| match change {
            Change::Write { path, .. } if path == manifest::FILE => {
                (path.as_str(), FileEdit::Content(&manifest_content))
            }
            Change::Write { path, .. } => (path.as_str(), FileEdit::Content(&own_content)),
            Change::Remove { path } => (path.as_str(), FileEdit::Remove),
        })
        .collect();
    repo.commit_files(&files, plan.message()).map(Some)
}

/// What [`apply`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied {
    /// The new commit; `None` when the plan changed nothing.
    pub commit: Option<ObjectId>,
    /// The branch it is on; `None` for a detached `HEAD` (or when nothing was committed).
    pub branch: Option<String>,
}

/// Commits `plan` on the registry's `HEAD` as one transaction, and brings the working copy
/// along: what `promptreg commit`, `set-default --commit` and `delete` do, for any program.
///
/// - In a working copy, the commit is made through git's index ([`commit_to_index`]): every
///   other staged and unstaged change stays as it was. Then the prompt's working file gets the
///   committed text (or goes, for a delete) and `defaults.yaml` in the working copy gets the
///   same edit, under its lock, so its uncommitted lines stay. A prompt whose working file
///   holds edits that are neither `HEAD`'s nor the new text is refused first: they would be
///   lost.
/// - In a bare repository, the commit goes onto `HEAD`'s branch by compare-and-swap
///   ([`commit_to_branch`]).
///
/// `plan` must have been made on the registry's current `HEAD` (from [`Registry::snapshot`]);
/// when `HEAD` moved since, the commit is refused as a conflict, and nothing is written.
///
/// [`Registry::snapshot`]: crate::registry::Registry::snapshot
pub fn apply(
    registry: &crate::registry::Registry,
    snapshot: &Snapshot,
    plan: &Plan,
) -> Result<Applied> {
    let repo = registry.repo().ok_or_else(|| {
        Error::NoHistory(format!(
            "{} is not inside a git repository: writes are commits",
            registry.root().display()
        ))
    })?;
    if plan.is_noop() {
        return Ok(Applied {
            commit: None,
            branch: None,
        });
    }
    if repo.head()? != Some(snapshot.commit()) {
        return Err(Error::Conflict(format!(
            "HEAD moved since the write was planned on {}; plan it again",
            snapshot.commit().short()
        )));
    }
    if repo.is_bare() {
        let (branch, tip) = repo.head_branch()?;
        let commit = commit_to_branch(&repo, &branch, tip, plan, None)?;
        return Ok(Applied {
            commit,
            branch: Some(branch.trim_start_matches("refs/heads/").to_string()),
        });
    }
    let work = registry.work_tree();
    let file = plan.file().map(str::to_string);
    let new_text = match &plan.edit {
        Edit::Commit { source, .. } => Some(source.clone()),
        _ => None,
    };
    if let Some(file) = &file {
        let at_head = registry.commit_source(snapshot.commit())?.blob_id(file)?;
        let edited = registry.work_differs(file, at_head)?;
        let already_new = match (&new_text, work.read(file)?) {
            (Some(text), Some(bytes)) => {
                registry.work_blob_id(file, &bytes) == registry.work_blob_id(file, text.as_bytes())
            }
            _ => false,
        };
        if edited && !already_new {
            return Err(Error::Refused(format!(
                "{file} has changes that are not committed; commit them or drop them (`git restore {file}`) first"
            )));
        }
    }
    let lock = if plan.paths().any(|p| p == manifest::FILE) {
        Some(work.lock(manifest::FILE)?)
    } else {
        None
    };
    let committed = commit_to_index(&repo, plan)?;
    drop(repo);
    // The commit has landed: now the working copy follows it.
    if let Some(file) = &file {
        match &new_text {
            Some(text) => {
                if work.read(file)?.as_deref() != Some(text.as_bytes()) {
                    work.write(file, text.as_bytes())?;
                }
            }
            None => {
                let path = work.path(file);
                if let Err(e) = std::fs::remove_file(&path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        return Err(Error::io(path, e));
                    }
                }
            }
        }
    }
    if let Some(mut lock) = lock {
        let text = work.read(manifest::FILE)?.unwrap_or_default();
        let text = String::from_utf8(text).map_err(|_| {
            Error::Refused(format!(
                "{} in the working copy is not UTF-8: the commit landed, so make the same change to the working file by hand",
                manifest::FILE
            ))
        })?;
        if let Some(edited) = edit_manifest(&plan.edit, &text)? {
            lock.write(edited.as_bytes())?;
            lock.commit()?;
        }
    }
    Ok(Applied {
        commit: committed.as_ref().map(|c| c.id),
        branch: committed.and_then(|c| c.branch),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_are_not_plain_paths_are_refused() {
        for id in [
            "",
            "a/../b",
            "./a",
            "/a",
            "a/",
            "a//b",
            ".git/x",
            "a/.hidden",
            "a@2",
            "a\\b",
            "a\0b",
            "a\nb",
            "a\u{202e}b",
            "a\u{2066}b",
            "defaults.yaml/x",
            "promptreg.yaml/x",
            "x/defaults.yaml",
        ] {
            assert!(check_id(id).is_err(), "{id:?}");
        }
        for id in ["greet", "support/triage", "a.b/c-d_e", "日本/プロンプト"] {
            assert!(check_id(id).is_ok(), "{id:?}");
        }
        assert!(check_id(&"a".repeat(1025)).is_err());
    }

    #[test]
    fn messages_hold_no_nul_and_say_something() {
        assert!(check_message("fix typo").is_ok());
        assert!(check_message("  \n").is_err());
        assert!(check_message("a\0b").is_err());
    }

    #[test]
    fn moves_are_named_one_way() {
        assert_eq!(
            point_message(None, "greet", Some(1), 2),
            "Set default of greet to v2 (was v1)"
        );
        assert_eq!(
            point_message(Some("prod"), "greet", None, 3),
            "Set label prod of greet to v3 (was unset)"
        );
        assert_eq!(
            unpoint_message(None, "greet", Some(2)),
            "Remove default of greet (was v2)"
        );
    }
}

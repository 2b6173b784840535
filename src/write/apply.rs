//! Applying a plan: through git's index and the working copy, or onto a branch by
//! compare-and-swap.

use crate::error::{Error, Result};
use crate::format::manifest::{self};
use crate::git::oid::ObjectId;
use crate::git::{Change, Committed, FileEdit, Identity, Repo};
use crate::snapshot::work::Source;
use crate::write::branch::{apply_to_branch, LocalBranch};
use crate::write::edit::{edit_manifest, Edit, Plan};

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
/// - In a working copy, the commit is made through git's index (as `git commit` of those files alone would): every
///   other staged and unstaged change stays as it was. Then the prompt's working file gets the
///   committed text (or goes, for a delete) and `defaults.yaml` in the working copy gets the
///   same edit, under its lock, so its uncommitted lines stay. A prompt whose working file
///   holds edits that are neither `HEAD`'s nor the new text is refused first: they would be
///   lost.
/// - In a bare repository, the commit goes onto `HEAD`'s branch by compare-and-swap, as
///   [`apply_to_branch`] makes it.
///
/// `plan` must have been made on the registry's current `HEAD` (from [`Registry::snapshot`], or
/// with [`plan_unborn`] before the first commit); when `HEAD` moved since, the commit is
/// refused as a conflict, and nothing is written.
///
/// [`Registry::snapshot`]: crate::registry::Registry::snapshot
/// [`plan_unborn`]: crate::write::plan_unborn
pub fn apply(registry: &crate::registry::Registry, plan: &Plan) -> Result<Applied> {
    // Another writer may commit between the plan and its commit: the edit is then planned
    // again on the new HEAD (and checked again), a few times, as the server does.
    let mut current = None;
    for _ in 0..RETRIES {
        let attempt = current.as_ref().unwrap_or(plan);
        match apply_once(registry, attempt) {
            Err(Error::Conflict(_)) if !matches!(registry.repo(), Some(r) if r.is_bare()) => {
                let snapshot = registry.snapshot()?;
                current = Some(crate::write::plan(
                    &snapshot,
                    plan.edit.clone(),
                    plan.given_message.as_deref(),
                )?);
            }
            other => return other,
        }
    }
    Err(Error::Conflict(
        "HEAD kept moving while the write was made; run it again".into(),
    ))
}

/// How many times [`apply`] plans again when `HEAD` moved under it.
const RETRIES: usize = 5;

fn apply_once(registry: &crate::registry::Registry, plan: &Plan) -> Result<Applied> {
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
    if repo.head()? != plan.base {
        return Err(Error::Conflict(format!(
            "HEAD moved since the write was planned on {}; plan it again",
            plan.base
                .map_or_else(|| "no commit".to_string(), |b| b.short())
        )));
    }
    if repo.is_bare() {
        let (branch, tip) = repo.head_branch()?;
        drop(repo);
        let short = branch.trim_start_matches("refs/heads/").to_string();
        let commit = match tip {
            // A branch others may move too: the library's one way to write to one.
            Some(_) => {
                let mut branch = LocalBranch::named(registry, &branch);
                apply_to_branch(
                    &mut branch,
                    &plan.edit,
                    plan.given_message.as_deref(),
                    None,
                    &mut |_| Ok(()),
                )?
                .commit
            }
            None => {
                let repo = registry.require_repo()?;
                commit_to_branch(&repo, &branch, None, plan, None)?
            }
        };
        return Ok(Applied {
            commit,
            branch: Some(short),
        });
    }
    let work = registry.work_tree();
    let file = plan.file().map(str::to_string);
    let new_text = match &plan.edit {
        Edit::Commit { source, .. } => Some(source.clone()),
        _ => None,
    };
    if let Some(file) = &file {
        let at_head = match plan.base {
            Some(base) => registry.commit_source(base)?.blob_id(file)?,
            None => None,
        };
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

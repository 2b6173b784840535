//! Applying an edit to a branch that others move too: planned on its tip, built in the object
//! database, and published by compare-and-swap, planned again when the branch moved, and
//! refused when it moved in what the edit touches. What the server does for every write, and
//! what any program that writes to a shared branch (a bare repository, a remote) needs.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::manifest;
use crate::git::oid::ObjectId;
use crate::git::Identity;
use crate::registry::{Registry, Snapshot};
use crate::write::edit::{Edit, Plan};

/// A branch a write lands on: where its tip is, and how a commit gets onto it.
///
/// [`apply_to_branch`] asks for the tip, plans the edit on it, builds the commit in the
/// repository of the tip's registry, and publishes it. Implement it for a branch that is
/// moved some other way (a push to a remote, say); [`LocalBranch`] is a branch of the
/// registry's own repository.
pub trait Branch {
    /// The registry at the branch's tip as it is now (fetched or read again on every call).
    fn tip(&mut self) -> Result<Arc<Snapshot>>;

    /// Moves the branch from `base` to `commit`, a commit on top of `base` already in the
    /// repository. `Ok(false)` when the branch is no longer at `base`: nothing moved.
    fn publish(&mut self, base: ObjectId, commit: ObjectId, message: &str) -> Result<bool>;

    /// The branch, for messages: `main`, `the remote's main`.
    fn describe(&self) -> String;
}

/// A branch of the registry's own repository, moved by compare-and-swap on its ref.
#[derive(Debug)]
pub struct LocalBranch<'r> {
    registry: &'r Registry,
    /// The full ref name, `refs/heads/...`.
    name: String,
}

impl<'r> LocalBranch<'r> {
    /// The branch `HEAD` names now. A detached `HEAD` or a registry outside git is refused.
    pub fn head(registry: &'r Registry) -> Result<LocalBranch<'r>> {
        let repo = registry.require_repo()?;
        let (name, _) = repo.head_branch()?;
        drop(repo);
        Ok(LocalBranch { registry, name })
    }

    /// The branch `name` (`main` or `refs/heads/main`).
    pub fn named(registry: &'r Registry, name: &str) -> LocalBranch<'r> {
        let name = match name.strip_prefix("refs/heads/") {
            Some(_) => name.to_string(),
            None => format!("refs/heads/{name}"),
        };
        LocalBranch { registry, name }
    }

    /// The branch's short name (`main`).
    pub fn name(&self) -> &str {
        self.name.trim_start_matches("refs/heads/")
    }
}

impl Branch for LocalBranch<'_> {
    fn tip(&mut self) -> Result<Arc<Snapshot>> {
        self.registry.at_rev(&self.name).snapshot().map(Arc::new)
    }

    fn publish(&mut self, base: ObjectId, commit: ObjectId, message: &str) -> Result<bool> {
        let repo = self.registry.require_repo()?;
        match repo.move_branch(&self.name, Some(base), commit, message) {
            Ok(()) => Ok(true),
            Err(Error::Conflict(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    fn describe(&self) -> String {
        self.name().to_string()
    }
}

/// What [`apply_to_branch`] made.
#[derive(Debug)]
#[non_exhaustive]
pub struct Landed {
    /// The plan that landed (or changed nothing), as planned on `base`.
    pub plan: Plan,
    /// The branch's tip the plan was made on.
    pub base: Arc<Snapshot>,
    /// The new commit, now the branch's tip; `None` when the plan changed nothing (the same
    /// value again), which is a success.
    pub commit: Option<ObjectId>,
}

/// How many times [`apply_to_branch`] plans again when the branch moved under it.
const RETRIES: usize = 5;

/// Applies `edit` to `branch` as one commit: planned on its tip (checked and validated as
/// [`plan`](crate::write::plan) does), built on that tip in the object database (no index or
/// working copy is read or written), and published by compare-and-swap.
///
/// - `precondition` is asked about each tip once the edit is planned on it (so a malformed
///   edit is refused as such first): an `If-Match` check, say. Its error (an [`Error::Stale`]) is returned as it is, and nothing is written.
/// - When the branch moved between the tip and the publish, the edit is planned again on the
///   new tip, unless the move changed what the edit is about: the prompt's file, or its own
///   entry of `defaults.yaml`. That is a [`Error::Conflict`], as it would silently undo
///   someone else's change.
/// - The same value again (a default set to the version it has) commits nothing and succeeds.
///
/// `author` is who made the change; the committer is git's identity of the repository.
pub fn apply_to_branch(
    branch: &mut dyn Branch,
    edit: &Edit,
    message: Option<&str>,
    author: Option<&Identity>,
    precondition: &mut dyn FnMut(&Snapshot) -> Result<()>,
) -> Result<Landed> {
    let mut before: Option<(Arc<Snapshot>, Plan)> = None;
    for _ in 0..RETRIES {
        let tip = branch.tip()?;
        if let Some((earlier, planned)) = &before {
            if let Some(what) = moved_under(earlier, &tip, planned) {
                return Err(Error::Conflict(format!(
                    "{what} changed on {} (now at commit {}) while this write was made; nothing was written; read it again and apply your change to what is there now",
                    branch.describe(),
                    tip.commit().short()
                )));
            }
        }
        // The request is checked whole first: a malformed one is refused as such, whatever
        // the precondition says.
        let plan = crate::write::plan(&tip, edit.clone(), message)?;
        precondition(&tip)?;
        if plan.is_noop() {
            return Ok(Landed {
                plan,
                base: tip,
                commit: None,
            });
        }
        let base = tip.commit();
        let repo = tip.registry().require_repo()?;
        let commit = repo.build_commit(Some(base), plan.changes(), plan.message(), author)?;
        drop(repo);
        if branch.publish(base, commit, plan.message())? {
            return Ok(Landed {
                plan,
                base: tip,
                commit: Some(commit),
            });
        }
        before = Some((tip, plan));
    }
    Err(Error::Conflict(
        "the branch kept moving while the write was made; nothing was written; try again".into(),
    ))
}

/// What changed between two tips among the things `plan` is about: its prompt's file, or the
/// prompt's own entry (its default, or the label's version) in `defaults.yaml`. Other lines of
/// the manifest moving is no conflict: the edit is made again on top of them.
fn moved_under(before: &Snapshot, after: &Snapshot, plan: &Plan) -> Option<String> {
    let blob = |snapshot: &Snapshot, path: &str| {
        snapshot
            .registry()
            .commit_source(snapshot.commit())
            .ok()
            .and_then(|s| s.blob_id(path).ok().flatten())
    };
    let entry = |snapshot: &Snapshot, label: Option<&str>, id: &str| match label {
        None => snapshot.manifest().defaults.get(id).copied(),
        Some(label) => snapshot
            .manifest()
            .labels
            .get(label)
            .and_then(|l| l.get(id))
            .copied(),
    };
    let edit = plan.edit();
    for path in plan.paths() {
        if path != manifest::FILE {
            if blob(before, path) != blob(after, path) {
                return Some(path.to_string());
            }
            continue;
        }
        let id = edit.id();
        let moved = match edit {
            Edit::Point { label, .. } | Edit::Unpoint { label, .. } => {
                entry(before, label.as_deref(), id) != entry(after, label.as_deref(), id)
            }
            // A delete removes every line of the id: any of them moving is a change under it.
            _ => {
                entry(before, None, id) != entry(after, None, id)
                    || before.manifest().labels.iter().any(|(label, _)| {
                        entry(before, Some(label), id) != entry(after, Some(label), id)
                    })
                    || after.manifest().labels.iter().any(|(label, _)| {
                        entry(before, Some(label), id) != entry(after, Some(label), id)
                    })
            }
        };
        if moved {
            return Some(match edit {
                Edit::Point {
                    label: Some(label), ..
                }
                | Edit::Unpoint {
                    label: Some(label), ..
                } => format!("label {label} of {id} in {}", manifest::FILE),
                _ => format!("{id}'s lines of {}", manifest::FILE),
            });
        }
    }
    None
}

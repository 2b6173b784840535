//! Refs and commits made in the object database: `HEAD` and its branch, the committer, the
//! trees built from a base tree, and `commit_on_branch`'s compare-and-swap.

use std::path::Path;

use crate::error::{Error, Result};
use crate::git::oid::ObjectId;
use crate::git::paths::{check_change_path, check_message};
use crate::git::repo::{crash_point, from_oid, Repo, ToOid};

impl Repo {
    /// Refuses to write while git is in the middle of something.
    pub(super) fn check_state(&self) -> Result<()> {
        use git2::RepositoryState as S;
        let (what, finish) = match self.repo.state() {
            S::Clean => return Ok(()),
            S::Merge => ("a merge", "finish it with `git commit`, or abort it with `git merge --abort`"),
            S::Revert | S::RevertSequence => ("a revert", "finish it with `git revert --continue`, or abort it with `git revert --abort`"),
            S::CherryPick | S::CherryPickSequence => ("a cherry-pick", "finish it with `git cherry-pick --continue`, or abort it with `git cherry-pick --abort`"),
            S::Bisect => ("a bisect", "end it with `git bisect reset`"),
            S::Rebase | S::RebaseInteractive | S::RebaseMerge => ("a rebase", "finish it with `git rebase --continue`, or abort it with `git rebase --abort`"),
            S::ApplyMailbox | S::ApplyMailboxOrRebase => ("`git am`", "finish it with `git am --continue`, or abort it with `git am --abort`"),
        };
        Err(Error::Refused(format!(
            "{what} is in progress in {}; {finish}, then run this again",
            self.workdir.display()
        )))
    }

    /// What `HEAD` is: a branch (born or not) or a detached commit.
    pub(super) fn head_ref(&self) -> Result<Head> {
        let head = self.repo.find_reference("HEAD")?;
        match head.symbolic_target()? {
            Some(name) => {
                let target = match self.repo.find_reference(name) {
                    Ok(reference) => Some(reference.peel_to_commit()?.id()),
                    Err(e) if e.code() == git2::ErrorCode::NotFound => None,
                    Err(e) => return Err(e.into()),
                };
                Ok(Head::Branch {
                    name: name.to_string(),
                    target,
                })
            }
            None => Ok(Head::Detached(head.peel_to_commit()?.id())),
        }
    }

    /// Whether `HEAD` is detached (commits land on no branch).
    pub fn head_detached(&self) -> bool {
        matches!(self.head_ref(), Ok(Head::Detached(_)))
    }

    /// Moves `HEAD`'s branch (or a detached `HEAD`) to `new`, only if it still is where `head`
    /// saw it.
    pub(super) fn move_head(&self, head: &Head, new: git2::Oid, message: &str) -> Result<()> {
        let summary = message.lines().next().unwrap_or_default();
        let moved = match head {
            Head::Branch {
                name,
                target: Some(old),
            } => self
                .repo
                .reference_matching(name, new, true, *old, &format!("commit: {summary}")),
            Head::Branch { name, target: None } => {
                self.repo
                    .reference(name, new, false, &format!("commit (initial): {summary}"))
            }
            Head::Detached(old) => {
                self.repo
                    .reference_matching("HEAD", new, true, *old, &format!("commit: {summary}"))
            }
        };
        match moved {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.code(),
                    git2::ErrorCode::Modified | git2::ErrorCode::Exists | git2::ErrorCode::Locked
                ) =>
            {
                Err(Error::Refused(format!(
                    "the branch moved while committing ({}); nothing was changed, run this again",
                    e.message()
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The author and committer of a new commit, as git takes them: `GIT_AUTHOR_NAME`,
    /// `GIT_AUTHOR_EMAIL`, `GIT_AUTHOR_DATE` (and `GIT_COMMITTER_*`) first, then
    /// `author.*`/`committer.*` and `user.*` from the config, then `EMAIL`.
    pub(super) fn identities(
        &self,
    ) -> Result<(git2::Signature<'static>, git2::Signature<'static>)> {
        Ok((self.signature("author")?, self.signature("committer")?))
    }

    /// The signature git would give `role` (`author` or `committer`): `GIT_{ROLE}_*`, then
    /// the config, then `EMAIL`.
    pub(super) fn signature(&self, role: &str) -> Result<git2::Signature<'static>> {
        let config = self.repo.config()?.snapshot()?;
        let who = |role: &str| -> Result<git2::Signature<'static>> {
            let upper = role.to_ascii_uppercase();
            let env = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
            let conf = |key: &str| config.get_string(key).ok().filter(|v| !v.trim().is_empty());
            let name = env(&format!("GIT_{upper}_NAME"))
                .or_else(|| conf(&format!("{role}.name")))
                .or_else(|| conf("user.name"));
            let email = env(&format!("GIT_{upper}_EMAIL"))
                .or_else(|| conf(&format!("{role}.email")))
                .or_else(|| conf("user.email"))
                .or_else(|| env("EMAIL"));
            let (Some(name), Some(email)) = (name, email) else {
                return Err(Error::Unsupported(format!(
                    "git has no identity for the {role}: set `git config user.name` and `git config user.email`, or GIT_{upper}_NAME and GIT_{upper}_EMAIL"
                )));
            };
            let signature = match env(&format!("GIT_{upper}_DATE")) {
                Some(date) => {
                    let (secs, offset) = crate::git::time::parse_git_date(&date).ok_or_else(|| {
                        Error::Unsupported(format!(
                            "GIT_{upper}_DATE `{date}` is not a date promptreg reads: use `@SECONDS +ZZZZ` or ISO 8601 (`2024-05-01T12:30:00+02:00`)"
                        ))
                    })?;
                    git2::Signature::new(&name, &email, &git2::Time::new(secs, offset))
                }
                None => git2::Signature::now(&name, &email),
            };
            signature.map_err(|e| {
                Error::Unsupported(format!("git identity `{name} <{email}>`: {}", e.message()))
            })
        };
        who(role)
    }

    /// The tree `base` with the file at `parts` set to `blob`, or removed (`None`); folders
    /// left empty go too. `None` when the whole tree is empty.
    pub(super) fn replace_parts(
        &self,
        base: Option<&git2::Tree<'_>>,
        parts: &[&str],
        blob: Option<git2::Oid>,
    ) -> Result<Option<git2::Oid>> {
        let mut builder = self.repo.treebuilder(base)?;
        match (parts, blob) {
            ([], _) => return Err(Error::Usage("empty path".into())),
            ([name], Some(blob)) => {
                let mode = base
                    .and_then(|t| t.get_name(name))
                    .map_or(0o100644, |e| e.filemode());
                let mode = if mode == 0o100755 { 0o100755 } else { 0o100644 };
                builder.insert(name, blob, mode)?;
            }
            ([name], None) => {
                if builder.get(name)?.is_some() {
                    builder.remove(name)?;
                }
            }
            ([dir, rest @ ..], _) => {
                let sub = base
                    .and_then(|t| t.get_name(dir))
                    .filter(|e| e.kind() == Some(git2::ObjectType::Tree))
                    .map(|e| self.repo.find_tree(e.id()))
                    .transpose()?;
                match self.replace_parts(sub.as_ref(), rest, blob)? {
                    Some(id) => {
                        builder.insert(dir, id, 0o040000)?;
                    }
                    None => {
                        if builder.get(dir)?.is_some() {
                            builder.remove(dir)?;
                        }
                    }
                }
            }
        }
        if builder.is_empty() {
            return Ok(None);
        }
        Ok(Some(builder.write()?))
    }

    /// The branch `HEAD` names (`refs/heads/main`), and the commit it points at (`None` on an
    /// unborn branch). A detached `HEAD` is refused: writes need a branch.
    pub fn head_branch(&self) -> Result<(String, Option<ObjectId>)> {
        match self.head_ref()? {
            Head::Branch { name, target } => Ok((name, target.map(from_oid))),
            Head::Detached(_) => Err(Error::Refused(
                "HEAD is detached, so there is no branch to write to: `git switch` to one".into(),
            )),
        }
    }

    /// Whether a commit identity can be found for the committer (`GIT_COMMITTER_*`, the
    /// config, `EMAIL`), with the reason when not.
    pub fn check_identity(&self) -> Result<()> {
        self.signature("committer").map(|_| ())
    }

    /// Writes the commit of `changes` on top of `base` to the object database, moving no
    /// ref: the tree is built from `base`'s tree, never from the index or the working copy.
    /// `author` is who made the change (else git's author); the committer is git's.
    pub fn build_commit(
        &self,
        base: Option<ObjectId>,
        changes: &[Change],
        message: &str,
        author: Option<&Identity>,
    ) -> Result<ObjectId> {
        check_message(message)?;
        let committer = self.signature("committer")?;
        let author = match author {
            Some(who) => git2::Signature::now(&who.name, &who.email).map_err(|e| {
                Error::Usage(format!(
                    "identity `{} <{}>`: {}",
                    who.name,
                    who.email,
                    e.message()
                ))
            })?,
            None => self.signature("author")?,
        };
        let current = base.map(|b| b.oid());
        let parent = current.map(|id| self.repo.find_commit(id)).transpose()?;
        let mut tree = parent.as_ref().map(|p| p.tree_id());
        for change in changes {
            let (path, removing) = match change {
                Change::Write { path, .. } => (format!("{}{}", self.prefix, path), false),
                Change::Remove { path } => (format!("{}{}", self.prefix, path), true),
            };
            let base_tree = tree.map(|id| self.repo.find_tree(id)).transpose()?;
            check_change_path(&path, removing, |prefix| {
                base_tree
                    .as_ref()
                    .and_then(|tree| tree.get_path(Path::new(prefix)).ok())
                    .map(|e| e.filemode() as u32)
            })?;
            let blob = match change {
                Change::Write { bytes, .. } => Some(self.repo.blob(&self.to_odb(&path, bytes))?),
                Change::Remove { .. } => None,
            };
            let parts: Vec<&str> = path.split('/').collect();
            tree = self.replace_parts(base_tree.as_ref(), &parts, blob)?;
        }
        let tree = match tree {
            Some(id) => self.repo.find_tree(id)?,
            None => {
                let empty = self.repo.treebuilder(None)?.write()?;
                self.repo.find_tree(empty)?
            }
        };
        if parent.as_ref().is_some_and(|p| p.tree_id() == tree.id()) {
            return Err(Error::Refused(
                "the change changes nothing; nothing to commit".into(),
            ));
        }
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let id = self
            .repo
            .commit(None, &author, &committer, message, &tree, &parents)?;
        Ok(from_oid(id))
    }

    /// Commits `changes` (registry-relative paths) on `branch`, which must still point at
    /// `base`: the tree is built from `base`'s tree in the object database and the branch moves
    /// by compare-and-swap. The index and the working copy are never read or written, so
    /// nobody's edits are touched. `author` is who made the change (else git's author); the
    /// committer is git's. A crash at any point leaves the branch where it was or at the new
    /// commit, never between.
    pub fn commit_on_branch(
        &self,
        branch: &str,
        base: Option<ObjectId>,
        changes: &[Change],
        message: &str,
        author: Option<&Identity>,
    ) -> Result<ObjectId> {
        // The committer must be known before anything is written, and a merge, rebase or
        // bisect under way in this repository is not moved underneath.
        self.check_identity()?;
        self.check_state()?;
        // Written first (objects are harmless when the move fails), then moved by the one
        // compare-and-swap every branch writer shares.
        let id = self.build_commit(base, changes, message, author)?;
        self.move_branch(branch, base, id, message)?;
        Ok(id)
    }

    /// The commit `branch` (a full ref name) points at; `None` when it does not exist.
    fn branch_tip(&self, branch: &str) -> Result<Option<ObjectId>> {
        match self.repo.find_reference(branch) {
            Ok(reference) => Ok(Some(from_oid(reference.peel_to_commit()?.id()))),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves `branch` (a full ref name) from `base` to `commit`, a commit already in the
    /// object database, by compare-and-swap: [`Error::Conflict`] when the branch is no longer
    /// at `base`, and nothing moves. The reflog gets `message`'s first line.
    pub fn move_branch(
        &self,
        branch: &str,
        base: Option<ObjectId>,
        commit: ObjectId,
        message: &str,
    ) -> Result<()> {
        self.check_state()?;
        let _writer =
            crate::git::lock::WriterLock::acquire(&self.repo.path().join("promptreg.lock"))?;
        let current = self.branch_tip(branch)?;
        if current != base {
            return Err(Error::Conflict(format!(
                "{branch} moved to {} while the change was prepared on {}",
                current.map_or("nothing".to_string(), |c| c.short()),
                base.map_or("nothing".to_string(), |b| b.short())
            )));
        }
        crash_point("branch-commit-written");
        let head = Head::Branch {
            name: branch.to_string(),
            target: current.map(|c| c.oid()),
        };
        self.move_head(&head, commit.oid(), message)
            .map_err(|e| match e {
                Error::Refused(why) => Error::Conflict(why),
                other => other,
            })
    }
}

/// One file's change in a commit made by [`Repo::commit_on_branch`].
#[derive(Debug, Clone)]
pub enum Change {
    /// The file (registry-relative) gets these bytes.
    Write {
        /// The registry-relative path.
        path: String,
        /// The new content.
        bytes: Vec<u8>,
    },
    /// The file goes.
    Remove {
        /// The registry-relative path.
        path: String,
    },
}

/// Who made a change: the author of its commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The name.
    pub name: String,
    /// The email.
    pub email: String,
}

/// What a commit made by [`Repo::commit_file`] landed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The new commit.
    pub id: ObjectId,
    /// The branch that moved (`refs/heads/main`); `None` for a detached `HEAD`.
    pub branch: Option<String>,
}

pub(super) enum Head {
    Branch {
        name: String,
        target: Option<git2::Oid>,
    },
    Detached(git2::Oid),
}

impl Head {
    pub(super) fn target(&self) -> Option<git2::Oid> {
        match self {
            Head::Branch { target, .. } => *target,
            Head::Detached(id) => Some(*id),
        }
    }
}

//! Writes: every change a front end can make to a registry, planned in one place.
//!
//! An [`Edit`] (a new version of a prompt, a deleted prompt, a default or a label moved or
//! removed) is planned against the registry at one commit by [`plan`]: the id, the label and
//! the message are checked, the new file is validated exactly as `promptreg commit` validates
//! it, and the result is a [`Plan`]: the files to change and the commit message. [`apply`]
//! commits a plan through the working copy and git's index, as the CLI does; an edit made on a
//! branch that others move too (a bare repository, the server, a replica that pushes) goes
//! through [`apply_to_branch`]: planned on the tip, published by compare-and-swap, planned
//! again when the branch moved. Both go through the one rule of the git layer for what a
//! commit may touch, so a write can never replace a file it does not name.
//!
//! Applying the same edit twice is a success the second time that commits nothing: a plan
//! that changes nothing is [`Plan::is_noop`].

mod apply;
mod branch;
mod edit;
mod plan;
pub(crate) mod rules;

pub use crate::git::Identity;
pub use crate::write::apply::{apply, Applied};
// Applying a plan to a repository the caller holds: internals, for the project's own front ends.
pub use crate::format::skeleton::skeleton;
#[cfg(all(feature = "cli", not(feature = "unstable")))]
pub(crate) use crate::write::apply::commit_to_index;
#[cfg(feature = "unstable")]
pub use crate::write::apply::{commit_to_branch, commit_to_index};
pub use crate::write::branch::{apply_to_branch, Branch, Landed, LocalBranch};
pub use crate::write::edit::{edit_manifest, Edit, Plan};
pub use crate::write::plan::{findings, plan, plan_unborn};
pub use crate::write::rules::{check_id, check_message};

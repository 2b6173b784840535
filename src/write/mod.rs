//! Writes: every change a front end can make to a registry, planned in one place.
//!
//! An [`Edit`] (a new version of a prompt, a deleted prompt, a default or a label moved or
//! removed) is planned against the registry at one commit by [`plan`]: the id, the label and
//! the message are checked, the new file is validated exactly as `promptreg commit` validates
//! it, and the result is a [`Plan`]: the files to change and the commit message. The CLI
//! applies a plan to the working copy and git's index ([`commit_to_index`]); the server and
//! replicas apply it to a branch by compare-and-swap ([`commit_to_branch`]). Both go through
//! the one rule of the git layer for what a commit may touch, so a write can never replace a
//! file it does not name.
//!
//! Applying the same edit twice is a success the second time that commits nothing: a plan
//! that changes nothing is [`Plan::is_noop`].

mod apply;
mod edit;
mod plan;
pub(crate) mod rules;

pub use crate::write::apply::{apply, build_commit, commit_to_branch, commit_to_index, Applied};
pub use crate::write::edit::{edit_manifest, Edit, Plan};
pub use crate::write::plan::{plan, plan_unborn};
pub use crate::write::rules::{check_id, check_message};

//! The one door to git. Every git2 call of promptreg is in this folder, behind [`Repo`]: commits
//! on the first-parent chain, the registry root's tree at a commit, object bytes (for a long
//! walk, packs read directly: `pack`), git's line-ending rules, and committing one file as a
//! transaction. It knows nothing of prompts, versions or the caches; no git2 type leaves this
//! module. Uses: `error`, `lock`, `oid`, `tree`, `time`.

mod branch;
mod eol;
pub(crate) mod file;
mod index;
pub(crate) mod lock;
pub mod oid;
pub(crate) mod pack;
mod paths;
mod repo;
pub(crate) mod store;
pub mod time;
pub(crate) mod tree;

pub use crate::git::branch::{Change, Committed, Identity};
#[cfg(feature = "unstable")]
pub use crate::git::index::Content;
pub use crate::git::index::{FileEdit, StagedFiles};
pub use crate::git::oid::ObjectId;
#[cfg(any(feature = "cli", feature = "unstable"))]
pub use crate::git::repo::tune_for_short_process;
#[cfg(feature = "unstable")]
pub use crate::git::repo::CommitLinks;
pub use crate::git::repo::{CommitInfo, Held, Objects, OwnedObjects, Repo};

//! A registry: the prompt files under one root, in the working copy or at a commit.
//!
//! - `open.rs`: the [`Registry`] type, its pin, repository, version index and manifest;
//! - `discovery.rs`: which files are prompts, by id, and one prompt read;
//! - `resolve.rs`: references resolved to versions and loaded;
//! - `snapshot.rs`: the registry at one commit, shared by threads;
//! - `summary.rs`: one line per prompt;
//! - `document.rs`: a prompt at one version as data (the API's and the Python package's shape).

mod discovery;
pub mod document;
mod open;
pub mod reference;
mod resolve;
mod snapshot;
mod summary;

// Used by `check::review_eval` (the `model` feature).
#[cfg(feature = "model")]
pub(crate) use crate::registry::discovery::find_file;
pub use crate::registry::discovery::{Discovery, LoadedPrompt};
pub use crate::registry::open::Registry;
#[cfg(feature = "unstable")]
pub use crate::registry::open::RepoGuard;
pub use crate::registry::resolve::Resolved;
pub use crate::registry::snapshot::{marked_versions, MarkedVersion, Snapshot};
pub use crate::registry::summary::Summary;

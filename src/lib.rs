//! promptreg: a file-based prompt registry with a GitOps workflow.
//!
//! Prompts are YAML files (`*.prompt.yaml`, a superset of GitHub Models' `.prompt.yml`) under a
//! registry root. This crate reads them into a typed [`Prompt`], renders them strictly with
//! minijinja, and (with git) numbers their versions from history.
//!
//! ```
//! use promptreg::Registry;
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::create_dir(dir.path().join("support")).unwrap();
//! std::fs::write(
//!     dir.path().join("support/greet.prompt.yaml"),
//!     "variables:\n  name: { type: string, required: true }\n\
//!      messages:\n  - role: user\n    content: \"Hello {{ name }}\"\n",
//! ).unwrap();
//!
//! let registry = Registry::open(dir.path()).unwrap();
//! let ids: Vec<_> = registry.discover_work().unwrap().prompts.into_keys().collect();
//! assert_eq!(ids, ["support/greet"]);
//!
//! let prompt = registry.load_work("support/greet").unwrap().compile().unwrap();
//! let values = serde_json::json!({ "name": "Ada" });
//! let rendered = prompt.render(values.as_object().unwrap()).unwrap();
//! assert_eq!(rendered.output.texts(), ["Hello Ada"]);
//! ```

pub mod check;
pub mod diagnostic;
pub mod error;
pub mod format;
// The layers below the registry: public only with the `unstable` feature (the project's own
// tests and benchmarks), not part of the API, and free to change.
#[cfg(feature = "unstable")]
pub mod git;
#[cfg(not(feature = "unstable"))]
mod git;
#[cfg(feature = "unstable")]
pub mod history;
#[cfg(not(feature = "unstable"))]
mod history;
#[cfg(feature = "model")]
pub mod model;
pub mod registry;
pub mod render;
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(feature = "unstable")]
pub mod snapshot;
#[cfg(not(feature = "unstable"))]
mod snapshot;
#[cfg(feature = "watch")]
pub mod watch;
pub mod write;

#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;

pub use diagnostic::{Code, Diagnostic, Pos, Severity};
pub use error::{Error, ErrorKind, RenderError, Result};
pub use format::manifest::Manifest;
pub use format::prompt::{Body, Message, Prompt, Role, Syntax, VarType, Variable};
pub use git::oid::ObjectId;
pub use git::CommitInfo;
pub use history::{Version, VersionIndex};
pub use registry::reference::{Reference, Selector};
pub use registry::{Discovery, LoadedPrompt, Registry, Resolved, Snapshot, Summary};
pub use render::chat::request_body as chat_request_body;
pub use render::request::{RenderOutcome, RenderRequest};
pub use render::{CompiledPrompt, Output, Rendered};

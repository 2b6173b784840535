//! `promptreg export`: the read API's GET answers at one commit, written as static files in the
//! same URL layout (for an object store or a CDN), plus one `bundle.json` to bake into an
//! application image. The answers come from the server's own router, so they are the bytes
//! `promptreg serve` sends at that commit.
//!
//! Every URL path is a folder holding `index.json` (`v1/prompts/support/triage@2/index.json`):
//! ids may be prefixes of other ids (`support`, `support/triage`), so a path cannot be a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Map, Value};
use tower::ServiceExt;

use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::serve::state::State;

/// The file that marks a folder as an export, so that a second export may replace it.
pub const MARKER: &str = ".promptreg-export";

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The commit exported.
    pub commit: String,
    /// Every URL path written, sorted.
    pub paths: Vec<String>,
}

/// Percent-encodes a path for a request line: everything but unreserved characters, `/` and
/// `@`.
fn encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' | b'@' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Writes the export of `registry` (at its `HEAD`, or the revision it was opened with) into
/// `out`, which must be empty, absent, or a previous export. `all_versions` adds every
/// version; otherwise the ones a default or label points at, and the latest.
pub fn export(registry: Registry, out: &Path, all_versions: bool) -> Result<Exported> {
    prepare(out)?;
    // Everything is written into a folder beside `out`, then renamed into place: a failure at
    // any point leaves the previous export as it was.
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".promptreg-export-")
        .tempdir_in(&parent)
        .map_err(|e| Error::io(&parent, e))?;
    let exported = export_into(registry, staging.path(), all_versions)?;
    replace(staging, out)?;
    Ok(exported)
}

/// Puts the finished export `staging` where `out` is: `out` (empty, or an earlier export) is
/// moved aside first and removed once the new one is in place.
fn replace(staging: tempfile::TempDir, out: &Path) -> Result<()> {
    let old = out.with_file_name(format!(
        ".{}.old-{}",
        out.file_name().and_then(|n| n.to_str()).unwrap_or("export"),
        std::process::id()
    ));
    let had_old = out.exists();
    if had_old {
        std::fs::rename(out, &old).map_err(|e| Error::io(out, e))?;
    }
    let new = staging.keep();
    if let Err(e) = std::fs::rename(&new, out) {
        if had_old {
            let _ = std::fs::rename(&old, out);
        }
        let _ = std::fs::remove_dir_all(&new);
        return Err(Error::io(out, e));
    }
    if had_old {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(())
}

fn export_into(registry: Registry, out: &Path, all_versions: bool) -> Result<Exported> {
    let metrics = crate::serve::metrics::Metrics::new()
        .map_err(|e| Error::Internal(format!("cannot set up the metrics: {e}")))?;
    let state = Arc::new(State::new(
        registry,
        None,
        false,
        None,
        metrics,
        None,
        crate::serve::events::MAX_STREAMS,
    )?);
    let current = state.current.load_full();
    let index = match current.snapshot.index() {
        Ok(index) => Some(index),
        Err(err) if err.kind() == crate::error::ErrorKind::NoHistory => None,
        Err(err) => return Err(err),
    };
    let mut paths = vec!["/v1/prompts".to_string(), "/v1/manifest".to_string()];
    // Per prompt: the versions the bundle holds.
    let mut kept: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for row in &current.rows {
        let id = &row.id;
        paths.push(format!("/v1/prompts/{id}"));
        paths.push(format!("/v1/prompts/{id}@latest"));
        if index.is_some() {
            paths.push(format!("/v1/versions/{id}"));
        }
        for label in row.labels.keys() {
            paths.push(format!("/v1/prompts/{id}@{label}"));
        }
        let mut versions: Vec<u32> = if all_versions {
            (1..=row.versions).collect()
        } else {
            row.default
                .into_iter()
                .chain(row.latest)
                .chain(row.labels.values().copied())
                .collect()
        };
        versions.sort_unstable();
        versions.dedup();
        for n in &versions {
            paths.push(format!("/v1/prompts/{id}@{n}"));
        }
        kept.insert(id.clone(), versions);
    }
    paths.sort();
    paths.dedup();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("the export's runtime", e))?;
    let app = crate::serve::router(state.clone(), false);
    let mut bodies: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    runtime.block_on(async {
        for path in &paths {
            let request = Request::get(encode(path))
                .body(Body::empty())
                .map_err(|e| Error::Usage(format!("`{path}` is not a request path: {e}")))?;
            let response = app
                .clone()
                .oneshot(request)
                .await
                .map_err(|e| Error::Usage(format!("{path}: {e}")))?;
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .map_err(|e| Error::Usage(format!("{path}: {e}")))?;
            if status != StatusCode::OK {
                return Err(Error::Usage(format!(
                    "{path} answers {status}: {}",
                    String::from_utf8_lossy(&bytes)
                )));
            }
            bodies.insert(path.clone(), bytes.to_vec());
        }
        Ok::<(), Error>(())
    })?;
    // Each answer is a folder with an `index.json`: an id whose last part is `index.json`
    // would be a file and a folder at once. Refused, naming the id, before anything is written.
    let files: std::collections::BTreeSet<String> = bodies
        .keys()
        .map(|p| format!("{}/index.json", p.trim_end_matches('/')))
        .collect();
    for path in bodies.keys() {
        if files.contains(path.as_str()) {
            return Err(Error::Refused(format!(
                "`{path}` would be both an answer and the `index.json` of another: export writes each answer as `PATH/index.json`, so a prompt id that ends in `index.json` cannot be exported; rename the prompt"
            )));
        }
    }
    for (path, body) in &bodies {
        write(
            &out.join(path.trim_start_matches('/')).join("index.json"),
            body,
        )?;
    }
    // The bundle: every prompt, with the versions its default and labels point at.
    let mut prompts = Map::new();
    for row in &current.rows {
        let mut versions = Map::new();
        for n in kept.get(&row.id).into_iter().flatten() {
            let body = bodies
                .get(&format!("/v1/prompts/{}@{n}", row.id))
                .and_then(|b| serde_json::from_slice::<Value>(b).ok())
                .unwrap_or(Value::Null);
            versions.insert(n.to_string(), body);
        }
        prompts.insert(
            row.id.clone(),
            serde_json::json!({
                "default": row.default,
                "latest": row.latest,
                "labels": row.labels,
                "versions": versions,
            }),
        );
    }
    let bundle = serde_json::json!({
        "commit": current.commit,
        "prompts": prompts,
    });
    let mut text = serde_json::to_vec_pretty(&bundle)
        .map_err(|e| Error::Internal(format!("the bundle cannot be written: {e}")))?;
    text.push(b'\n');
    write(&out.join("bundle.json"), &text)?;
    write(
        &out.join(MARKER),
        format!("{}\n", current.commit).as_bytes(),
    )?;
    Ok(Exported {
        commit: current.commit.clone(),
        paths,
    })
}

/// Makes `out` ready: created when absent; a previous export's files removed.
/// Checks that `out` may be replaced by an export: absent, empty, or an earlier export (it holds
/// the marker file). Nothing is removed here.
fn prepare(out: &Path) -> Result<()> {
    match std::fs::read_dir(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(out, e)),
        Ok(mut entries) => {
            if entries.next().is_none() || out.join(MARKER).is_file() {
                return Ok(());
            }
            Err(Error::Refused(format!(
                "{} is not empty and holds no earlier export ({MARKER}); export into an empty directory",
                out.display()
            )))
        }
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

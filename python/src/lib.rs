//! The Python package's native module, `promptreg._promptreg`: the registry of a clone, read,
//! rendered and written by the same library the command line uses. Values cross as JSON text
//! (`promptreg/_registry.py` turns them into Python objects); errors become the exception
//! classes of `promptreg._errors`, one per error kind, with the hint and the findings. Git
//! work and rendering run with the GIL released.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use pyo3::prelude::*;
use serde_json::{json, Map, Value};

use promptreg::registry::document;
use promptreg::{Error, LoadedPrompt, Reference, RenderRequest};

/// The Python exception for a library error: `promptreg._errors.from_kind(kind, message, hint,
/// findings)`.
fn to_py(py: Python<'_>, err: Error) -> PyErr {
    let findings: Vec<Value> = match &err {
        Error::Invalid { diagnostics, .. } => diagnostics
            .iter()
            .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
            .collect(),
        _ => Vec::new(),
    };
    let hint = err.hint();
    let made = (|| -> PyResult<PyErr> {
        let module = py.import("promptreg._errors")?;
        let json = py.import("json")?;
        let findings = json.call_method1("loads", (Value::Array(findings).to_string(),))?;
        let exception = module.call_method1(
            "from_kind",
            (err.kind().as_str(), err.to_string(), hint, findings),
        )?;
        Ok(PyErr::from_value(exception))
    })();
    made.unwrap_or_else(|e| e)
}

/// Runs `work` without the GIL, and maps its error.
fn detached<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> Result<T, Error> + Send,
) -> PyResult<T> {
    py.detach(work).map_err(|e| to_py(py, e))
}

fn to_text(value: &impl serde::Serialize) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::Internal(format!("cannot write JSON: {e}")))
}

fn values_of(json_text: &str) -> Result<Map<String, Value>, Error> {
    match serde_json::from_str::<Value>(json_text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::Usage(
            "the values must be a mapping of names to values".into(),
        )),
    }
}

/// The render answer, in the shape of `POST /v1/render/ID`.
fn rendered_json(
    compiled: &promptreg::CompiledPrompt,
    values: &Map<String, Value>,
) -> Result<String, Error> {
    let outcome = RenderRequest::new().values(values)?.render(compiled)?;
    let rendered = outcome.rendered;
    let messages: Vec<Value> = match &rendered.output {
        promptreg::Output::Messages { messages } => messages
            .iter()
            .map(|m| json!({ "role": m.role.to_string(), "content": m.content }))
            .collect(),
        promptreg::Output::Text { text } => vec![json!({ "role": "user", "content": text })],
    };
    let request = promptreg::chat_request_body(&rendered, None).ok();
    to_text(&json!({
        "id": rendered.id,
        "model": rendered.model,
        "modelParameters": rendered.model_parameters,
        "messages": messages,
        "unused": outcome.unused,
        "request": request,
    }))
}

/// A registry in a clone, with the snapshot of its tip and the prompts compiled from it kept
/// until the tip moves (a version's compiled prompt is kept for good: it cannot change).
#[pyclass(frozen, module = "promptreg._promptreg")]
struct Registry {
    inner: promptreg::Registry,
    current: Mutex<Option<Arc<promptreg::Snapshot>>>,
    compiled: Mutex<HashMap<(String, String), Arc<promptreg::CompiledPrompt>>>,
}

/// How many compiled prompts a registry keeps before it starts again.
const MAX_COMPILED: usize = 1024;

#[pymethods]
impl Registry {
    #[new]
    #[pyo3(signature = (path, rev=None))]
    fn new(py: Python<'_>, path: String, rev: Option<String>) -> PyResult<Registry> {
        let inner = detached(py, || Ok(promptreg::Registry::open(&path)?.with_rev(rev)))?;
        Ok(Registry {
            inner,
            current: Mutex::new(None),
            compiled: Mutex::new(HashMap::new()),
        })
    }

    fn root(&self) -> String {
        self.inner.root().display().to_string()
    }

    /// The document of the version `reference` names, as JSON.
    fn get(&self, py: Python<'_>, reference: String) -> PyResult<String> {
        detached(py, || {
            let reference = Reference::parse(&reference)?;
            let snapshot = self.snapshot()?;
            let resolved = snapshot.resolve(&reference)?;
            let compiled = self.compiled(&snapshot, reference.id(), &resolved)?;
            let index = document::index_of(&snapshot)?;
            let facts = document::facts(&snapshot, index, &compiled, &resolved)?;
            let marks = document::marks(&snapshot, index, reference.id(), facts.number);
            to_text(&document::prompt_doc(&compiled, &facts, marks, None))
        })
    }

    /// Renders the version `reference` names with `values` (JSON), as JSON.
    fn render(&self, py: Python<'_>, reference: String, values: String) -> PyResult<String> {
        detached(py, || {
            let reference = Reference::parse(&reference)?;
            let values = values_of(&values)?;
            let snapshot = self.snapshot()?;
            let resolved = snapshot.resolve(&reference)?;
            let compiled = self.compiled(&snapshot, reference.id(), &resolved)?;
            rendered_json(&compiled, &values)
        })
    }

    /// Every prompt, as JSON.
    fn list(&self, py: Python<'_>) -> PyResult<String> {
        detached(py, || to_text(&self.inner.summaries()?))
    }

    /// The versions of `id`, newest first, as JSON.
    fn versions(&self, py: Python<'_>, id: String) -> PyResult<String> {
        detached(py, || {
            let snapshot = self.snapshot()?;
            let index = snapshot.index()?;
            if index.file_of(&id).is_none() {
                snapshot
                    .discovery()
                    .file(&id, &self.inner.root().display().to_string())?;
            }
            to_text(&document::versions_of(&snapshot, index, &id))
        })
    }

    /// What `promptreg validate` reports, as JSON.
    fn validate(&self, py: Python<'_>) -> PyResult<String> {
        detached(py, || {
            let report = promptreg::check::validate::validate(&self.inner, &[])?;
            to_text(&report.diagnostics)
        })
    }

    /// Commits `source` as the next version of `id`.
    fn commit(
        &self,
        py: Python<'_>,
        id: String,
        source: String,
        message: String,
    ) -> PyResult<String> {
        let edit = promptreg::write::Edit::Commit {
            id,
            source,
            file: None,
        };
        detached(py, || self.apply(edit, Some(message)))
    }

    /// Points the default (`label` none) or a label of `id` at `version`.
    #[pyo3(signature = (id, label, version, message=None))]
    fn point(
        &self,
        py: Python<'_>,
        id: String,
        label: Option<String>,
        version: u32,
        message: Option<String>,
    ) -> PyResult<String> {
        let edit = promptreg::write::Edit::Point { label, id, version };
        detached(py, || self.apply(edit, message))
    }

    /// Deletes `id`.
    #[pyo3(signature = (id, message=None))]
    fn delete(&self, py: Python<'_>, id: String, message: Option<String>) -> PyResult<String> {
        let edit = promptreg::write::Edit::Delete { id };
        detached(py, || self.apply(edit, message))
    }
}

impl Registry {
    /// The snapshot of the tip: the one kept while the tip has not moved (a ref read), a new
    /// one (its version index extended from the kept one) when it has.
    fn snapshot(&self) -> Result<Arc<promptreg::Snapshot>, Error> {
        let tip = self.inner.current_tip()?;
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(kept) = current.as_ref().filter(|s| Some(s.commit()) == tip) {
            return Ok(kept.clone());
        }
        let fresh = Arc::new(self.inner.snapshot_after(current.as_deref())?);
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    /// The prompt `id` as `resolved` names it, compiled once per version commit.
    fn compiled(
        &self,
        snapshot: &promptreg::Snapshot,
        id: &str,
        resolved: &promptreg::Resolved,
    ) -> Result<Arc<promptreg::CompiledPrompt>, Error> {
        let commit = match resolved {
            promptreg::Resolved::Version { commit, .. } | promptreg::Resolved::Tip { commit } => {
                commit.to_string()
            }
            promptreg::Resolved::Work => snapshot.commit().to_string(),
        };
        let key = (id.to_string(), commit);
        let lock = || self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = lock().get(&key) {
            return Ok(found.clone());
        }
        let compiled = Arc::new(snapshot.registry().load_resolved(id, resolved)?.compile()?);
        let mut kept = lock();
        if kept.len() >= MAX_COMPILED {
            kept.clear();
        }
        kept.insert(key, compiled.clone());
        Ok(compiled)
    }

    /// One write as one commit on `HEAD`, as the command line makes it; what it made, as JSON.
    fn apply(
        &self,
        edit: promptreg::write::Edit,
        message: Option<String>,
    ) -> Result<String, Error> {
        let snapshot = self.snapshot()?;
        let plan = promptreg::write::plan(&snapshot, edit, message.as_deref())?;
        let applied = promptreg::write::apply(&self.inner, &plan)?;
        let id = plan.edit().id().to_string();
        // The version the write made or pointed at, from the registry it made.
        let version = match plan.edit() {
            promptreg::write::Edit::Point { version, .. } => Some(*version),
            promptreg::write::Edit::Delete { .. } => None,
            _ => self
                .snapshot()?
                .document(&Reference::parse(&format!("{id}@latest"))?, false)
                .ok()
                .and_then(|d| serde_json::to_value(&d).ok())
                .and_then(|d| d["version"].as_u64())
                .map(|v| v as u32),
        };
        to_text(&json!({
            "id": id,
            "commit": applied.commit.map(|c| c.to_string()),
            "version": version,
            "message": plan.message(),
        }))
    }
}

/// Renders a prompt from its document (its `source`), with no registry: for a copy kept apart
/// from its registry (a client's last good copy or fallback).
#[pyfunction]
fn render_document(py: Python<'_>, doc: String, values: String) -> PyResult<String> {
    detached(py, || {
        let doc: Value = serde_json::from_str(&doc)
            .map_err(|e| Error::Usage(format!("the document is not JSON: {e}")))?;
        let id = doc["id"].as_str().unwrap_or_default();
        let file = doc["file"].as_str().unwrap_or("prompt.prompt.yaml");
        let source = doc["source"].as_str().ok_or_else(|| {
            Error::Usage(format!("the document of `{id}` has no `source` to render"))
        })?;
        let compiled = LoadedPrompt::from_text(id, file, source)?.compile()?;
        rendered_json(&compiled, &values_of(&values)?)
    })
}

#[pymodule]
fn _promptreg(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Registry>()?;
    module.add_function(wrap_pyfunction!(render_document, module)?)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

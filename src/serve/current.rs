//! The registry at one commit as the server answers from it: the snapshot, and what is derived
//! from it once (the rows of the prompt list, the manifest's blob).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::error::Result;
use crate::format::prompt::Prompt;
use crate::git::oid::ObjectId;
use crate::registry::reference::Reference;
use crate::registry::{Registry, Resolved, Snapshot};
use crate::serve::bounded::Bounded;
use crate::serve::http::Answer;
use crate::snapshot::work::Source;

/// One row of the prompt list.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub versions: u32,
    pub latest: Option<u32>,
    pub default: Option<u32>,
    pub labels: BTreeMap<String, u32>,
    /// Lowercase id, name and description, for `q=`.
    pub haystack: String,
    /// The file's blob, so that the next snapshot re-reads only files that changed.
    pub blob: Option<ObjectId>,
}

/// The registry at one commit, and what is derived from it once.
#[derive(Debug)]
pub(crate) struct Current {
    pub snapshot: Arc<Snapshot>,
    /// The commit, in hex.
    pub commit: String,
    /// The blob of `defaults.yaml` at the commit (`none` without one).
    pub manifest_blob: String,
    /// Every prompt, sorted by id.
    pub rows: Vec<Row>,
    /// When it was loaded.
    pub loaded: Instant,
    /// The documents answered at this commit.
    pub answers: Answers,
    /// The versions render requests named at this commit.
    pub resolutions: Resolutions,
}

/// How many documents a snapshot keeps answered, and about how many bytes of them (their
/// bodies are mostly shared with the server's cache of version bodies).
const MAX_ANSWERS: usize = 4096;
const MAX_ANSWER_BYTES: usize = 32 << 20;

/// How many render targets a snapshot keeps resolved, and about how many bytes of them.
const MAX_RESOLVED: usize = 4096;
const MAX_RESOLVED_BYTES: usize = 4 << 20;

/// The documents answered at one commit, by request target (path and query). At one commit a
/// target names one document, so a repeated `GET` is answered from here: no reference is
/// resolved and nothing is built again. They go with the snapshot.
pub(crate) type Answers = Kept<Answer>;

/// The versions render requests named at one commit, by request target: a repeated render
/// resolves no reference again.
pub(crate) type Resolutions = Kept<Arc<(Reference, Resolved)>>;

/// A request's target, its path and query: the key of what a snapshot keeps (at one commit a
/// target names one document, and one version).
pub(crate) fn target(uri: &axum::http::Uri) -> &str {
    uri.path_and_query()
        .map_or_else(|| uri.path(), |t| t.as_str())
}

/// What a snapshot keeps of what it answered, by request target, bounded in entries and bytes.
pub(crate) struct Kept<V>(Mutex<Bounded<Box<str>, V>>);

impl<V: Clone> Kept<V> {
    fn new(max_entries: usize, max_bytes: usize) -> Kept<V> {
        Kept(Mutex::new(Bounded::new(max_entries, max_bytes)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bounded<Box<str>, V>> {
        // A cache: a panic while it was held leaves it usable.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What was kept for `target`, if anything.
    pub(crate) fn get(&self, target: &str) -> Option<V> {
        self.lock().get(target)
    }

    /// Keeps `value`, about `size` bytes, for `target`.
    pub(crate) fn keep(&self, target: Box<str>, value: V, size: usize) {
        let size = size.saturating_add(target.len());
        self.lock().insert(target, value, size);
    }
}

impl<V> std::fmt::Debug for Kept<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kept")
    }
}

impl Current {
    /// Builds everything a snapshot answers from: the version index, the manifest, the rows.
    pub(crate) fn load(registry: &Registry, previous: Option<&Current>) -> Result<Current> {
        let snapshot = registry.snapshot_after(previous.map(|p| &*p.snapshot))?;
        let commit = snapshot.commit();
        let source = snapshot.registry().commit_source(commit)?;
        let manifest_blob = manifest_blob(&snapshot)?;
        let counts: BTreeMap<String, u32> = match snapshot.index() {
            Ok(index) => index
                .files
                .iter()
                .map(|(file, versions)| (file.clone(), versions.len() as u32))
                .collect(),
            // A shallow clone: prompts without numbers.
            Err(err) if err.kind() == crate::error::ErrorKind::NoHistory => BTreeMap::new(),
            Err(err) => return Err(err),
        };
        let manifest = snapshot.manifest();
        let blobs = source.prompt_blobs()?;
        // What the previous snapshot read of files that did not change since.
        let known: HashMap<ObjectId, &Row> = previous
            .map(|p| {
                p.rows
                    .iter()
                    .filter_map(|r| r.blob.map(|b| (b, r)))
                    .collect()
            })
            .unwrap_or_default();
        let mut rows = Vec::with_capacity(snapshot.discovery().prompts.len());
        for (id, file) in &snapshot.discovery().prompts {
            let blob = blobs.get(file).copied();
            let (name, description, tags) = match blob.and_then(|b| known.get(&b)) {
                Some(row) => (row.name.clone(), row.description.clone(), row.tags.clone()),
                None => {
                    let parsed = source
                        .read(file)?
                        .map(|bytes| Prompt::parse(file, &bytes).prompt)
                        .unwrap_or_default();
                    match parsed {
                        Some(p) => (p.name, p.description, p.tags),
                        None => (None, None, Vec::new()),
                    }
                }
            };
            let versions = counts.get(file).copied().unwrap_or(0);
            let latest = (versions > 0).then_some(versions);
            let haystack = format!(
                "{id}\n{}\n{}",
                name.as_deref().unwrap_or(""),
                description.as_deref().unwrap_or("")
            )
            .to_lowercase();
            rows.push(Row {
                id: id.clone(),
                name,
                description,
                tags,
                versions,
                latest,
                default: manifest.get(None, id).or(latest),
                labels: manifest
                    .labels_of(id)
                    .into_iter()
                    .map(|(l, v)| (l.to_string(), v))
                    .collect(),
                haystack,
                blob,
            });
        }
        Ok(Current {
            commit: commit.to_string(),
            snapshot: Arc::new(snapshot),
            manifest_blob,
            rows,
            loaded: Instant::now(),
            answers: Kept::new(MAX_ANSWERS, MAX_ANSWER_BYTES),
            resolutions: Kept::new(MAX_RESOLVED, MAX_RESOLVED_BYTES),
        })
    }
}

/// The blob of `defaults.yaml` at the snapshot's commit, as the manifest's validator names it
/// (`none` when there is none).
pub(crate) fn manifest_blob(snapshot: &Snapshot) -> Result<String> {
    Ok(snapshot
        .registry()
        .commit_source(snapshot.commit())?
        .blob_id(crate::format::manifest::FILE)?
        .map_or_else(|| "none".to_string(), |b| b.to_string()))
}

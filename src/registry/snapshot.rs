//! The registry at one commit, shared across threads, and the marks `defaults.yaml` gives versions.

use crate::error::{Error, Result};
use crate::format::manifest::Manifest;
use crate::git::ObjectId;
use crate::history::{Version, VersionIndex};
use crate::registry::discovery::Discovery;
use crate::registry::open::{Pin, Registry};
use crate::registry::reference::{Reference, Selector};
use crate::registry::resolve::Resolved;
use crate::render::CompiledPrompt;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

impl Registry {
    /// The registry as it is now: `HEAD` (or the revision) resolved anew, sharing this
    /// registry's open repository and caches. Everything a snapshot reads is read from its
    /// commit, the manifest included, so it never changes; a long-lived program keeps one per
    /// state of the history (in an `Arc`, across threads) and takes a new one when the
    /// history moves.
    pub fn snapshot(&self) -> Result<Snapshot> {
        self.snapshot_after(None)
    }

    /// [`Registry::snapshot`], with the version index carried on from `previous` (extended
    /// by the new commits, or rebuilt when the history was rewritten) rather than read from
    /// the cache: what a server that follows a moving branch does on every new tip.
    pub fn snapshot_after(&self, previous: Option<&Snapshot>) -> Result<Snapshot> {
        let head = match &self.pin {
            Pin::Head => true,
            Pin::Rev(_) => false,
            Pin::Commit { head, .. } => *head,
        };
        let commit = match &self.pin {
            Pin::Commit { id, .. } => *id,
            _ => Registry::pinned(self.shared.clone(), self.pin.clone()).tip()?,
        };
        let registry = Registry::pinned(self.shared.clone(), Pin::Commit { id: commit, head });
        if let Some(index) = previous.and_then(|p| p.registry.index.get()) {
            let mut index = VersionIndex::clone(index);
            let repo = registry.require_repo()?;
            index.update(&repo, commit)?;
            drop(repo);
            let _ = registry.index.set(Arc::new(index));
        }
        let source = registry.commit_source(commit)?;
        let discovery = Discovery::scan(source.as_ref())?;
        let manifest = registry.manifest()?;
        Ok(Snapshot {
            registry,
            commit,
            discovery,
            manifest,
            compiled: Mutex::new(Compiled::default()),
        })
    }
}

/// The registry at one commit: its prompts, its manifest and (on demand) its version index,
/// all read from that commit, and the prompts compiled so far. It never changes, so it can be
/// shared across threads in an `Arc`; [`Registry::snapshot`] takes a new one when the history
/// moves.
#[derive(Debug)]
pub struct Snapshot {
    pub(super) registry: Registry,
    pub(super) commit: ObjectId,
    pub(super) discovery: Discovery,
    pub(super) manifest: Manifest,
    /// Compiled prompts by id and version number.
    pub(super) compiled: Mutex<Compiled>,
}

/// The compiled prompts a snapshot keeps, and their size (by [`CompiledPrompt::footprint`]).
#[derive(Debug, Default)]
pub(super) struct Compiled {
    by_version: BTreeMap<(String, u32), Arc<CompiledPrompt>>,
    bytes: usize,
}

impl Compiled {
    /// Keeps `compiled`; past a bound (`max` entries or `max_bytes`), the cache starts again
    /// empty first.
    fn keep(
        &mut self,
        key: (String, u32),
        compiled: Arc<CompiledPrompt>,
        max: usize,
        max_bytes: usize,
    ) {
        let size = compiled.footprint();
        if self.by_version.len() >= max || self.bytes.saturating_add(size) > max_bytes {
            self.by_version.clear();
            self.bytes = 0;
        }
        if self.by_version.insert(key, compiled).is_none() {
            self.bytes = self.bytes.saturating_add(size);
        }
    }
}

/// How many bytes of compiled prompts a snapshot keeps: a registry of large prompts cannot
/// fill the memory through it.
pub(super) const MAX_COMPILED_BYTES: usize = 256 << 20;

/// How many compiled prompts a snapshot keeps.
pub(super) const MAX_COMPILED: usize = 1024;

impl Snapshot {
    /// The commit.
    pub fn commit(&self) -> ObjectId {
        self.commit
    }

    /// The prompts of the commit, by id.
    pub fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    /// The commit's `defaults.yaml` (empty when it has none).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The registry pinned at this commit, for everything else it reads (versions, summaries,
    /// sources).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The version index of the commit's first-parent history, built (or read from the cache)
    /// the first time it is asked for.
    pub fn index(&self) -> Result<&VersionIndex> {
        self.registry.index()
    }

    /// Resolves a reference at this commit. `ID@work` is refused: a snapshot is committed
    /// content only.
    pub fn resolve(&self, reference: &Reference) -> Result<Resolved> {
        if reference.selector == Selector::Work {
            return Err(Error::Usage(format!(
                "`{reference}` names the working copy, which a snapshot of commit {} does not hold",
                self.commit.short()
            )));
        }
        let present = self.discovery.prompts.contains_key(&reference.id);
        self.registry
            .refuse_deleted(reference, &self.manifest, present, self.commit)?;
        match self.registry.resolve_numbered(reference)? {
            Resolved::Work => Err(Error::NoHistory(format!(
                "`{}` has no committed versions at commit {}",
                reference.id,
                self.commit.short()
            ))),
            resolved => Ok(resolved),
        }
    }

    /// The compiled prompt a reference names, compiled once per version and kept.
    pub fn prompt(&self, reference: &Reference) -> Result<(Resolved, Arc<CompiledPrompt>)> {
        let resolved = self.resolve(reference)?;
        let number = match resolved {
            Resolved::Version { number, .. } => number,
            // Without numbers (a shallow clone), the tip's file: keyed as version 0.
            _ => 0,
        };
        let key = (reference.id.clone(), number);
        if let Some(found) = self.compiled_prompts().by_version.get(&key) {
            return Ok((resolved, found.clone()));
        }
        let compiled = Arc::new(
            self.registry
                .load_resolved(&reference.id, &resolved)?
                .compile()?,
        );
        self.compiled_prompts()
            .keep(key, compiled.clone(), MAX_COMPILED, MAX_COMPILED_BYTES);
        Ok((resolved, compiled))
    }

    pub(super) fn compiled_prompts(&self) -> std::sync::MutexGuard<'_, Compiled> {
        // A cache: a panic while it was held leaves it usable.
        self.compiled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A version of a prompt with the marks `defaults.yaml` gives it: whether `ID` resolves to it
/// (the manifest's default, else the latest) and which labels point at it.
#[derive(Debug, Clone)]
pub struct MarkedVersion<'a> {
    /// The version.
    pub version: &'a Version,
    /// Its commit.
    pub commit: &'a crate::git::CommitInfo,
    /// Whether it is the default.
    pub default: bool,
    /// The labels that point at it.
    pub labels: Vec<String>,
}

/// `versions` of prompt `id` (oldest first, as the index has them), newest first, with the
/// marks `manifest` gives them: the one rule `versions` and the server's version lists share.
pub fn marked_versions<'a>(
    index: &'a VersionIndex,
    versions: &'a [Version],
    manifest: &Manifest,
    id: &str,
) -> Vec<MarkedVersion<'a>> {
    let default = manifest.get(None, id).or(versions.last().map(|v| v.number));
    let labels = manifest.labels_of(id);
    versions
        .iter()
        .rev()
        .map(|v| MarkedVersion {
            version: v,
            commit: index.commit(v),
            default: default == Some(v.number),
            labels: labels
                .iter()
                .filter(|(_, n)| *n == v.number)
                .map(|(l, _)| l.to_string())
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::registry::snapshot::*;

    fn compiled(text: &str) -> Arc<CompiledPrompt> {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("p.prompt.yaml"), text).expect("write");
        let loaded = Registry::open(dir.path())
            .and_then(|r| r.load_work("p"))
            .expect("loads");
        Arc::new(loaded.compile().expect("compiles"))
    }

    #[test]
    fn the_compiled_cache_is_bounded_by_bytes_and_entries() {
        let big = compiled(&format!("template: \"{}\"\n", "x".repeat(100_000)));
        let size = big.footprint();
        let mut kept = Compiled::default();
        kept.keep(("a".into(), 1), big.clone(), 100, size * 2);
        kept.keep(("a".into(), 2), big.clone(), 100, size * 2);
        assert_eq!((kept.by_version.len(), kept.bytes), (2, size * 2));
        // A third would pass the bytes: the cache starts again with it alone.
        kept.keep(("a".into(), 3), big.clone(), 100, size * 2);
        assert_eq!((kept.by_version.len(), kept.bytes), (1, size));
        // And by entries.
        let small = compiled("template: hi\n");
        let mut kept = Compiled::default();
        for n in 0..3 {
            kept.keep(("b".into(), n), small.clone(), 2, usize::MAX);
        }
        assert_eq!(kept.by_version.len(), 1);
    }
}

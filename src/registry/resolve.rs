//! References resolved to versions, commits or the working copy, and loaded.

use crate::error::{Error, Result};
use crate::format::manifest::Manifest;
use crate::format::prompt::suggest;
use crate::git::ObjectId;
use crate::history::{Version, VersionIndex};
use crate::registry::discovery::{find_file, Discovery, LoadedPrompt};
use crate::registry::open::Registry;
use crate::registry::reference::{Reference, Selector};
use crate::snapshot::work::Source;
use std::sync::Arc;

impl Registry {
    /// The versions of prompt `id`, oldest first.
    pub fn versions(&self, id: &str) -> Result<(&VersionIndex, Vec<Version>)> {
        let index = self.index()?;
        let versions = index
            .file_of(id)
            .map(|f| index.versions(&f).to_vec())
            .unwrap_or_default();
        Ok((index, versions))
    }

    /// Resolves a reference to the working copy or a committed version.
    pub fn resolve(&self, reference: &Reference) -> Result<Resolved> {
        // A prompt deleted at the tip has no default, latest or label any more, whatever the
        // manifest still says: the CLI answers as a server does.
        if reference.selector != Selector::Work && self.shared.repo.is_some() {
            if let Ok(tip) = self.tip() {
                let source = self.commit_source(tip)?;
                let present = find_file(source.as_ref(), &reference.id, "").is_ok();
                let manifest = self.manifest_shared()?;
                self.refuse_deleted(reference, &manifest, present, tip)?;
            }
        }
        // The latest version, and a default the manifest does not pin, is the file at the tip:
        // no version numbers, and so no version index, are needed to render it.
        let latest_like = match reference.selector {
            Selector::Latest => true,
            Selector::Default => self.manifest_shared()?.get(None, &reference.id).is_none(),
            _ => false,
        };
        if latest_like && self.shared.repo.is_some() {
            if let Ok(tip) = self.tip() {
                let source = self.commit_source(tip)?;
                if find_file(source.as_ref(), &reference.id, "").is_ok() {
                    return Ok(Resolved::Tip { commit: tip });
                }
            }
        }
        self.resolve_numbered(reference)
    }

    /// Refuses a reference that names a prompt deleted at `tip` (not `present` there) by
    /// anything but a number or a commit: its versions stay readable as `ID@N`, but it has no
    /// default, latest or label any more.
    pub(crate) fn refuse_deleted(
        &self,
        reference: &Reference,
        manifest: &crate::format::manifest::Manifest,
        present: bool,
        tip: ObjectId,
    ) -> Result<()> {
        let named_by_number = matches!(reference.selector, Selector::Version(_))
            || matches!(&reference.selector, Selector::Name(name) if manifest.labels.get(name.as_str()).is_none_or(|l| !l.contains_key(&reference.id)));
        if named_by_number || present {
            return Ok(());
        }
        let versions = self
            .versions(&reference.id)
            .map(|(_, v)| v.len())
            .unwrap_or(0);
        if versions == 0 {
            return Ok(());
        }
        Err(Error::BadReference {
            reference: reference.to_string(),
            reason: format!(
                "`{}` was deleted before commit {}",
                reference.id,
                tip.short()
            ),
            available: format!(
                "its versions stay readable: `{}@1` to `{}@{versions}`",
                reference.id, reference.id
            ),
        })
    }

    /// Resolves a reference to the working copy or a numbered version (never to
    /// [`Resolved::Tip`] when history can be numbered).
    pub fn resolve_numbered(&self, reference: &Reference) -> Result<Resolved> {
        let id = reference.id.as_str();
        if reference.selector == Selector::Work {
            return Ok(Resolved::Work);
        }
        if reference.selector == Selector::Default && self.shared.repo.is_none() {
            return Ok(Resolved::Work);
        }
        if reference.selector == Selector::Default && matches!(self.tip(), Err(Error::NoHistory(_)))
        {
            return Ok(Resolved::Work);
        }
        let manifest = self.manifest_shared()?;
        let (index, versions) = match self.versions(id) {
            Ok(found) => found,
            Err(Error::NoHistory(why)) => {
                // Without numbers (a shallow clone) the latest version is still the file at the
                // tip, and so is the default unless the manifest pins a number.
                let unpinned =
                    reference.selector == Selector::Default && manifest.get(None, id).is_none();
                if reference.selector == Selector::Latest || unpinned {
                    let tip = self.tip()?;
                    let source = self.commit_source(tip)?;
                    if Discovery::scan(source.as_ref())?.prompts.contains_key(id) {
                        return Ok(Resolved::Tip { commit: tip });
                    }
                    if unpinned && self.discover_work()?.prompts.contains_key(id) {
                        return Ok(Resolved::Work);
                    }
                }
                return Err(Error::NoHistory(why));
            }
            Err(e) => return Err(e),
        };
        let version = |n: u32| -> Result<Resolved> {
            match (n as usize).checked_sub(1).and_then(|i| versions.get(i)) {
                Some(v) => Ok(Resolved::Version {
                    number: v.number,
                    commit: index.commit(v).id,
                }),
                None => Err(self.unresolved(
                    reference,
                    &format!("`{id}` has no version {n}"),
                    &versions,
                    &manifest,
                )),
            }
        };
        if versions.is_empty() {
            if reference.selector == Selector::Default
                && self.discover_work()?.prompts.contains_key(id)
            {
                return Ok(Resolved::Work);
            }
            let discovery = self.discover_work()?;
            discovery.file(id, &self.root_name())?;
            return Err(self.unresolved(
                reference,
                &format!("`{id}` has no committed versions yet"),
                &versions,
                &manifest,
            ));
        }
        match &reference.selector {
            Selector::Work => Ok(Resolved::Work),
            Selector::Default => match manifest.get(None, id) {
                Some(n) => version(n),
                None => version(versions.len() as u32),
            },
            Selector::Latest => version(versions.len() as u32),
            Selector::Version(n) => version(*n),
            Selector::Name(name) => {
                if let Some(n) = manifest.get(Some(name), id) {
                    return version(n);
                }
                if manifest.labels.contains_key(name.as_str()) {
                    let reason = format!("label `{name}` does not point at `{id}`");
                    return Err(self.unresolved(reference, &reason, &versions, &manifest));
                }
                if name.len() >= 7 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return self.resolve_commit(reference, name, index, &versions, &manifest);
                }
                let reason = format!("`{name}` is not a version, a label or a commit");
                Err(self.unresolved(reference, &reason, &versions, &manifest))
            }
        }
    }

    pub(super) fn resolve_commit(
        &self,
        reference: &Reference,
        hex: &str,
        index: &VersionIndex,
        versions: &[Version],
        manifest: &Manifest,
    ) -> Result<Resolved> {
        let repo = self.require_repo()?;
        let commit = repo.resolve(hex).map_err(|_| {
            self.unresolved(reference, &format!("no commit `{hex}`"), versions, manifest)
        })?;
        // The version current at a commit: the file's blob there, matched to the newest version
        // with that blob that is not newer than the commit.
        let source = self.commit_source(commit)?;
        let file = index.file_of(&reference.id).unwrap_or_default();
        let blob = source.blob_id(&file)?;
        let seq = index.first_parent_seq(&repo, commit)?;
        let found = versions
            .iter()
            .rev()
            .filter(|v| seq.is_none_or(|s| v.seq <= s))
            .find(|v| Some(v.blob) == blob);
        match found {
            Some(v) => Ok(Resolved::Version {
                number: v.number,
                commit: index.commit(v).id,
            }),
            None if blob.is_some() => {
                let reason = format!(
                    "`{}` at commit {} is not a version on the first-parent history (a side-branch commit?)",
                    reference.id,
                    commit.short()
                );
                Err(self.unresolved(reference, &reason, versions, manifest))
            }
            None => {
                let reason = format!(
                    "`{}` does not exist at commit {}",
                    reference.id,
                    commit.short()
                );
                Err(self.unresolved(reference, &reason, versions, manifest))
            }
        }
    }

    pub(super) fn unresolved(
        &self,
        reference: &Reference,
        reason: &str,
        versions: &[Version],
        manifest: &Manifest,
    ) -> Error {
        let mut available = match versions.len() {
            0 => "it has no committed versions; `ID@work` is the working copy".to_string(),
            1 => "it has version 1".to_string(),
            n => format!("it has versions 1 to {n}"),
        };
        let labels = manifest.labels_of(&reference.id);
        if !labels.is_empty() {
            let names: Vec<String> = labels.iter().map(|(l, v)| format!("{l} (v{v})")).collect();
            available.push_str(&format!("; labels: {}", names.join(", ")));
        }
        if let Selector::Name(name) = &reference.selector {
            // Never the reference that just failed (a label that does not point at this id).
            let candidates = manifest
                .labels
                .keys()
                .map(String::as_str)
                .chain(["latest", "work"])
                .filter(|c| *c != name);
            if let Some(s) = suggest(name, candidates) {
                available.push_str(&format!("; did you mean `{}@{s}`?", reference.id));
            }
        }
        Error::BadReference {
            reference: reference.to_string(),
            reason: reason.to_string(),
            available,
        }
    }

    /// The snapshot a resolved reference reads from.
    pub(crate) fn source(&self, resolved: &Resolved) -> Result<Arc<dyn Source>> {
        match resolved {
            Resolved::Work => Ok(self.work()),
            Resolved::Version { commit, .. } | Resolved::Tip { commit } => {
                Ok(self.commit_source(*commit)?)
            }
        }
    }

    /// Reads the prompt a reference names.
    pub fn load(&self, reference: &Reference) -> Result<LoadedPrompt> {
        let resolved = self.resolve(reference)?;
        self.load_resolved(&reference.id, &resolved)
    }

    /// Reads prompt `id` as it is in a resolved snapshot.
    pub fn load_resolved(&self, id: &str, resolved: &Resolved) -> Result<LoadedPrompt> {
        match resolved {
            Resolved::Work => self.load_work(id),
            Resolved::Version { .. } | Resolved::Tip { .. } => {
                let source = self.source(resolved)?;
                let file = find_file(source.as_ref(), id, &source.describe())?;
                LoadedPrompt::read(source, id, &file)
            }
        }
    }
}

/// What a reference resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The working copy.
    Work,
    /// The newest committed content, in a repository whose history cannot be numbered (a
    /// shallow clone).
    Tip {
        /// The tip commit.
        commit: ObjectId,
    },
    /// A committed version.
    Version {
        /// Its number.
        number: u32,
        /// Its commit.
        commit: ObjectId,
    },
}

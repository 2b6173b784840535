//! The pull-request review: what a branch does to the prompts, compared as a pull request
//! would (from the merge base of base and head to head), with version numbers and defaults as
//! they will be after the merge, rendered-output diffs on each prompt's test data, manifest
//! moves, and the validation result of head.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;

use crate::check::diff::{render_own_cases, unified, CaseDiff, Compiled, ABSENT};
use crate::check::validate::{validate_snapshot, Report};
use crate::error::{Error, Result};
use crate::format::manifest::{self, Manifest};
use crate::git::ObjectId;
use crate::history::VersionIndex;
use crate::registry::{Discovery, LoadedPrompt, Registry};
use crate::snapshot::work::Source;

/// What happened to a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// A new prompt file.
    Added,
    /// The prompt's file changed.
    Changed,
    /// The file moved to a new id (same or similar content).
    Renamed,
    /// The file did not change, but a partial it includes did, and so did its output.
    OutputChanged,
    /// The prompt's file was deleted.
    Removed,
}

impl ChangeKind {
    /// The word used in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Changed => "changed",
            ChangeKind::Renamed => "renamed",
            ChangeKind::OutputChanged => "output changed",
            ChangeKind::Removed => "removed",
        }
    }
}

/// One prompt the pull request touches.
#[derive(Debug, Clone, Serialize)]
pub struct PromptChange {
    /// The id on head (on base for removed prompts).
    pub id: String,
    /// What happened.
    pub kind: ChangeKind,
    /// The id it had before a rename.
    pub renamed_from: Option<String>,
    /// The version on base.
    pub version_before: Option<u32>,
    /// The version after merge.
    pub version_after: Option<u32>,
    /// The default on base.
    pub default_before: Option<u32>,
    /// The default after merge.
    pub default_after: Option<u32>,
    /// The unified diff of the file.
    pub source_diff: String,
    /// Partials whose change changed this prompt's output.
    pub partials_changed: Vec<String>,
    /// Each test case rendered before and after.
    pub cases: Vec<CaseDiff>,
}

/// A changed partial: a file under the root that prompts include.
#[derive(Debug, Clone, Serialize)]
pub struct PartialChange {
    /// The file, relative to the registry root.
    pub file: String,
    /// The prompts (on head) that include it.
    pub included_by: Vec<String>,
    /// The unified diff of the file.
    pub diff: String,
}

/// A pointer of the manifest that moves.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestChange {
    /// The label, or `None` for the default.
    pub label: Option<String>,
    /// The prompt.
    pub id: String,
    /// The version before (for a default without an entry: the latest version then).
    pub before: Option<u32>,
    /// The version after (for a default without an entry: the latest version after merge).
    pub after: Option<u32>,
    /// Whether the manifest had an entry before.
    pub pinned_before: bool,
    /// Whether the manifest has an entry after.
    pub pinned_after: bool,
    /// The source diff between the two versions.
    pub diff: String,
}

/// One side of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// The revision as given.
    pub rev: String,
    /// The commit.
    pub commit: String,
}

/// The whole review.
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    /// The base branch tip.
    pub base: Side,
    /// The head.
    pub head: Side,
    /// Where head left base: the state the pull request is compared against.
    pub merge_base: Option<String>,
    /// Every prompt added, changed, renamed, removed or with changed output.
    pub prompts: Vec<PromptChange>,
    /// Changed files that prompts include (partials), with their diffs.
    pub partials: Vec<PartialChange>,
    /// Moves of the manifest's pointers.
    pub manifest: Vec<ManifestChange>,
    /// Things a reviewer should look at: lagging or backward defaults.
    pub warnings: Vec<String>,
    /// The validation of head.
    pub validation: Validation,
}

/// The validation result of head, as data.
#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    /// Error count.
    pub errors: usize,
    /// Warning count.
    pub warnings: usize,
    /// Every finding.
    pub diagnostics: Vec<crate::diagnostic::Diagnostic>,
}

struct Snapshot {
    source: Arc<dyn Source>,
    discovery: Discovery,
    manifest: Manifest,
}

impl Snapshot {
    fn open(registry: &Registry, commit: Option<ObjectId>) -> Result<Snapshot> {
        let source: Arc<dyn Source> = match commit {
            Some(commit) => registry.commit_source(commit)?,
            None => Arc::new(Empty),
        };
        let discovery = Discovery::scan(source.as_ref())?;
        let manifest = match source.read(manifest::FILE)? {
            Some(bytes) => Manifest::load(&bytes)?,
            None => Manifest::default(),
        };
        Ok(Snapshot {
            source,
            discovery,
            manifest,
        })
    }

    fn blob(&self, file: &str) -> Option<Vec<u8>> {
        self.source.read(file).ok().flatten()
    }

    fn compile(&self, id: &str) -> Compiled {
        let file = self.discovery.file(id, "").map_err(|e| e.to_string())?;
        LoadedPrompt::read(self.source.clone(), id, file)
            .and_then(LoadedPrompt::compile)
            .map_err(|e| match e {
                Error::Invalid { diagnostics, .. } => diagnostics
                    .iter()
                    .find(|d| d.is_error())
                    .map_or_else(|| "invalid".to_string(), |d| format!("invalid: {d}")),
                other => other.to_string(),
            })
    }
}

/// A snapshot with no files: the base of a branch without common history.
#[derive(Debug)]
struct Empty;

impl Source for Empty {
    fn read(&self, _: &str) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn prompt_files(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    fn describe(&self) -> String {
        "empty base".into()
    }
}

fn count(index: &VersionIndex, id: &str) -> Option<u32> {
    index
        .file_of(id)
        .map(|f| index.versions(&f).len() as u32)
        .filter(|n| *n > 0)
}

fn text(bytes: Option<Vec<u8>>) -> String {
    bytes
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The index of `base`, from `head`'s where their histories meet, so that a review walks
/// history once, not twice (on a fresh CI clone there is no cache): `head`'s index cut at the
/// merge base when that is on `head`'s first-parent chain (a short walk back from `head`), then
/// extended along `base`'s first parents to `base` (nothing to extend when `base` is the merge
/// base); else built from the cache or from scratch.
fn base_index(
    registry: &Registry,
    repo: &crate::git::Repo,
    head_index: &VersionIndex,
    base: ObjectId,
    merge_base: Option<ObjectId>,
) -> Result<VersionIndex> {
    if let Some(mb) = merge_base {
        if let Some(mut index) = head_index.at_ancestor(repo, mb)? {
            index.update(repo, base)?;
            return Ok(index);
        }
    }
    registry.index_at(base, false)
}

/// Compares the registry at `base` (a branch) and `head` (`HEAD` when `None`).
pub fn review(registry: &Registry, base: &str, head: Option<&str>) -> Result<Review> {
    let repo = registry.repo().ok_or_else(|| {
        Error::NoHistory(
            "review compares commits, and the registry is not inside a git repository".into(),
        )
    })?;
    let base_commit = repo.resolve(base)?;
    let head_commit = match head {
        Some(rev) => repo.resolve(rev)?,
        None => repo
            .head()?
            .ok_or_else(|| Error::NoHistory("the repository has no commits yet".into()))?,
    };
    let merge_base = repo.merge_base(base_commit, head_commit)?;
    let head_index = registry.index_at(head_commit, head.is_none())?;
    let base_index = base_index(registry, &repo, &head_index, base_commit, merge_base)?;
    // Versions each prompt had where the branch forked: on base's first-parent chain when the
    // merge base is on it (the usual pull request), else from its own index.
    let fork = match merge_base {
        None => Counts::Empty,
        Some(mb) => match base_index.first_parent_seq(&repo, mb)? {
            Some(seq) => Counts::UpTo(seq),
            None => Counts::Index(Box::new(registry.index_at(mb, false)?)),
        },
    };
    let tip = Snapshot::open(registry, Some(base_commit))?;
    let before = Snapshot::open(registry, merge_base)?;
    let after = Snapshot::open(registry, Some(head_commit))?;
    let history = History {
        base: &base_index,
        head: &head_index,
        fork: &fork,
    };

    let mut warnings = Vec::new();
    let mut prompts = compare_prompts(&before, &after, &history)?;
    rename_pairs(&mut prompts, &before, &after);
    fill_defaults(
        &mut prompts,
        &before.manifest,
        &after.manifest,
        &tip.manifest,
        &mut warnings,
    );
    for change in &prompts {
        let (at_fork, at_base) = (history.at_fork(&change.id), count(&base_index, &change.id));
        if change.kind == ChangeKind::Changed && at_base > at_fork {
            warnings.push(format!(
                "`{}` also changed on `{base}` since this branch forked ({} -> {}); this review compares with the merge base: rebase to review the combined change",
                change.id,
                version(at_fork),
                version(at_base)
            ));
        }
        if change.kind != ChangeKind::Removed {
            if let (Some(b), Some(a)) = (change.default_before, change.default_after) {
                if a < b {
                    warnings.push(format!(
                        "the default of `{}` moves backwards, from v{b} to v{a}",
                        change.id
                    ));
                }
            }
        }
    }
    let manifest_changes =
        compare_manifest(registry, &before, &after, &history, base, &mut warnings)?;
    let partials = compare_partials(&before, &after, &prompts);
    warnings.sort();
    warnings.dedup();
    let report: Report = validate_snapshot(after.source.clone(), Ok(&head_index), &[], "head")?;
    Ok(Review {
        base: Side {
            rev: base.to_string(),
            commit: base_commit.to_hex(),
        },
        head: Side {
            rev: head.unwrap_or("HEAD").to_string(),
            commit: head_commit.to_hex(),
        },
        merge_base: merge_base.map(|m| m.to_hex()),
        prompts,
        partials,
        manifest: manifest_changes,
        warnings,
        validation: Validation {
            errors: report.errors(),
            warnings: report.warnings(),
            diagnostics: report.diagnostics,
        },
    })
}

fn version(v: Option<u32>) -> String {
    v.map_or("none".to_string(), |n| format!("v{n}"))
}

/// How many versions prompts had at the fork point.
enum Counts {
    /// No common history: nothing existed.
    Empty,
    /// The fork point is at this position of base's first-parent chain.
    UpTo(u32),
    /// The fork point's own index.
    Index(Box<VersionIndex>),
}

struct History<'a> {
    base: &'a VersionIndex,
    head: &'a VersionIndex,
    fork: &'a Counts,
}

impl History<'_> {
    fn at_fork(&self, id: &str) -> Option<u32> {
        match self.fork {
            Counts::Empty => None,
            Counts::UpTo(seq) => self.base.file_of(id).map(|f| {
                self.base
                    .versions(&f)
                    .iter()
                    .filter(|v| v.seq <= *seq)
                    .count() as u32
            }),
            Counts::Index(index) => count(index, id),
        }
        .filter(|n| *n > 0)
    }
}

fn compare_prompts(
    before: &Snapshot,
    after: &Snapshot,
    history: &History<'_>,
) -> Result<Vec<PromptChange>> {
    let ids: BTreeSet<&String> = before
        .discovery
        .prompts
        .keys()
        .chain(after.discovery.prompts.keys())
        .collect();
    let mut changes = Vec::new();
    for id in ids {
        let old_file = before.discovery.prompts.get(id);
        let new_file = after.discovery.prompts.get(id);
        let old_text = old_file.map(|f| text(before.blob(f)));
        let new_text = new_file.map(|f| text(after.blob(f)));
        let kind = match (&old_text, &new_text) {
            (None, Some(_)) => ChangeKind::Added,
            (Some(_), None) => ChangeKind::Removed,
            (Some(a), Some(b)) if a != b => ChangeKind::Changed,
            _ => ChangeKind::OutputChanged,
        };
        let old = if old_file.is_some() {
            before.compile(id)
        } else {
            Err(format!("{ABSENT} on base"))
        };
        let new = if new_file.is_some() {
            after.compile(id)
        } else {
            Err(format!("{ABSENT} on head"))
        };
        let mut partials_changed = Vec::new();
        if kind == ChangeKind::OutputChanged {
            // Same file: only a changed partial can change the output.
            let partials: BTreeSet<String> = [&old, &new]
                .iter()
                .filter_map(|c| c.as_ref().ok())
                .flat_map(|c| c.partials().iter().cloned())
                .collect();
            partials_changed = partials
                .into_iter()
                .filter(|p| before.blob(p) != after.blob(p))
                .collect();
            if partials_changed.is_empty() {
                continue;
            }
        }
        let cases = render_own_cases(&old, &new, ("before", "after"));
        // A changed partial makes a new version of the prompt (a version is whole), whether
        // or not its test cases render differently.
        let base_count = count(history.base, id);
        let version_after = match kind {
            ChangeKind::Removed => None,
            _ => Some(base_count.unwrap_or(0) + 1),
        };
        let file_name = new_file.or(old_file).cloned().unwrap_or_default();
        changes.push(PromptChange {
            id: id.clone(),
            kind,
            renamed_from: None,
            version_before: base_count,
            version_after,
            default_before: None,
            default_after: None,
            source_diff: file_diff(
                old_text.as_deref(),
                new_text.as_deref(),
                &file_name,
                &file_name,
            ),
            partials_changed,
            cases,
        });
    }
    Ok(changes)
}

/// A unified diff of a file with git's headers: `/dev/null` for an absent side.
fn file_diff(old: Option<&str>, new: Option<&str>, old_name: &str, new_name: &str) -> String {
    let old_header = old.map_or("/dev/null".to_string(), |_| format!("a/{old_name}"));
    let new_header = new.map_or("/dev/null".to_string(), |_| format!("b/{new_name}"));
    unified(
        old.unwrap_or(""),
        new.unwrap_or(""),
        &old_header,
        &new_header,
    )
}

/// Pairs removed and added prompts with the same or nearly the same content as renames, best
/// matches first.
fn rename_pairs(changes: &mut Vec<PromptChange>, before: &Snapshot, after: &Snapshot) {
    let content =
        |snap: &Snapshot, id: &str| snap.discovery.prompts.get(id).map(|f| text(snap.blob(f)));
    let mut candidates = Vec::new();
    for r in (0..changes.len()).filter(|&i| changes[i].kind == ChangeKind::Removed) {
        let Some(old_text) = content(before, &changes[r].id) else {
            continue;
        };
        for a in (0..changes.len()).filter(|&i| changes[i].kind == ChangeKind::Added) {
            let Some(new_text) = content(after, &changes[a].id) else {
                continue;
            };
            let ratio = similar::TextDiff::from_lines(&old_text, &new_text).ratio();
            if ratio >= 0.75 {
                candidates.push((ratio, r, a));
            }
        }
    }
    candidates.sort_by(|x, y| y.0.total_cmp(&x.0));
    let (mut used_removed, mut used_added, mut gone) =
        (BTreeSet::new(), BTreeSet::new(), Vec::new());
    for (_, r, a) in candidates {
        if used_removed.contains(&r) || used_added.contains(&a) {
            continue;
        }
        used_removed.insert(r);
        used_added.insert(a);
        let old_id = changes[r].id.clone();
        let new_id = changes[a].id.clone();
        let old_file = before
            .discovery
            .prompts
            .get(&old_id)
            .cloned()
            .unwrap_or_default();
        let new_file = after
            .discovery
            .prompts
            .get(&new_id)
            .cloned()
            .unwrap_or_default();
        let (old, new) = (before.compile(&old_id), after.compile(&new_id));
        let change = &mut changes[a];
        change.cases = render_own_cases(&old, &new, ("before", "after"));
        change.kind = ChangeKind::Renamed;
        change.renamed_from = Some(old_id);
        change.source_diff = file_diff(
            Some(&text(before.blob(&old_file))),
            Some(&text(after.blob(&new_file))),
            &old_file,
            &new_file,
        );
        gone.push(r);
    }
    gone.sort_unstable();
    for r in gone.into_iter().rev() {
        changes.remove(r);
    }
}

fn compare_partials(
    before: &Snapshot,
    after: &Snapshot,
    prompts: &[PromptChange],
) -> Vec<PartialChange> {
    let mut by_partial: std::collections::BTreeMap<&String, Vec<String>> =
        std::collections::BTreeMap::new();
    for change in prompts {
        for partial in &change.partials_changed {
            by_partial
                .entry(partial)
                .or_default()
                .push(change.id.clone());
        }
    }
    by_partial
        .into_iter()
        .map(|(file, included_by)| {
            let old = before
                .blob(file)
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            let new = after
                .blob(file)
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            PartialChange {
                file: file.clone(),
                included_by,
                diff: file_diff(old.as_deref(), new.as_deref(), file, file),
            }
        })
        .collect()
}

fn compare_manifest(
    registry: &Registry,
    before: &Snapshot,
    after: &Snapshot,
    history: &History<'_>,
    base: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<ManifestChange>> {
    let repo = registry
        .repo()
        .ok_or_else(|| Error::NoHistory("no repository".into()))?;
    let mut keys: BTreeSet<(Option<String>, String)> = BTreeSet::new();
    for m in [&before.manifest, &after.manifest] {
        keys.extend(m.defaults.keys().map(|id| (None, id.clone())));
        for (label, entries) in &m.labels {
            keys.extend(entries.keys().map(|id| (Some(label.clone()), id.clone())));
        }
    }
    let head = history.head;
    let mut changes = Vec::new();
    for (label, id) in keys {
        let (pin_old, pin_new) = (
            before.manifest.get(label.as_deref(), &id),
            after.manifest.get(label.as_deref(), &id),
        );
        if pin_old == pin_new {
            continue;
        }
        // A default without an entry is the latest version; a label without one is no pointer.
        let (old, new) = match label {
            None => (
                pin_old.or(history.at_fork(&id)),
                pin_new.or(count(head, &id)),
            ),
            Some(_) => (pin_old, pin_new),
        };
        let blob_text = |n: Option<u32>| -> Option<String> {
            let file = head.file_of(&id)?;
            let blob = head
                .versions(&file)
                .get((n? as usize).checked_sub(1)?)?
                .blob;
            repo.read_raw(blob)
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        let name = |v: Option<u32>| v.map_or("/dev/null".to_string(), |v| format!("{id}@{v}"));
        let (old_text, new_text) = (blob_text(old), blob_text(new));
        let diff = unified(
            old_text.as_deref().unwrap_or(""),
            new_text.as_deref().unwrap_or(""),
            &name(old),
            &name(new),
        );
        let what = label
            .as_ref()
            .map_or("the default".to_string(), |l| format!("label `{l}`"));
        if let (Some(o), Some(n)) = (old, new) {
            if n < o {
                warnings.push(format!(
                    "{what} of `{id}` moves backwards, from v{o} to v{n}"
                ));
            }
        }
        // Numbers made on this branch are renumbered by the merge when base moved on.
        let (at_fork, at_base) = (history.at_fork(&id), count(history.base, &id));
        if let Some(n) = pin_new {
            if at_base > at_fork && at_fork.is_none_or(|f| n > f) {
                warnings.push(format!(
                    "{what} of `{id}` names v{n}, a version made on this branch, but `{base}` has made {} since the branch forked: after the merge v{n} is a different version; rebase and set the pointer again",
                    version(at_base)
                ));
            }
        }
        changes.push(ManifestChange {
            label,
            id,
            before: old,
            after: new,
            pinned_before: pin_old.is_some(),
            pinned_after: pin_new.is_some(),
            diff,
        });
    }
    Ok(changes)
}

/// The default after merge: the entry the pull request sets, else the base's entry, else the
/// latest version after merge.
fn default_after(
    id: &str,
    before: &Manifest,
    after: &Manifest,
    tip: &Manifest,
    latest: Option<u32>,
) -> Option<u32> {
    let pr_changed = before.get(None, id) != after.get(None, id);
    let entry = if pr_changed {
        after.get(None, id)
    } else {
        tip.get(None, id)
    };
    entry.or(latest)
}

/// Fills in the defaults before and after merge, and warns when a prompt changes but its
/// pinned default stays behind.
fn fill_defaults(
    prompts: &mut [PromptChange],
    before: &Manifest,
    after: &Manifest,
    tip: &Manifest,
    warnings: &mut Vec<String>,
) {
    for change in prompts.iter_mut() {
        change.default_before = tip.get(None, &change.id).or(change.version_before);
        change.default_after = match change.kind {
            ChangeKind::Removed => None,
            _ => default_after(&change.id, before, after, tip, change.version_after),
        };
        let pinned = change.default_after.is_some() && change.default_after != change.version_after;
        if pinned
            && change.kind == ChangeKind::Changed
            && change.version_after > change.default_after
        {
            warnings.push(format!(
                "`{}` changes to v{} but its default stays at v{}: move it with `promptreg set-default {} {}` after the merge",
                change.id,
                change.version_after.unwrap_or(0),
                change.default_after.unwrap_or(0),
                change.id,
                change.version_after.unwrap_or(0)
            ));
        }
    }
}

impl Review {
    /// Whether head has validation errors (the review then exits 1).
    pub fn has_errors(&self) -> bool {
        self.validation.errors > 0
    }
}

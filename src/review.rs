//! The pull-request review: what a branch does to the prompts, compared as a pull request
//! would (from the merge base of base and head to head), with version numbers and defaults as
//! they will be after the merge, rendered-output diffs on each prompt's test data, manifest
//! moves, and the validation result of head.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;

use crate::diff::{render_cases, unified, CaseDiff, ABSENT};
use crate::error::{Error, Result};
use crate::git::{CommitSource, ObjectId};
use crate::history::VersionIndex;
use crate::manifest::{self, Manifest};
use crate::registry::{Discovery, LoadedPrompt, Registry};
use crate::render::CompiledPrompt;
use crate::source::Source;
use crate::validate::{validate_snapshot, Report};

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

/// A pointer of the manifest that moves.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestChange {
    /// The label, or `None` for the default.
    pub label: Option<String>,
    /// The prompt.
    pub id: String,
    /// The version before.
    pub before: Option<u32>,
    /// The version after.
    pub after: Option<u32>,
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
            Some(commit) => Arc::new(CommitSource::open(registry.work_tree().root(), commit)?),
            None => Arc::new(Empty),
        };
        let discovery = Discovery::scan(source.as_ref())?;
        let manifest = match source.read(manifest::FILE)? {
            Some(bytes) => Manifest::parse(&bytes).0,
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

    fn compile(&self, id: &str) -> std::result::Result<CompiledPrompt, String> {
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
    let base_index = registry.index_at(base_commit, false)?;
    let head_index = registry.index_at(head_commit, head.is_none())?;
    let tip = Snapshot::open(registry, Some(base_commit))?;
    let before = Snapshot::open(registry, merge_base)?;
    let after = Snapshot::open(registry, Some(head_commit))?;

    let mut prompts = compare_prompts(&before, &after, &tip, &base_index)?;
    rename_pairs(&mut prompts, &before, &after);
    let (manifest_changes, mut warnings) =
        compare_manifest(registry, &before, &after, &head_index)?;
    fill_defaults(
        &mut prompts,
        &before.manifest,
        &after.manifest,
        &tip.manifest,
        &mut warnings,
    );
    for change in &prompts {
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
        manifest: manifest_changes,
        warnings,
        validation: Validation {
            errors: report.errors(),
            warnings: report.warnings(),
            diagnostics: report.diagnostics,
        },
    })
}

fn compare_prompts(
    before: &Snapshot,
    after: &Snapshot,
    tip: &Snapshot,
    base_index: &VersionIndex,
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
        let cases_from = new
            .as_ref()
            .or(old.as_ref())
            .map(|c| c.prompt().test_data.clone())
            .unwrap_or_default();
        let cases = render_cases(
            old.as_ref().map_err(Clone::clone),
            new.as_ref().map_err(Clone::clone),
            &cases_from,
        );
        if kind == ChangeKind::OutputChanged && cases.iter().all(|c| c.same) {
            continue;
        }
        let base_count = count(base_index, id);
        let version_after = match kind {
            ChangeKind::Removed => None,
            ChangeKind::OutputChanged => base_count,
            _ => Some(base_count.unwrap_or(0) + 1),
        };
        let file_name = new_file.or(old_file).cloned().unwrap_or_default();
        let default_before = tip.manifest.get(None, id).or(base_count);
        changes.push(PromptChange {
            id: id.clone(),
            kind,
            renamed_from: None,
            version_before: base_count,
            version_after,
            default_before,
            default_after: None,
            source_diff: unified(
                old_text.as_deref().unwrap_or(""),
                new_text.as_deref().unwrap_or(""),
                &format!("a/{file_name}"),
                &format!("b/{file_name}"),
            ),
            partials_changed,
            cases,
        });
    }
    Ok(changes)
}

/// Pairs removed and added prompts with the same or nearly the same content as renames.
fn rename_pairs(changes: &mut Vec<PromptChange>, before: &Snapshot, after: &Snapshot) {
    let removed: Vec<usize> = (0..changes.len())
        .filter(|&i| changes[i].kind == ChangeKind::Removed)
        .collect();
    let mut gone = Vec::new();
    for r in removed {
        let old_id = changes[r].id.clone();
        let Some(old_text) = before
            .discovery
            .prompts
            .get(&old_id)
            .map(|f| text(before.blob(f)))
        else {
            continue;
        };
        let best = (0..changes.len())
            .filter(|&i| changes[i].kind == ChangeKind::Added)
            .filter_map(|i| {
                let new_text = after
                    .discovery
                    .prompts
                    .get(&changes[i].id)
                    .map(|f| text(after.blob(f)))?;
                let ratio = similar::TextDiff::from_lines(&old_text, &new_text).ratio();
                (ratio >= 0.6).then_some((i, ratio))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((a, _)) = best {
            let old_file = before
                .discovery
                .prompts
                .get(&old_id)
                .cloned()
                .unwrap_or_default();
            let new_file = after
                .discovery
                .prompts
                .get(&changes[a].id)
                .cloned()
                .unwrap_or_default();
            let new_text = text(after.blob(&new_file));
            let old = before.compile(&old_id);
            let new = after.compile(&changes[a].id);
            let cases = new
                .as_ref()
                .or(old.as_ref())
                .map(|c| c.prompt().test_data.clone())
                .unwrap_or_default();
            let change = &mut changes[a];
            change.cases = render_cases(
                old.as_ref().map_err(Clone::clone),
                new.as_ref().map_err(Clone::clone),
                &cases,
            );
            change.kind = ChangeKind::Renamed;
            change.renamed_from = Some(old_id);
            change.source_diff = unified(
                &old_text,
                &new_text,
                &format!("a/{old_file}"),
                &format!("b/{new_file}"),
            );
            gone.push(r);
        }
    }
    for r in gone.into_iter().rev() {
        changes.remove(r);
    }
}

fn compare_manifest(
    registry: &Registry,
    before: &Snapshot,
    after: &Snapshot,
    head_index: &VersionIndex,
) -> Result<(Vec<ManifestChange>, Vec<String>)> {
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
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    for (label, id) in keys {
        let old = before.manifest.get(label.as_deref(), &id);
        let new = after.manifest.get(label.as_deref(), &id);
        if old == new {
            continue;
        }
        let blob_text = |n: Option<u32>| -> String {
            let file = head_index.file_of(&id);
            n.and_then(|n| {
                file.and_then(|f| head_index.versions(&f).get(n as usize - 1).map(|v| v.blob))
            })
            .and_then(|b| repo.read_raw(b).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
        };
        let diff = unified(
            &blob_text(old),
            &blob_text(new),
            &old.map_or("(none)".to_string(), |v| format!("{id}@{v}")),
            &new.map_or("(none)".to_string(), |v| format!("{id}@{v}")),
        );
        if let (Some(o), Some(n)) = (old, new) {
            if n < o {
                let what = label
                    .as_ref()
                    .map_or("the default".to_string(), |l| format!("label `{l}`"));
                warnings.push(format!(
                    "{what} of `{id}` moves backwards, from v{o} to v{n}"
                ));
            }
        }
        changes.push(ManifestChange {
            label,
            id,
            before: old,
            after: new,
            diff,
        });
    }
    Ok((changes, warnings))
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

impl Review {
    /// Whether head has validation errors (the review then exits 1).
    pub fn has_errors(&self) -> bool {
        self.validation.errors > 0
    }
}

/// Fills in the defaults after merge, and warns when a prompt changes but its pinned default
/// stays behind.
fn fill_defaults(
    prompts: &mut [PromptChange],
    before: &Manifest,
    after: &Manifest,
    tip: &Manifest,
    warnings: &mut Vec<String>,
) {
    for change in prompts.iter_mut() {
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
                "`{}` changes to v{} but its default stays at v{}: move it with `promptreg set-default {} {}`",
                change.id,
                change.version_after.unwrap_or(0),
                change.default_after.unwrap_or(0),
                change.id,
                change.version_after.unwrap_or(0)
            ));
        }
    }
}

//! The version index: which commits are versions of which prompt file, in one pass over the
//! first-parent history for all prompts at once.
//!
//! The walk reads each first-parent commit's registry-root tree id and skips the commit when it
//! equals the parent's; otherwise it diffs the two trees, descending only into subtrees whose ids
//! differ. Version N of a file is the N-th commit (oldest first) whose tree has the file with a
//! blob that differs from the first parent's. The prompt files are those the `promptreg.yaml`
//! at the tip selects ([`PromptMatcher`]), in every commit alike. The result is cached (see
//! [`crate::history::cache`]).

pub mod cache;
pub mod chunked;
mod deps;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use crate::error::Result;
use crate::format::config;
use crate::git::tree::RawTree;
use crate::git::tree::{entry_at, git_order, tree_entries, TreeEntry};
use crate::git::{CommitInfo, Held, ObjectId, Objects, Repo};
use crate::history::chunked::Chunked;
use crate::snapshot::matcher::PromptMatcher;
use crate::snapshot::work::is_hidden_name;

/// One version of one prompt file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// 1-based version number.
    pub number: u32,
    /// Position of the commit on the first-parent chain (0 = the root commit).
    pub seq: u32,
    /// Index of the commit in [`VersionIndex::commits`].
    pub commit: u32,
    /// The file's blob at that commit.
    pub blob: ObjectId,
}

/// Every version of every prompt file on the first-parent history of one tip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionIndex {
    /// The tip the index was built for.
    pub tip: ObjectId,
    /// The registry root's tree at the tip (`None` when the root does not exist there).
    pub tip_root: Option<ObjectId>,
    /// Number of commits on the first-parent chain.
    pub chain_len: u32,
    /// The registry root relative to the work tree.
    pub prefix: String,
    /// The `prompts` patterns of the `promptreg.yaml` at the tip (`PromptMatcher::key`):
    /// the files they select are the ones numbered.
    pub patterns: String,
    /// Every commit that is a version of some file, oldest first (in shared chunks: a clone
    /// of the index copies none of them).
    pub commits: Chunked<CommitInfo>,
    /// Versions by root-relative file path, oldest first (each file's list shared between
    /// clones until one of them adds a version of that file).
    pub files: BTreeMap<String, Arc<Vec<Version>>>,
    /// The files of each prompt id, as the tip's patterns name them (one, unless a file was
    /// replaced by one of another name with the same id).
    pub ids: BTreeMap<String, Vec<String>>,
    /// The prompt files at the tip whose text reads other files (partials, `${file:}`), when
    /// known: learnt at the first commit that changes a file other than prompt files, and kept
    /// from then on, so that a later commit that changes such a file reads no prompt text but
    /// theirs.
    pub reading: Option<BTreeSet<String>>,
}

impl VersionIndex {
    /// The position of `commit` on the first-parent chain of the index's tip, if it is on it.
    pub fn first_parent_seq(&self, repo: &Repo, commit: ObjectId) -> Result<Option<u32>> {
        let objects = repo.objects()?;
        let mut next = Some(self.tip);
        let mut seq = self.chain_len;
        while let Some(c) = next {
            seq = seq.saturating_sub(1);
            if c == commit {
                return Ok(Some(seq));
            }
            next = objects.commit_links(c)?.first_parent;
        }
        Ok(None)
    }

    /// The versions of a file, oldest first (empty when it has none).
    pub fn versions(&self, file: &str) -> &[Version] {
        self.files.get(file).map_or(&[], |v| v.as_slice())
    }

    /// The file that holds prompt `id` in the index, if any version of it exists; the one
    /// changed most recently when several do.
    pub fn file_of(&self, id: &str) -> Option<String> {
        self.ids
            .get(id)?
            .iter()
            .filter(|f| !self.versions(f).is_empty())
            .max_by_key(|f| self.versions(f).last().map(|v| v.seq))
            .cloned()
    }

    /// The commit of a version.
    pub fn commit(&self, version: &Version) -> &CommitInfo {
        &self.commits[version.commit as usize]
    }

    /// Builds the index for `tip` from scratch.
    pub fn build(repo: &Repo, tip: ObjectId) -> Result<VersionIndex> {
        VersionIndex::build_keeping(repo, tip, KEEP_INFOS)
    }

    /// [`VersionIndex::build`], keeping the metadata read with the chain when it is at most
    /// `keep` commits long.
    fn build_keeping(repo: &Repo, tip: ObjectId, keep: usize) -> Result<VersionIndex> {
        VersionIndex::build_with(repo, &repo.walk_objects()?, tip, keep)
    }

    /// [`VersionIndex::build_keeping`], reading through `objects`.
    fn build_with(
        repo: &Repo,
        objects: &Objects<'_>,
        tip: ObjectId,
        keep: usize,
    ) -> Result<VersionIndex> {
        let matcher = matcher_at(repo, objects, tip)?;
        let walk = first_parent_chain(objects, tip, None, keep)?;
        let mut index = VersionIndex {
            tip,
            tip_root: None,
            chain_len: 0,
            prefix: repo.prefix().to_string(),
            patterns: matcher.key(),
            commits: Chunked::default(),
            files: BTreeMap::new(),
            ids: BTreeMap::new(),
            reading: None,
        };
        index.extend(repo, objects, &matcher, walk, TreeCache::default())?;
        Ok(index)
    }

    /// The index of `commit`, an ancestor on this index's first-parent chain, cut from this
    /// one without walking history: its versions are exactly those made at or before it.
    /// `None` when `commit` is not on the chain.
    pub fn at_ancestor(&self, repo: &Repo, commit: ObjectId) -> Result<Option<VersionIndex>> {
        let Some(seq) = self.first_parent_seq(repo, commit)? else {
            return Ok(None);
        };
        // Other patterns at `commit` select other files: those are numbered from scratch.
        if matcher_at(repo, &repo.objects()?, commit)?.key() != self.patterns {
            return VersionIndex::build(repo, commit).map(Some);
        }
        let mut files = BTreeMap::new();
        let mut commits = 0;
        for (path, versions) in &self.files {
            let kept: Vec<Version> = versions.iter().copied().filter(|v| v.seq <= seq).collect();
            if let Some(last) = kept.last() {
                commits = commits.max(last.commit as usize + 1);
                files.insert(path.clone(), Arc::new(kept));
            }
        }
        let ids = self
            .ids
            .iter()
            .filter_map(|(id, paths)| {
                let kept: Vec<String> = paths
                    .iter()
                    .filter(|p| files.contains_key(*p))
                    .cloned()
                    .collect();
                (!kept.is_empty()).then(|| (id.clone(), kept))
            })
            .collect();
        Ok(Some(VersionIndex {
            tip: commit,
            tip_root: repo.root_tree_at(commit)?,
            chain_len: seq + 1,
            prefix: self.prefix.clone(),
            patterns: self.patterns.clone(),
            // Version commits are in chain order, so those of kept versions come first.
            commits: self.commits.prefix(commits),
            files,
            ids,
            // Not known at an ancestor: learnt again when needed.
            reading: None,
        }))
    }

    /// Brings the index to `tip`: walks only the new commits when `tip` descends from the
    /// indexed tip along first parents and has the same `promptreg.yaml` patterns, rebuilds
    /// otherwise. Returns whether anything changed.
    pub fn update(&mut self, repo: &Repo, tip: ObjectId) -> Result<bool> {
        if self.prefix != repo.prefix() {
            *self = VersionIndex::build(repo, tip)?;
            return Ok(true);
        }
        if tip == self.tip {
            return Ok(false);
        }
        let objects = repo.walk_objects()?;
        let matcher = matcher_at(repo, &objects, tip)?;
        if matcher.key() != self.patterns {
            *self = VersionIndex::build(repo, tip)?;
            return Ok(true);
        }
        let walk = first_parent_chain(&objects, tip, Some(self.tip), KEEP_INFOS)?;
        if walk.reached_stop && self.prefix == repo.prefix() {
            // The first diff's old side is the indexed tip's root tree, which a `list` or a
            // render at that tip kept uncompressed.
            let mut trees = TreeCache::default();
            if let Some(root) = self.tip_root {
                let kept = crate::snapshot::kept_tree::load_tree(
                    &crate::snapshot::kept_tree::tree_path(repo.git_dir(), repo.prefix()),
                    |_, tree| tree == root,
                );
                if let Some(kept) = kept {
                    let starts = kept.raw.parts().map(|(_, s)| Rc::new(s.to_vec()));
                    let tree = Tree {
                        data: TreeBytes::Owned(kept.raw.into_data()),
                        starts: std::cell::RefCell::new(starts),
                    };
                    trees.current.insert(root, Rc::new(tree));
                }
            }
            self.extend(repo, &objects, &matcher, walk, trees)?;
        } else {
            let mut fresh = VersionIndex {
                tip,
                prefix: repo.prefix().to_string(),
                patterns: matcher.key(),
                ..VersionIndex::default()
            };
            fresh.extend(repo, &objects, &matcher, walk, TreeCache::default())?;
            *self = fresh;
        }
        Ok(true)
    }

    /// Appends the commits of `chain` (oldest first, each the first child of the one before,
    /// the first a first child of the current tip).
    ///
    /// A commit is a version of a prompt file when it adds or changes the file, or changes a
    /// file the prompt reads at that commit (see [`deps`]). The walk collects each commit's
    /// changes; from the first commit that changes a file other than prompt files, a second
    /// thread reads the texts of the prompt versions for the files they read, while the walk
    /// goes on; then the commits are replayed in order into versions.
    fn extend<'t>(
        &mut self,
        repo: &Repo,
        objects: &'t Objects<'_>,
        matcher: &PromptMatcher,
        walk: Walk,
        mut trees: TreeCache<'t>,
    ) -> Result<()> {
        let Walk {
            chain, mut infos, ..
        } = walk;
        let mut prev_root = self.tip_root;
        let mut changes = Changes::default();
        let mut steps: Vec<deps::Step> = Vec::new();
        let mut paths = deps::Paths::default();
        let mut lookups = deps::Trees::default();
        // Whether the prompts that read files are known at the current commit (from the
        // cache); if not, they are learnt at the first commit that changes another file.
        let mut known = self.reading.is_some();
        let mut state = Replay {
            reading: self.reading.take(),
            unsettled: HashMap::new(),
        };
        // Prompt files changed since the last commit that changed another file (while known).
        let mut pending: HashMap<u32, ObjectId> = HashMap::new();
        let read = std::thread::scope(|scope| -> Result<deps::Read> {
            let mut reader: Option<deps::Reader<'_>> = None;
            for (&(commit, tree), info) in chain.iter().zip(infos.iter_mut()) {
                // Kept only for a commit that changes the registry.
                let info = info.take();
                let seq = self.chain_len;
                self.chain_len += 1;
                self.tip = commit;
                let root = repo.root_tree(objects, tree)?;
                if root == prev_root {
                    continue;
                }
                changes.clear();
                trees.next_commit();
                let mut diff = Diff {
                    objects,
                    trees: &mut trees,
                    matcher,
                    out: &mut changes,
                };
                diff.trees(prev_root, root, "")?;
                let before = prev_root;
                prev_root = root;
                if changes.prompts.is_empty()
                    && changes.deleted.is_empty()
                    && changes.others.is_empty()
                {
                    continue;
                }
                let mut step = deps::Step {
                    seq,
                    commit,
                    root,
                    prompts: Vec::with_capacity(changes.prompts.len()),
                    deleted: changes.deleted.iter().map(|p| paths.id(p)).collect(),
                    others: None,
                    initial: None,
                    info,
                };
                if !changes.others.is_empty() {
                    if reader.is_none() {
                        reader = Some(deps::Reader::start(scope, repo.owned_objects()?));
                    }
                    if let Some(reader) = &reader {
                        if known {
                            // The prompts changed since the last such commit, as they are now.
                            for (path, blob) in pending.drain() {
                                reader.send(paths.name(path), blob, matcher);
                            }
                        } else {
                            // The prompts as they were before this commit.
                            let listed = match before {
                                Some(before) => lookups.prompt_files(objects, before, matcher)?,
                                None => Vec::new(),
                            };
                            for (path, blob) in &listed {
                                reader.send(path, *blob, matcher);
                            }
                            step.initial =
                                Some(listed.iter().map(|(p, b)| (paths.id(p), *b)).collect());
                            known = true;
                        }
                    }
                    step.others = Some(std::mem::take(&mut changes.others));
                }
                for (path, blob) in changes.prompts.drain(..) {
                    let id = paths.id(&path);
                    if known {
                        pending.insert(id, blob);
                    }
                    step.prompts.push((id, blob));
                }
                if known {
                    for path in &step.deleted {
                        pending.remove(path);
                    }
                }
                if reader.is_none() {
                    // Nothing waits on what prompts read yet: numbered now, not kept.
                    self.replay(
                        repo,
                        objects,
                        matcher,
                        step,
                        &paths,
                        &mut deps::Read::default(),
                        &mut lookups,
                        &mut state,
                    )?;
                } else {
                    steps.push(step);
                }
            }
            // What the prompts changed since the last such commit read, for the index to keep.
            if known && !pending.is_empty() {
                if reader.is_none() {
                    reader = Some(deps::Reader::start(scope, repo.owned_objects()?));
                }
                if let Some(reader) = &reader {
                    for (path, blob) in pending.drain() {
                        reader.send(paths.name(path), blob, matcher);
                    }
                }
            }
            Ok(reader.map(deps::Reader::finish).unwrap_or_default())
        })?;
        self.tip_root = prev_root;
        let mut read = read;
        for step in steps {
            self.replay(
                repo,
                objects,
                matcher,
                step,
                &paths,
                &mut read,
                &mut lookups,
                &mut state,
            )?;
        }
        state.settle(objects, matcher, &paths, &mut read)?;
        self.reading = state.reading;
        Ok(())
    }

    /// Turns one of the walk's steps into versions: the commit's own changes, then the
    /// prompts that read a file it changed (steps come in chain order).
    #[allow(clippy::too_many_arguments)]
    fn replay(
        &mut self,
        repo: &Repo,
        objects: &Objects<'_>,
        matcher: &PromptMatcher,
        step: deps::Step,
        paths: &deps::Paths,
        read: &mut deps::Read,
        lookups: &mut deps::Trees,
        state: &mut Replay,
    ) -> Result<()> {
        if let Some(initial) = &step.initial {
            let mut known = BTreeSet::new();
            for (path, blob) in initial {
                let path = paths.name(*path);
                if !read.refs(objects, matcher, path, *blob)?.is_empty() {
                    known.insert(path.to_string());
                }
            }
            state.reading = Some(known);
            state.unsettled.clear();
        }
        let own: BTreeSet<&str> = match step.others {
            Some(_) => step.prompts.iter().map(|(p, _)| paths.name(*p)).collect(),
            None => BTreeSet::new(),
        };
        let mut versions: Vec<(String, ObjectId)> = Vec::new();
        if let (Some(others), Some(root)) = (&step.others, step.root) {
            state.settle(objects, matcher, paths, read)?;
            let mut at = deps::Commit {
                objects,
                trees: lookups,
                root,
                changed: others,
                memo: HashMap::new(),
            };
            for path in state.reading.iter().flatten() {
                if own.contains(path.as_str()) {
                    continue;
                }
                let Some(blob) = self.files.get(path).and_then(|v| v.last()).map(|v| v.blob) else {
                    continue;
                };
                if read.reads_any(&mut at, matcher, path, blob)? {
                    versions.push((path.clone(), blob));
                }
            }
        }
        for (path, blob) in &step.prompts {
            if state.reading.is_some() {
                state.unsettled.insert(*path, *blob);
            }
            versions.push((paths.name(*path).to_string(), *blob));
        }
        for path in &step.deleted {
            state.unsettled.remove(path);
            if let Some(r) = &mut state.reading {
                r.remove(paths.name(*path));
            }
        }
        if versions.is_empty() {
            return Ok(());
        }
        versions.sort();
        let commit_index = self.commits.len() as u32;
        // Kept from the chain's walk, or parsed from the raw object rather than through a
        // libgit2 commit, unless it is unusual.
        let info = match step.info {
            Some(info) => *info,
            None => match objects.commit(step.commit)?.1 {
                Some(info) => info,
                None => repo.commit_info(step.commit)?,
            },
        };
        self.commits.push(info);
        for (path, blob) in versions {
            let entry = self.files.entry(path);
            if let std::collections::btree_map::Entry::Vacant(vacant) = &entry {
                if let Some(id) = matcher.prompt_id(vacant.key()) {
                    let files = self.ids.entry(id.to_string()).or_default();
                    if !files.contains(vacant.key()) {
                        files.push(vacant.key().clone());
                    }
                }
            }
            let list = Arc::make_mut(entry.or_default());
            list.push(Version {
                number: list.len() as u32 + 1,
                seq: step.seq,
                commit: commit_index,
                blob,
            });
        }
        Ok(())
    }
}

/// What the replay knows about which prompts read files.
struct Replay {
    /// The prompt files whose current text reads files, when known.
    reading: Option<BTreeSet<String>>,
    /// Prompt files changed since the last commit that changed another file: whether they
    /// read files is settled at the next such commit (or at the end).
    unsettled: HashMap<u32, ObjectId>,
}

impl Replay {
    fn settle(
        &mut self,
        objects: &Objects<'_>,
        matcher: &PromptMatcher,
        paths: &deps::Paths,
        read: &mut deps::Read,
    ) -> Result<()> {
        let Some(r) = &mut self.reading else {
            self.unsettled.clear();
            return Ok(());
        };
        for (path, blob) in self.unsettled.drain() {
            let path = paths.name(path);
            if read.refs(objects, matcher, path, blob)?.is_empty() {
                r.remove(path);
            } else {
                r.insert(path.to_string());
            }
        }
        Ok(())
    }
}

/// What one commit changed under the registry root.
#[derive(Default)]
struct Changes {
    /// Prompt files added or modified, with their new blobs.
    prompts: Vec<(String, ObjectId)>,
    /// Prompt files deleted.
    deleted: Vec<String>,
    /// Other files added, modified or deleted (not the manifest or the settings): what a
    /// prompt may read.
    others: BTreeSet<String>,
}

impl Changes {
    fn clear(&mut self) {
        self.prompts.clear();
        self.deleted.clear();
        self.others.clear();
    }
}

struct Walk {
    /// (commit, tree), oldest first.
    chain: Vec<(ObjectId, ObjectId)>,
    /// Each commit's metadata (in the chain's order), read with its links, when it read
    /// plainly and the chain is at most [`KEEP_INFOS`] long; else none.
    infos: Vec<Option<Box<CommitInfo>>>,
    reached_stop: bool,
}

/// The longest chain whose commits' metadata the walk keeps from reading each commit once
/// (about 300 bytes a commit, up to 10 MB). A longer history reads it again for each version
/// commit: holding it for every commit from the start took large's peak (100,000 commits)
/// from 119 to 147 MB, and for its newest 32,768 to 131 MB, where reading it again made
/// the walk about a fifth longer.
const KEEP_INFOS: usize = 32_768;

/// The first-parent chain from `tip` back to the root, or back to (not including) `stop`.
fn first_parent_chain(
    objects: &Objects<'_>,
    tip: ObjectId,
    stop: Option<ObjectId>,
    keep: usize,
) -> Result<Walk> {
    let mut chain = Vec::new();
    let mut infos = Vec::new();
    let mut next = Some(tip);
    let mut reached_stop = false;
    while let Some(commit) = next {
        if Some(commit) == stop {
            reached_stop = true;
            break;
        }
        let links = if chain.len() < keep {
            let (links, info) = objects.commit(commit)?;
            infos.push(info.map(Box::new));
            links
        } else {
            if chain.len() == keep {
                infos = Vec::new();
            }
            objects.commit_links(commit)?
        };
        chain.push((commit, links.tree));
        next = links.first_parent;
    }
    chain.reverse();
    // Oldest first, as the chain: the slots of the commits not kept come first.
    let mut infos: Vec<Option<Box<CommitInfo>>> = std::iter::repeat_with(|| None)
        .take(chain.len() - infos.len())
        .chain(infos.into_iter().rev())
        .collect();
    infos.shrink_to_fit();
    Ok(Walk {
        chain,
        infos,
        reached_stop,
    })
}

/// Which files are prompts at `commit`: as its `promptreg.yaml` at the registry root says.
fn matcher_at(repo: &Repo, objects: &Objects<'_>, commit: ObjectId) -> Result<PromptMatcher> {
    let Some(root) = repo.root_tree(objects, objects.commit_links(commit)?.tree)? else {
        return Ok(PromptMatcher::default());
    };
    let tree = RawTree::new(objects.read(root)?);
    let blob = tree
        .get(config::FILE.as_bytes())
        .filter(|e| e.is_file)
        .map(|e| e.id);
    PromptMatcher::read(&|_| blob.map(|id| objects.read(id)).transpose())
}

/// A raw tree's bytes: held where the object database read them, or owned (the tip's tree kept
/// by a `list`, an empty tree).
enum TreeBytes<'o> {
    Held(Held<'o>),
    Owned(Vec<u8>),
}

impl std::ops::Deref for TreeBytes<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            TreeBytes::Held(held) => held,
            TreeBytes::Owned(bytes) => bytes,
        }
    }
}

/// A raw tree read for a diff, and where its entries start once a diff has found that out.
struct Tree<'o> {
    data: TreeBytes<'o>,
    starts: std::cell::RefCell<Option<Rc<Vec<u32>>>>,
}

impl<'o> Tree<'o> {
    fn new(data: TreeBytes<'o>) -> Tree<'o> {
        Tree {
            data,
            starts: std::cell::RefCell::new(None),
        }
    }

    /// Where its entries start, found by walking it the first time.
    fn starts(&self) -> Rc<Vec<u32>> {
        self.starts
            .borrow_mut()
            .get_or_insert_with(|| Rc::new(entry_starts(&self.data)))
            .clone()
    }
}

/// The trees read for the previous commit's diff: the next commit's old side is usually exactly
/// those trees, so each tree is read from the object database once, not twice, and where its
/// entries start is found from the tree before it rather than by walking it.
#[derive(Default)]
struct TreeCache<'o> {
    previous: HashMap<ObjectId, Rc<Tree<'o>>>,
    current: HashMap<ObjectId, Rc<Tree<'o>>>,
}

impl<'o> TreeCache<'o> {
    fn next_commit(&mut self) {
        self.previous = std::mem::take(&mut self.current);
    }

    fn read(&mut self, objects: &'o Objects<'_>, id: ObjectId) -> Result<Rc<Tree<'o>>> {
        if let Some(tree) = self.previous.get(&id).or_else(|| self.current.get(&id)) {
            return Ok(tree.clone());
        }
        let tree = Rc::new(Tree::new(TreeBytes::Held(objects.read_held(id)?)));
        self.current.insert(id, tree.clone());
        Ok(tree)
    }
}

/// The length of the longest common prefix of two byte strings: compared 4 KiB at a time,
/// then 256 and 16 bytes in the block that differs, then byte by byte (each comparison is a
/// `memcmp` call: 64 bytes at a time, the calls were a seventh of a cold index build).
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    for step in [4096, 256, 16] {
        while i + step <= n && a[i..i + step] == b[i..i + step] {
            i += step;
        }
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// Where each entry of a raw tree starts (walking it from the start with the parser the diff
/// uses, so both agree on a damaged tree too; the walk stops where an entry does not parse).
fn entry_starts(data: &[u8]) -> Vec<u32> {
    let mut starts = Vec::new();
    let mut pos = 0;
    while let Some((_, next)) = entry_at(data, pos) {
        starts.push(pos as u32);
        pos = next;
    }
    starts
}

/// The entries that differ between two raw trees, in git's order, as `on(old, new)`: removed
/// (`Some`, `None`), added (`None`, `Some`) or changed (both, same name). Runs of identical
/// bytes are skipped with one comparison, and where they end is found by binary search in
/// `old_starts` (where each entry of `old` starts), so a commit that changes three files of
/// five thousand parses a handful of entries, not the folder. Returns where each entry of
/// `new` starts (the next commit's `old_starts`), or `None` when a tree does not parse to its
/// end.
fn tree_changes<'a>(
    old: &'a [u8],
    old_starts: &[u32],
    new: &'a [u8],
    mut on: impl FnMut(Option<TreeEntry<'a>>, Option<TreeEntry<'a>>),
) -> Option<Vec<u32>> {
    let mut starts: Vec<u32> = Vec::with_capacity(old_starts.len() + 4);
    let end_of = |k: usize| old_starts.get(k + 1).map_or(old.len(), |&s| s as usize);
    let (mut po, mut pn) = (0usize, 0usize);
    loop {
        // Skip every whole entry the two trees share from here.
        let same = common_prefix(&old[po..], &new[pn..]);
        let first = old_starts.partition_point(|&s| (s as usize) < po);
        let past = old_starts.partition_point(|&s| (s as usize) <= po + same);
        let skip_to = if past > first && end_of(past - 1) <= po + same {
            past
        } else {
            past.saturating_sub(1).max(first)
        };
        let to = old_starts.get(skip_to).map_or(old.len(), |&s| s as usize);
        // Only bytes known to be the same are skipped (in a damaged tree the starts and the
        // position may disagree).
        let to = if to > po + same { po } else { to };
        let skip_to = if to == po { first } else { skip_to };
        let shift = |s: u32| (s as usize - po + pn) as u32;
        starts.extend(old_starts[first..skip_to].iter().map(|&s| shift(s)));
        pn += to - po;
        po = to;
        let o = (po < old.len()).then(|| entry_at(old, po)).flatten();
        let n = (pn < new.len()).then(|| entry_at(new, pn)).flatten();
        match (o, n) {
            (None, None) => break,
            (Some((o, next)), None) => {
                on(Some(o), None);
                po = next;
            }
            (None, Some((n, next))) => {
                on(None, Some(n));
                starts.push(pn as u32);
                pn = next;
            }
            (Some((o, next_o)), Some((n, next_n))) => match git_order(&o, &n) {
                Ordering::Less => {
                    on(Some(o), None);
                    po = next_o;
                }
                Ordering::Greater => {
                    on(None, Some(n));
                    starts.push(pn as u32);
                    pn = next_n;
                }
                Ordering::Equal => {
                    on(Some(o), Some(n));
                    starts.push(pn as u32);
                    po = next_o;
                    pn = next_n;
                }
            },
        }
    }
    (po >= old.len() && pn >= new.len()).then_some(starts)
}

/// One commit's diff: the prompt files (as `matcher` says) added, modified or deleted, and the
/// other files changed.
struct Diff<'a, 't, 'o> {
    objects: &'t Objects<'o>,
    trees: &'a mut TreeCache<'t>,
    matcher: &'a PromptMatcher,
    out: &'a mut Changes,
}

impl Diff<'_, '_, '_> {
    /// Records every file added, modified or deleted from `old` to `new` under `dir`.
    fn trees(&mut self, old: Option<ObjectId>, new: Option<ObjectId>, dir: &str) -> Result<()> {
        let Some(new) = new else {
            if let Some(old) = old {
                self.gone(old, dir)?;
            }
            return Ok(());
        };
        let old_tree = match old {
            Some(id) => self.trees.read(self.objects, id)?,
            None => Rc::new(Tree::new(TreeBytes::Owned(Vec::new()))),
        };
        let new_tree = self.trees.read(self.objects, new)?;
        // The new side is the next commit's old side.
        self.trees.current.insert(new, new_tree.clone());
        let old_starts = old_tree.starts();
        let mut subtrees: Vec<(String, Option<ObjectId>, Option<ObjectId>)> = Vec::new();
        let starts = tree_changes(
            &old_tree.data,
            &old_starts,
            &new_tree.data,
            |before, entry| {
                let Some(entry) = entry else {
                    if let Some(o) = before {
                        self.removed(&o, dir, &mut subtrees);
                    }
                    return;
                };
                if before.is_some_and(|b| b.id == entry.id) || is_hidden_name(entry.name) {
                    return;
                }
                let Ok(name) = std::str::from_utf8(entry.name) else {
                    return;
                };
                if let Some(b) = before.filter(|b| b.is_tree != entry.is_tree) {
                    self.removed(&b, dir, &mut subtrees);
                }
                if entry.is_tree {
                    let old_sub = before.filter(|b| b.is_tree).map(|b| b.id);
                    subtrees.push((format!("{dir}{name}/"), old_sub, Some(entry.id)));
                } else if entry.is_file {
                    self.file(format!("{dir}{name}"), Some(entry.id));
                }
            },
        );
        if new_tree.starts.borrow().is_none() {
            *new_tree.starts.borrow_mut() = starts.map(Rc::new);
        }
        for (path, old_sub, new_sub) in subtrees {
            self.trees(old_sub, new_sub, &path)?;
        }
        Ok(())
    }

    /// An entry of the old tree that the new one does not have.
    fn removed(
        &mut self,
        entry: &crate::git::tree::TreeEntry<'_>,
        dir: &str,
        subtrees: &mut Vec<(String, Option<ObjectId>, Option<ObjectId>)>,
    ) {
        if is_hidden_name(entry.name) {
            return;
        }
        let Ok(name) = std::str::from_utf8(entry.name) else {
            return;
        };
        if entry.is_tree {
            subtrees.push((format!("{dir}{name}/"), Some(entry.id), None));
        } else if entry.is_file {
            self.file(format!("{dir}{name}"), None);
        }
    }

    /// Every file of a deleted folder.
    fn gone(&mut self, old: ObjectId, dir: &str) -> Result<()> {
        let tree = self.trees.read(self.objects, old)?;
        let mut subtrees = Vec::new();
        for entry in tree_entries(&tree.data) {
            self.removed(&entry, dir, &mut subtrees);
        }
        for (path, old_sub, _) in subtrees {
            if let Some(old_sub) = old_sub {
                self.gone(old_sub, &path)?;
            }
        }
        Ok(())
    }

    /// A file added or modified (`Some` blob) or deleted.
    fn file(&mut self, path: String, blob: Option<ObjectId>) {
        if self.matcher.is_prompt(&path) {
            match blob {
                Some(blob) => self.out.prompts.push((path, blob)),
                None => self.out.deleted.push(path),
            }
        } else if path != config::FILE && path != crate::format::manifest::FILE {
            self.out.others.insert(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::git::tree::TreeEntry;
    use crate::history::*;

    fn entry(name: &[u8], is_tree: bool) -> TreeEntry<'_> {
        TreeEntry {
            name,
            id: ObjectId::default(),
            is_tree,
            is_file: !is_tree,
        }
    }

    fn raw_tree(entries: &[(&str, u8)]) -> Vec<u8> {
        let mut data = Vec::new();
        for (name, id) in entries {
            data.extend_from_slice(b"100644 ");
            data.extend_from_slice(name.as_bytes());
            data.push(0);
            data.extend_from_slice(&[*id; 20]);
        }
        data
    }

    /// What `tree_changes` reports: each entry removed (`-`), added (`+`) or changed (`~`).
    fn changes(old: &[u8], new: &[u8]) -> Vec<(char, Vec<u8>, ObjectId)> {
        let mut out = Vec::new();
        let starts = tree_changes(old, &entry_starts(old), new, |o, n| match (o, n) {
            (Some(o), None) => out.push(('-', o.name.to_vec(), o.id)),
            (None, Some(n)) => out.push(('+', n.name.to_vec(), n.id)),
            (Some(_), Some(n)) => out.push(('~', n.name.to_vec(), n.id)),
            (None, None) => {}
        });
        // Where the new tree's entries start, found from the old tree's: as walking it finds.
        assert_eq!(starts, Some(entry_starts(new)));
        out
    }

    /// The same, by comparing every entry of both trees.
    fn full(old: &[u8], new: &[u8]) -> Vec<(char, Vec<u8>, ObjectId)> {
        let olds: Vec<_> = tree_entries(old).collect();
        let news: Vec<_> = tree_entries(new).collect();
        let mut out = Vec::new();
        for o in &olds {
            if !news.iter().any(|n| n.name == o.name) {
                out.push(('-', o.name.to_vec(), o.id));
            }
        }
        for n in &news {
            match olds.iter().find(|o| o.name == n.name) {
                None => out.push(('+', n.name.to_vec(), n.id)),
                Some(o) if o.id != n.id => out.push(('~', n.name.to_vec(), n.id)),
                Some(_) => {}
            }
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out
    }

    /// Numbers below `n`, the same for a seed every run (a linear congruential generator).
    fn numbers(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut seed = seed;
        move |n| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        }
    }

    /// The common prefix is found wherever the first difference is: in or at the edge of a
    /// block of any of the sizes compared, or nowhere (one string a prefix of the other).
    #[test]
    fn common_prefix_finds_the_first_difference_anywhere() {
        let a: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for at in (0..a.len())
            .step_by(97)
            .chain([0, 15, 16, 255, 256, 4095, 4096, 4097, 9999])
        {
            let mut b = a.clone();
            b[at] ^= 1;
            assert_eq!(common_prefix(&a, &b), at, "{at}");
            assert_eq!(common_prefix(&b, &a[..at]), at, "{at}");
        }
        assert_eq!(common_prefix(&a, &a), a.len());
        assert_eq!(common_prefix(&a[..5000], &a), 5000);
        assert_eq!(common_prefix(&[], &a), 0);
    }

    #[test]
    fn tree_changes_are_every_change_and_only_those() {
        // A small generator: trees of 0..40 entries, edits, inserts and deletes, with ids that
        // share bytes so prefixes and suffixes cut through entries.
        let mut next = numbers(7);
        let names: Vec<String> = (0..60)
            .map(|i| format!("p{:03}.prompt.yaml", i * 7 % 60))
            .collect();
        for _ in 0..2000 {
            let mut base: Vec<(String, u8)> = Vec::new();
            for name in &names {
                if next(3) > 0 {
                    base.push((name.clone(), next(4) as u8));
                }
            }
            base.sort();
            let mut edited = base.clone();
            for _ in 0..=next(3) {
                match next(3) {
                    0 if !edited.is_empty() => {
                        let i = next(edited.len() as u64) as usize;
                        edited[i].1 = edited[i].1.wrapping_add(1 + next(3) as u8);
                    }
                    1 if !edited.is_empty() => {
                        edited.remove(next(edited.len() as u64) as usize);
                    }
                    _ => {
                        let name = names[next(names.len() as u64) as usize].clone();
                        if !edited.iter().any(|(n, _)| *n == name) {
                            edited.push((name, next(4) as u8));
                            edited.sort();
                        }
                    }
                }
            }
            let as_refs = |t: &[(String, u8)]| {
                raw_tree(&t.iter().map(|(n, i)| (n.as_str(), *i)).collect::<Vec<_>>())
            };
            let (old, new) = (as_refs(&base), as_refs(&edited));
            assert_eq!(
                changes(&old, &new),
                full(&old, &new),
                "{base:?} -> {edited:?}"
            );
        }
    }

    /// Damaged trees (bytes flipped, cut, spliced: a crafted repository's) neither panic nor
    /// loop; the changes then are whatever the entries that parse say.
    #[test]
    fn damaged_trees_do_not_break_the_diff() {
        let mut next = numbers(11);
        let names: Vec<String> = (0..30).map(|i| format!("p{i:02}.yaml")).collect();
        for _ in 0..3000 {
            let tree = |next: &mut dyn FnMut(u64) -> u64| {
                let mut entries: Vec<(&str, u8)> = Vec::new();
                for name in &names {
                    if next(2) == 0 {
                        entries.push((name.as_str(), next(3) as u8));
                    }
                }
                raw_tree(&entries)
            };
            let (mut old, mut new) = (tree(&mut next), tree(&mut next));
            for data in [&mut old, &mut new] {
                for _ in 0..next(4) {
                    if data.is_empty() {
                        break;
                    }
                    let at = next(data.len() as u64) as usize;
                    match next(4) {
                        0 => data[at] = next(256) as u8,
                        1 => data.truncate(at),
                        2 => data.insert(at, [0u8, b' ', b'4'][next(3) as usize]),
                        _ => {
                            data.remove(at);
                        }
                    }
                }
            }
            let mut seen = 0;
            let _ = tree_changes(&old, &entry_starts(&old), &new, |_, _| seen += 1);
            assert!(seen <= old.len() + new.len());
        }
    }

    #[test]
    fn folders_sort_as_if_they_ended_in_a_slash() {
        assert_eq!(
            git_order(&entry(b"a", true), &entry(b"a.b", false)),
            Ordering::Greater
        );
        assert_eq!(
            git_order(&entry(b"a", false), &entry(b"a.b", false)),
            Ordering::Less
        );
        assert_eq!(
            git_order(&entry(b"a", true), &entry(b"a0", false)),
            Ordering::Less
        );
        assert_eq!(
            git_order(&entry(b"a", true), &entry(b"a", true)),
            Ordering::Equal
        );
    }

    /// The index built from packs read directly is the one built through libgit2, byte for
    /// byte as the cache stores it.
    #[test]
    fn packs_read_directly_give_the_same_index() {
        let dir = tempfile::tempdir().expect("temp dir");
        crate::git::pack::tests::packed_repo(dir.path(), 60, 120);
        std::fs::create_dir_all(dir.path().join("prompts")).expect("folder");
        let repo = Repo::discover(&dir.path().join("prompts"))
            .expect("open")
            .expect("a repository");
        assert_eq!(repo.prefix(), "prompts/");
        let tip = repo.head().expect("head").expect("a tip");
        // Reads its first objects through libgit2, then the packs.
        let direct = repo.walk_objects_if(true).expect("objects");
        let read = VersionIndex::build_with(&repo, &direct, tip, KEEP_INFOS).expect("direct");
        let libgit2 =
            VersionIndex::build_with(&repo, &repo.objects().expect("objects"), tip, KEEP_INFOS)
                .expect("libgit2");
        assert_eq!(
            read.versions("prompt-0007.prompt.yaml").len(),
            libgit2.versions("prompt-0007.prompt.yaml").len()
        );
        assert!(libgit2.versions("prompt-0007.prompt.yaml").len() > 5);
        assert_eq!(cache::encode(&read), cache::encode(&libgit2));
        // And a walk from an older tip brought up to date.
        let first = repo
            .objects()
            .expect("objects")
            .commit_links(tip)
            .expect("links");
        let older = first.first_parent.expect("a parent");
        let mut updated =
            VersionIndex::build_with(&repo, &direct, older, KEEP_INFOS).expect("older");
        assert!(updated.update(&repo, tip).expect("update"));
        assert_eq!(cache::encode(&updated), cache::encode(&libgit2));
    }

    /// A history longer than the metadata kept from the chain's walk reads it again for each
    /// version: the same index either way.
    #[test]
    fn commit_metadata_is_the_same_kept_or_read_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let git = git2::Repository::init(dir.path()).expect("init");
        let mut parent: Option<git2::Oid> = None;
        for i in 0..6i64 {
            let blob = git
                .blob(format!("template: \"v{i} {{{{ x }}}}\"\n").as_bytes())
                .expect("blob");
            let mut tree = git.treebuilder(None).expect("tree");
            tree.insert("a.prompt.yaml", blob, 0o100644).expect("entry");
            let tree = git.find_tree(tree.write().expect("tree")).expect("tree");
            let who = git2::Signature::new(
                &format!("Author {i}"),
                "a@example.com",
                &git2::Time::new(1_700_000_000 + i * 60, 90),
            )
            .expect("signature");
            let parents: Vec<git2::Commit<'_>> = parent
                .map(|p| git.find_commit(p).expect("parent"))
                .into_iter()
                .collect();
            let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
            let message = format!("\n\nEdit {i}\n\nwith a body\n");
            parent = Some(
                git.commit(Some("HEAD"), &who, &who, &message, &tree, &refs)
                    .expect("commit"),
            );
        }
        let repo = Repo::discover(dir.path())
            .expect("open")
            .expect("a repository");
        let tip = repo.head().expect("head").expect("a tip");
        let kept = VersionIndex::build_keeping(&repo, tip, usize::MAX).expect("kept");
        let read = VersionIndex::build_keeping(&repo, tip, 3).expect("read again");
        let infos = |index: &VersionIndex| -> Vec<CommitInfo> {
            index
                .versions("a.prompt.yaml")
                .iter()
                .map(|v| index.commit(v).clone())
                .collect()
        };
        assert_eq!(infos(&kept).len(), 6);
        assert_eq!(infos(&kept), infos(&read));
        let libgit2: Vec<CommitInfo> = infos(&kept)
            .iter()
            .map(|info| repo.commit_info(info.id).expect("commit"))
            .collect();
        assert_eq!(infos(&kept), libgit2);
        assert_eq!(infos(&kept)[5].message, "Edit 5\n\nwith a body\n");
        assert_eq!(infos(&kept)[5].offset_minutes, 90);
    }
}

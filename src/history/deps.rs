//! Whole versions: at a commit that changes files other than prompt files (partials, data a
//! Prompty file reads), which prompts read one of them, directly or through other partials,
//! as the files were at that commit.
//!
//! Nothing here runs until a commit changes a file other than a prompt file (the manifest and
//! the settings are never partials): in a registry without such files the walk reads no blob.
//! From that commit on, the prompt versions current at each such commit are read once (a
//! version replaced before the next one is not), searched for anything that can name a file
//! before they are parsed; the index keeps which prompts at the tip read files
//! ([`crate::history::VersionIndex::reading`]), so a later update reads only its new versions.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use crate::error::Result;
use crate::git::tree::RawTree;
use crate::git::{ObjectId, Objects};
use crate::render::refs::{references, Reads, Ref};
use crate::snapshot::matcher::PromptMatcher;

/// Longest chain of partials followed.
const MAX_DEPTH: usize = 32;

/// One commit of the walk that changed something under the root.
pub(crate) struct Step {
    pub seq: u32,
    pub commit: ObjectId,
    pub info: Option<crate::git::CommitInfo>,
    pub root: Option<ObjectId>,
    /// Prompt files added or modified, with their blobs.
    pub prompts: Vec<(u32, ObjectId)>,
    /// Prompt files deleted.
    pub deleted: Vec<u32>,
    /// The other files it changed, when there are any.
    pub others: Option<BTreeSet<String>>,
    /// The prompt files before this commit, when this is where the walk starts to follow
    /// what prompts read.
    pub initial: Option<Vec<(u32, ObjectId)>>,
}

/// Paths interned as numbers, so the walk's steps hold no strings.
#[derive(Default)]
pub(crate) struct Paths {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Paths {
    pub(crate) fn id(&mut self, path: &str) -> u32 {
        if let Some(id) = self.ids.get(path) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(path.to_string());
        self.ids.insert(path.to_string(), id);
        id
    }

    pub(crate) fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }

    /// Takes in `other`'s paths; returns each of its ids' id here.
    pub(crate) fn merge(&mut self, other: &Paths) -> Vec<u32> {
        other.names.iter().map(|name| self.id(name)).collect()
    }
}

/// The files a prompt version's text reads, by its blob, then its path (one, unless two prompt
/// files hold the same text).
type Found = HashMap<ObjectId, Vec<(String, Vec<Ref>)>>;

/// One commit's changes as the diff found them.
pub(crate) struct RawStep {
    pub seq: u32,
    pub commit: ObjectId,
    /// The commit's metadata, read on the diff's thread (`None`: read it through git2).
    pub info: Option<crate::git::CommitInfo>,
    pub root: Option<ObjectId>,
    /// Prompt files added or modified (interned in the walk's [`Paths`]), with their blobs.
    pub prompts: Vec<(u32, ObjectId)>,
    pub deleted: Vec<u32>,
    pub others: BTreeSet<String>,
}

/// The prompt versions whose texts must be read: those current at a commit that changes
/// another file (a version replaced before the next such commit is never read), and those
/// current at the end when what the prompts read is known.
pub(crate) type Wanted = Vec<(String, ObjectId)>;

/// Interns the diff's steps and picks the prompt versions to read. `known`: the index knows
/// which prompts read files at the start; if not, that is learnt at the first commit that
/// changes another file, from the prompts of the tree before it (`start_root` or the
/// previous step's root).
pub(crate) fn follow(
    objects: &Objects<'_>,
    matcher: &PromptMatcher,
    raw: Vec<RawStep>,
    mut paths: Paths,
    start_root: Option<ObjectId>,
    mut known: bool,
    lookups: &mut Trees,
) -> Result<(Vec<Step>, Paths, Wanted)> {
    let mut wanted: Wanted = Vec::new();
    let mut pending: HashMap<u32, ObjectId> = HashMap::new();
    let mut before = start_root;
    let mut steps = Vec::with_capacity(raw.len());
    for raw in raw {
        let mut step = Step {
            seq: raw.seq,
            commit: raw.commit,
            info: raw.info,
            root: raw.root,
            prompts: Vec::with_capacity(raw.prompts.len()),
            deleted: raw.deleted,
            others: None,
            initial: None,
        };
        if !raw.others.is_empty() {
            if known {
                // The prompts changed since the last such commit, as they are now.
                wanted.extend(
                    pending
                        .drain()
                        .map(|(path, blob)| (paths.name(path).to_string(), blob)),
                );
            } else {
                // The prompts as they were before this commit.
                let listed = match before {
                    Some(tree) => lookups.prompt_files(objects, tree, matcher)?,
                    None => Vec::new(),
                };
                step.initial = Some(listed.iter().map(|(p, b)| (paths.id(p), *b)).collect());
                wanted.extend(listed);
                known = true;
            }
            step.others = Some(raw.others);
        }
        for (id, blob) in raw.prompts {
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
        before = raw.root;
        steps.push(step);
    }
    // What the prompts changed since the last such commit read, for the index to keep.
    wanted.extend(
        pending
            .drain()
            .map(|(path, blob)| (paths.name(path).to_string(), blob)),
    );
    Ok((steps, paths, wanted))
}

/// Reads at least this many texts on two threads.
const PARALLEL_FROM: usize = 256;

/// Reads the wanted prompt versions for the files they read: on two threads when there are
/// many (sharing one handle on the objects).
pub(crate) fn read_all(
    objects: &Objects<'_>,
    matcher: &PromptMatcher,
    wanted: Wanted,
) -> Result<Read> {
    // In the walk's order, each once: consecutive versions of a file are near each other in
    // the pack (deltas of each other), so its delta base cache serves them.
    let mut seen = std::collections::HashSet::new();
    let wanted: Wanted = wanted
        .into_iter()
        .filter(|(path, blob)| seen.insert((path.clone(), *blob)))
        .collect();
    let read_some = |objects: &Objects<'_>, part: &[(String, ObjectId)]| -> Result<Found> {
        let mut found = Found::new();
        for (path, blob) in part {
            let Some((_, kind)) = matcher.kind_of(path) else {
                continue;
            };
            let refs = refs_in(&objects.read(*blob)?, Reads::Prompt(kind), path);
            found.entry(*blob).or_default().push((path.clone(), refs));
        }
        Ok(found)
    };
    let two = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
    let found = if wanted.len() < PARALLEL_FROM || !two {
        read_some(objects, &wanted)?
    } else {
        let (first, second) = wanted.split_at(wanted.len() / 2);
        std::thread::scope(|scope| -> Result<Found> {
            let later = scope.spawn(move || read_some(objects, second));
            let mut found = read_some(objects, first)?;
            let more = later.join().map_err(|_| {
                crate::error::Error::Internal("a thread reading prompt texts stopped".into())
            })??;
            for (blob, entries) in more {
                found.entry(blob).or_default().extend(entries);
            }
            Ok(found)
        })?
    };
    Ok(Read {
        prompts: found,
        partials: HashMap::new(),
    })
}

/// The references of a text.
fn refs_in(bytes: &[u8], reads: Reads, path: &str) -> Vec<Ref> {
    match std::str::from_utf8(bytes) {
        Ok(text) if bytes.len() <= crate::format::yaml::MAX_FILE_SIZE => {
            references(reads, path, text)
        }
        _ => Vec::new(),
    }
}

/// What the texts read: prompt versions (from the reader thread, or read here when it did not
/// have one) and partials (read here, on demand).
#[derive(Default)]
pub(crate) struct Read {
    prompts: Found,
    partials: HashMap<(String, ObjectId, Reads), Rc<Vec<Ref>>>,
}

impl Read {
    /// The files prompt `path` at `blob` reads.
    pub(crate) fn refs(
        &mut self,
        objects: &Objects<'_>,
        matcher: &PromptMatcher,
        path: &str,
        blob: ObjectId,
    ) -> Result<&[Ref]> {
        let known = self
            .prompts
            .get(&blob)
            .is_some_and(|v| v.iter().any(|(p, _)| p == path));
        if !known {
            let refs = match matcher.kind_of(path) {
                Some((_, kind)) => refs_in(&objects.read(blob)?, Reads::Prompt(kind), path),
                None => Vec::new(),
            };
            self.prompts
                .entry(blob)
                .or_default()
                .push((path.to_string(), refs));
        }
        Ok(self
            .prompts
            .get(&blob)
            .and_then(|v| v.iter().find(|(p, _)| p == path))
            .map_or(&[], |(_, refs)| refs.as_slice()))
    }

    fn partial_refs(
        &mut self,
        objects: &Objects<'_>,
        path: &str,
        blob: ObjectId,
        reads: Reads,
    ) -> Result<Rc<Vec<Ref>>> {
        let key = (path.to_string(), blob, reads);
        if let Some(found) = self.partials.get(&key) {
            return Ok(found.clone());
        }
        let found = Rc::new(refs_in(&objects.read(blob)?, reads, path));
        self.partials.insert(key, found.clone());
        Ok(found)
    }

    /// Whether prompt `file` (whose blob at the commit is `blob`) reads any of the files the
    /// commit changed, as the files are at the commit.
    pub(crate) fn reads_any(
        &mut self,
        at: &mut Commit<'_, '_>,
        matcher: &PromptMatcher,
        file: &str,
        blob: ObjectId,
    ) -> Result<bool> {
        let refs = self.refs(at.objects, matcher, file, blob)?.to_vec();
        for r in &refs {
            if self.touches(at, r, 0)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether the file `r` names (the first of its candidates that exists), or a file it reads
    /// in turn, is among the changed files.
    fn touches(&mut self, at: &mut Commit<'_, '_>, r: &Ref, depth: usize) -> Result<bool> {
        for candidate in &r.candidates {
            // A change to any candidate before the one read (one appearing) changes which
            // file that is.
            if at.changed.contains(candidate) {
                return Ok(true);
            }
            if let Some(found) = at.memo.get(candidate) {
                return Ok(*found);
            }
            let Some(blob) = at.trees.blob_at(at.objects, at.root, candidate)? else {
                continue;
            };
            let Some(next) = r.reads else {
                at.memo.insert(candidate.clone(), false);
                return Ok(false);
            };
            // Settled as "no" while it is followed, so a cycle ends.
            at.memo.insert(candidate.clone(), false);
            let mut found = false;
            if depth < MAX_DEPTH {
                let inner = self.partial_refs(at.objects, candidate, blob, next)?;
                for inner in inner.iter() {
                    if self.touches(at, inner, depth + 1)? {
                        found = true;
                        break;
                    }
                }
            }
            at.memo.insert(candidate.clone(), found);
            return Ok(found);
        }
        Ok(false)
    }
}

/// One commit that changed files other than prompt files, as the replay checks it: what it
/// changed, its tree, and what is settled about each file read so far.
pub(crate) struct Commit<'a, 'o> {
    pub objects: &'a Objects<'o>,
    pub trees: &'a mut Trees,
    pub root: ObjectId,
    pub changed: &'a BTreeSet<String>,
    pub memo: HashMap<String, bool>,
}

/// Trees read while looking paths up, by id (a commit's lookups share their folders).
#[derive(Default)]
pub(crate) struct Trees {
    kept: HashMap<ObjectId, Rc<RawTree>>,
}

impl Trees {
    fn tree(&mut self, objects: &Objects<'_>, id: ObjectId) -> Result<Rc<RawTree>> {
        if let Some(t) = self.kept.get(&id) {
            return Ok(t.clone());
        }
        if self.kept.len() > 4096 {
            self.kept.clear();
        }
        let tree = Rc::new(RawTree::new(objects.read(id)?));
        self.kept.insert(id, tree.clone());
        Ok(tree)
    }

    /// The blob of the regular file at root-relative `path` under tree `root`.
    pub(crate) fn blob_at(
        &mut self,
        objects: &Objects<'_>,
        root: ObjectId,
        path: &str,
    ) -> Result<Option<ObjectId>> {
        let mut tree = root;
        let mut parts = path.split('/').peekable();
        while let Some(part) = parts.next() {
            let raw = self.tree(objects, tree)?;
            let Some(entry) = raw.get(part.as_bytes()) else {
                return Ok(None);
            };
            if parts.peek().is_none() {
                return Ok(entry.is_file.then_some(entry.id));
            }
            if !entry.is_tree {
                return Ok(None);
            }
            tree = entry.id;
        }
        Ok(None)
    }

    /// Every prompt file under tree `root`, as `matcher` says, with its blob.
    pub(crate) fn prompt_files(
        &mut self,
        objects: &Objects<'_>,
        root: ObjectId,
        matcher: &PromptMatcher,
    ) -> Result<Vec<(String, ObjectId)>> {
        let mut out = Vec::new();
        let mut stack = vec![(root, String::new())];
        while let Some((id, dir)) = stack.pop() {
            let raw = self.tree(objects, id)?;
            for entry in raw.entries() {
                if crate::snapshot::matcher::is_hidden_name(entry.name) {
                    continue;
                }
                let Ok(name) = std::str::from_utf8(entry.name) else {
                    continue;
                };
                if entry.is_tree {
                    stack.push((entry.id, format!("{dir}{name}/")));
                } else if entry.is_file {
                    let path = format!("{dir}{name}");
                    if matcher.is_prompt(&path) {
                        out.push((path, entry.id));
                    }
                }
            }
        }
        Ok(out)
    }
}

//! Whole versions: at a commit that changes files other than prompt files (partials, data a
//! Prompty file reads), which prompts read one of them, directly or through other partials,
//! as the files were at that commit.
//!
//! Nothing here runs until a commit changes a file other than a prompt file (the manifest and
//! the settings are never partials): in a registry without such files the walk reads no blob.
//! From that commit on, every prompt version's text is read once, on a thread of its own while
//! the walk goes on, searched for anything that can name a file before it is parsed; the
//! index keeps which prompts at the tip read files ([`crate::history::VersionIndex::reading`]),
//! so a later update reads only the new versions.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::mpsc;

use crate::error::Result;
use crate::git::tree::RawTree;
use crate::git::{ObjectId, Objects, OwnedObjects};
use crate::render::refs::{references, Reads, Ref};
use crate::snapshot::matcher::PromptMatcher;

/// Longest chain of partials followed.
const MAX_DEPTH: usize = 32;

/// One commit of the walk that changed something under the root.
pub(crate) struct Step {
    pub seq: u32,
    pub commit: ObjectId,
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
    /// The commit's metadata, when the chain's walk kept it.
    pub info: Option<Box<crate::git::CommitInfo>>,
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
}

/// The files a prompt version's text reads, by its blob, then its path (one, unless two prompt
/// files hold the same text).
type Found = HashMap<ObjectId, Vec<(String, Vec<Ref>)>>;

/// The thread that reads prompt versions' texts while the walk goes on.
pub(crate) struct Reader<'scope> {
    send: mpsc::Sender<(String, ObjectId, Reads)>,
    done: std::thread::ScopedJoinHandle<'scope, Found>,
}

impl<'scope> Reader<'scope> {
    pub(crate) fn start<'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        objects: OwnedObjects,
    ) -> Reader<'scope> {
        let (send, receive) = mpsc::channel::<(String, ObjectId, Reads)>();
        let done = scope.spawn(move || {
            let mut found = Found::new();
            for (path, blob, reads) in receive {
                let known = found.entry(blob).or_default();
                if known.iter().any(|(p, _)| *p == path) {
                    continue;
                }
                // An unreadable blob is read again, and its error reported, by the replay.
                if let Ok(bytes) = objects.read(blob) {
                    let refs = refs_in(&bytes, reads, &path);
                    known.push((path, refs));
                }
            }
            found
        });
        Reader { send, done }
    }

    /// Asks for the files prompt `path` at `blob` reads.
    pub(crate) fn send(&self, path: &str, blob: ObjectId, matcher: &PromptMatcher) {
        if let Some((_, kind)) = matcher.kind_of(path) {
            // The thread only ends when this sender is dropped.
            let _ = self
                .send
                .send((path.to_string(), blob, Reads::Prompt(kind)));
        }
    }

    pub(crate) fn finish(self) -> Read {
        drop(self.send);
        Read {
            prompts: self.done.join().unwrap_or_default(),
            partials: HashMap::new(),
        }
    }
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

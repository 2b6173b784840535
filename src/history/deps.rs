//! Whole versions: at a commit that changes files other than prompt files (partials, data a
//! Prompty file reads), which prompts read one of them, directly or through other partials,
//! as the files were at that commit.
//!
//! Nothing here runs for a commit that changes only prompt files (and the manifest or the
//! settings, which are never partials): in a registry without partials the walk reads no blob.
//! When it runs, each prompt's text is read once per blob (a prompt unchanged since its last
//! version has its last version's blob), searched for anything that can name a file before it
//! is parsed, and its references are kept by blob.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use crate::error::Result;
use crate::git::tree::RawTree;
use crate::git::{ObjectId, Objects};
use crate::render::refs::{references, Reads, Ref};
use crate::snapshot::matcher::PromptMatcher;

/// Longest chain of partials followed.
const MAX_DEPTH: usize = 32;

/// What the walk knows about references across commits.
#[derive(Default)]
pub(crate) struct Deps {
    /// The references of each text read, by blob and how it was read.
    refs: HashMap<(ObjectId, ReadsKey), Rc<Vec<Ref>>>,
    /// The prompt files present at the commit the walk is at; `None` until first needed.
    pub live: Option<BTreeSet<String>>,
}

/// [`Reads`] as a hash key.
type ReadsKey = String;

fn key(reads: Reads) -> ReadsKey {
    format!("{reads:?}")
}

impl Deps {
    /// Whether prompt `file` (whose blob at the commit is `blob`) reads any of `changed`, as
    /// the files are in the tree `root`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn reads_any(
        &mut self,
        objects: &Objects<'_>,
        matcher: &PromptMatcher,
        root: ObjectId,
        trees: &mut Trees,
        file: &str,
        blob: ObjectId,
        changed: &BTreeSet<String>,
    ) -> Result<bool> {
        let Some((_, kind)) = matcher.kind_of(file) else {
            return Ok(false);
        };
        let mut queue: Vec<(String, ObjectId, Reads, usize)> =
            vec![(file.to_string(), blob, Reads::Prompt(kind), 0)];
        let mut seen: BTreeSet<String> = BTreeSet::new();
        while let Some((path, blob, reads, depth)) = queue.pop() {
            let refs = self.refs_of(objects, &path, blob, reads)?;
            for r in refs.iter() {
                // The first candidate that exists at this commit is the file read; a change to
                // any candidate before it (one appearing) changes which file that is.
                for candidate in &r.candidates {
                    if changed.contains(candidate) {
                        return Ok(true);
                    }
                    let Some(found) = trees.blob_at(objects, root, candidate)? else {
                        continue;
                    };
                    if let Some(next) = r.reads {
                        if depth < MAX_DEPTH && seen.insert(candidate.clone()) {
                            queue.push((candidate.clone(), found, next, depth + 1));
                        }
                    }
                    break;
                }
            }
        }
        Ok(false)
    }

    fn refs_of(
        &mut self,
        objects: &Objects<'_>,
        path: &str,
        blob: ObjectId,
        reads: Reads,
    ) -> Result<Rc<Vec<Ref>>> {
        let k = (blob, key(reads));
        if let Some(found) = self.refs.get(&k) {
            return Ok(found.clone());
        }
        let bytes = objects.read(blob)?;
        let found = match std::str::from_utf8(&bytes) {
            Ok(text) if bytes.len() <= crate::format::yaml::MAX_FILE_SIZE => {
                references(reads, path, text)
            }
            _ => Vec::new(),
        };
        let found = Rc::new(found);
        self.refs.insert(k, found.clone());
        Ok(found)
    }
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

    /// Every prompt file under tree `root`, as `matcher` says.
    pub(crate) fn prompt_files(
        &mut self,
        objects: &Objects<'_>,
        root: ObjectId,
        matcher: &PromptMatcher,
    ) -> Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
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
                        out.insert(path);
                    }
                }
            }
        }
        Ok(out)
    }
}

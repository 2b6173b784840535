//! The registry as it is in one commit: a [`Source`] over the commit's tree, read through
//! [`Repo`] (it knows prompt files and the kept root tree; git does not).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, GitError, Result};
use crate::git::tree::RawTree;
use crate::git::{ObjectId, Repo};
use crate::snapshot::matcher::PromptMatcher;
use crate::snapshot::work::{is_hidden_name, Source};

/// The registry's files as they are in one commit.
pub struct CommitSource {
    /// The repository, opened the first time git must be read: at the tip, a render may find
    /// everything it needs in the kept root tree and the working copy.
    repo: Mutex<Option<Repo>>,
    /// The registry root, to open the repository from.
    work_root: PathBuf,
    commit: ObjectId,
    root: Option<ObjectId>,
    /// Trees already read: lookups of several files share their folders.
    trees: Mutex<HashMap<ObjectId, Arc<RawTree>>>,
    /// Where the root's tree may be kept uncompressed ([`crate::snapshot::kept_tree::tree_path`]).
    root_file: PathBuf,
    /// Whether this is the tip: its root tree is kept when it has to be read from git, and
    /// working-copy files stand in for the blobs they hash to.
    at_tip: bool,
    /// Which files are prompts, from this commit's `promptreg.yaml`, once read.
    matcher: OnceLock<Arc<PromptMatcher>>,
}

impl std::fmt::Debug for CommitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CommitSource({})", self.commit)
    }
}

impl CommitSource {
    /// The registry at `commit` of `repo`. `at_tip` is for the commit read most (the tip of
    /// the history versions come from): its root tree is kept uncompressed under the git dir
    /// and its files are read from the working copy when they hash to the committed blob.
    pub fn open(repo: &Repo, commit: ObjectId, at_tip: bool) -> Result<CommitSource> {
        let root_file = crate::snapshot::kept_tree::tree_path(repo.git_dir(), repo.prefix());
        let mut trees = HashMap::new();
        let kept = at_tip
            .then(|| crate::snapshot::kept_tree::load_tree(&root_file, |c, _| c == commit))
            .flatten();
        let root = match kept {
            Some(kept) => {
                trees.insert(kept.tree, Arc::new(kept.raw));
                Some(kept.tree)
            }
            None => repo.root_tree_at(commit)?,
        };
        Ok(CommitSource {
            repo: Mutex::new(None),
            work_root: repo.workdir().join(repo.prefix()),
            commit,
            root,
            trees: Mutex::new(trees),
            root_file,
            at_tip,
            matcher: OnceLock::new(),
        })
    }

    /// The commit.
    #[cfg(feature = "unstable")]
    pub fn commit(&self) -> ObjectId {
        self.commit
    }

    /// Reads an object's bytes, opening the repository if this is the first read.
    fn read_object(&self, id: ObjectId) -> Result<Vec<u8>> {
        let mut repo = self
            .repo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if repo.is_none() {
            *repo = Some(Repo::discover(&self.work_root)?.ok_or_else(|| {
                Error::NoHistory(format!("{} is no longer in git", self.work_root.display()))
            })?);
        }
        match repo.as_ref() {
            Some(repo) => repo.read_raw(id),
            None => Err(Error::Git(GitError::new("repository not open"))),
        }
    }

    fn tree(&self, id: ObjectId) -> Result<Arc<RawTree>> {
        let mut trees = self
            .trees
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(tree) = trees.get(&id) {
            return Ok(tree.clone());
        }
        let is_root = Some(id) == self.root;
        let kept = is_root
            .then(|| crate::snapshot::kept_tree::load_tree(&self.root_file, |_, tree| tree == id))
            .flatten();
        let tree = match kept {
            Some(kept) => kept.raw,
            None => {
                let tree = RawTree::new(self.read_object(id)?);
                if is_root && self.at_tip {
                    crate::snapshot::kept_tree::store_tree(&self.root_file, self.commit, id, &tree);
                }
                tree
            }
        };
        let tree = Arc::new(tree);
        trees.insert(id, tree.clone());
        Ok(tree)
    }

    /// The blob id of a root-relative file at this commit.
    pub fn blob_id(&self, path: &str) -> Result<Option<ObjectId>> {
        let Some(mut tree) = self.root else {
            return Ok(None);
        };
        let parts: Vec<&str> = path.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let data = self.tree(tree)?;
            let Some(entry) = data.get(part.as_bytes()) else {
                return Ok(None);
            };
            if last {
                return Ok(entry.is_file.then_some(entry.id));
            }
            if !entry.is_tree {
                return Ok(None);
            }
            tree = entry.id;
        }
        Ok(None)
    }

    /// Every prompt file at this commit with its blob id.
    pub fn prompt_blobs(&self) -> Result<BTreeMap<String, ObjectId>> {
        let Some(root) = self.root else {
            return Ok(BTreeMap::new());
        };
        let matcher = self.matcher()?;
        let mut files = BTreeMap::new();
        let mut stack = vec![(root, String::new())];
        while let Some((tree, dir)) = stack.pop() {
            let data = self.tree(tree)?;
            for entry in data.entries() {
                if is_hidden_name(entry.name) {
                    continue;
                }
                let name = String::from_utf8_lossy(entry.name);
                let path = format!("{dir}{name}");
                if entry.is_tree {
                    stack.push((entry.id, format!("{path}/")));
                } else if entry.is_file && matcher.is_prompt(&path) {
                    files.insert(path, entry.id);
                }
            }
        }
        Ok(files)
    }
}

impl Source for CommitSource {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let Some(blob) = self.blob_id(path)? else {
            return Ok(None);
        };
        // At the tip the working copy usually holds the same bytes, and hashing a small file
        // is cheaper than undoing a long chain of deltas in a pack. The hash decides, so a
        // modified file is never taken for the committed one. Only a regular file of a
        // prompt's size is tried: never a symlink (to a device or a pipe, say).
        if self.at_tip {
            let full = self.work_root.join(path);
            let plain = std::fs::symlink_metadata(&full)
                .is_ok_and(|m| m.is_file() && m.len() <= crate::format::yaml::MAX_FILE_SIZE as u64);
            let read = || {
                crate::snapshot::work::read_input(&full, path, crate::format::yaml::MAX_FILE_SIZE)
            };
            if let Some(bytes) = plain.then(|| read().ok().flatten()).flatten() {
                if Repo::hash_blob(&bytes) == blob {
                    return Ok(Some(bytes));
                }
            }
        }
        Ok(Some(self.read_object(blob)?))
    }

    fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.blob_id(path)?.is_some())
    }

    fn prompt_files(&self) -> Result<Vec<String>> {
        Ok(self.prompt_blobs()?.into_keys().collect())
    }

    fn matcher(&self) -> Result<Arc<PromptMatcher>> {
        if let Some(matcher) = self.matcher.get() {
            return Ok(matcher.clone());
        }
        let matcher = Arc::new(PromptMatcher::read(&|path| self.read(path))?);
        Ok(self.matcher.get_or_init(|| matcher).clone())
    }

    fn describe(&self) -> String {
        format!("commit {}", self.commit.short())
    }
}

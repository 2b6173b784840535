//! Versions from git history (SPEC sections 1-2): numbering over the first-parent history, the
//! version index and its cache, references, the history-related commands of the CLI, and the
//! repositories users really have (shallow, detached, empty, bare, none).
//!
//! Expected versions are computed from the commit ids `TestRepo` returns, or by an independent
//! oracle written here with git2 (never from the library under test, never from the git CLI).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;

use git2::{Oid, Repository, TreeWalkMode, TreeWalkResult};
use serde_json::{json, Map, Value};

use promptreg::history::cache;
use promptreg::history::VersionIndex;
use promptreg::registry::reference::Reference;
use promptreg::registry::Resolved;
use promptreg::{Error, Registry};

use crate::common::{cli, settings, TestRepo};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A valid prompt whose only message is `text` (no variables).
fn prompt(text: &str) -> String {
    format!("description: a test prompt\nmessages:\n  - role: user\n    content: \"{text}\"\n")
}

/// One version as the tests compare it: number, full commit id, full message.
type Row = (u32, String, String);

/// The versions of `id` as the library reports them, oldest first.
fn rows(registry: &Registry, id: &str) -> Vec<Row> {
    let (index, versions) = registry.versions(id).expect("versions");
    versions
        .iter()
        .map(|v| {
            let c = index.commit(v);
            (v.number, c.id.to_hex(), c.message.clone())
        })
        .collect()
}

/// The versions of `id` in a freshly opened registry at the repository root.
fn rows_at(path: &Path, id: &str) -> Vec<Row> {
    rows(&Registry::open(path).expect("open"), id)
}

/// The expected rows for a list of commit ids (numbered from 1), messages read from git.
fn expected(repo: &TestRepo, commits: &[&str]) -> Vec<Row> {
    commits
        .iter()
        .enumerate()
        .map(|(i, hex)| (i as u32 + 1, hex.to_string(), message_of(&repo.repo, hex)))
        .collect()
}

fn message_of(repo: &Repository, hex: &str) -> String {
    let commit = repo
        .find_commit(Oid::from_str(hex).expect("oid"))
        .expect("commit");
    String::from_utf8_lossy(commit.message_bytes()).into_owned()
}

fn is_prompt_file(name: &str) -> bool {
    [".prompt.yaml", ".prompt.yml"]
        .iter()
        .any(|s| name.len() > s.len() && name.ends_with(s))
}

/// The prompt files (regular files, hidden entries skipped) of the registry root at `prefix`
/// ("" or "dir/") in a commit's tree, with their blob ids.
fn prompt_blobs(repo: &Repository, tree: &git2::Tree<'_>, prefix: &str) -> BTreeMap<String, Oid> {
    let root = if prefix.is_empty() {
        tree.clone()
    } else {
        match tree.get_path(Path::new(prefix.trim_end_matches('/'))) {
            Ok(entry) if entry.kind() == Some(git2::ObjectType::Tree) => {
                repo.find_tree(entry.id()).expect("subtree")
            }
            _ => return BTreeMap::new(),
        }
    };
    let mut files = BTreeMap::new();
    root.walk(TreeWalkMode::PreOrder, |dir, entry| {
        let name = entry.name().unwrap_or("");
        if name.starts_with('.') && name != ".github" {
            return TreeWalkResult::Skip;
        }
        let regular = entry.filemode() == 0o100644 || entry.filemode() == 0o100755;
        if entry.kind() == Some(git2::ObjectType::Blob) && regular && is_prompt_file(name) {
            files.insert(format!("{dir}{name}"), entry.id());
        }
        TreeWalkResult::Ok
    })
    .expect("walk");
    files
}

/// One version as the oracle sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OracleVersion {
    /// Position of the commit on the first-parent chain (0 = root commit).
    pos: usize,
    commit: String,
    message: String,
    blob: Oid,
}

/// The oracle: the first-parent chain of HEAD, and for each prompt file the commits on it in
/// which the file exists with a blob that differs from the first parent's (oldest first).
struct Oracle {
    chain: Vec<Oid>,
    files: BTreeMap<String, Vec<OracleVersion>>,
}

fn oracle(repo: &Repository, prefix: &str) -> Oracle {
    let mut chain = Vec::new();
    let mut next = Some(
        repo.head()
            .expect("head")
            .peel_to_commit()
            .expect("head commit"),
    );
    while let Some(commit) = next {
        next = if commit.parent_count() > 0 {
            Some(commit.parent(0).expect("first parent"))
        } else {
            None
        };
        chain.push(commit);
    }
    chain.reverse();
    let mut before: BTreeMap<String, Oid> = BTreeMap::new();
    let mut files: BTreeMap<String, Vec<OracleVersion>> = BTreeMap::new();
    for (pos, commit) in chain.iter().enumerate() {
        let now = prompt_blobs(repo, &commit.tree().expect("tree"), prefix);
        for (path, blob) in &now {
            if before.get(path) != Some(blob) {
                files.entry(path.clone()).or_default().push(OracleVersion {
                    pos,
                    commit: commit.id().to_string(),
                    message: String::from_utf8_lossy(commit.message_bytes()).into_owned(),
                    blob: *blob,
                });
            }
        }
        before = now;
    }
    Oracle {
        chain: chain.iter().map(git2::Commit::id).collect(),
        files,
    }
}

/// Asserts that the version index of the registry at `root` (in the repository `repo`, root at
/// `prefix`) is exactly what the oracle computes, and equal to a fresh build, and that the
/// cache on disk holds it.
fn assert_index_matches_oracle(repo: &Repository, root: &Path, prefix: &str) {
    let registry = Registry::open(root).expect("open");
    let index = registry.index().expect("index");
    let oracle = oracle(repo, prefix);
    let ours: BTreeSet<&String> = index.files.keys().collect();
    let theirs: BTreeSet<&String> = oracle.files.keys().collect();
    assert_eq!(
        ours, theirs,
        "the files with versions differ from the oracle's"
    );
    for (file, expected) in &oracle.files {
        let got: Vec<OracleVersion> = index
            .versions(file)
            .iter()
            .map(|v| {
                let c = index.commit(v);
                OracleVersion {
                    pos: v.seq as usize,
                    commit: c.id.to_hex(),
                    message: c.message.clone(),
                    blob: Oid::from_bytes(&v.blob.0).expect("oid"),
                }
            })
            .collect();
        assert_eq!(&got, expected, "versions of {file}");
        let numbers: Vec<u32> = index.versions(file).iter().map(|v| v.number).collect();
        assert_eq!(
            numbers,
            (1..=expected.len() as u32).collect::<Vec<_>>(),
            "numbers of {file}"
        );
    }
    assert_eq!(
        index.chain_len as usize,
        oracle.chain.len(),
        "first-parent chain length"
    );
    assert_eq!(
        index.tip.to_hex(),
        oracle.chain.last().expect("a commit").to_string(),
        "tip"
    );
    let git = registry.repo().expect("repo");
    let fresh = VersionIndex::build(&git, registry.tip().expect("tip")).expect("build");
    assert_eq!(
        *index, fresh,
        "the index (cached or extended) differs from a fresh build"
    );
    let path = cache::path(git.git_dir(), git.prefix());
    assert_eq!(
        cache::load(&path).as_ref(),
        Some(index),
        "the cache on disk holds the index"
    );
}

/// Runs the CLI and returns its output.
fn run(dir: &Path, args: &[&str]) -> Output {
    cli(dir).args(args).output().expect("run promptreg")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_no_panic(out: &Output) {
    let err = stderr(out);
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "panic: {err}"
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Version numbering over the first-parent history
// ---------------------------------------------------------------------------------------------

#[test]
fn linear_edits_are_numbered_oldest_first() {
    let mut repo = TestRepo::new();
    repo.write("greeting.prompt.yaml", &prompt("Hello"));
    let c1 = repo.commit("Add greeting");
    repo.write("greeting.prompt.yaml", &prompt("Hello there"));
    let c2 = repo.commit("Be warmer\n\nUsers found the old greeting curt.\n");
    repo.write("greeting.prompt.yaml", &prompt("Hi"));
    let c3 = repo.commit("Shorten");
    let got = rows_at(repo.path(), "greeting");
    assert_eq!(got, expected(&repo, &[&c1, &c2, &c3]));
    // The full message is kept, body included.
    assert_eq!(
        got[1].2,
        "Be warmer\n\nUsers found the old greeting curt.\n"
    );
    assert_index_matches_oracle(&repo.repo, repo.path(), "");
}

#[test]
fn commits_that_do_not_touch_the_file_are_not_versions() {
    let mut repo = TestRepo::new();
    repo.write("a.prompt.yaml", &prompt("A1"));
    repo.write("b.prompt.yml", &prompt("B1"));
    let c1 = repo.commit("Add a and b");
    repo.write("README.md", "# prompts\n");
    repo.commit("Add a readme");
    repo.write("b.prompt.yml", &prompt("B2"));
    let c3 = repo.commit("Edit b only");
    repo.write("a.prompt.yaml", &prompt("A2"));
    let c4 = repo.commit("Edit a only");
    repo.write("notes/a.prompt.yaml.bak", &prompt("not a prompt"));
    repo.write("a.prompt.json", "{}");
    repo.commit("Files that only look like prompts");
    assert_eq!(rows_at(repo.path(), "a"), expected(&repo, &[&c1, &c4]));
    assert_eq!(rows_at(repo.path(), "b"), expected(&repo, &[&c1, &c3]));
    let registry = Registry::open(repo.path()).expect("open");
    let files: Vec<&String> = registry.index().expect("index").files.keys().collect();
    assert_eq!(files, ["a.prompt.yaml", "b.prompt.yml"]);
    assert_index_matches_oracle(&repo.repo, repo.path(), "");
}

#[test]
fn a_merge_that_brings_changes_in_is_one_version_with_the_merge_message() {
    let mut repo = TestRepo::new();
    repo.write("a.prompt.yaml", &prompt("A1"));
    repo.write("b.prompt.yaml", &prompt("B1"));
    let c1 = repo.commit("Add a and b");
    repo.branch("feature");
    repo.write("a.prompt.yaml", &prompt("A2 on the branch"));
    let side1 = repo.commit("Branch: first edit of a");
    repo.write("a.prompt.yaml", &prompt("A3 on the branch"));
    let side2 = repo.commit("Branch: second edit of a");
    repo.write("c.prompt.yaml", &prompt("C1"));
    let side3 = repo.commit("Branch: add c");
    repo.checkout("main");
    repo.write("b.prompt.yaml", &prompt("B2 on main"));
    let c2 = repo.commit("Main: edit b");
    let merge = repo.merge("feature", "Merge branch 'feature'");

    let a = rows_at(repo.path(), "a");
    assert_eq!(a, expected(&repo, &[&c1, &merge]));
    assert_eq!(a[1].2, "Merge branch 'feature'");
    assert_eq!(rows_at(repo.path(), "c"), expected(&repo, &[&merge]));
    // The merge did not change b relative to its first parent: not a version of b.
    assert_eq!(rows_at(repo.path(), "b"), expected(&repo, &[&c1, &c2]));
    for side in [&side1, &side2, &side3] {
        for id in ["a", "b", "c"] {
            assert!(
                rows_at(repo.path(), id).iter().all(|r| &r.1 != side),
                "side-branch commit {side} is a version of {id}"
            );
        }
    }
    assert_index_matches_oracle(&repo.repo, repo.path(), "");
    // ID@COMMIT of a side-branch commit: the merge brought side2's content in, so that is v2;
    // side1's content never was a version on the first-parent history.
    let registry = Registry::open(repo.path()).expect("open");
    assert_eq!(
        resolve(&registry, &format!("a@{}", &side2[..10])).expect("side2"),
        version(2, &merge)
    );
    assert!(resolve(&registry, &format!("a@{}", &side1[..10])).is_err());
    drop(registry);

    // A second merge that brings nothing new for a (the branch only touched c) is no version
    // of a, and is one of c.
    repo.checkout("feature");
    repo.write("c.prompt.yaml", &prompt("C2"));
    repo.commit("Branch: edit c");
    repo.checkout("main");
    let merge2 = repo.merge("feature", "Merge branch 'feature' again");
    assert_eq!(rows_at(repo.path(), "a"), expected(&repo, &[&c1, &merge]));
    assert_eq!(
        rows_at(repo.path(), "c"),
        expected(&repo, &[&merge, &merge2])
    );
    assert_index_matches_oracle(&repo.repo, repo.path(), "");
}

#[test]
fn deleting_ends_the_prompt_and_adding_it_back_continues_the_numbering() {
    let mut repo = TestRepo::new();
    repo.write("a.prompt.yaml", &prompt("A1"));
    let c1 = repo.commit("Add a");
    repo.write("a.prompt.yaml", &prompt("A2"));
    let c2 = repo.commit("Edit a");
    repo.remove("a.prompt.yaml");
    let deleted = repo.commit("Delete a");
    // Deleted at the tip: the versions remain, and the deletion is not a version.
    assert_eq!(rows_at(repo.path(), "a"), expected(&repo, &[&c1, &c2]));
    let registry = Registry::open(repo.path()).expect("open");
    assert!(
        registry
            .summaries()
            .expect("summaries")
            .iter()
            .all(|s| s.id != "a"),
        "a deleted prompt is listed"
    );
    drop(registry);
    // Deleted from the working copy only (still at the tip): listed, and marked modified.
    repo.write("a.prompt.yaml", &prompt("A1"));
    repo.commit("Bring a back for a moment");
    repo.remove("a.prompt.yaml");
    let registry = Registry::open(repo.path()).expect("open");
    let summaries = registry.summaries().expect("summaries");
    let a = summaries
        .iter()
        .find(|s| s.id == "a")
        .expect("a deleted in the working copy only is listed");
    assert!(a.modified);
    assert_eq!(a.versions, 3);
    drop(registry);
    reset_hard(&repo.repo, &deleted);
    // Re-added with exactly the content of v1: still a new version (v3), since it differs
    // from the first parent (where the file is absent).
    repo.write("a.prompt.yaml", &prompt("A1"));
    let c4 = repo.commit("Bring a back");
    let got = rows_at(repo.path(), "a");
    assert_eq!(got, expected(&repo, &[&c1, &c2, &c4]));
    assert!(got.iter().all(|r| r.1 != deleted));
    assert_index_matches_oracle(&repo.repo, repo.path(), "");
}

#[test]
fn a_rename_starts_a_new_id_at_version_1() {
    let mut repo = TestRepo::new();
    repo.write("a.prompt.yaml", &prompt("A1"));
    let c1 = repo.commit("Add a");
    repo.write("a.prompt.yaml", &prompt("A2"));
    let c2 = repo.commit("Edit a");
    repo.remove("a.prompt.yaml");
    repo.write("b.prompt.yaml", &prompt("A2"));
    let renamed = repo.commit("Rename a to b");
    assert_eq!(rows_at(repo.path(), "b"), expected(&repo, &[&renamed]));
    assert_eq!(rows_at(repo.path(), "a"), expected(&repo, &[&c1, &c2]));
    // `.yaml` -> `.yml` is a rename of the file but keeps the id: the id's versions are those
    // of the file that holds it now (a new file, so v1 again).
    repo.remove("b.prompt.yaml");
    repo.write("b.prompt.yml", &prompt("A2"));
    let to_yml = repo.commit("Use the .yml suffix");
    assert_eq!(rows_at(repo.path(), "b"), expected(&repo, &[&to_yml]));
    let registry = Registry::open(repo.path()).expect("open");
    let ids: Vec<String> = registry
        .summaries()
        .expect("summaries")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["b"]);
    drop(registry);
    assert_index_matches_oracle(&repo.repo, repo.path(), "");
}

#[test]
fn a_registry_root_in_a_subdirectory_counts_only_files_under_it() {
    let mut repo = TestRepo::new();
    repo.write("prompts/x.prompt.yaml", &prompt("X1"));
    repo.write("top.prompt.yaml", &prompt("T1"));
    repo.write("other/x.prompt.yaml", &prompt("O1"));
    let c1 = repo.commit("Add prompts");
    repo.write("other/x.prompt.yaml", &prompt("O2"));
    repo.write("top.prompt.yaml", &prompt("T2"));
    repo.commit("Edit outside the root only");
    repo.write("prompts/x.prompt.yaml", &prompt("X2"));
    let c3 = repo.commit("Edit x");
    repo.write("prompts/sub/y.prompt.yaml", &prompt("Y1"));
    let c4 = repo.commit("Add sub/y");
    repo.write(
        "prompts2/x.prompt.yaml",
        &prompt("a sibling folder with a similar name"),
    );
    repo.commit("Add prompts2");

    let root = repo.path().join("prompts");
    let registry = Registry::open(&root).expect("open");
    assert_eq!(registry.repo().expect("repo").prefix(), "prompts/");
    assert_eq!(rows(&registry, "x"), expected(&repo, &[&c1, &c3]));
    assert_eq!(rows(&registry, "sub/y"), expected(&repo, &[&c4]));
    let files: Vec<&String> = registry.index().expect("index").files.keys().collect();
    assert_eq!(files, ["sub/y.prompt.yaml", "x.prompt.yaml"]);
    assert!(rows(&registry, "top").is_empty());
    drop(registry);
    assert_index_matches_oracle(&repo.repo, &root, "prompts/");

    // The root registry (its own cache file) sees every prompt.
    assert_eq!(
        rows_at(repo.path(), "prompts/x"),
        expected(&repo, &[&c1, &c3])
    );
    assert_index_matches_oracle(&repo.repo, repo.path(), "");
    // And the subdirectory's index is still right after the root's was cached.
    assert_eq!(
        rows(&Registry::open(&root).expect("open"), "x"),
        expected(&repo, &[&c1, &c3])
    );

    // The CLI with `-C prompts`.
    let out = run(
        repo.path(),
        &["-C", "prompts", "versions", "x", "--format", "json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).expect("json");
    let commits: Vec<&str> = json
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["commit"].as_str().expect("commit"))
        .collect();
    assert_eq!(commits, [c3.as_str(), c1.as_str()]);
}

#[test]
fn hidden_folders_and_files_are_skipped() {
    let mut repo = TestRepo::new();
    repo.write("a.prompt.yaml", &prompt("A1"));
    repo.write(".config/h.prompt.yaml", &prompt("hidden"));
    repo.write("sub/.drafts/h.prompt.yaml", &prompt("hidden"));
    repo.write(".hidden.prompt.yaml", &prompt("hidden"));
    let c1 = repo.commit("Add a and hidden prompts");
    repo.write(".config/h.prompt.yaml", &prompt("hidden, edited"));
    repo.write("sub/.drafts/h.prompt.yaml", &prompt("hidden, edited"));
    repo.commit("Edit the hidden prompts only");
    // The hidden files are really committed.
    let tree = repo
        .repo
        .head()
        .expect("head")
        .peel_to_tree()
        .expect("tree");
    assert!(tree.get_path(Path::new(".config/h.prompt.yaml")).is_ok());
    assert!(tree
        .get_path(Path::new("sub/.drafts/h.prompt.yaml"))
        .is_ok());

    let registry = Registry::open(repo.path()).expect("open");
    let index = registry.index().expect("index");
    assert_eq!(index.files.keys().collect::<Vec<_>>(), ["a.prompt.yaml"]);
    assert_eq!(
        index.commits.len(),
        1,
        "the commit that touched hidden prompts only is no version"
    );
    assert_eq!(rows(&registry, "a"), expected(&repo, &[&c1]));
    let ids: Vec<String> = registry
        .discover_work()
        .expect("discover")
        .prompts
        .into_keys()
        .collect();
    assert_eq!(ids, ["a"]);
    drop(registry);
    assert_index_matches_oracle(&repo.repo, repo.path(), "");
}

#[test]
fn a_registry_root_under_a_hidden_folder_works() {
    // `-C .github/prompts`: the root itself may sit in a hidden folder; only folders below it
    // are skipped.
    let mut repo = TestRepo::new();
    repo.write("README.md", "readme\n");
    repo.commit("Before the prompts folder exists");
    repo.write(".github/prompts/a.prompt.yml", &prompt("A1"));
    repo.write(".github/prompts/.hidden/h.prompt.yml", &prompt("hidden"));
    let c2 = repo.commit("Add a");
    repo.write(".github/workflows/ci.yml", "on: push\n");
    repo.commit("Add CI");
    repo.write(".github/prompts/a.prompt.yml", &prompt("A2"));
    let c4 = repo.commit("Edit a");
    let root = repo.path().join(".github/prompts");
    let registry = Registry::open(&root).expect("open");
    assert_eq!(rows(&registry, "a"), expected(&repo, &[&c2, &c4]));
    assert_eq!(
        registry
            .index()
            .expect("index")
            .files
            .keys()
            .collect::<Vec<_>>(),
        ["a.prompt.yml"]
    );
    drop(registry);
    assert_index_matches_oracle(&repo.repo, &root, ".github/prompts/");
    let out = run(repo.path(), &["-C", ".github/prompts", "versions", "a"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 2, "{}", stdout(&out));
}

#[cfg(unix)]
#[test]
fn a_mode_change_or_an_empty_commit_is_not_a_version() {
    use std::os::unix::fs::PermissionsExt;
    let mut repo = TestRepo::new();
    repo.write("a.prompt.yaml", &prompt("A1"));
    let c1 = repo.commit("Add a");
    std::fs::set_permissions(
        repo.path().join("a.prompt.yaml"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let mode = repo.commit("Make a executable");
    // The mode change really is in the commit.
    let entry_mode = repo
        .repo
        .find_commit(Oid::from_str(&mode).expect("oid"))
        .expect("commit")
        .tree()
        .expect("tree")
        .get_name("a.prompt.yaml")
        .expect("entry")
        .filemode();
    assert_eq!(entry_mode, 0o100755);
    repo.commit("An empty commit");
    repo.write("a.prompt.yaml", &prompt("A2"));
    let c4 = repo.commit("Edit a");
    assert_eq!(rows_at(repo.path(), "a"), expected(&repo, &[&c1, &c4]));
    assert_index_matches_oracle(&repo.repo, repo.path(), "");

    // With the root in a subdirectory: a commit that changes nothing in the root is none.
    repo.write("prompts/p.prompt.yaml", &prompt("P1"));
    let p1 = repo.commit("Add prompts/p");
    repo.write("a.prompt.yaml", &prompt("A3"));
    repo.commit("Edit a, outside prompts/");
    repo.write("prompts/README.md", "not a prompt\n");
    repo.commit("Add a readme inside prompts/");
    let root = repo.path().join("prompts");
    assert_eq!(
        rows(&Registry::open(&root).expect("open"), "p"),
        expected(&repo, &[&p1])
    );
    assert_index_matches_oracle(&repo.repo, &root, "prompts/");
}

#[test]
fn tricky_tree_orders_are_diffed_correctly() {
    // `support.prompt.yaml` sorts between `support-x/` and `support/` in git's tree order; a
    // merge-join that gets the order wrong misses or invents versions.
    let mut repo = TestRepo::new();
    let files = [
        "support.prompt.yaml",
        "support/a.prompt.yaml",
        "support-x/a.prompt.yaml",
        "support0.prompt.yml",
        "support/a/b.prompt.yaml",
        "a.prompt.yaml",
        "a.prompt.yml",
    ];
    for (round, file) in files.iter().enumerate() {
        repo.write(file, &prompt(&format!("{file} 1")));
        repo.commit(&format!("Add {file} ({round})"));
    }
    for (round, file) in files.iter().rev().enumerate() {
        repo.write(file, &prompt(&format!("{file} 2")));
        repo.commit(&format!("Edit {file} ({round})"));
        assert_index_matches_oracle(&repo.repo, repo.path(), "");
    }
    repo.remove("support/a.prompt.yaml");
    repo.remove("support/a/b.prompt.yaml");
    repo.write("support.prompt.yaml", &prompt("support 3"));
    repo.commit("Remove the support folder");
    assert_index_matches_oracle(&repo.repo, repo.path(), "");
    // Two files with one id: neither is lost from the index.
    let registry = Registry::open(repo.path()).expect("open");
    assert_eq!(
        registry
            .index()
            .expect("index")
            .versions("a.prompt.yml")
            .len(),
        2
    );
    assert_eq!(
        registry
            .index()
            .expect("index")
            .versions("a.prompt.yaml")
            .len(),
        2
    );
}

// ---------------------------------------------------------------------------------------------
// 2. A generated history against the oracle
// ---------------------------------------------------------------------------------------------

/// SplitMix64: small, deterministic, good enough to shuffle a test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const GEN_FILES: [&str; 10] = [
    "greeting.prompt.yaml",
    "support.prompt.yaml",
    "support/triage.prompt.yaml",
    "support/reply.prompt.yml",
    "support-x/z.prompt.yaml",
    "support0.prompt.yml",
    "deep/a/b/c.prompt.yaml",
    "tools/summarize.prompt.yaml",
    "tools/extract.prompt.yaml",
    "x.prompt.yml",
];

const GEN_OTHER: [&str; 4] = [
    "README.md",
    "partials/tone.md",
    ".config/hidden.prompt.yaml",
    "support/.draft.prompt.yaml",
];

struct Generator {
    repo: TestRepo,
    rng: Rng,
    /// Every content each file has had, to bring old contents back (equal blobs).
    contents: BTreeMap<&'static str, Vec<String>>,
    revision: usize,
    commits: usize,
    branches: usize,
    /// How often each kind of event happened, to check the history exercises them all.
    events: BTreeMap<&'static str, usize>,
}

impl Generator {
    fn exists(&self, file: &str) -> bool {
        self.repo.path().join(file).exists()
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.rng.below(from.len())]
    }

    fn edit(&mut self, file: &'static str) {
        let old = self.contents.get(file).cloned().unwrap_or_default();
        let content = if !old.is_empty() && self.rng.chance(20) {
            *self.events.entry("old content back").or_default() += 1;
            old[self.rng.below(old.len())].clone()
        } else {
            self.revision += 1;
            prompt(&format!("{file} revision {}", self.revision))
        };
        self.repo.write(file, &content);
        self.contents.entry(file).or_default().push(content);
    }

    fn edit_some(&mut self, from: &[&'static str]) {
        for _ in 0..=self.rng.below(3) {
            let file = self.pick(from);
            self.edit(file);
        }
    }

    fn commit(&mut self, what: &str) -> String {
        self.commits += 1;
        let message = if self.rng.chance(30) {
            format!(
                "{what} (#{})\n\nBody of commit {}.\n",
                self.commits, self.commits
            )
        } else {
            format!("{what} (#{})", self.commits)
        };
        self.repo.commit(&message)
    }

    fn other_change(&mut self) {
        let file = self.pick(&GEN_OTHER);
        self.revision += 1;
        self.repo
            .write(file, &prompt(&format!("{file} revision {}", self.revision)));
    }

    /// Indexes (through the cache: built, extended or rebuilt) and checks against the oracle.
    fn checkpoint(&mut self) {
        *self.events.entry("checkpoint").or_default() += 1;
        assert_index_matches_oracle(&self.repo.repo, self.repo.path(), "");
    }

    fn step(&mut self) {
        let roll = self.rng.below(100);
        match roll {
            0..=49 => {
                self.edit_some(&GEN_FILES);
                self.commit("Edit prompts");
            }
            50..=59 => {
                let present: Vec<&'static str> = GEN_FILES
                    .iter()
                    .copied()
                    .filter(|f| self.exists(f))
                    .collect();
                if present.is_empty() {
                    return;
                }
                let file = self.pick(&present);
                self.repo.remove(file);
                *self.events.entry("delete").or_default() += 1;
                self.commit(&format!("Delete {file}"));
            }
            60..=67 => {
                self.other_change();
                self.commit("Edit other files");
            }
            68..=71 => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let present: Vec<&'static str> = GEN_FILES
                        .iter()
                        .copied()
                        .filter(|f| self.exists(f))
                        .collect();
                    if present.is_empty() {
                        return;
                    }
                    let file = self.pick(&present);
                    let path = self.repo.path().join(file);
                    let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
                    let new = if mode & 0o111 == 0 { 0o755 } else { 0o644 };
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(new))
                        .expect("chmod");
                    *self.events.entry("mode change").or_default() += 1;
                }
                self.commit("Change a file mode");
            }
            72..=74 => {
                *self.events.entry("empty commit").or_default() += 1;
                self.commit("Nothing changed");
            }
            _ => self.episode(),
        }
    }

    /// A topic branch: commits on it, maybe commits on main meanwhile, then either a --no-ff
    /// merge into main, or main merged into the branch and main fast-forwarded to it (so the
    /// first-parent chain runs through the branch).
    fn episode(&mut self) {
        self.branches += 1;
        let name = format!("topic{}", self.branches);
        let at_fork: Vec<&'static str> = GEN_FILES
            .iter()
            .copied()
            .filter(|f| self.exists(f))
            .collect();
        self.repo.branch(&name);
        for _ in 0..=self.rng.below(4) {
            // Edits and additions only: no modify/delete conflicts in the merge.
            if self.rng.chance(15) {
                self.other_change();
            } else {
                self.edit_some(&GEN_FILES);
            }
            self.commit(&format!("Work on {name}"));
        }
        self.repo.checkout("main");
        if !at_fork.is_empty() {
            for _ in 0..self.rng.below(3) {
                // Only files that exist at the fork: no add/add conflicts.
                self.edit_some(&at_fork);
                self.commit("Meanwhile on main");
            }
        }
        if self.rng.chance(70) {
            self.repo.merge(&name, &format!("Merge branch '{name}'"));
            *self.events.entry("merge").or_default() += 1;
        } else {
            if self.rng.chance(50) {
                // Index main's tip, which the fast-forward takes off the first-parent chain.
                *self
                    .events
                    .entry("checkpoint before a fast-forward")
                    .or_default() += 1;
                self.checkpoint();
            }
            self.repo.checkout(&name);
            self.repo.merge("main", &format!("Merge main into {name}"));
            let head = self
                .repo
                .repo
                .head()
                .expect("head")
                .peel_to_commit()
                .expect("commit")
                .id();
            self.repo
                .repo
                .reference("refs/heads/main", head, true, "fast-forward")
                .expect("fast-forward");
            *self
                .events
                .entry("fast-forward through a branch")
                .or_default() += 1;
            self.repo.checkout("main");
        }
        self.commits += 1;
    }
}

#[test]
fn a_generated_history_matches_the_oracle() {
    let mut g = Generator {
        repo: TestRepo::new(),
        rng: Rng(0x005e_ed0f_91f7),
        contents: BTreeMap::new(),
        revision: 0,
        commits: 0,
        branches: 0,
        events: BTreeMap::new(),
    };
    for file in ["greeting.prompt.yaml", "support/triage.prompt.yaml"] {
        g.edit(file);
    }
    g.other_change();
    g.commit("Initial prompts");
    let mut next_checkpoint = 25;
    while g.commits < 200 {
        g.step();
        if g.commits >= next_checkpoint {
            g.checkpoint();
            next_checkpoint += 25 + g.rng.below(20);
        }
    }
    g.checkpoint();
    assert!(
        g.branches >= 5,
        "the generated history has too few branches: {}",
        g.branches
    );
    let mut kinds = vec![
        "old content back",
        "checkpoint",
        "delete",
        "fast-forward through a branch",
        "empty commit",
        "merge",
        "checkpoint before a fast-forward",
    ];
    if cfg!(unix) {
        kinds.push("mode change");
    }
    for kind in kinds {
        assert!(
            g.events.get(kind).is_some_and(|n| *n > 0),
            "the generated history has no {kind:?}: {:?}",
            g.events
        );
    }

    // A fresh build without the cache gives the same.
    let registry = Registry::open(g.repo.path()).expect("open");
    let git = registry.repo().expect("repo");
    std::fs::remove_file(cache::path(git.git_dir(), git.prefix())).expect("remove cache");
    let oracle = oracle(&g.repo.repo, "");
    assert_index_matches_oracle(&g.repo.repo, g.repo.path(), "");
    let total: usize = oracle.files.values().map(Vec::len).sum();
    assert!(
        total > 150,
        "the generated history has too few versions: {total}"
    );
    assert!(
        oracle.files.len() >= GEN_FILES.len(),
        "some files never got a version"
    );

    // `versions ID` of the library agrees for every id present now.
    let work = registry.discover_work().expect("discover");
    for (id, file) in &work.prompts {
        let want: Vec<Row> = oracle.files[file]
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u32 + 1, v.commit.clone(), v.message.clone()))
            .collect();
        assert_eq!(rows(&registry, id), want, "versions of {id}");
    }
    // `list` counts them.
    for summary in registry.summaries().expect("summaries") {
        assert_eq!(
            summary.versions as usize,
            oracle.files[&summary.file].len(),
            "list row of {}",
            summary.id
        );
        assert_eq!(summary.latest, Some(summary.versions));
        assert!(
            !summary.modified,
            "{} is marked modified in a clean working copy",
            summary.id
        );
    }

    // ID@COMMIT: the version current at a commit of the first-parent chain.
    for (pos, commit) in oracle.chain.iter().enumerate().step_by(5) {
        let tree = g
            .repo
            .repo
            .find_commit(*commit)
            .expect("commit")
            .tree()
            .expect("tree");
        let present = prompt_blobs(&g.repo.repo, &tree, "");
        for file in GEN_FILES {
            let id = file
                .trim_end_matches(".prompt.yaml")
                .trim_end_matches(".prompt.yml");
            let Some(versions) = oracle.files.get(file) else {
                continue;
            };
            if !work.prompts.contains_key(id) {
                continue;
            }
            let reference =
                Reference::parse(&format!("{id}@{}", &commit.to_string()[..12])).expect("parse");
            let got = registry.resolve(&reference);
            match present.get(file) {
                Some(blob) => {
                    let (n, v) = versions
                        .iter()
                        .enumerate()
                        .rev()
                        .find(|(_, v)| v.pos <= pos)
                        .expect("a version at or before the commit");
                    assert_eq!(v.blob, *blob);
                    let want = Resolved::Version {
                        number: n as u32 + 1,
                        commit: promptreg::git::ObjectId::from_hex(&v.commit).expect("hex"),
                    };
                    assert_eq!(got.expect("resolves"), want, "{reference}");
                }
                None => assert!(
                    got.is_err(),
                    "{reference} resolves although {file} does not exist there"
                ),
            }
        }
    }

    // The index of an ancestor on the chain, cut from the tip's, is the one a walk builds
    // (what `review` uses for its base); a commit off the chain gives none.
    let index = registry.index().expect("index");
    let git = registry.repo().expect("repo");
    for commit in oracle.chain.iter().step_by(17) {
        let id = promptreg::git::ObjectId::from_hex(&commit.to_string()).expect("hex");
        let cut = index
            .at_ancestor(&git, id)
            .expect("cut")
            .expect("on the chain");
        // Which prompts read files is learnt again at an ancestor, not cut.
        let built = VersionIndex {
            reading: None,
            ..VersionIndex::build(&git, id).expect("build")
        };
        assert_eq!(cut, built, "at {commit}");
    }
    let merged = g
        .repo
        .repo
        .revwalk()
        .and_then(|mut walk| {
            walk.push_head()?;
            walk.find_map(|c| c.ok().filter(|c| !oracle.chain.contains(c)))
                .map_or(Ok(None), |c| Ok(Some(c)))
        })
        .expect("walk");
    if let Some(side) = merged {
        let id = promptreg::git::ObjectId::from_hex(&side.to_string()).expect("hex");
        assert_eq!(index.at_ancestor(&git, id).expect("cut"), None, "{side}");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. The cache
// ---------------------------------------------------------------------------------------------

fn cache_path(root: &Path) -> std::path::PathBuf {
    let registry = Registry::open(root).expect("open");
    let git = registry.repo().expect("repo");
    cache::path(git.git_dir(), git.prefix())
}

fn three_versions() -> (TestRepo, Vec<String>) {
    let mut repo = TestRepo::new();
    let mut commits = Vec::new();
    for n in 1..=3 {
        repo.write("a.prompt.yaml", &prompt(&format!("A{n}")));
        repo.write("b.prompt.yaml", &prompt(&format!("B{}", n.min(2))));
        commits.push(repo.commit(&format!("Version {n}")));
    }
    (repo, commits)
}

fn fresh_build(root: &Path) -> VersionIndex {
    let registry = Registry::open(root).expect("open");
    let git = registry.repo().expect("repo");
    VersionIndex::build(&git, registry.tip().expect("tip")).expect("build")
}

#[test]
fn cache_is_written_and_read_back() {
    let (repo, _) = three_versions();
    let path = cache_path(repo.path());
    assert_eq!(path, cache::path(&repo.path().join(".git"), ""));
    assert!(!path.exists());
    let first = Registry::open(repo.path())
        .expect("open")
        .index()
        .expect("index")
        .clone();
    assert!(path.exists(), "no cache file at {}", path.display());
    assert_eq!(cache::load(&path).as_ref(), Some(&first));
    let second = Registry::open(repo.path())
        .expect("open")
        .index()
        .expect("index")
        .clone();
    assert_eq!(first, second);
    assert_eq!(first, fresh_build(repo.path()));

    // The second open really reads the file: a (validly written) cache with a doctored message
    // for the same tip is what it returns.
    let mut doctored = first.clone();
    doctored.commits[0].message = "from the cache".into();
    assert!(cache::store(&path, &doctored));
    let third = Registry::open(repo.path()).expect("open");
    assert_eq!(rows(&third, "a")[0].2, "from the cache");

    // `list` reads only the cache's summary of version counts when the cache is current.
    let listed_with = |cached: &VersionIndex| {
        assert!(cache::store(&path, cached));
        let rows = Registry::open(repo.path())
            .expect("open")
            .summaries()
            .expect("summaries");
        (rows[0].versions, rows[0].latest)
    };
    let mut extra = first.clone();
    let versions = std::sync::Arc::make_mut(extra.files.get_mut("a.prompt.yaml").expect("a"));
    versions.push(versions[0]);
    assert_eq!(listed_with(&extra), (4, Some(4)));
    // A cache of another tip is not used for the counts: the history is walked again.
    extra.tip = promptreg::git::ObjectId([0xab; 20]);
    assert_eq!(listed_with(&extra), (3, Some(3)));
}

#[test]
fn cache_extends_when_the_tip_moves_forward() {
    let (mut repo, commits) = three_versions();
    let path = cache_path(repo.path());
    Registry::open(repo.path())
        .expect("open")
        .index()
        .expect("index");
    repo.write("a.prompt.yaml", &prompt("A4"));
    let c4 = repo.commit("Version 4");
    repo.write("README.md", "readme\n");
    repo.commit("Not a version");
    let registry = Registry::open(repo.path()).expect("open");
    let index = registry.index().expect("index");
    assert_eq!(*index, fresh_build(repo.path()));
    assert_eq!(cache::load(&path).as_ref(), Some(index));
    assert_eq!(
        rows(&registry, "a"),
        expected(&repo, &[&commits[0], &commits[1], &commits[2], &c4])
    );
    assert_eq!(index.tip.to_hex(), repo.head());
}

#[test]
fn cache_update_walks_only_the_new_commits() {
    // SPEC 2.2: "extended incrementally when the tip moves forward (only new commits are
    // walked)". Doctor an old entry of a valid cache: an extension keeps it, a re-walk would
    // not.
    let (mut repo, _) = three_versions();
    let path = cache_path(repo.path());
    let mut index = Registry::open(repo.path())
        .expect("open")
        .index()
        .expect("index")
        .clone();
    index.commits[0].message = "kept from the cache".into();
    assert!(cache::store(&path, &index));
    repo.write("a.prompt.yaml", &prompt("A4"));
    let c4 = repo.commit("Version 4");
    let got = rows_at(repo.path(), "a");
    assert_eq!(got[0].2, "kept from the cache");
    assert_eq!(got[3], (4, c4, "Version 4".to_string()));
}

fn reset_hard(repo: &Repository, hex: &str) {
    let commit = repo.revparse_single(hex).expect("commit");
    repo.reset(&commit, git2::ResetType::Hard, None)
        .expect("reset");
}

#[test]
fn cache_is_rebuilt_when_history_is_rewritten() {
    let (mut repo, commits) = three_versions();
    let path = cache_path(repo.path());
    Registry::open(repo.path())
        .expect("open")
        .index()
        .expect("index");

    // Reset to v1 (the cached tip is no longer on the chain, and the tip moved backwards).
    reset_hard(&repo.repo, &commits[0]);
    assert_eq!(rows_at(repo.path(), "a"), expected(&repo, &[&commits[0]]));
    assert_eq!(cache::load(&path), Some(fresh_build(repo.path())));

    // Back to v3, cache it, then amend-like: reset to v2 and make a different commit, so the
    // chain has the same length as before.
    reset_hard(&repo.repo, &commits[2]);
    Registry::open(repo.path())
        .expect("open")
        .index()
        .expect("index");
    reset_hard(&repo.repo, &commits[1]);
    repo.write("a.prompt.yaml", &prompt("A3, amended"));
    let amended = repo.commit("Version 3, amended");
    let registry = Registry::open(repo.path()).expect("open");
    let index = registry.index().expect("index");
    assert_eq!(*index, fresh_build(repo.path()));
    assert_eq!(cache::load(&path).as_ref(), Some(index));
    assert_eq!(
        rows(&registry, "a"),
        expected(&repo, &[&commits[0], &commits[1], &amended])
    );
    assert!(rows(&registry, "a").iter().all(|r| r.1 != commits[2]));
    drop(registry);

    // A history rewritten to a different root (an orphan branch) as well.
    repo.repo.set_head("refs/heads/orphan").expect("unborn");
    let mut idx = repo.repo.index().expect("index");
    idx.clear().expect("clear");
    idx.write().expect("write");
    for entry in std::fs::read_dir(repo.path()).expect("read dir") {
        let entry = entry.expect("entry");
        if entry.file_name() != ".git" {
            std::fs::remove_file(entry.path()).expect("remove");
        }
    }
    repo.write("a.prompt.yaml", &prompt("orphan"));
    let orphan = repo.commit("Orphan root");
    assert_eq!(rows_at(repo.path(), "a"), expected(&repo, &[&orphan]));
    assert!(rows_at(repo.path(), "b").is_empty());
    assert_index_matches_oracle(&repo.repo, repo.path(), "");
}

#[test]
fn rev_reads_another_tip_without_touching_the_cache() {
    let (repo, commits) = three_versions();
    let path = cache_path(repo.path());
    let head_index = Registry::open(repo.path())
        .expect("open")
        .index()
        .expect("index")
        .clone();
    let old = Registry::open(repo.path())
        .expect("open")
        .with_rev(Some(commits[1].clone()));
    assert_eq!(
        rows(&old, "a"),
        expected(&repo, &[&commits[0], &commits[1]])
    );
    assert_eq!(cache::load(&path), Some(head_index.clone()));
    assert_eq!(
        *Registry::open(repo.path())
            .expect("open")
            .index()
            .expect("index"),
        head_index
    );
}

#[test]
fn corrupt_cache_files_are_rebuilt_and_rewritten() {
    let (repo, _) = three_versions();
    let path = cache_path(repo.path());
    let good = Registry::open(repo.path())
        .expect("open")
        .index()
        .expect("index")
        .clone();
    let bytes = std::fs::read(&path).expect("cache");
    let mut corruptions: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"this is not a cache".to_vec()),
        ("empty", Vec::new()),
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("one byte more", [bytes.as_slice(), b"x"].concat()),
    ];
    for at in [0, 9, 20, bytes.len() / 2, bytes.len() - 1] {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x40;
        corruptions.push(("a flipped byte", flipped));
    }
    for (what, data) in corruptions {
        std::fs::write(&path, &data).expect("corrupt the cache");
        let registry = Registry::open(repo.path()).expect("open");
        let index = registry.index().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(*index, good, "{what}");
        assert_eq!(
            cache::load(&path).as_ref(),
            Some(&good),
            "{what}: the cache is not rewritten valid"
        );
    }

    // A valid cache of a commit that is not in the repository (a foreign or stale file).
    let mut foreign = good.clone();
    foreign.tip = promptreg::git::ObjectId([0xab; 20]);
    assert!(cache::store(&path, &foreign));
    assert_eq!(
        *Registry::open(repo.path())
            .expect("open")
            .index()
            .expect("index"),
        good
    );
    assert_eq!(cache::load(&path), Some(good.clone()));

    // A directory where the cache file should be: versions still work.
    std::fs::remove_file(&path).expect("remove");
    std::fs::create_dir_all(&path).expect("dir");
    assert_eq!(
        *Registry::open(repo.path())
            .expect("open")
            .index()
            .expect("index"),
        good
    );
}

/// The text `render ID@latest` would use, read through a fresh registry.
fn latest_text(root: &Path, id: &str) -> String {
    let registry = Registry::open(root).expect("open");
    let reference = Reference::parse(&format!("{id}@latest")).expect("parse");
    registry.load(&reference).expect("load").text
}

#[test]
fn the_kept_tip_tree_and_the_working_copy_stand_in_only_for_what_they_hash_to() {
    let mut repo = TestRepo::new();
    let prompt = |text: &str| format!("template: {text}\n");
    repo.write("prompts/a.prompt.yaml", &prompt("a one"));
    repo.write("prompts/b.prompt.yaml", &prompt("b one"));
    repo.commit("one");
    repo.write("prompts/a.prompt.yaml", &prompt("a two"));
    repo.commit("two");
    let root = repo.path().join("prompts");
    let tree_file = {
        let registry = Registry::open(&root).expect("open");
        let git = registry.repo().expect("repo");
        cache::tree_path(git.git_dir(), git.prefix())
    };
    assert!(!tree_file.exists());

    // A render at the tip keeps the registry folder's tree, for that commit.
    assert_eq!(latest_text(&root, "a"), prompt("a two"));
    let head = promptreg::git::ObjectId::from_hex(&repo.head()).expect("hex");
    let kept = cache::load_tree(&tree_file, |_, _| true).expect("kept");
    assert_eq!(kept.commit, head);
    assert!(kept.raw.get(b"a.prompt.yaml").is_some());
    // Read back: same answers.
    assert_eq!(latest_text(&root, "a"), prompt("a two"));
    assert_eq!(latest_text(&root, "b"), prompt("b one"));

    // An uncommitted edit is not the latest version, though the file is read from the
    // working copy when it hashes to the committed blob.
    repo.write("prompts/a.prompt.yaml", &prompt("a edited"));
    assert_eq!(latest_text(&root, "a"), prompt("a two"));
    repo.remove("prompts/b.prompt.yaml");
    assert_eq!(latest_text(&root, "b"), prompt("b one"));
    // A working file that is a symlink to a device is never read (it would never end).
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/dev/zero", root.join("b.prompt.yaml")).expect("symlink");
        assert_eq!(latest_text(&root, "b"), prompt("b one"));
        repo.remove("prompts/b.prompt.yaml");
    }

    // A new commit: the kept tree is another commit's, so it is not used, and is replaced.
    repo.write("prompts/a.prompt.yaml", &prompt("a three"));
    repo.write("prompts/c.prompt.yaml", &prompt("c one"));
    repo.commit("three");
    assert_eq!(latest_text(&root, "a"), prompt("a three"));
    assert_eq!(latest_text(&root, "c"), prompt("c one"));
    let head = promptreg::git::ObjectId::from_hex(&repo.head()).expect("hex");
    assert_eq!(
        cache::load_tree(&tree_file, |_, _| true)
            .expect("kept")
            .commit,
        head
    );
    let versions = Registry::open(&root)
        .expect("open")
        .versions("a")
        .expect("versions")
        .1;
    assert_eq!(versions.len(), 3);

    // A damaged or foreign file is never trusted.
    let bytes = std::fs::read(&tree_file).expect("tree file");
    let mut damaged: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"garbage".to_vec(),
        bytes[..bytes.len() / 2].to_vec(),
    ];
    for at in [0, 10, 40, 60, bytes.len() - 30, bytes.len() - 1] {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x40;
        damaged.push(flipped);
    }
    for data in damaged {
        std::fs::write(&tree_file, &data).expect("damage");
        assert_eq!(latest_text(&root, "a"), prompt("a three"));
        assert_eq!(latest_text(&root, "c"), prompt("c one"));
        let err = Registry::open(&root)
            .expect("open")
            .load(&Reference::parse("nope@latest").expect("parse"))
            .expect_err("no such prompt");
        assert!(matches!(err, Error::UnknownPrompt { .. }), "{err}");
    }
}

#[test]
fn list_trusts_git_index_stat_data_only_for_files_it_vouches_for() {
    let mut repo = TestRepo::new();
    repo.write("a.prompt.yaml", "template: one\n");
    repo.write("b.prompt.yaml", "template: two\n");
    repo.commit("add");
    let modified = |repo: &TestRepo| -> Vec<(String, bool)> {
        Registry::open(repo.path())
            .expect("open")
            .summaries()
            .expect("summaries")
            .into_iter()
            .map(|s| (s.id, s.modified))
            .collect()
    };
    let clean = vec![("a".to_string(), false), ("b".to_string(), false)];
    assert_eq!(modified(&repo), clean);
    // The index vouches for the committed file: it is not read.
    let vouched = |repo: &TestRepo| {
        let registry = Registry::open(repo.path()).expect("open");
        let git = registry.repo().expect("repo");
        let blob = promptreg::git::Repo::hash_blob(b"template: one\n");
        git.staged_files()
            .unchanged(registry.work_tree().root(), "a.prompt.yaml", blob)
    };
    assert!(vouched(&repo));

    // The same size, a later modification time: stat no longer matches, so it is hashed.
    std::thread::sleep(std::time::Duration::from_millis(20));
    repo.write("a.prompt.yaml", "template: eno\n");
    assert!(!vouched(&repo));
    assert_eq!(modified(&repo)[0], ("a".to_string(), true));
    // Written back with the committed bytes: stat differs from the index, the hash does not.
    repo.write("a.prompt.yaml", "template: one\n");
    assert_eq!(modified(&repo), clean);

    // Staged but not committed: the index's blob is not the tip's, so it is hashed.
    repo.write("b.prompt.yaml", "template: staged\n");
    let mut index = repo.repo.index().expect("index");
    index.add_path(Path::new("b.prompt.yaml")).expect("stage");
    index.write().expect("write index");
    assert_eq!(modified(&repo)[1], ("b".to_string(), true));

    // An index libgit2 cannot read: every file is hashed, and the answers stay right.
    std::fs::write(repo.path().join(".git/index"), b"not an index").expect("break index");
    assert_eq!(
        modified(&repo),
        vec![("a".to_string(), false), ("b".to_string(), true)]
    );
}

#[test]
fn a_cache_written_for_another_root_is_rebuilt_from_the_whole_history() {
    // history.rs, `VersionIndex::update`: when the cached prefix differs from the registry's
    // and the cached tip is a first-parent ancestor of the tip (here: the same commit), the
    // walk stops at the cached tip (`reached_stop`), and the "rebuild" branch extends a fresh
    // index with that truncated chain only: every version before the cached tip is lost (here
    // the index comes back empty, with chain_len 0). The rebuild must walk the whole chain.
    let (repo, _) = three_versions();
    let path = cache_path(repo.path());
    let good = Registry::open(repo.path())
        .expect("open")
        .index()
        .expect("index")
        .clone();
    let mut other_root = good.clone();
    other_root.prefix = "elsewhere/".into();
    other_root.files.clear();
    assert!(cache::store(&path, &other_root));
    assert_eq!(
        *Registry::open(repo.path())
            .expect("open")
            .index()
            .expect("index"),
        good
    );
}

// ---------------------------------------------------------------------------------------------
// 4. References
// ---------------------------------------------------------------------------------------------

struct RefRepo {
    repo: TestRepo,
    /// greet v1, greet v2, other v1 (only), greet v3.
    c: Vec<String>,
}

fn ref_repo() -> RefRepo {
    let mut repo = TestRepo::new();
    repo.write("README.md", "readme\n");
    let c0 = repo.commit("Before any prompt");
    repo.write("greet.prompt.yaml", &prompt("G1"));
    let c1 = repo.commit("Add greet");
    repo.write("greet.prompt.yaml", &prompt("G2"));
    let c2 = repo.commit("Greet v2");
    repo.write("other.prompt.yaml", &prompt("O1"));
    let c3 = repo.commit("Add other (greet unchanged)");
    repo.write("greet.prompt.yaml", &prompt("G3"));
    let c4 = repo.commit("Greet v3");
    repo.write(
        "defaults.yaml",
        "defaults:\n  greet: 2\nlabels:\n  staging:\n    greet: 3\n  prod:\n    greet: 1\n",
    );
    let c5 = repo.commit("Pin greet");
    RefRepo {
        repo,
        c: vec![c0, c1, c2, c3, c4, c5],
    }
}

fn resolve(registry: &Registry, text: &str) -> promptreg::Result<Resolved> {
    registry.resolve_numbered(&Reference::parse(text)?)
}

#[test]
fn latest_and_unpinned_defaults_resolve_to_the_tip_without_numbers() {
    let RefRepo { repo, c: _ } = ref_repo();
    let registry = Registry::open(repo.path()).expect("open");
    let head = promptreg::git::ObjectId::from_hex(&repo.head()).expect("hex");
    let tip = Resolved::Tip { commit: head };
    let fast = |text: &str| {
        registry
            .resolve(&Reference::parse(text).expect("parse"))
            .expect(text)
    };
    assert_eq!(fast("other"), tip, "no manifest entry: the file at the tip");
    assert_eq!(fast("other@latest"), tip);
    assert!(
        matches!(fast("greet"), Resolved::Version { number: 2, .. }),
        "pinned: numbered"
    );
    assert!(matches!(
        fast("greet@1"),
        Resolved::Version { number: 1, .. }
    ));
}

fn version(n: u32, hex: &str) -> Resolved {
    Resolved::Version {
        number: n,
        commit: promptreg::git::ObjectId::from_hex(hex).expect("hex"),
    }
}

#[test]
fn references_resolve_to_versions() {
    let RefRepo { repo, c } = ref_repo();
    let registry = Registry::open(repo.path()).expect("open");
    let ok = |text: &str| resolve(&registry, text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(
        ok("greet"),
        version(2, &c[2]),
        "the default from defaults.yaml"
    );
    assert_eq!(
        ok("other"),
        version(1, &c[3]),
        "no manifest entry: the latest"
    );
    assert_eq!(ok("greet@1"), version(1, &c[1]));
    assert_eq!(ok("greet@3"), version(3, &c[4]));
    assert_eq!(ok("greet@latest"), version(3, &c[4]));
    assert_eq!(ok("greet@staging"), version(3, &c[4]));
    assert_eq!(ok("greet@prod"), version(1, &c[1]));
    assert_eq!(ok("greet@work"), Resolved::Work);
    // ID@COMMIT: the version current at that commit, by 7+ hex digits.
    assert_eq!(ok(&format!("greet@{}", &c[1][..7])), version(1, &c[1]));
    assert_eq!(ok(&format!("greet@{}", &c[2][..8])), version(2, &c[2]));
    assert_eq!(
        ok(&format!("greet@{}", &c[3][..7])),
        version(2, &c[2]),
        "a commit that changed only another file"
    );
    assert_eq!(
        ok(&format!("greet@{}", &c[3])),
        version(2, &c[2]),
        "all 40 digits"
    );
    assert_eq!(
        ok(&format!("greet@{}", c[5].to_uppercase())),
        version(3, &c[4]),
        "upper case hex"
    );
    assert_eq!(ok(&format!("other@{}", &c[5][..7])), version(1, &c[3]));

    // What the reference loads is the file of that version.
    let text = |r: &str| {
        registry
            .load(&Reference::parse(r).expect("parse"))
            .expect("load")
            .text
    };
    assert_eq!(text("greet@1"), prompt("G1"));
    assert_eq!(text("greet"), prompt("G2"));
    assert_eq!(text(&format!("greet@{}", &c[3][..7])), prompt("G2"));
    repo.write("greet.prompt.yaml", &prompt("G4, uncommitted"));
    assert_eq!(text("greet@work"), prompt("G4, uncommitted"));
    assert_eq!(text("greet@latest"), prompt("G3"));
}

#[test]
fn references_that_do_not_resolve_say_what_would() {
    let RefRepo { repo, c } = ref_repo();
    let registry = Registry::open(repo.path()).expect("open");
    let err = |text: &str| match resolve(&registry, text) {
        Ok(r) => panic!("{text} resolved to {r:?}"),
        Err(e) => e,
    };

    match err("greet@99") {
        Error::BadReference {
            reference,
            reason,
            available,
        } => {
            assert_eq!(reference, "greet@99");
            assert!(reason.contains("no version 99"), "{reason}");
            assert!(available.contains("versions 1 to 3"), "{available}");
            assert!(
                available.contains("prod (v1)") && available.contains("staging (v3)"),
                "{available}"
            );
        }
        other => panic!("greet@99: {other:?}"),
    }
    match err("greet@nolabel") {
        Error::BadReference {
            reason, available, ..
        } => {
            assert!(reason.contains("nolabel"), "{reason}");
            assert!(available.contains("versions 1 to 3"), "{available}");
            assert!(available.contains("staging"), "{available}");
        }
        other => panic!("greet@nolabel: {other:?}"),
    }
    match err("greet@stagin") {
        Error::BadReference { available, .. } => {
            assert!(available.contains("greet@staging"), "{available}")
        }
        other => panic!("greet@stagin: {other:?}"),
    }
    match err("nope") {
        Error::UnknownPrompt { id, .. } => assert_eq!(id, "nope"),
        other => panic!("nope: {other:?}"),
    }
    match err("greeet@1") {
        Error::UnknownPrompt {
            id, suggestions, ..
        } => {
            assert_eq!(id, "greeet");
            assert_eq!(suggestions, ["greet"]);
        }
        other => panic!("greeet@1: {other:?}"),
    }
    // A commit before the prompt existed; a hex prefix that is no commit.
    match err(&format!("greet@{}", &c[0][..7])) {
        Error::BadReference { reason, .. } => {
            assert!(reason.contains("does not exist at commit"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    match err("greet@abcdef0") {
        Error::BadReference { reason, .. } => assert!(reason.contains("no commit"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // The prompt exists only in the working copy: only @work (and the default) resolve.
    repo.write("fresh.prompt.yaml", &prompt("F"));
    let registry = Registry::open(repo.path()).expect("open");
    assert_eq!(
        resolve(&registry, "fresh").expect("default"),
        Resolved::Work
    );
    assert_eq!(
        resolve(&registry, "fresh@work").expect("work"),
        Resolved::Work
    );
    match resolve(&registry, "fresh@1") {
        Err(Error::BadReference {
            reason, available, ..
        }) => {
            assert!(reason.contains("no committed versions"), "{reason}");
            assert!(available.contains("@work"), "{available}");
        }
        other => panic!("fresh@1: {other:?}"),
    }
    // The parser refuses malformed references.
    for bad in ["greet@", "greet@0", "@1", "greet@1@2"] {
        assert!(Reference::parse(bad).is_err(), "{bad} parses");
    }
}

#[test]
fn a_manifest_default_that_does_not_exist_is_an_error_not_a_guess() {
    let RefRepo { repo, .. } = ref_repo();
    repo.write("defaults.yaml", "defaults:\n  greet: 9\n");
    let registry = Registry::open(repo.path()).expect("open");
    match resolve(&registry, "greet") {
        Err(Error::BadReference {
            reason, available, ..
        }) => {
            assert!(reason.contains("no version 9"), "{reason}");
            assert!(available.contains("versions 1 to 3"), "{available}");
        }
        other => panic!("greet: {other:?}"),
    }
}

#[test]
fn partials_are_read_from_the_commit_of_the_version() {
    let mut repo = TestRepo::new();
    let text = "variables:\n  question: { type: string, required: true }\nmessages:\n  - role: system\n    content: '{% include \"partials/tone.md\" %}'\n  - role: user\n    content: \"{{ question }}\"\n";
    repo.write("partials/tone.md", "Be kind.");
    repo.write("ask.prompt.yaml", text);
    repo.commit("Add ask");
    repo.write("partials/tone.md", "Be terse.");
    repo.commit("Change the tone partial");
    repo.write("ask.prompt.yaml", &text.replace("system", "assistant"));
    repo.commit("Ask v2");
    repo.write("partials/tone.md", "Be loud (uncommitted).");

    let registry = Registry::open(repo.path()).expect("open");
    let values: Map<String, Value> = json!({ "question": "Why?" })
        .as_object()
        .expect("object")
        .clone();
    let render = |r: &str| -> Vec<String> {
        let loaded = registry
            .load(&Reference::parse(r).expect("parse"))
            .expect("load");
        let rendered = loaded
            .compile()
            .expect("compile")
            .render(&values)
            .expect("render");
        rendered
            .output
            .texts()
            .into_iter()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(render("ask@1"), ["Be kind.", "Why?"]);
    assert_eq!(render("ask@2"), ["Be terse.", "Why?"]);
    assert_eq!(render("ask@latest"), ["Be terse.", "Why?"]);
    assert_eq!(render("ask@work"), ["Be loud (uncommitted).", "Why?"]);
    // A version whose partial was deleted later still renders.
    repo.remove("partials/tone.md");
    assert_eq!(render("ask@1"), ["Be kind.", "Why?"]);
}

// ---------------------------------------------------------------------------------------------
// 5. The CLI
// ---------------------------------------------------------------------------------------------

/// A small fixed repository: greeting (3 versions), support/triage (2), a manifest, an
/// uncommitted edit and an uncommitted new prompt.
fn cli_repo() -> TestRepo {
    let mut repo = TestRepo::new();
    repo.write("greeting.prompt.yaml", &prompt("Hello"));
    repo.commit("Add greeting");
    repo.write("support/triage.prompt.yaml", &prompt("Triage this ticket"));
    repo.commit("Add support triage\n\nClassifies incoming tickets.\n");
    repo.write("greeting.prompt.yaml", &prompt("Hello, friend"));
    repo.commit("Greet warmly");
    repo.write("README.md", "# Prompts\n");
    repo.commit("Document the registry");
    repo.write("greeting.prompt.yaml", &prompt("Hi"));
    repo.write(
        "support/triage.prompt.yaml",
        &prompt("Triage this ticket politely"),
    );
    repo.commit("Tone down both prompts");
    repo.write(
        "defaults.yaml",
        "# What apps get.\ndefaults:\n  greeting: 2\nlabels:\n  staging:\n    greeting: 3\n    support/triage: 2\n",
    );
    repo.commit("Pin the greeting");
    repo
}

#[test]
fn cli_versions_and_list_snapshots() {
    let repo = cli_repo();
    let path = repo.path();
    settings(path).bind(|| {
        insta_cmd::assert_cmd_snapshot!(
            "history_versions_greeting",
            cli(path).args(["versions", "greeting"])
        );
        insta_cmd::assert_cmd_snapshot!(
            "history_versions_greeting_json",
            cli(path).args(["versions", "greeting", "--format", "json"])
        );
        insta_cmd::assert_cmd_snapshot!(
            "history_versions_triage",
            cli(path).args(["versions", "support/triage"])
        );
        repo.write("support/triage.prompt.yaml", &prompt("Triage, uncommitted"));
        repo.write("new.prompt.yaml", &prompt("Not committed yet"));
        insta_cmd::assert_cmd_snapshot!("history_list", cli(path).args(["list"]));
        insta_cmd::assert_cmd_snapshot!(
            "history_list_json",
            cli(path).args(["list", "--format", "json"])
        );
        insta_cmd::assert_cmd_snapshot!(
            "history_render_unknown_version",
            cli(path).args(["render", "greeting@9"])
        );
    });
}

const MANIFEST: &str = "\
# Versions apps get by default.
defaults:
  # the greeting, pinned after review
  support/triage: 1
  greeting: 1   # reviewed

# Environments.
labels:
  staging:
    greeting: 3 # canary
";

#[test]
fn set_default_keeps_comments_and_order() {
    let repo = cli_repo();
    repo.write("defaults.yaml", MANIFEST);
    let out = run(repo.path(), &["set-default", "greeting", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "default of greeting: v1 -> v2\n");
    assert_eq!(
        repo.read("defaults.yaml"),
        MANIFEST.replace("greeting: 1   # reviewed", "greeting: 2   # reviewed")
    );

    let out = run(
        repo.path(),
        &["set-default", "greeting", "1", "--label", "staging"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let after_label = MANIFEST
        .replace("greeting: 1   # reviewed", "greeting: 2   # reviewed")
        .replace("greeting: 3 # canary", "greeting: 1 # canary");
    assert_eq!(repo.read("defaults.yaml"), after_label);

    // A new entry goes at the end of its block.
    let out = run(
        repo.path(),
        &["set-default", "support/triage", "2", "--label", "prod"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        repo.read("defaults.yaml"),
        format!("{after_label}  prod:\n    support/triage: 2\n")
    );
}

#[test]
fn set_default_refuses_a_version_that_does_not_exist() {
    let repo = cli_repo();
    repo.write("defaults.yaml", MANIFEST);
    for args in [
        &["set-default", "greeting", "4"][..],
        &["set-default", "greeting", "0"],
        &["set-default", "greeting", "99", "--label", "staging"],
        &["set-default", "nope", "1"],
    ] {
        let out = run(repo.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with("error: "),
            "{args:?}: {}",
            stderr(&out)
        );
        assert_eq!(stdout(&out), "", "{args:?}");
        assert_eq!(
            repo.read("defaults.yaml"),
            MANIFEST,
            "{args:?} changed the manifest"
        );
        assert_no_panic(&out);
    }
    let out = run(repo.path(), &["set-default", "greeting", "4"]);
    assert!(stderr(&out).contains("versions 1 to 3"), "{}", stderr(&out));
}

/// Status of every path that is not clean: (path, flags).
fn statuses(path: &Path) -> BTreeMap<String, git2::Status> {
    let repo = Repository::open(path).expect("open");
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true);
    let statuses = repo.statuses(Some(&mut opts)).expect("statuses");
    statuses
        .iter()
        .map(|e| (e.path().expect("utf-8").to_string(), e.status()))
        .collect()
}

/// The index entries: path -> (blob, mode).
fn index_entries(path: &Path) -> BTreeMap<String, (Oid, u32)> {
    let repo = Repository::open(path).expect("open");
    let index = repo.index().expect("index");
    index
        .iter()
        .map(|e| {
            (
                String::from_utf8_lossy(&e.path).into_owned(),
                (e.id, e.mode),
            )
        })
        .collect()
}

/// The paths whose entries differ between two commits' trees.
fn changed_paths(path: &Path, old: &str, new: &str) -> Vec<String> {
    let repo = Repository::open(path).expect("open");
    let tree = |hex: &str| {
        repo.find_commit(Oid::from_str(hex).expect("oid"))
            .expect("commit")
            .tree()
            .expect("tree")
    };
    let diff = repo
        .diff_tree_to_tree(Some(&tree(old)), Some(&tree(new)), None)
        .expect("diff");
    diff.deltas()
        .map(|d| {
            d.new_file()
                .path()
                .or(d.old_file().path())
                .expect("path")
                .display()
                .to_string()
        })
        .collect()
}

fn head_of(path: &Path) -> (String, Vec<String>, String) {
    let repo = Repository::open(path).expect("open");
    let head = repo.head().expect("head").peel_to_commit().expect("commit");
    let parents = head.parent_ids().map(|p| p.to_string()).collect();
    (
        head.id().to_string(),
        parents,
        head.message().unwrap_or("").to_string(),
    )
}

#[test]
fn set_default_commit_commits_the_manifest_alone() {
    let repo = cli_repo();
    let before = repo.head();
    // Other work in progress that must stay as it is.
    repo.write("greeting.prompt.yaml", &prompt("uncommitted greeting"));
    repo.write("scratch.txt", "untracked\n");
    let status_before = statuses(repo.path());

    let out = run(repo.path(), &["set-default", "greeting", "3", "--commit"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (head, parents, message) = head_of(repo.path());
    assert_eq!(parents, std::slice::from_ref(&before));
    assert_eq!(
        changed_paths(repo.path(), &before, &head),
        ["defaults.yaml"]
    );
    assert_eq!(message, "Set default of greeting to v3 (was v2)");
    assert_eq!(
        stdout(&out),
        format!(
            "default of greeting: v2 -> v3\ncommitted defaults.yaml ({})\n",
            &head[..7]
        )
    );
    let committed = Repository::open(repo.path())
        .expect("open")
        .revparse_single("HEAD:defaults.yaml")
        .expect("blob")
        .peel_to_blob()
        .expect("blob")
        .content()
        .to_vec();
    assert_eq!(
        String::from_utf8(committed).expect("utf-8"),
        repo.read("defaults.yaml")
    );
    assert!(repo
        .read("defaults.yaml")
        .contains("# What apps get.\ndefaults:\n  greeting: 3\n"));
    // The manifest is clean; everything else is as it was.
    assert_eq!(statuses(repo.path()), status_before);
    assert_eq!(
        repo.read("greeting.prompt.yaml"),
        prompt("uncommitted greeting")
    );
}

#[test]
fn set_default_commit_creates_the_manifest() {
    let mut repo = TestRepo::new();
    repo.write("greeting.prompt.yaml", &prompt("Hello"));
    repo.commit("Add greeting");
    repo.write("greeting.prompt.yaml", &prompt("Hello again"));
    let before = repo.commit("Edit greeting");
    let out = run(repo.path(), &["set-default", "greeting", "1", "--commit"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (head, _, message) = head_of(repo.path());
    assert_eq!(
        changed_paths(repo.path(), &before, &head),
        ["defaults.yaml"]
    );
    assert_eq!(message, "Set default of greeting to v1 (was unset)");
    assert_eq!(repo.read("defaults.yaml"), "defaults:\n  greeting: 1\n");
    assert!(
        statuses(repo.path()).is_empty(),
        "{:?}",
        statuses(repo.path())
    );
    let registry = Registry::open(repo.path()).expect("open");
    assert_eq!(
        resolve(&registry, "greeting").expect("default"),
        version(1, &rows(&registry, "greeting")[0].1)
    );
}

#[test]
fn commit_commits_one_file_and_leaves_other_changes_alone() {
    let mut repo = cli_repo();
    repo.write("a.prompt.yaml", &prompt("A1"));
    repo.write("b.prompt.yaml", &prompt("B1"));
    repo.write("notes.md", "notes\n");
    repo.commit("Add a, b and notes");
    let before = repo.head();

    // Staged: an edit of b (and an unstaged edit on top), a new file, a deletion, and the
    // target itself (its working copy edited again after staging).
    repo.write("b.prompt.yaml", &prompt("B2 staged"));
    repo.write("staged-new.md", "new\n");
    repo.write("greeting.prompt.yaml", &prompt("greeting, staged"));
    {
        let mut index = repo.repo.index().expect("index");
        index.add_path(Path::new("b.prompt.yaml")).expect("stage b");
        index
            .add_path(Path::new("staged-new.md"))
            .expect("stage new");
        index
            .add_path(Path::new("greeting.prompt.yaml"))
            .expect("stage greeting");
        index
            .remove_path(Path::new("notes.md"))
            .expect("stage deletion");
        index.write().expect("write index");
    }
    repo.remove("notes.md");
    repo.write("b.prompt.yaml", &prompt("B3 unstaged on top"));
    repo.write("a.prompt.yaml", &prompt("A2 unstaged"));
    repo.write("untracked.txt", "untracked\n");
    let target = prompt("greeting, committed");
    repo.write("greeting.prompt.yaml", &target);

    let mut status_before = statuses(repo.path());
    let mut entries_before = index_entries(repo.path());
    assert!(status_before.len() >= 6, "{status_before:?}");
    assert!(status_before.remove("greeting.prompt.yaml").is_some());
    entries_before.remove("greeting.prompt.yaml");

    let out = run(
        repo.path(),
        &["commit", "greeting", "-m", "Tighten the greeting"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (head, parents, message) = head_of(repo.path());
    assert_eq!(stdout(&out), format!("greeting v4 ({})\n", &head[..7]));
    assert_eq!(parents, std::slice::from_ref(&before));
    assert_eq!(message, "Tighten the greeting");
    assert_eq!(
        changed_paths(repo.path(), &before, &head),
        ["greeting.prompt.yaml"]
    );

    // Everything else is exactly as it was: staged stays staged, unstaged stays unstaged.
    let mut status_after = statuses(repo.path());
    assert_eq!(
        status_after.remove("greeting.prompt.yaml"),
        None,
        "the committed file is clean"
    );
    assert_eq!(status_after, status_before);
    let mut entries_after = index_entries(repo.path());
    let (blob, _) = entries_after
        .remove("greeting.prompt.yaml")
        .expect("greeting in the index");
    assert_eq!(
        blob,
        Oid::hash_object(git2::ObjectType::Blob, target.as_bytes()).expect("hash")
    );
    assert_eq!(entries_after, entries_before);
    assert_eq!(repo.read("b.prompt.yaml"), prompt("B3 unstaged on top"));
    assert_eq!(repo.read("a.prompt.yaml"), prompt("A2 unstaged"));

    // The library sees the new version.
    let got = rows_at(repo.path(), "greeting");
    assert_eq!(got.len(), 4);
    assert_eq!(got[3].1, head);
}

#[test]
fn commit_refuses_an_invalid_prompt_and_an_unchanged_one() {
    let repo = cli_repo();
    let before = repo.head();
    repo.write(
        "greeting.prompt.yaml",
        "messages:\n  - role: user\n    content: \"{{ unclosed\"\n",
    );
    let out = run(repo.path(), &["commit", "greeting", "-m", "Break it"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("error"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(repo.head(), before, "an invalid prompt was committed");
    assert_no_panic(&out);

    repo.write("greeting.prompt.yaml", "messages: [\n");
    let out = run(repo.path(), &["commit", "greeting", "-m", "Break the YAML"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(repo.head(), before);

    repo.write("greeting.prompt.yaml", &prompt("Hi"));
    let out = run(repo.path(), &["commit", "greeting", "-m", "No change"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(repo.head(), before, "an unchanged prompt was committed");

    repo.write("greeting.prompt.yaml", &prompt("Hi!"));
    let out = run(repo.path(), &["commit", "greeting", "-m", "  "]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(repo.head(), before, "an empty message was accepted");
}

#[test]
fn commit_in_a_subdirectory_registry() {
    let mut repo = TestRepo::new();
    repo.write("prompts/x.prompt.yaml", &prompt("X1"));
    repo.write("app/main.rs", "fn main() {}\n");
    repo.commit("Add x and an app");
    let before = repo.head();
    repo.write("prompts/x.prompt.yaml", &prompt("X2"));
    repo.write("app/main.rs", "fn main() { println!(); }\n");
    let out = run(
        repo.path(),
        &["-C", "prompts", "commit", "x", "-m", "Edit x"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (head, parents, _) = head_of(repo.path());
    assert_eq!(stdout(&out), format!("x v2 ({})\n", &head[..7]));
    assert_eq!(parents, std::slice::from_ref(&before));
    assert_eq!(
        changed_paths(repo.path(), &before, &head),
        ["prompts/x.prompt.yaml"]
    );
    let status = statuses(repo.path());
    assert_eq!(
        status.keys().collect::<Vec<_>>(),
        ["app/main.rs"],
        "{status:?}"
    );
    assert_eq!(status["app/main.rs"], git2::Status::WT_MODIFIED);
}

#[cfg(unix)]
#[test]
fn committing_a_symlinked_prompt_keeps_the_symlink() {
    // A prompt that is a symlink inside the root (`link.prompt.yaml -> a.prompt.yaml`) is
    // refused: committing it would turn the link into a file. The symlink stays as it was.
    let mut repo = TestRepo::new();
    repo.write("a.prompt.yaml", &prompt("A1"));
    std::os::unix::fs::symlink("a.prompt.yaml", repo.path().join("link.prompt.yaml"))
        .expect("symlink");
    repo.commit("Add a and a link to it");
    repo.write("a.prompt.yaml", &prompt("A2"));
    let out = run(
        repo.path(),
        &["commit", "link", "-m", "Edit through the link"],
    );
    assert_no_panic(&out);
    let git = Repository::open(repo.path()).expect("open");
    let tree = git.head().expect("head").peel_to_tree().expect("tree");
    assert_eq!(
        tree.get_name("link.prompt.yaml").expect("link").filemode(),
        0o120000,
        "the symlink became a file"
    );
    let status = statuses(repo.path());
    let link = status
        .get("link.prompt.yaml")
        .copied()
        .unwrap_or(git2::Status::CURRENT);
    assert!(
        !link.intersects(git2::Status::INDEX_TYPECHANGE | git2::Status::WT_TYPECHANGE),
        "{status:?}"
    );
}

#[test]
fn restore_refuses_to_overwrite_uncommitted_edits_without_force() {
    let repo = cli_repo();
    let edited = prompt("uncommitted edit");
    repo.write("greeting.prompt.yaml", &edited);
    let out = run(repo.path(), &["restore", "greeting@1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(
        repo.read("greeting.prompt.yaml"),
        edited,
        "restore overwrote uncommitted edits"
    );

    let out = run(repo.path(), &["restore", "greeting@1", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(repo.read("greeting.prompt.yaml"), prompt("Hello"));
    assert_eq!(
        stdout(&out),
        "restored greeting.prompt.yaml to the content of v1; commit it to make it v4\n"
    );

    // On a clean working copy no --force is needed.
    let mut repo = repo;
    repo.write("greeting.prompt.yaml", &prompt("Hi"));
    let out = run(repo.path(), &["restore", "greeting@2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(repo.read("greeting.prompt.yaml"), prompt("Hello, friend"));
    repo.commit("Revert the greeting to v2");
    let got = rows_at(repo.path(), "greeting");
    assert_eq!(got.len(), 4);
    assert_eq!(
        rows_at(repo.path(), "greeting")[3].2,
        "Revert the greeting to v2"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Repositories as users have them
// ---------------------------------------------------------------------------------------------

#[test]
fn a_shallow_clone_says_how_to_fix_it_in_one_line() {
    let mut repo = TestRepo::new();
    repo.write("greeting.prompt.yaml", &prompt("Hello"));
    repo.commit("Add greeting");
    repo.write("greeting.prompt.yaml", &prompt("Hello again"));
    let c2 = repo.commit("Edit greeting");
    std::fs::write(repo.path().join(".git/shallow"), format!("{c2}\n")).expect("shallow");
    assert!(repo.repo.is_shallow());

    for args in [
        &["versions", "greeting"][..],
        &["versions", "greeting", "--format", "json"],
        &["render", "greeting@1"],
    ] {
        let out = run(repo.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
        // `--format json` errors are one line of JSON.
        assert!(
            err.starts_with("error: ") || err.starts_with("{\"error\":"),
            "{err}"
        );
        assert!(
            err.contains("git fetch --unshallow") && err.contains("fetch-depth: 0"),
            "{err}"
        );
        assert_eq!(stdout(&out), "");
        assert_no_panic(&out);
    }
    let out = run(repo.path(), &["render", "greeting@work"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("Hello again"), "{}", stdout(&out));
    let out = run(repo.path(), &["list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("greeting"), "{}", stdout(&out));
    assert!(stderr(&out).contains("--unshallow"), "{}", stderr(&out));
    // The library says the same, as a NoHistory error.
    let registry = Registry::open(repo.path()).expect("open");
    assert!(matches!(registry.index(), Err(Error::NoHistory(_))));
}

#[test]
fn a_shallow_clone_lists_unmodified_prompts_as_unmodified() {
    // Whether the working copy differs from HEAD needs no version numbers (SPEC 2: "commands
    // that do not need numbers still work"): `list` must not mark every prompt modified.
    let mut repo = TestRepo::new();
    repo.write("greeting.prompt.yaml", &prompt("Hello"));
    repo.commit("Add greeting");
    repo.write("greeting.prompt.yaml", &prompt("Hello again"));
    let c2 = repo.commit("Edit greeting");
    std::fs::write(repo.path().join(".git/shallow"), format!("{c2}\n")).expect("shallow");
    let registry = Registry::open(repo.path()).expect("open");
    let summaries = registry.summaries().expect("summaries");
    assert!(!summaries[0].modified, "{summaries:?}");
    let out = run(repo.path(), &["list"]);
    assert!(!stdout(&out).contains("greeting*"), "{}", stdout(&out));
    repo.write("greeting.prompt.yaml", &prompt("edited"));
    let registry = Registry::open(repo.path()).expect("open");
    assert!(registry.summaries().expect("summaries")[0].modified);
}

#[test]
fn a_detached_head_works() {
    let mut repo = TestRepo::new();
    repo.write("greeting.prompt.yaml", &prompt("Hello"));
    let c1 = repo.commit("Add greeting");
    repo.write("greeting.prompt.yaml", &prompt("Hello again"));
    let c2 = repo.commit("Edit greeting");
    repo.write("greeting.prompt.yaml", &prompt("Hello a third time"));
    let c3 = repo.commit("Edit greeting again");
    // Cache the index of main, then detach at an older commit.
    assert_eq!(
        rows_at(repo.path(), "greeting"),
        expected(&repo, &[&c1, &c2, &c3])
    );
    repo.repo
        .set_head_detached(Oid::from_str(&c2).expect("oid"))
        .expect("detach");
    let mut co = git2::build::CheckoutBuilder::new();
    repo.repo.checkout_head(Some(co.force())).expect("checkout");
    assert!(repo.repo.head_detached().expect("detached"));
    assert_eq!(
        rows_at(repo.path(), "greeting"),
        expected(&repo, &[&c1, &c2])
    );
    assert_index_matches_oracle(&repo.repo, repo.path(), "");
    let out = run(repo.path(), &["versions", "greeting"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 2, "{}", stdout(&out));
    let out = run(repo.path(), &["render", "greeting"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("Hello again"), "{}", stdout(&out));
    // `--rev main` still reads main's history.
    let out = run(
        repo.path(),
        &["--rev", "main", "versions", "greeting", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json.as_array().expect("array").len(), 3);
}

#[test]
fn an_empty_repository_lists_and_says_why_there_are_no_versions() {
    let repo = TestRepo::new();
    repo.write("greeting.prompt.yaml", &prompt("Hello"));
    let out = run(repo.path(), &["list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("greeting"), "{}", stdout(&out));
    assert!(stderr(&out).contains("no commits"), "{}", stderr(&out));
    assert_no_panic(&out);

    let out = run(repo.path(), &["versions", "greeting"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: ") && err.contains("no commits"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_no_panic(&out);

    let out = run(repo.path(), &["render", "greeting"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("Hello"));

    // `commit` makes the first version.
    let out = run(repo.path(), &["commit", "greeting", "-m", "First"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let head = repo.head();
    assert_eq!(stdout(&out), format!("greeting v1 ({})\n", &head[..7]));
    assert_eq!(
        rows_at(repo.path(), "greeting"),
        vec![(1, head, "First".to_string())]
    );
}

#[test]
fn a_directory_outside_git_lists_and_says_why_there_are_no_versions() {
    let dir = crate::common::tempdir();
    assert!(
        Repository::discover(dir.path()).is_err(),
        "the temp dir is inside a git repository"
    );
    std::fs::write(dir.path().join("greeting.prompt.yaml"), prompt("Hello")).expect("write");
    let out = run(dir.path(), &["list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("greeting"), "{}", stdout(&out));
    assert!(
        !stdout(&out).contains('*'),
        "no git, nothing to differ from: {}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("not inside a git repository"),
        "{}",
        stderr(&out)
    );

    for args in [
        &["versions", "greeting"][..],
        &["render", "greeting@1"],
        &["commit", "greeting", "-m", "x"],
    ] {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with("error: ") && err.contains("not inside a git repository"),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert_no_panic(&out);
    }
    let out = run(dir.path(), &["render", "greeting"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let registry = Registry::open(dir.path()).expect("open");
    assert!(matches!(registry.index(), Err(Error::NoHistory(_))));
    assert_eq!(registry.summaries().expect("summaries")[0].versions, 0);
}

#[test]
fn a_bare_repository_is_refused_clearly() {
    let dir = crate::common::tempdir();
    Repository::init_bare(dir.path().join("bare.git")).expect("bare");
    for args in [
        &["-C", "bare.git", "list"][..],
        &["-C", "bare.git", "versions", "x"],
    ] {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with("error: ") && err.contains("bare repository"),
            "{args:?}: {err}"
        );
        assert_no_panic(&out);
    }
    // From inside the bare repository's folders as well.
    let out = run(&dir.path().join("bare.git/refs"), &["list"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("bare repository"), "{}", stderr(&out));
}

//! Shared helpers: hermetic git repositories built through git2 with fixed signatures and times,
//! registries written from fixture files, and the CLI with a clean environment.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use git2::{Repository, Signature, Time};
use tempfile::TempDir;

/// The first commit's time; every commit is one minute after the one before.
pub const EPOCH: i64 = 1_700_000_000;

/// A git repository in a temporary directory, with commits at fixed times by a fixed author.
pub struct TestRepo {
    pub dir: TempDir,
    pub repo: Repository,
    time: i64,
}

/// Makes git hermetic for this test process, once, before any git2 use, and returns the empty
/// home folder the CLI runs with: libgit2 reads no system, global or XDG config (the search
/// paths of those levels are emptied, as jj's `hermetic_libgit2` does), so a developer's
/// `~/.gitconfig` (`core.autocrlf`, `user.name`, ...) cannot change what a test sees.
pub fn hermetic() -> &'static Path {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let home = tempfile::Builder::new()
            .prefix("promptreg-test-home")
            .tempdir()
            .expect("temp home")
            .keep();
        std::fs::write(home.join("empty.gitconfig"), "").expect("empty config");
        for level in [
            git2::ConfigLevel::System,
            git2::ConfigLevel::XDG,
            git2::ConfigLevel::Global,
            git2::ConfigLevel::ProgramData,
        ] {
            #[allow(unsafe_code)]
            // SAFETY: libgit2's global options are only changed here, once (the `OnceLock`
            // runs this before any test of this process reaches git2 through the helpers).
            unsafe {
                git2::opts::set_search_path(level, "").expect("search path");
            }
        }
        home
    })
}

/// A temporary directory for a test, with git made hermetic first (see [`hermetic`]).
pub fn tempdir() -> TempDir {
    hermetic();
    tempfile::tempdir().expect("temp dir")
}

impl TestRepo {
    /// A new repository on branch `main`, with an identity in its own config only.
    pub fn new() -> TestRepo {
        let dir = tempdir();
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head("main");
        let repo = Repository::init_opts(dir.path(), &opts).expect("init");
        {
            let mut config = repo.config().expect("config");
            config.set_str("user.name", "Test Author").expect("name");
            config
                .set_str("user.email", "author@example.com")
                .expect("email");
        }
        TestRepo {
            dir,
            repo,
            time: EPOCH,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, content: &str) {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(rel)).expect("read")
    }

    pub fn remove(&self, rel: &str) {
        std::fs::remove_file(self.dir.path().join(rel)).expect("remove");
    }

    fn signature(&mut self) -> Signature<'static> {
        let sig = Signature::new(
            "Test Author",
            "author@example.com",
            &Time::new(self.time, 0),
        )
        .expect("sig");
        self.time += 60;
        sig
    }

    /// Stages every change (additions, edits, deletions) and commits it on HEAD.
    pub fn commit(&mut self, message: &str) -> String {
        let mut index = self.repo.index().expect("index");
        index
            .add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)
            .expect("add");
        index.update_all(["*"].iter(), None).expect("update");
        index.write().expect("write index");
        self.commit_index(message)
    }

    /// Commits what is staged.
    pub fn commit_index(&mut self, message: &str) -> String {
        let sig = self.signature();
        let mut index = self.repo.index().expect("index");
        let tree_id = index.write_tree().expect("tree");
        let tree = self.repo.find_tree(tree_id).expect("find tree");
        let parents: Vec<git2::Commit<'_>> = match self.repo.head() {
            Ok(head) => vec![head.peel_to_commit().expect("head commit")],
            Err(_) => vec![],
        };
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        let id = self
            .repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &refs)
            .expect("commit");
        id.to_string()
    }

    /// Creates branch `name` at HEAD and checks it out.
    pub fn branch(&self, name: &str) {
        let head = self
            .repo
            .head()
            .expect("head")
            .peel_to_commit()
            .expect("commit");
        self.repo.branch(name, &head, true).expect("branch");
        self.checkout(name);
    }

    /// Checks out branch `name` (forcing the work tree to match).
    pub fn checkout(&self, name: &str) {
        let refname = format!("refs/heads/{name}");
        self.repo.set_head(&refname).expect("set head");
        let mut opts = git2::build::CheckoutBuilder::new();
        opts.force().remove_untracked(true);
        self.repo.checkout_head(Some(&mut opts)).expect("checkout");
    }

    /// Merges branch `other` into the current branch with a merge commit (`--no-ff`), taking
    /// the other branch's version of every conflicting file.
    pub fn merge(&mut self, other: &str, message: &str) -> String {
        let sig = self.signature();
        let ours = self
            .repo
            .head()
            .expect("head")
            .peel_to_commit()
            .expect("ours");
        let theirs = self
            .repo
            .find_branch(other, git2::BranchType::Local)
            .expect("branch")
            .get()
            .peel_to_commit()
            .expect("theirs");
        let mut opts = git2::MergeOptions::new();
        opts.file_favor(git2::FileFavor::Theirs);
        let mut index = self
            .repo
            .merge_commits(&ours, &theirs, Some(&opts))
            .expect("merge");
        let tree_id = index.write_tree_to(&self.repo).expect("tree");
        let tree = self.repo.find_tree(tree_id).expect("find tree");
        let id = self
            .repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &[&ours, &theirs])
            .expect("merge commit");
        let mut co = git2::build::CheckoutBuilder::new();
        co.force();
        self.repo.checkout_head(Some(&mut co)).expect("checkout");
        id.to_string()
    }

    pub fn head(&self) -> String {
        self.repo
            .head()
            .expect("head")
            .peel_to_commit()
            .expect("commit")
            .id()
            .to_string()
    }
}

/// Writes `files` (path -> content) under a new temporary directory.
pub fn registry_dir(files: &BTreeMap<String, String>) -> TempDir {
    let dir = tempdir();
    for (path, content) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, content).expect("write");
    }
    dir
}

/// The promptreg binary with a clean, hermetic environment, run in `dir`: an empty home, and
/// empty global and system git config files for anything that reads them from the
/// environment.
pub fn cli(dir: &Path) -> Command {
    let mut cmd = Command::new(insta_cmd::get_cargo_bin("promptreg"));
    let home = hermetic();
    let empty = home.join("empty.gitconfig");
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home)
        .env("GIT_CONFIG_GLOBAL", &empty)
        .env("GIT_CONFIG_SYSTEM", &empty)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("NO_COLOR", "1");
    cmd
}

/// Runs `cmd` with its stdout closed before it writes anything, as `promptreg ... | head -0`
/// does: what a command does when its reader is gone.
pub fn output_with_stdout_closed(cmd: &mut Command) -> std::process::Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait")
}

/// The repository root of this crate (for prompts-example/).
pub fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// insta settings that hide temp paths and commit ids.
pub fn settings(dir: &Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    let shown = dir.display().to_string();
    settings.add_filter(&regex_escape(&shown), "[ROOT]");
    if let Ok(canonical) = dir.canonicalize() {
        settings.add_filter(&regex_escape(&canonical.display().to_string()), "[ROOT]");
    }
    settings.set_prepend_module_to_snapshot(false);
    settings
}

pub fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
pub mod model_server;
pub mod webdriver;

/// The git command in `dir`, hermetic: no user or system config, and no `GIT_DIR` or
/// `GIT_WORK_TREE` from the environment the tests run in.
pub fn git_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .current_dir(dir)
        .env("HOME", hermetic())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE");
    cmd
}

/// Runs [`git_command`], which must succeed; its stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_command(dir, args).output().expect("git is installed");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `git clone --bare SOURCE DEST`.
pub fn bare_clone(source: &Path, dest: &Path) {
    let (source, dest) = (source.to_string_lossy(), dest.to_string_lossy());
    git(
        Path::new("/"),
        &["clone", "--quiet", "--bare", &source, &dest],
    );
}

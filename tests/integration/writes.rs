//! The guarantees of the commands that write (`commit`, `set-default`, `restore`) and of the
//! manifest, in every repository state: each write lands whole or not at all, never loses a
//! user's other change, and a manifest that does not load is an error, never a fallback.

use std::path::Path;
use std::process::Output;

use crate::common::{cli, TestRepo};

const PROMPT: &str = "messages:\n  - role: user\n    content: hi\n";
/// `PROMPT` edited: what most tests commit as version 2.
const EDITED: &str = "messages:\n  - role: user\n    content: v2\n";

/// A repository with prompts `a` and `b` at version 1 and an empty manifest.
fn registry() -> TestRepo {
    let mut repo = TestRepo::new();
    repo.write("a.prompt.yaml", PROMPT);
    repo.write("b.prompt.yaml", PROMPT);
    repo.write("defaults.yaml", "defaults:\n");
    repo.commit("Add a and b");
    repo
}

fn run(dir: &Path, args: &[&str]) -> Output {
    cli(dir).args(args).output().expect("run promptreg")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The git command, hermetic: no user or system config.
fn git(dir: &Path, args: &[&str]) -> Output {
    crate::common::git_command(dir, args)
        .output()
        .expect("git is installed")
}

/// `git fsck` is clean and `git status` shows exactly `expected` (porcelain lines, sorted).
fn assert_git_state(dir: &Path, expected: &[&str]) {
    let fsck = git(dir, &["fsck", "--no-dangling"]);
    assert!(fsck.status.success(), "fsck: {}", stderr(&fsck));
    let status = stdout(&git(dir, &["status", "--porcelain"]));
    let mut lines: Vec<&str> = status.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, expected, "git status");
}

// --- 1. A broken manifest is never silently ignored ---------------------------------------

#[test]
fn a_manifest_that_does_not_load_is_an_error_for_every_resolution() {
    let broken = [
        ("quoted-version", "defaults:\n  a: \"1\"\n"),
        ("duplicate-key", "defaults:\n  a: 1\n  a: 1\n"),
        ("syntax-error-elsewhere", "defaults:\n  a: 1\nlabels: [\n"),
        (
            "conflict-markers",
            "defaults:\n<<<<<<< HEAD\n  a: 1\n=======\n  b: 1\n>>>>>>> topic\n",
        ),
        ("zero", "defaults:\n  a: 0\n"),
        ("bad-label", "labels:\n  latest:\n    a: 1\n"),
    ];
    let mut out = String::new();
    for (name, manifest) in broken {
        let mut repo = registry();
        repo.write("a.prompt.yaml", EDITED);
        repo.commit("a v2");
        repo.write("defaults.yaml", manifest);
        for args in [
            &["render", "a"][..],
            &["get-default", "a"],
            &["show", "a"],
            &["list"],
            &["versions", "a"],
        ] {
            let output = run(repo.path(), args);
            assert_eq!(
                output.status.code(),
                Some(1),
                "{name}: {args:?} must fail: {}",
                stdout(&output)
            );
            assert!(
                stdout(&output).is_empty(),
                "{name}: {args:?} printed a result"
            );
            assert!(
                stderr(&output).contains("defaults.yaml:"),
                "{name}: {args:?} does not name the manifest's line: {}",
                stderr(&output)
            );
        }
        out.push_str(&format!(
            "== {name}\n{}",
            stderr(&run(repo.path(), &["get-default", "a"]))
        ));
    }
    insta::assert_snapshot!("broken_manifest_errors", out);
}

#[test]
fn set_default_refuses_a_broken_manifest_and_changes_nothing() {
    let repo = registry();
    let text = "defaults:\n  a: 1\n  a: 1\n";
    repo.write("defaults.yaml", text);
    let output = run(repo.path(), &["set-default", "b", "1"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("defaults.yaml:3"),
        "{}",
        stderr(&output)
    );
    assert_eq!(repo.read("defaults.yaml"), text);
}

// --- 2. commit and set-default --commit are all-or-nothing ---------------------------------

#[test]
fn a_locked_index_refuses_before_anything_moves() {
    let repo = registry();
    repo.write("a.prompt.yaml", EDITED);
    let lock = repo.path().join(".git/index.lock");
    let stale = std::fs::File::create(&lock).expect("lock");
    stale
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .expect("age the lock");
    let head = repo.head();
    let index = std::fs::read(repo.path().join(".git/index")).expect("index");
    for args in [
        &["commit", "a", "-m", "v2"][..],
        &["set-default", "a", "1", "--commit"],
    ] {
        let output = run(repo.path(), args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let err = stderr(&output);
        assert!(err.contains("index.lock exists"), "{err}");
        assert!(err.contains("delete the file"), "{err}");
        assert_eq!(repo.head(), head, "{args:?} moved HEAD");
        assert_eq!(
            std::fs::read(repo.path().join(".git/index")).expect("index"),
            index,
            "{args:?} touched the index"
        );
    }
    assert_eq!(
        repo.read("defaults.yaml"),
        "defaults:\n",
        "manifest written"
    );
    assert!(lock.exists(), "the user's lock file was removed");
    std::fs::remove_file(&lock).expect("unlock");
    let output = run(repo.path(), &["commit", "a", "-m", "v2"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // The index stages exactly what was committed: nothing to commit, nothing reverted.
    assert_git_state(repo.path(), &[]);
}

#[test]
fn a_lock_held_by_a_running_writer_is_waited_for() {
    let repo = registry();
    repo.write("a.prompt.yaml", EDITED);
    let lock = repo.path().join(".git/index.lock");
    std::fs::write(&lock, "").expect("lock");
    let release = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            std::fs::remove_file(lock).expect("unlock");
        })
    };
    let output = run(repo.path(), &["commit", "a", "-m", "v2"]);
    release.join().expect("release");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output).split(' ').nth(1), Some("v2"));
    assert_git_state(repo.path(), &[]);
}

#[test]
fn a_sparse_index_is_refused_and_left_alone() {
    let repo = registry();
    let sparse = git(
        repo.path(),
        &["sparse-checkout", "init", "--cone", "--sparse-index"],
    );
    assert!(sparse.status.success(), "{}", stderr(&sparse));
    repo.write("a.prompt.yaml", EDITED);
    let head = repo.head();
    let index = std::fs::read(repo.path().join(".git/index")).expect("index");
    let output = run(repo.path(), &["commit", "a", "-m", "v2"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("sparse index"),
        "{}",
        stderr(&output)
    );
    assert_eq!(repo.head(), head);
    assert_eq!(
        std::fs::read(repo.path().join(".git/index")).expect("index"),
        index
    );
    assert_git_state(repo.path(), &[" M a.prompt.yaml"]);
}

#[test]
fn operations_in_progress_are_refused() {
    let cases = [
        ("MERGE_HEAD", "a merge", "git merge --abort"),
        (
            "CHERRY_PICK_HEAD",
            "a cherry-pick",
            "git cherry-pick --abort",
        ),
        ("REVERT_HEAD", "a revert", "git revert --abort"),
        ("rebase-merge", "a rebase", "git rebase --abort"),
    ];
    let mut out = String::new();
    for (file, what, undo) in cases {
        let repo = registry();
        repo.write("a.prompt.yaml", EDITED);
        let head = repo.head();
        let marker = repo.path().join(".git").join(file);
        if file.contains('-') {
            std::fs::create_dir(&marker).expect("state dir");
            std::fs::write(marker.join("head-name"), "refs/heads/main\n").expect("state");
        } else {
            std::fs::write(&marker, format!("{head}\n")).expect("state");
        }
        for args in [
            &["commit", "a", "-m", "v2"][..],
            &["set-default", "a", "1", "--commit"],
        ] {
            let output = run(repo.path(), args);
            assert_eq!(output.status.code(), Some(2), "{file} {args:?}");
            let err = stderr(&output);
            assert!(err.contains(what) && err.contains(undo), "{err}");
            assert_eq!(repo.head(), head);
            assert!(marker.exists(), "{file} was removed");
        }
        let root = repo.path().canonicalize().expect("root");
        let err = stderr(&run(repo.path(), &["commit", "a", "-m", "v2"]));
        out.push_str(&err.replace(&root.display().to_string(), "[ROOT]"));
    }
    insta::assert_snapshot!("operations_in_progress", out);
}

#[test]
fn a_real_merge_in_progress_keeps_its_parent_and_index() {
    let mut repo = registry();
    repo.branch("topic");
    repo.write(
        "b.prompt.yaml",
        "messages:\n  - role: user\n    content: topic\n",
    );
    repo.commit("b on topic");
    repo.checkout("main");
    repo.write(
        "b.prompt.yaml",
        "messages:\n  - role: user\n    content: main\n",
    );
    repo.commit("b on main");
    let merge = git(repo.path(), &["merge", "topic"]);
    assert!(!merge.status.success(), "the merge must conflict");
    repo.write("a.prompt.yaml", EDITED);
    let index = std::fs::read(repo.path().join(".git/index")).expect("index");
    let output = run(repo.path(), &["commit", "a", "-m", "v2"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(repo.path().join(".git/MERGE_HEAD").exists());
    assert_eq!(
        std::fs::read(repo.path().join(".git/index")).expect("index"),
        index
    );
}

#[test]
fn a_path_inside_a_submodule_is_refused() {
    let mut inner = TestRepo::new();
    inner.write("s.prompt.yaml", PROMPT);
    inner.commit("inner");
    let inner_head = inner.head();
    let mut outer = registry();
    // A gitlink entry, as `git submodule add` records it.
    {
        let mut index = outer.repo.index().expect("index");
        let entry = git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: 0o160000,
            uid: 0,
            gid: 0,
            file_size: 0,
            id: git2::Oid::from_str(&inner_head).expect("oid"),
            flags: 3,
            flags_extended: 0,
            path: b"mod".to_vec(),
        };
        index.add(&entry).expect("gitlink");
        index.write().expect("write");
    }
    outer.commit_index("Add submodule");
    std::fs::create_dir(outer.path().join("mod")).expect("mod");
    outer.write(
        "mod/s.prompt.yaml",
        "messages:\n  - role: user\n    content: edited\n",
    );
    outer.write(
        "mod/.git",
        &format!("gitdir: {}\n", inner.path().join(".git").display()),
    );
    // The submodule's files are not the superproject's prompts, as they are not its files.
    let list = stdout(&run(outer.path(), &["list"]));
    assert!(!list.contains("mod/s"), "{list}");
    let head = outer.head();
    let output = run(outer.path(), &["commit", "mod/s", "-m", "edit"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("`mod` is a submodule"),
        "{}",
        stderr(&output)
    );
    assert_eq!(outer.head(), head);
    let tree = outer
        .repo
        .find_commit(git2::Oid::from_str(&head).expect("oid"))
        .expect("commit")
        .tree()
        .expect("tree");
    assert_eq!(tree.get_name("mod").expect("mod").filemode(), 0o160000);
}

#[test]
fn a_separate_git_dir_commits_paths_of_the_work_tree() {
    let dir = crate::common::tempdir();
    let git_dir = dir.path().join("store.git");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("work");
    // What `git init --separate-git-dir` leaves: a `.git` file, no core.worktree.
    let repo = git2::Repository::init_bare(&git_dir).expect("init");
    repo.set_head("refs/heads/main").expect("head");
    {
        let mut config = repo.config().expect("config");
        config.set_bool("core.bare", false).expect("bare");
        config.set_str("user.name", "Test Author").expect("name");
        config
            .set_str("user.email", "author@example.com")
            .expect("email");
    }
    std::fs::write(
        work.join(".git"),
        format!("gitdir: {}\n", git_dir.display()),
    )
    .expect("gitlink");
    std::fs::create_dir(work.join("p")).expect("p");
    std::fs::write(work.join("p/a.prompt.yaml"), PROMPT).expect("prompt");
    let output = run(&work, &["commit", "p/a", "-m", "one"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let head = repo.head().expect("head").peel_to_tree().expect("tree");
    assert!(head.get_path(Path::new("p/a.prompt.yaml")).is_ok());
    assert_eq!(head.len(), 1, "only `p` at the top of the tree");
    assert_git_state(&work, &[]);
    // GIT_DIR and GIT_WORK_TREE name the same repository from anywhere.
    let output = cli(dir.path())
        .env("GIT_DIR", &git_dir)
        .env("GIT_WORK_TREE", &work)
        .args(["-C", "work", "versions", "p/a"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).starts_with("v1 "), "{}", stdout(&output));
}

#[test]
fn a_detached_head_commits_and_says_so() {
    let repo = registry();
    let head = repo.head();
    repo.repo
        .set_head_detached(git2::Oid::from_str(&head).expect("oid"))
        .expect("detach");
    repo.write("a.prompt.yaml", EDITED);
    let output = run(repo.path(), &["commit", "a", "-m", "v2"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("HEAD is detached"),
        "{}",
        stderr(&output)
    );
    assert!(repo.repo.head_detached().expect("detached"));
    assert_ne!(repo.head(), head);
    let main = repo
        .repo
        .find_branch("main", git2::BranchType::Local)
        .expect("main");
    assert_eq!(main.get().target().expect("target").to_string(), head);
}

#[test]
fn staged_and_unstaged_changes_of_other_files_are_kept() {
    let repo = registry();
    repo.write(
        "b.prompt.yaml",
        "messages:\n  - role: user\n    content: staged\n",
    );
    git(repo.path(), &["add", "b.prompt.yaml"]);
    repo.write(
        "b.prompt.yaml",
        "messages:\n  - role: user\n    content: unstaged\n",
    );
    repo.write("notes.txt", "untracked\n");
    repo.write("a.prompt.yaml", EDITED);
    let output = run(repo.path(), &["commit", "a", "-m", "v2"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_git_state(repo.path(), &["?? notes.txt", "MM b.prompt.yaml"]);
    let staged = stdout(&git(repo.path(), &["show", ":b.prompt.yaml"]));
    assert!(staged.contains("staged"), "{staged}");
}

#[test]
fn set_default_commit_keeps_uncommitted_manifest_edits_out_of_the_commit() {
    let repo = registry();
    repo.write("defaults.yaml", "# a local note\ndefaults:\n");
    let output = run(repo.path(), &["set-default", "a", "1", "--commit"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let committed = stdout(&git(repo.path(), &["show", "HEAD:defaults.yaml"]));
    assert_eq!(committed, "defaults:\n  a: 1\n");
    assert_eq!(
        repo.read("defaults.yaml"),
        "# a local note\ndefaults:\n  a: 1\n"
    );
    assert_git_state(repo.path(), &[" M defaults.yaml"]);
}

#[test]
fn identity_comes_from_the_environment_as_git_takes_it() {
    let repo = registry();
    {
        let mut config = repo.repo.config().expect("config");
        config.remove("user.name").expect("name");
        config.remove("user.email").expect("email");
    }
    repo.write("a.prompt.yaml", EDITED);
    let output = run(repo.path(), &["commit", "a", "-m", "v2"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("GIT_AUTHOR_NAME"),
        "{}",
        stderr(&output)
    );
    let output = cli(repo.path())
        .env("GIT_AUTHOR_NAME", "Release Bot")
        .env("GIT_AUTHOR_EMAIL", "bot@example.com")
        .env("GIT_AUTHOR_DATE", "2024-05-01T12:30:00+02:00")
        .env("GIT_COMMITTER_NAME", "CI")
        .env("GIT_COMMITTER_EMAIL", "ci@example.com")
        .env("GIT_COMMITTER_DATE", "@1714559400 +0000")
        .args(["commit", "a", "-m", "v2"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let commit = repo
        .repo
        .head()
        .expect("head")
        .peel_to_commit()
        .expect("commit");
    assert_eq!(commit.author().name(), Ok("Release Bot"));
    assert_eq!(commit.author().email(), Ok("bot@example.com"));
    assert_eq!(commit.author().when().seconds(), 1_714_559_400);
    assert_eq!(commit.author().when().offset_minutes(), 120);
    assert_eq!(commit.committer().name(), Ok("CI"));
    assert_eq!(commit.committer().when().seconds(), 1_714_559_400);
}

// --- 3. Concurrent writers lose nothing ----------------------------------------------------

fn many_prompts(count: usize) -> TestRepo {
    let mut repo = TestRepo::new();
    for i in 0..count {
        repo.write(&format!("p{i}.prompt.yaml"), PROMPT);
    }
    repo.write("defaults.yaml", "# pinned versions\ndefaults:\n");
    repo.commit("Add prompts");
    repo
}

fn parallel(dir: &Path, commands: Vec<Vec<String>>) {
    let children: Vec<_> = commands
        .into_iter()
        .map(|args| {
            cli(dir)
                .args(&args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().expect("wait");
        assert!(output.status.success(), "{}", stderr(&output));
    }
}

#[test]
fn twenty_parallel_set_defaults_leave_twenty_entries() {
    for commit in [false, true] {
        let repo = many_prompts(20);
        let commands = (0..20)
            .map(|i| {
                let mut args = vec!["set-default".to_string(), format!("p{i}"), "1".into()];
                if commit {
                    args.push("--commit".into());
                }
                args
            })
            .collect();
        parallel(repo.path(), commands);
        let text = repo.read("defaults.yaml");
        assert!(text.starts_with("# pinned versions\ndefaults:\n"), "{text}");
        for i in 0..20 {
            assert!(
                text.contains(&format!("\n  p{i}: 1\n")),
                "p{i} lost: {text}"
            );
        }
        if commit {
            let committed = stdout(&git(repo.path(), &["show", "HEAD:defaults.yaml"]));
            assert_eq!(committed, text);
            let count = stdout(&git(repo.path(), &["rev-list", "--count", "HEAD"]));
            assert_eq!(count.trim(), "21");
            assert_git_state(repo.path(), &[]);
        } else {
            assert_git_state(repo.path(), &[" M defaults.yaml"]);
        }
    }
}

#[test]
fn parallel_commits_of_different_prompts_all_land() {
    let repo = many_prompts(8);
    for i in 0..8 {
        repo.write(
            &format!("p{i}.prompt.yaml"),
            &format!("messages:\n  - role: user\n    content: edit {i}\n"),
        );
    }
    let commands = (0..8)
        .map(|i| {
            vec![
                "commit".to_string(),
                format!("p{i}"),
                "-m".into(),
                format!("edit p{i}"),
            ]
        })
        .collect();
    parallel(repo.path(), commands);
    let count = stdout(&git(
        repo.path(),
        &["rev-list", "--count", "--first-parent", "HEAD"],
    ));
    assert_eq!(count.trim(), "9");
    assert_git_state(repo.path(), &[]);
    for i in 0..8 {
        let output = run(repo.path(), &["versions", &format!("p{i}")]);
        assert!(stdout(&output).starts_with("v2 "), "{}", stdout(&output));
    }
}

// --- 4. Line endings and encodings as git has them ----------------------------------------

#[test]
fn autocrlf_checkouts_are_clean_and_commits_store_lf() {
    let repo = registry();
    repo.repo
        .config()
        .expect("config")
        .set_str("core.autocrlf", "true")
        .expect("autocrlf");
    // A fresh checkout with autocrlf writes CRLF.
    std::fs::remove_file(repo.path().join("a.prompt.yaml")).expect("rm");
    let mut opts = git2::build::CheckoutBuilder::new();
    opts.force();
    repo.repo.checkout_head(Some(&mut opts)).expect("checkout");
    assert!(
        repo.read("a.prompt.yaml").contains("\r\n"),
        "checkout wrote LF"
    );
    // Not modified: list, commit and restore agree with git status.
    let list = stdout(&run(repo.path(), &["list"]));
    assert!(!list.contains('*'), "{list}");
    let output = run(repo.path(), &["commit", "a", "-m", "nothing"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no changes"),
        "{}",
        stderr(&output)
    );
    let output = run(repo.path(), &["restore", "a@1"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        repo.read("a.prompt.yaml").contains("\r\n"),
        "restore wrote LF"
    );
    assert_git_state(repo.path(), &[]);
    // An edit saved with CRLF is committed as LF, as `git add` stores it.
    repo.write(
        "a.prompt.yaml",
        "messages:\r\n  - role: user\r\n    content: v2\r\n",
    );
    let output = run(repo.path(), &["commit", "a", "-m", "v2"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let blob = stdout(&git(repo.path(), &["show", "HEAD:a.prompt.yaml"]));
    assert_eq!(blob, EDITED);
    assert_git_state(repo.path(), &[]);
}

#[test]
fn gitattributes_decide_line_endings_as_for_git() {
    let mut repo = TestRepo::new();
    repo.write(
        ".gitattributes",
        "a.prompt.yaml text eol=crlf\nb.prompt.yaml -text\n",
    );
    repo.write("a.prompt.yaml", PROMPT);
    repo.write("b.prompt.yaml", PROMPT);
    repo.commit("a and b");
    // `eol=crlf`: checkout writes CRLF, and that is clean.
    std::fs::remove_file(repo.path().join("a.prompt.yaml")).expect("rm");
    let mut opts = git2::build::CheckoutBuilder::new();
    opts.force();
    repo.repo.checkout_head(Some(&mut opts)).expect("checkout");
    assert_eq!(repo.read("a.prompt.yaml"), PROMPT.replace('\n', "\r\n"));
    // `-text`: the same bytes with CRLF are a change, for git and for promptreg alike.
    repo.write("b.prompt.yaml", &PROMPT.replace('\n', "\r\n"));
    let list = stdout(&run(repo.path(), &["list"]));
    assert!(list.contains("b*"), "{list}");
    assert!(!list.contains("a*"), "{list}");
    assert_git_state(repo.path(), &[" M b.prompt.yaml"]);
    let output = run(repo.path(), &["commit", "b", "-m", "crlf"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let blob = stdout(&git(repo.path(), &["show", "HEAD:b.prompt.yaml"]));
    assert_eq!(
        blob,
        PROMPT.replace('\n', "\r\n"),
        "-text is stored as it is"
    );
    // A CRLF edit of `a` is stored with LF, and restore writes CRLF back.
    repo.write("a.prompt.yaml", &EDITED.replace('\n', "\r\n"));
    let output = run(repo.path(), &["commit", "a", "-m", "v2"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let blob = stdout(&git(repo.path(), &["show", "HEAD:a.prompt.yaml"]));
    assert_eq!(blob, EDITED);
    let output = run(repo.path(), &["restore", "a@1"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(repo.read("a.prompt.yaml"), PROMPT.replace('\n', "\r\n"));
    assert_git_state(repo.path(), &[" M a.prompt.yaml"]);
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let mut repo = TestRepo::new();
    repo.write("a.prompt.yaml", &format!("\u{feff}{PROMPT}"));
    repo.commit("a");
    repo.write(
        "a.prompt.yaml",
        &format!("\u{feff}{}", PROMPT.replace("hi", "v2")),
    );
    repo.commit("a v2");
    repo.write("defaults.yaml", "\u{feff}defaults:\n  a: 1\n");
    let output = run(repo.path(), &["validate"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = run(repo.path(), &["render", "a"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("hi"), "default v1 not used");
    let output = run(repo.path(), &["set-default", "a", "2"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(repo.read("defaults.yaml"), "\u{feff}defaults:\n  a: 2\n");
}

#[test]
fn commit_messages_are_shown_in_their_declared_encoding() {
    let mut repo = TestRepo::new();
    repo.write("a.prompt.yaml", PROMPT);
    repo.commit("a");
    repo.write("a.prompt.yaml", EDITED);
    let commit = repo.commit("placeholder");
    // The same commit, as git writes it with i18n.commitEncoding=ISO-8859-1: an `encoding`
    // header, and the author's name and the message in Latin-1 ("José", "Café").
    let odb = repo.repo.odb().expect("odb");
    let raw = odb
        .read(git2::Oid::from_str(&commit).expect("oid"))
        .expect("read")
        .data()
        .to_vec();
    let text = String::from_utf8(raw).expect("utf-8");
    let (headers, _) = text.split_once("\n\n").expect("headers");
    let mut latin1 = headers
        .replace("author Test Author", "author Jos\u{1}")
        .into_bytes();
    for b in latin1.iter_mut().filter(|b| **b == 1) {
        *b = 0xe9;
    }
    latin1.extend_from_slice(b"\nencoding ISO-8859-1\n\nCaf\xe9 au lait\n");
    let id = odb
        .write(git2::ObjectType::Commit, &latin1)
        .expect("commit");
    repo.repo
        .reference("refs/heads/main", id, true, "latin-1 commit")
        .expect("ref");
    let output = run(repo.path(), &["versions", "a"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("Café au lait"), "{text}");
    assert!(text.contains("José"), "{text}");
}

// --- 5. Writing the manifest keeps its meaning for every YAML reader ----------------------

#[test]
fn ids_that_yaml_reads_as_other_types_are_written_quoted() {
    let ids = [
        "true", "null", "yes", "123", "1.0", "0x10", "NULL", "off", "a b",
    ];
    let mut repo = TestRepo::new();
    for id in ids {
        repo.write(&format!("{id}.prompt.yaml"), PROMPT);
    }
    repo.write("plain/id.prompt.yaml", PROMPT);
    repo.commit("Add prompts");
    for id in ids.iter().chain(&["plain/id"]) {
        let output = run(repo.path(), &["set-default", id, "1"]);
        assert_eq!(output.status.code(), Some(0), "{id}: {}", stderr(&output));
    }
    let text = repo.read("defaults.yaml");
    insta::assert_snapshot!("quoted_manifest_keys", text);
    // Every YAML reader gets strings back: serde_yaml (YAML 1.2) and yaml-rust2.
    let value: serde_yaml::Value = serde_yaml::from_str(&text).expect("parses");
    let defaults = value["defaults"].as_mapping().expect("mapping");
    assert!(defaults.keys().all(serde_yaml::Value::is_string), "{text}");
    for id in ids {
        let output = run(repo.path(), &["get-default", id]);
        assert_eq!(output.status.code(), Some(0), "{id}: {}", stderr(&output));
        assert!(stdout(&output).contains('1'), "{id}: {}", stdout(&output));
        // Setting it again edits the same line.
        let output = run(repo.path(), &["set-default", id, "1"]);
        assert_eq!(output.status.code(), Some(0), "{id}: {}", stderr(&output));
    }
    assert_eq!(repo.read("defaults.yaml"), text);
}

#[test]
fn a_symlinked_manifest_is_written_through() {
    let repo = registry();
    std::fs::create_dir(repo.path().join("config")).expect("dir");
    std::fs::write(repo.path().join("config/defaults.yaml"), "defaults:\n").expect("target");
    std::fs::remove_file(repo.path().join("defaults.yaml")).expect("rm");
    std::os::unix::fs::symlink("config/defaults.yaml", repo.path().join("defaults.yaml"))
        .expect("symlink");
    let output = run(repo.path(), &["set-default", "a", "1"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let meta = std::fs::symlink_metadata(repo.path().join("defaults.yaml")).expect("meta");
    assert!(meta.file_type().is_symlink(), "the symlink was replaced");
    assert_eq!(repo.read("config/defaults.yaml"), "defaults:\n  a: 1\n");
    // Committing through the link would replace it in git: refused, nothing changed.
    let head = repo.head();
    let output = run(repo.path(), &["set-default", "b", "1", "--commit"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("symlink"), "{}", stderr(&output));
    assert_eq!(repo.head(), head);
    assert_eq!(repo.read("config/defaults.yaml"), "defaults:\n  a: 1\n");
}

#[test]
fn labels_that_can_never_resolve_are_refused() {
    let repo = registry();
    let mut out = String::new();
    for label in ["latest", "work", "3", "", "a@b", "-x", "two words"] {
        let flag = format!("--label={label}");
        let output = run(repo.path(), &["set-default", "a", "1", &flag]);
        assert_eq!(output.status.code(), Some(2), "{label:?}");
        out.push_str(&stderr(&output));
    }
    assert_eq!(repo.read("defaults.yaml"), "defaults:\n");
    insta::assert_snapshot!("refused_labels", out);
    let output = run(
        repo.path(),
        &["set-default", "a", "1", "--label", "prod-eu.2"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = run(repo.path(), &["render", "a@prod-eu.2"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn a_crash_at_any_step_leaves_the_repository_valid_and_loses_nothing() {
    // Before the index is published: nothing changed but git's lock file, as with git itself.
    let repo = registry();
    let edited = EDITED;
    repo.write("a.prompt.yaml", edited);
    let head = repo.head();
    let index = std::fs::read(repo.path().join(".git/index")).expect("index");
    let output = cli(repo.path())
        .env("PROMPTREG_TEST_CRASH", "index-prepared")
        .args(["commit", "a", "-m", "v2"])
        .output()
        .expect("run");
    assert!(output.status.code().is_none(), "the process did not crash");
    assert_eq!(repo.head(), head);
    assert_eq!(
        std::fs::read(repo.path().join(".git/index")).expect("index"),
        index
    );
    let lock = repo.path().join(".git/index.lock");
    assert!(lock.exists(), "the lock a crash leaves, as git's would");
    std::fs::remove_file(&lock).expect("delete it as the message says");
    assert_git_state(repo.path(), &[" M a.prompt.yaml"]);
    assert_eq!(repo.read("a.prompt.yaml"), edited);

    // After the index is published, before the branch moves: the edit is staged, not lost and
    // not reversed; running the command again completes it.
    let output = cli(repo.path())
        .env("PROMPTREG_TEST_CRASH", "index-published")
        .args(["commit", "a", "-m", "v2"])
        .output()
        .expect("run");
    assert!(output.status.code().is_none(), "the process did not crash");
    assert_eq!(repo.head(), head);
    assert!(!lock.exists());
    assert_git_state(repo.path(), &["M  a.prompt.yaml"]);
    let output = run(repo.path(), &["commit", "a", "-m", "v2"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_git_state(repo.path(), &[]);
    let output = run(repo.path(), &["versions", "a"]);
    assert!(stdout(&output).starts_with("v2 "), "{}", stdout(&output));
}

#[test]
fn review_refuses_a_manifest_that_does_not_load() {
    let mut repo = registry();
    repo.write("defaults.yaml", "defaults:\n  a: 1\n");
    repo.commit("pin a");
    repo.branch("topic");
    repo.write("defaults.yaml", "defaults:\n  a: \"1\"\n");
    repo.commit("quote it");
    let output = run(repo.path(), &["review", "--base", "main"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("defaults.yaml:2:6"),
        "{}",
        stderr(&output)
    );
    assert!(
        stdout(&output).is_empty(),
        "a report was written: {}",
        stdout(&output)
    );
}

#[test]
fn list_shows_prompt_files_it_cannot_read() {
    let repo = registry();
    repo.write(
        "big.prompt.yaml",
        &format!("template: |\n{}", "  x\n".repeat(2 * 1024 * 1024)),
    );
    let fifo = std::process::Command::new("mkfifo")
        .arg(repo.path().join("pipe.prompt.yaml"))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());
    let output = run(repo.path(), &["list"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let list = stdout(&output);
    assert!(list.contains("big*"), "{list}");
    // A FIFO is no file for git either: not listed, and never opened.
    assert!(!list.contains("pipe"), "{list}");
    // validate says what is wrong with the big one.
    let output = run(repo.path(), &["validate"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("unreadable"),
        "{}",
        stdout(&output)
    );
}

// --- The write API through the CLI: delete, the id rule, set-default's note -----------------

/// `delete` is one commit that removes the file and its manifest lines; the working copy
/// follows, and an uncommitted line of `defaults.yaml` stays.
#[test]
fn delete_removes_a_prompt_and_its_manifest_lines_in_one_commit() {
    let mut repo = registry();
    repo.write(
        "defaults.yaml",
        "# pins\ndefaults:\n  a: 1\n  b: 1\nlabels:\n  prod:\n    a: 1\n",
    );
    repo.commit("Pin a and b");
    let before = repo.head();
    // An uncommitted line, and an untracked file: both stay.
    repo.write(
        "defaults.yaml",
        "# pins\ndefaults:\n  a: 1\n  b: 1\n  c: 3\nlabels:\n  prod:\n    a: 1\n",
    );
    repo.write("notes.txt", "mine\n");
    let out = run(repo.path(), &["delete", "a", "-m", "Retire a"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let head = repo.head();
    assert_ne!(head, before);
    assert!(stdout(&out).starts_with("deleted a ("), "{}", stdout(&out));
    let changed = stdout(&git(
        repo.path(),
        &["diff", "--name-status", &before, &head],
    ));
    assert_eq!(changed, "D\ta.prompt.yaml\nM\tdefaults.yaml\n");
    let message = stdout(&git(repo.path(), &["log", "-1", "--format=%s"]));
    assert_eq!(message, "Retire a\n");
    let committed = stdout(&git(repo.path(), &["show", "HEAD:defaults.yaml"]));
    assert_eq!(committed, "# pins\ndefaults:\n  b: 1\nlabels:\n");
    assert_eq!(
        repo.read("defaults.yaml"),
        "# pins\ndefaults:\n  b: 1\n  c: 3\nlabels:\n"
    );
    assert!(!repo.path().join("a.prompt.yaml").exists());
    assert_git_state(repo.path(), &[" M defaults.yaml", "?? notes.txt"]);
    // Its versions stay readable; it is no longer listed.
    let old = run(repo.path(), &["show", "a@1"]);
    assert_eq!(old.status.code(), Some(0), "{}", stderr(&old));
    let list = stdout(&run(repo.path(), &["list", "--format", "json"]));
    assert!(!list.contains("\"a\""), "{list}");
    // Without -m, the message names the deletion.
    let out = run(repo.path(), &["delete", "b"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let message = stdout(&git(repo.path(), &["log", "-1", "--format=%s"]));
    assert_eq!(message, "Delete b\n");
}

/// A prompt with uncommitted edits is not deleted (the edits would be lost), nor one that
/// does not exist; nothing changes.
#[test]
fn delete_refuses_to_lose_edits() {
    let repo = registry();
    let head = repo.head();
    repo.write("a.prompt.yaml", EDITED);
    let out = run(repo.path(), &["delete", "a"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not committed"), "{}", stderr(&out));
    let out = run(repo.path(), &["delete", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no prompt `nope`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(repo.head(), head);
    assert_eq!(repo.read("a.prompt.yaml"), EDITED);
    assert_git_state(repo.path(), &[" M a.prompt.yaml"]);
}

/// The CLI refuses the same ids the server does, before writing anything.
#[test]
fn the_cli_refuses_ids_that_pass_through_the_registrys_files() {
    let repo = registry();
    let head = repo.head();
    for id in [
        "defaults.yaml/x",
        "promptreg.yaml/x",
        "a.prompt.yaml/x",
        "a\u{202e}b",
    ] {
        let out = run(repo.path(), &["new", id]);
        assert_eq!(out.status.code(), Some(2), "{id}: {}", stderr(&out));
        assert!(stderr(&out).contains("cannot"), "{id}: {}", stderr(&out));
    }
    let out = run(repo.path(), &["set-default", "defaults.yaml/x", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(repo.head(), head);
    assert_eq!(repo.read("defaults.yaml"), "defaults:\n");
    assert_git_state(repo.path(), &[]);
}

/// Without --commit, set-default says that servers and other clones keep the committed default.
#[test]
fn set_default_without_commit_says_who_will_not_see_it() {
    let repo = registry();
    let out = run(repo.path(), &["set-default", "a", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("in the working copy only") && stderr(&out).contains("--commit"),
        "{}",
        stderr(&out)
    );
    let out = run(repo.path(), &["set-default", "a", "1", "--commit"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("working copy only"),
        "{}",
        stderr(&out)
    );
    let message = stdout(&git(repo.path(), &["log", "-1", "--format=%s"]));
    // The message every front end gives the same move (the server's is checked in serve_write).
    assert_eq!(message, "Set default of a to v1 (was unset)\n");
}

/// A new prompt committed from the CLI keeps its own file name (`.prompt.yml`), and the first
/// commit of an empty repository goes through the same write layer.
#[test]
fn commit_keeps_a_new_prompts_file_name_and_works_in_an_empty_repository() {
    let repo = TestRepo::new();
    repo.write("n.prompt.yml", PROMPT);
    let out = run(repo.path(), &["commit", "n", "-m", "Add n"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let tree = stdout(&git(repo.path(), &["ls-tree", "-r", "--name-only", "HEAD"]));
    assert_eq!(tree, "n.prompt.yml\n");
    assert_git_state(repo.path(), &[]);
}

/// A manifest entry that still pins a deleted prompt is a `validate` finding at its line: a
/// server would resolve the id to nothing (`git rm` leaves the entry; `promptreg delete` does
/// not).
#[test]
fn a_manifest_entry_for_a_deleted_prompt_is_a_finding() {
    let mut repo = registry();
    repo.write("defaults.yaml", "defaults:\n  a: 1\n");
    repo.commit("Pin a");
    repo.remove("a.prompt.yaml");
    repo.commit("Remove a by hand");
    let out = run(repo.path(), &["validate", "--format", "github"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(
            "::error file=defaults.yaml,line=2,col=3,title=manifest-deleted-prompt::the default names prompt `a`, which was deleted"
        ),
        "{}",
        stdout(&out)
    );
    // The CLI resolves it as a server does: no default any more, its versions by number.
    let out = run(repo.path(), &["render", "a"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("cannot resolve `a`: `a` was deleted before commit"),
        "{err}"
    );
    assert!(err.contains("its versions stay readable: `a@1`"), "{err}");
    let out = run(repo.path(), &["render", "a@1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let server = crate::serve::Server::start(&repo, &[]);
    let served = crate::serve::get(&server, "/v1/prompts/a");
    assert_eq!(served.status, 404, "{}", served.body);
    assert_eq!(
        served.json()["type"],
        "urn:promptreg:problem:bad-reference",
        "{}",
        served.body
    );
    assert_eq!(crate::serve::get(&server, "/v1/prompts/a@1").status, 200);
}

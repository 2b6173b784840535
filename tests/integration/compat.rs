//! Compatibility: prompts where people keep them (`.github/prompts/`), files named as a
//! registry's `promptreg.yaml` says, SHA-256 repositories refused in one line, `new` given a
//! file name, and the shell completions and manual page.

use std::path::Path;
use std::process::Output;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use promptreg::watch::{Event, Options, Watcher};
use serde_json::Value;

use crate::common::{cli, TestRepo};

fn prompt(text: &str) -> String {
    format!("template: \"{text}\"\ntestData: [{{}}]\n")
}

fn run(dir: &Path, args: &[&str]) -> Output {
    cli(dir).args(args).output().expect("run promptreg")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `list --format json` as (id, versions) pairs.
fn listed(dir: &Path, extra: &[&str]) -> Vec<(String, u64)> {
    let mut args = extra.to_vec();
    args.extend(["list", "--format", "json"]);
    let out = run(dir, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: Value = serde_json::from_slice(&out.stdout).expect("json");
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().expect("id").to_string(),
                r["versions"].as_u64().expect("versions"),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, u64)]) -> Vec<(String, u64)> {
    items.iter().map(|(i, n)| (i.to_string(), *n)).collect()
}

#[test]
fn github_prompts_are_found_in_the_working_copy_at_commits_and_in_history() {
    let mut repo = TestRepo::new();
    repo.write(".github/prompts/triage.prompt.yml", &prompt("v1"));
    repo.write(".github/.secret/x.prompt.yml", &prompt("hidden"));
    repo.write(".vscode/x.prompt.yaml", &prompt("hidden"));
    repo.write("a.prompt.yaml", &prompt("a"));
    repo.commit("Add prompts");
    repo.write(".github/prompts/triage.prompt.yml", &prompt("v2"));
    repo.commit("Edit triage");
    assert_eq!(
        listed(repo.path(), &[]),
        pairs(&[(".github/prompts/triage", 2), ("a", 1)])
    );
    // The commit snapshot finds it as well: the latest version and version 1.
    let out = run(repo.path(), &["render", ".github/prompts/triage@1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("v1"), "{}", stdout(&out));
    let out = run(repo.path(), &["render", ".github/prompts/triage"]);
    assert!(stdout(&out).contains("v2"), "{}", stdout(&out));
    let out = run(repo.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("2 prompts checked"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn promptreg_yaml_chooses_the_prompt_files_of_each_snapshot() {
    let mut repo = TestRepo::new();
    repo.write("promptreg.yaml", "prompts:\n  - \"examples/*.yml\"\n");
    repo.write("examples/sample_prompt.yml", &prompt("sample v1"));
    repo.write("examples/deep/not.yml", &prompt("deeper than the pattern"));
    repo.write("x.prompt.yaml", &prompt("x"));
    repo.write("defaults.yaml", "defaults: {}\n");
    repo.commit("Add examples");
    repo.write("examples/sample_prompt.yml", &prompt("sample v2"));
    repo.commit("Edit the sample");
    assert_eq!(
        listed(repo.path(), &[]),
        pairs(&[("examples/sample_prompt", 2)])
    );
    let out = run(repo.path(), &["render", "examples/sample_prompt@1"]);
    assert!(stdout(&out).contains("sample v1"), "{}", stderr(&out));
    let out = run(repo.path(), &["show", "x"]);
    assert_eq!(out.status.code(), Some(2), "x is not a prompt here");

    // Uncommitted settings are the working copy's: the new file is listed, without versions
    // (the committed settings number versions).
    repo.write(
        "promptreg.yaml",
        "prompts:\n  - \"examples/*.yml\"\n  - \"*.prompt.yaml\"\n",
    );
    assert_eq!(
        listed(repo.path(), &[]),
        pairs(&[("examples/sample_prompt", 2), ("x", 0)])
    );
    // Committed, the index (cached for the old tip) is rebuilt: x has its version from the
    // first commit, though that commit's settings did not select it.
    repo.commit("Count x.prompt.yaml as a prompt");
    assert_eq!(
        listed(repo.path(), &[]),
        pairs(&[("examples/sample_prompt", 2), ("x", 1)])
    );
    let out = run(repo.path(), &["versions", "x", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // At the first commit its own settings apply.
    assert_eq!(
        listed(repo.path(), &["--rev", "HEAD~2"]),
        pairs(&[("examples/sample_prompt", 1), ("x", 0)])
    );
    let out = run(repo.path(), &["--rev", "HEAD~2", "show", "x@1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
}

#[test]
fn bad_settings_name_the_file_and_line() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("a.prompt.yaml"), prompt("a")).expect("write");
    std::fs::write(
        dir.path().join("promptreg.yaml"),
        "prompts:\n  - \"**/*.prompt.yaml\"\n  - \"docs/*.rs\"\n",
    )
    .expect("write");
    let out = run(dir.path(), &["list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("promptreg.yaml:3:5"), "{err}");
    assert!(err.contains("bad `prompts` pattern `docs/*.rs`"), "{err}");
    let out = run(dir.path(), &["validate", "--format", "github"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with(
            "::error file=promptreg.yaml,line=3,col=5,title=invalid-config::bad `prompts` pattern"
        ),
        "{}",
        stdout(&out)
    );
}

/// Waits for the next status of `id`, skipping other events.
fn status_of(events: &Receiver<Event>, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(Event::Status(status)) if status.id == id => {
                return status
                    .rendered
                    .first()
                    .map(|r| format!("{:?}", r))
                    .unwrap_or_default()
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no status of `{id}`");
}

#[test]
fn watch_sees_github_prompts_and_follows_the_settings() {
    let dir = tempfile::tempdir().expect("dir");
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write(".github/prompts/triage.prompt.yml", &prompt("first"));
    write("other/extra.yml", &prompt("extra"));
    let options = Options {
        render: true,
        ..Options::default()
    };
    let (watcher, events) = Watcher::start(dir.path(), Vec::new(), options).expect("watch");
    assert!(status_of(&events, ".github/prompts/triage").contains("first"));
    write(".github/prompts/triage.prompt.yml", &prompt("second"));
    assert!(status_of(&events, ".github/prompts/triage").contains("second"));
    write(
        "promptreg.yaml",
        "prompts: [\"**/*.prompt.yml\", \"other/*.yml\"]\n",
    );
    assert!(status_of(&events, "other/extra").contains("extra"));
    write("other/extra.yml", &prompt("edited"));
    assert!(status_of(&events, "other/extra").contains("edited"));
    write("promptreg.yaml", "prompts: [\"**/*.prompt.yml\"]\n");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("no removal of other/extra");
        match events.recv_timeout(left) {
            Ok(Event::Removed { id, .. }) if id == "other/extra" => break,
            Ok(_) => {}
            Err(e) => panic!("no removal of other/extra: {e}"),
        }
    }
    watcher.stop();
}

#[test]
fn sha256_repositories_get_one_clear_line() {
    let dir = tempfile::tempdir().expect("dir");
    let init = std::process::Command::new("git")
        .args(["init", "-q", "--object-format=sha256"])
        .arg(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output();
    match init {
        Ok(out) if out.status.success() => {}
        other => {
            assert!(
                std::env::var_os("CI").is_none(),
                "git cannot create a SHA-256 repository: {other:?}"
            );
            eprintln!("SKIPPED: this git cannot create a SHA-256 repository ({other:?})");
            return;
        }
    }
    std::fs::create_dir(dir.path().join("p")).expect("mkdir");
    std::fs::write(dir.path().join("p/a.prompt.yaml"), prompt("a")).expect("write");
    let root = dir.path().canonicalize().expect("canonical");
    for (at, args) in [
        (dir.path().to_path_buf(), vec!["validate"]),
        (dir.path().join("p"), vec!["list"]),
        (dir.path().to_path_buf(), vec!["render", "p/a"]),
    ] {
        let out = run(&at, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            stderr(&out),
            format!(
                "error: {} is a SHA-256 repository; promptreg reads SHA-1 repositories only\n",
                root.display()
            ),
            "{args:?}"
        );
    }
}

#[test]
fn new_given_a_file_name_creates_that_file() {
    let dir = tempfile::tempdir().expect("dir");
    for (given, file) in [
        ("a.prompt.yaml", "a.prompt.yaml"),
        ("sub/b.prompt.yml", "sub/b.prompt.yml"),
        ("c", "c.prompt.yaml"),
    ] {
        let out = run(dir.path(), &["new", given]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(dir.path().join(file).is_file(), "{given} -> {file}");
    }
    let out = run(dir.path(), &["new", "a"]);
    assert_eq!(out.status.code(), Some(2), "a exists");
    let out = run(dir.path(), &["new", "sub/b.prompt.yaml"]);
    assert_eq!(out.status.code(), Some(2), "sub/b exists as .prompt.yml");
    assert_eq!(
        listed(dir.path(), &[]),
        pairs(&[("a", 0), ("c", 0), ("sub/b", 0)])
    );
}

const SUBCOMMANDS: &[&str] = &[
    "list",
    "versions",
    "show",
    "render",
    "get-default",
    "set-default",
    "commit",
    "restore",
    "validate",
    "diff",
    "review",
    "new",
    "schema",
    "watch",
    "completions",
    "man",
];

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    let dir = tempfile::tempdir().expect("dir");
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = run(dir.path(), &["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completion lacks `{sub}`");
        }
        assert!(script.contains("registry"), "{shell}: no global option");
    }
    let out = run(dir.path(), &["completions", "bash"]);
    let script = dir.path().join("promptreg.bash");
    std::fs::write(&script, &out.stdout).expect("write");
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("bash");
    assert!(check.status.success(), "{}", stderr(&check));
    let out = run(dir.path(), &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_manual_page_is_roff_with_every_subcommand() {
    let dir = tempfile::tempdir().expect("dir");
    let out = run(dir.path(), &["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.contains(".TH promptreg 1"), "{page}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH SUBCOMMANDS"] {
        assert!(page.contains(section), "no {section}");
    }
    for sub in SUBCOMMANDS {
        assert!(
            page.contains(&format!("promptreg\\-{}", sub.replace('-', "\\-")))
                || page.contains(&format!("\\fB{}\\fR", sub.replace('-', "\\-"))),
            "the page lacks `{sub}`"
        );
    }
}

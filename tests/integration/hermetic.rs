//! Hermetic git: a hostile `~/.gitconfig` (CRLF conversion, an excludes file that ignores every
//! prompt, a bogus identity) changes nothing the tests see, in process or in the CLI.

use std::process::Command;

use crate::common::{cli, TestRepo};

const TEXT: &str = "template: hi\r\ntestData: [{}]\r\n";

/// Commits a CRLF prompt through git2 and reads it back through the library and the CLI. Run
/// by [`a_hostile_global_config_changes_nothing`] in a child process with a hostile home.
#[test]
#[ignore = "run in a child process by `a_hostile_global_config_changes_nothing`"]
fn commit_under_hostile_home() {
    let mut repo = TestRepo::new();
    repo.write("a.prompt.yaml", TEXT);
    repo.commit("Add a");
    let head = repo
        .repo
        .head()
        .expect("head")
        .peel_to_tree()
        .expect("tree");
    let entry = head
        .get_name("a.prompt.yaml")
        .expect("the prompt is committed");
    let blob = repo.repo.find_blob(entry.id()).expect("blob");
    assert_eq!(
        blob.content(),
        TEXT.as_bytes(),
        "committed bytes were converted"
    );
    let author = repo
        .repo
        .head()
        .expect("head")
        .peel_to_commit()
        .expect("commit");
    assert_eq!(author.author().name().ok(), Some("Test Author"));
    let registry = promptreg::Registry::open(repo.path()).expect("open");
    let (_, versions) = registry.versions("a").expect("versions");
    assert_eq!(versions.len(), 1);
    let out = cli(repo.path())
        .args(["versions", "a"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Test Author"));
}

#[test]
fn a_hostile_global_config_changes_nothing() {
    let home = tempfile::tempdir().expect("home");
    let ignore = home.path().join("ignore-everything");
    std::fs::write(&ignore, "*.yaml\n").expect("write");
    let config = format!(
        "[core]\n\tautocrlf = true\n\texcludesFile = {}\n[user]\n\tname = Hostile\n\temail = hostile@example.com\n[init]\n\tdefaultBranch = hostile\n",
        ignore.display()
    );
    std::fs::write(home.path().join(".gitconfig"), &config).expect("write");
    std::fs::create_dir_all(home.path().join(".config/git")).expect("mkdir");
    std::fs::write(home.path().join(".config/git/config"), &config).expect("write");
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "hermetic::commit_under_hostile_home",
        ])
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .env_remove("GIT_CONFIG_GLOBAL")
        .env_remove("GIT_CONFIG_SYSTEM")
        .env_remove("GIT_CONFIG_NOSYSTEM")
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

//! The documentation, checked: every console session (```console blocks) in the README and in
//! `docs/` runs, with trycmd, against the real binary in a new empty folder, so a documented
//! command and its output cannot drift apart; and the library's documented program is the one
//! CI builds outside the repository.

use std::path::Path;

use crate::common::crate_root;

/// The markdown files with console sessions, copied into a sandbox each: trycmd runs a file's
/// sessions in its `NAME.in` folder, here empty, so nothing is written into the repository.
#[test]
fn console_sessions_in_the_docs_run() {
    let root = crate_root();
    let sandbox = crate::common::tempdir();
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let mut sessions = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        if !text.contains("```console") {
            continue;
        }
        sessions += 1;
        let name = file.file_name().expect("name");
        let copy = sandbox.path().join(name);
        std::fs::write(&copy, text).expect("copy");
        let stem = Path::new(name).with_extension("in");
        let input = sandbox.path().join(stem);
        std::fs::create_dir_all(&input).expect("in folder");
        std::fs::write(input.join(".keep"), "").expect("keep");
    }
    assert!(sessions >= 1, "no console session found in the docs");
    let home = crate::common::hermetic();
    let empty = home.join("empty.gitconfig");
    let git = which("git");
    trycmd::TestCases::new()
        .register_bin("promptreg", insta_cmd::get_cargo_bin("promptreg"))
        .register_bin("git", git)
        .env("HOME", home.display().to_string())
        .env("XDG_CONFIG_HOME", home.display().to_string())
        .env("GIT_CONFIG_GLOBAL", empty.display().to_string())
        .env("GIT_CONFIG_SYSTEM", empty.display().to_string())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "init.defaultBranch")
        .env("GIT_CONFIG_VALUE_0", "main")
        .env("GIT_AUTHOR_NAME", "Ada Lovelace")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada Lovelace")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .env("NO_COLOR", "1")
        .case(sandbox.path().join("*.md"));
}

fn which(name: &str) -> std::path::PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("{name} is not on PATH"))
}

/// The library's page shows the program `examples/embed` as it is, which `.ci/dependent`
/// builds outside the repository and runs.
#[test]
fn the_library_page_shows_the_program_ci_builds() {
    let root = crate_root();
    let program =
        std::fs::read_to_string(root.join("examples/embed/src/main.rs")).expect("program");
    let page = std::fs::read_to_string(root.join("docs/library.md")).expect("library page");
    assert!(
        page.contains(&format!("```rust\n{program}```")),
        "docs/library.md does not show examples/embed/src/main.rs as it is"
    );
}

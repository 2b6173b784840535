//! Validation fixtures: each file of `tests/inputs/validate/` is a small registry (optionally
//! committed to a hermetic git repository); the snapshot holds `validate`'s exit code and output
//! in all three formats.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::common::{cli, TestRepo};

#[derive(Deserialize)]
struct Case {
    files: BTreeMap<String, String>,
    /// The registry root inside the files, when it is not their top.
    root: Option<String>,
    /// Commit the files to a git repository first (for manifest version checks).
    #[serde(default)]
    git: bool,
}

fn run(case: &Case) -> String {
    let mut repo = TestRepo::new();
    for (path, content) in &case.files {
        repo.write(path, content);
    }
    if case.git {
        repo.commit("Add the registry");
    } else {
        std::fs::remove_dir_all(repo.path().join(".git")).expect("drop .git");
    }
    let root = repo.path().join(case.root.as_deref().unwrap_or("."));
    let mut out = String::new();
    for format in ["human", "json", "github"] {
        let output = cli(&root)
            .args(["validate", "--format", format])
            .output()
            .expect("run");
        out.push_str(&format!(
            "== --format {format}: exit {}\n{}",
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout)
        ));
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !stderr.is_empty() {
            out.push_str(&format!("-- stderr\n{stderr}"));
        }
    }
    out
}

#[test]
fn validate_fixtures() {
    insta::glob!("../inputs", "validate/*.yaml", |path| {
        let text = std::fs::read_to_string(path).expect("fixture");
        let case: Case = serde_yaml::from_str(&text).expect("fixture parses");
        let output = run(&case);
        insta::with_settings!({ description => text.clone(), omit_expression => true, prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(output);
        });
    });
}

#[test]
fn every_code_has_a_fixture() {
    let dir = crate::common::crate_root().join("tests/inputs/validate");
    let mut outputs = String::new();
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
        let case: Case = serde_yaml::from_str(&text).expect("fixture parses");
        outputs.push_str(&run(&case));
    }
    for code in promptreg::Code::ALL {
        if matches!(
            code,
            promptreg::Code::Unreadable
                | promptreg::Code::RenderFailed
                | promptreg::Code::ManifestDeletedPrompt
        ) {
            // `oversized_files_are_unreadable`; `render` only, never validate; needs a history
            // (`writes::a_manifest_entry_for_a_deleted_prompt_is_a_finding`).
            continue;
        }
        assert!(
            outputs.contains(&format!("title={}::", code.as_str())),
            "no fixture reports `{code}`"
        );
    }
}

#[test]
fn oversized_files_are_unreadable() {
    let dir = crate::common::tempdir();
    let big = format!("template: |\n{}", "  x\n".repeat(2 * 1024 * 1024));
    std::fs::write(dir.path().join("big.prompt.yaml"), big).expect("write");
    let output = cli(dir.path())
        .args(["validate", "--format", "json"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(report["diagnostics"][0]["code"], "unreadable");
    assert_eq!(report["errors"], 1);
}

#[test]
fn deny_warnings_fails_on_warnings() {
    let dir = crate::common::tempdir();
    std::fs::write(dir.path().join("w.prompt.yaml"), "template: hi\n").expect("write");
    let lenient = cli(dir.path()).args(["validate"]).output().expect("run");
    assert_eq!(lenient.status.code(), Some(0));
    let strict = cli(dir.path())
        .args(["validate", "--deny-warnings"])
        .output()
        .expect("run");
    assert_eq!(strict.status.code(), Some(1));
    let missing = cli(dir.path())
        .args(["validate", "nope"])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn github_paths_are_relative_to_the_repository() {
    let mut repo = TestRepo::new();
    repo.write("prompts/team/a.prompt.yaml", "template: \"{{ x }\"\n");
    repo.commit("add");
    let output = cli(&repo.path().join("prompts"))
        .args(["validate", "--format", "github"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with("::error file=prompts/team/a.prompt.yaml,line=1,col="),
        "{text}"
    );
}

//! The HTTP API against its own OpenAPI document, by schemathesis (from PyPI): every phase
//! (examples, coverage, fuzzing, stateful) and every check, against a real server with writes
//! on and a token that may write, on a copy of prompts-example/. The settings that depart from
//! schemathesis' defaults are in tests/contract/schemathesis.toml, each with its reason.

use std::path::Path;

use crate::common::{crate_root, TestRepo};
use crate::serve::Server;

/// Copies the files under `from` into the repository at `prefix`.
fn copy_into(repo: &TestRepo, from: &Path, prefix: &str) {
    let mut entries: Vec<_> = std::fs::read_dir(from)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_string();
        let rel = format!("{prefix}{name}");
        if path.is_dir() {
            copy_into(repo, &path, &format!("{rel}/"));
        } else {
            repo.write(&rel, &std::fs::read_to_string(&path).expect("read"));
        }
    }
}

/// The schemathesis to run: `PROMPTREG_SCHEMATHESIS`, else the one on `PATH`.
fn schemathesis() -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("PROMPTREG_SCHEMATHESIS") {
        return Some(path.into());
    }
    let found = std::process::Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    found.then(|| "schemathesis".into())
}

#[test]
fn the_api_keeps_its_published_contract_under_schemathesis() {
    let Some(tool) = schemathesis() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "schemathesis is not installed, and CI needs it: .ci/run installs it (or set PROMPTREG_SCHEMATHESIS)"
        );
        eprintln!("warning: schemathesis is not installed; the API contract was not checked (pip install schemathesis)");
        return;
    };
    let mut repo = TestRepo::new();
    copy_into(&repo, &crate_root().join("prompts-example"), "");
    repo.commit("The example registry");
    let dir = crate::common::tempdir();
    let auth = dir.path().join("auth.yaml");
    std::fs::write(
        &auth,
        "tokens:\n  - { name: writer, token: writer-token, email: writer@example.com, scopes: [read, write] }\n",
    )
    .expect("auth file");
    let server = Server::start_with(
        &repo,
        &[
            "--auth",
            auth.to_str().unwrap_or_default(),
            "--allow-writes",
        ],
        &[
            ("GIT_COMMITTER_NAME", "Prompt Server"),
            ("GIT_COMMITTER_EMAIL", "server@example.com"),
        ],
    );
    let config = crate_root().join("tests/contract/schemathesis.toml");
    let out = std::process::Command::new(tool)
        .arg("--config-file")
        .arg(&config)
        .args(["run", &server.url("/openapi.json")])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--checks", "all"])
        .args(["-H", "Authorization: Bearer writer-token"])
        // One worker: with two threads, CPython 3.11.7's parser (which hypothesis calls to
        // describe a filter) fails with "AST constructor recursion depth mismatch".
        .args(["--max-time", "60", "--workers", "1", "--seed", "1"])
        .args(["--request-timeout", "15"])
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It tested every operation but the event stream, and found nothing.
    assert!(report.contains("Tested: 16"), "{report}");
    assert!(!report.contains("failures"), "{report}");
}

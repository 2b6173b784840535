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

/// A writing server on a copy of prompts-example/, with the token `writer-token`.
fn writing_server() -> (Server, TestRepo, tempfile::TempDir) {
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
    (server, repo, dir)
}

/// A client generated from the document by a standard generator (openapi-python-client, from
/// PyPI, in the virtualenv `PROMPTREG_CLIENT_VENV` that .ci/run makes) is generated without a
/// warning, and drives every route as declared (tests/contract/client.py).
#[test]
fn a_client_generated_from_the_document_works_for_every_route() {
    let Some(venv) = std::env::var_os("PROMPTREG_CLIENT_VENV").map(std::path::PathBuf::from) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "openapi-python-client is not installed, and CI needs it: .ci/run installs it (PROMPTREG_CLIENT_VENV)"
        );
        eprintln!(
            "warning: PROMPTREG_CLIENT_VENV is not set; the generated client was not checked"
        );
        return;
    };
    let (server, _repo, dir) = writing_server();
    let document = crate::serve::answer(
        crate::serve::agent()
            .get(&server.url("/openapi.json"))
            .header("Authorization", "Bearer writer-token")
            .call()
            .expect("GET the document"),
    );
    assert_eq!(document.status, 200, "{}", document.body);
    let doc = dir.path().join("openapi.json");
    std::fs::write(&doc, &document.body).expect("write the document");
    let bin = venv.join("bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new(bin.join("openapi-python-client"))
        .args(["generate", "--path"])
        .arg(&doc)
        .arg("--output-path")
        .arg(dir.path().join("client"))
        .env("PATH", &path)
        .current_dir(dir.path())
        .output()
        .expect("openapi-python-client runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("Warning"), "the generator warned:\n{said}");
    let out = std::process::Command::new(bin.join("python"))
        .arg(crate_root().join("tests/contract/client.py"))
        .arg(server.url(""))
        .arg("writer-token")
        .env("PYTHONPATH", dir.path().join("client"))
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "every route answered as declared"
    );
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
    let (server, _repo, dir) = writing_server();
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

//! The Python package (`python/`): built with maturin into a virtualenv (`PROMPTREG_PY_VENV`,
//! which `.ci/run` makes with maturin, pytest and httpx from PyPI) and run under pytest against
//! this build's `promptreg` binary, so `cargo test` runs the package's own tests too.

use std::path::PathBuf;
use std::process::Command;

use crate::common::crate_root;

/// Whether the Python tests must run (`.ci/run` sets `PROMPTREG_PYTHON_TESTS`): then a missing
/// virtualenv fails them instead of skipping them.
fn required() -> bool {
    std::env::var_os("PROMPTREG_PYTHON_TESTS").is_some()
}

#[test]
fn the_python_package_passes_its_own_tests() {
    let Some(venv) = std::env::var_os("PROMPTREG_PY_VENV").map(PathBuf::from) else {
        assert!(
            !required(),
            "PROMPTREG_PY_VENV is not set: .ci/run makes the virtualenv"
        );
        eprintln!(
            "skipped: PROMPTREG_PY_VENV is not set (a virtualenv with maturin, pytest and httpx)"
        );
        return;
    };
    let root = crate_root();
    // The workspace's target folder: the extension reuses the library's dependencies as this
    // test binary's build made them (cargo holds no lock on it while tests run).
    let build = Command::new(venv.join("bin/maturin"))
        .args(["develop", "--quiet", "--manifest-path", "python/Cargo.toml"])
        .env("VIRTUAL_ENV", &venv)
        .current_dir(&root)
        .output()
        .expect("run maturin");
    assert!(
        build.status.success(),
        "maturin develop failed:\n{}{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    let run = Command::new(venv.join("bin/python"))
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "python/tests",
        ])
        .env("PROMPTREG_BIN", env!("CARGO_BIN_EXE_promptreg"))
        .env_remove("PROMPTREG_REGISTRY")
        .env_remove("PROMPTREG_TOKEN")
        .current_dir(&root)
        .output()
        .expect("run pytest");
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "pytest failed:\n{out}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.contains(" passed"), "{out}");
    assert!(!out.contains("skipped"), "every Python test ran: {out}");
}

//! Compatibility with files people already keep: every GitHub Models file of
//! `../shared/corpus/github-models/` loads, and each with test data renders every row or fails
//! with an error naming the missing variables. Skipped when the corpus is not present.

use std::path::Path;

use promptreg::{Error, Prompt, RenderError};

fn corpus() -> Option<std::path::PathBuf> {
    let dir = crate::common::crate_root().join("../shared/corpus/github-models");
    dir.is_dir().then_some(dir)
}

fn yaml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn github_models_corpus_loads_and_renders() {
    let Some(dir) = corpus() else {
        eprintln!("corpus not present; skipping");
        return;
    };
    let files = yaml_files(&dir);
    assert!(
        files.len() >= 20,
        "expected the 24 corpus files, found {}",
        files.len()
    );
    let (mut loaded, mut rows_ok, mut rows_missing) = (0, 0, 0);
    for path in &files {
        // Each file is its own registry: copy it under a prompt name, by path (no copy kept).
        let tmp = tempfile::tempdir().expect("dir");
        let bytes = std::fs::read(path).expect("read");
        std::fs::write(tmp.path().join("p.prompt.yml"), &bytes).expect("write");
        let parsed = Prompt::parse("p.prompt.yml", &bytes);
        assert!(
            !parsed.has_errors(),
            "{}: {:?}",
            path.display(),
            parsed.diagnostics
        );
        let registry = promptreg::Registry::open(tmp.path()).expect("open");
        let compiled = match registry.load_work("p").and_then(|l| l.compile()) {
            Ok(c) => c,
            Err(Error::Invalid { diagnostics, .. }) => {
                panic!("{}: {diagnostics:?}", path.display())
            }
            Err(e) => panic!("{}: {e}", path.display()),
        };
        loaded += 1;
        for row in &compiled.prompt().test_data {
            match compiled.render(row) {
                Ok(_) => rows_ok += 1,
                Err(RenderError::Missing { names }) => {
                    assert!(!names.is_empty());
                    rows_missing += 1;
                }
                Err(e) => panic!("{}: {e}", path.display()),
            }
        }
    }
    eprintln!("corpus: {loaded} files loaded, {rows_ok} test rows rendered, {rows_missing} rows missing variables");
    assert_eq!(loaded, files.len());
}

/// `validate` finds no errors in the corpus: its files are valid prompts. The one file that is
/// invalid on purpose, actions/ai-inference's `invalid-role.prompt.yml`, is an unknown role,
/// which is a warning.
#[test]
fn github_models_corpus_validates_without_errors() {
    let Some(dir) = corpus() else {
        eprintln!("corpus not present; skipping");
        return;
    };
    let mut warned_roles = Vec::new();
    for path in yaml_files(&dir) {
        let tmp = tempfile::tempdir().expect("dir");
        std::fs::write(
            tmp.path().join("p.prompt.yml"),
            std::fs::read(&path).expect("read"),
        )
        .expect("write");
        let registry = promptreg::Registry::open(tmp.path()).expect("open");
        let report = promptreg::check::validate::validate(&registry, &[]).expect("validate runs");
        let errors: Vec<_> = report.diagnostics.iter().filter(|d| d.is_error()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        if report
            .diagnostics
            .iter()
            .any(|d| d.code == promptreg::Code::UnknownRole)
        {
            warned_roles.push(
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
    }
    assert_eq!(warned_roles, ["invalid-role.prompt.yml"]);
}

//! Compatibility with files people already keep: every GitHub Models file of the corpus
//! (`../shared/corpus/github-models/`, or `$PROMPTREG_CORPUS/github-models/`) loads, each with
//! test data renders every row or fails with an error naming the missing variables, and
//! `list` and `validate` run from each corpus repository's root find every file.
//!
//! Without the corpus these tests say so loudly on stderr, and fail when `CI` is set.

use std::io::Write;
use std::path::{Path, PathBuf};

use promptreg::{Error, Prompt, RenderError};

/// The GitHub Models corpus: one folder per repository, each holding its files at their paths.
pub(crate) fn corpus() -> Option<PathBuf> {
    let base = match std::env::var_os("PROMPTREG_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => crate::common::crate_root().join("../shared/corpus"),
    };
    let dir = base.join("github-models");
    if dir.is_dir() {
        return Some(dir);
    }
    let message = format!(
        "the prompt corpus is missing: {} is not a folder, so the corpus tests did NOT run \
         (set PROMPTREG_CORPUS to the folder that holds github-models/)",
        dir.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{message}");
    // Past the test harness's capture: a skipped check must be seen.
    let _ = writeln!(std::io::stderr(), "\n!!! WARNING: {message} !!!\n");
    None
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

/// The settings a corpus repository needs for its files to be found: gh-models names its
/// examples `*.yml`, not `*.prompt.yml`.
fn settings_for(repo: &str) -> Option<&'static str> {
    (repo == "github__gh-models").then_some("prompts:\n  - \"examples/*.yml\"\n")
}

/// Copies a folder's files into `to`.
fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from)
        .into_iter()
        .filter_map(Result::ok)
    {
        let rel = entry.path().strip_prefix(from).expect("inside");
        let target = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// `list` and `validate`, run from each corpus repository's root (a copy, with its settings),
/// find all 24 GitHub Models files, `.github/prompts/` and `examples/*.yml` included, and
/// validate reports what is really there: no errors; the unknown role of the file that is
/// invalid on purpose; missing test data; variables of files without a `variables` section
/// rendered into system messages.
#[test]
fn github_models_corpus_lists_and_validates_from_each_repository_root() {
    let Some(dir) = corpus() else {
        return;
    };
    let mut repos: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    repos.sort();
    let tmp = tempfile::tempdir().expect("dir");
    let mut report = String::new();
    let mut found = Vec::new();
    for repo in &repos {
        let name = repo
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let root = tmp.path().join(&name);
        copy_dir(repo, &root);
        report.push_str(&format!("== {name}\n"));
        if let Some(settings) = settings_for(&name) {
            std::fs::write(root.join("promptreg.yaml"), settings).expect("settings");
            report.push_str(&format!("promptreg.yaml: {settings}"));
        }
        let list = crate::common::cli(&root)
            .args(["list", "--format", "json"])
            .output()
            .expect("list");
        assert_eq!(list.status.code(), Some(0), "{name}: list");
        let rows: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
        for row in rows.as_array().expect("rows") {
            let file = row["file"].as_str().expect("file");
            report.push_str(&format!(
                "list: {} ({file})\n",
                row["id"].as_str().expect("id")
            ));
            found.push(format!("{name}/{file}"));
        }
        let validate = crate::common::cli(&root)
            .args(["validate", "--format", "json"])
            .output()
            .expect("validate");
        let result: serde_json::Value =
            serde_json::from_slice(&validate.stdout).expect("validate json");
        report.push_str(&format!(
            "validate: exit {}, {} prompts, {} errors, {} warnings\n",
            validate.status.code().unwrap_or(-1),
            result["prompts"],
            result["errors"],
            result["warnings"]
        ));
        for d in result["diagnostics"].as_array().expect("diagnostics") {
            report.push_str(&format!(
                "  {} {} {}:{}: {}\n",
                d["severity"].as_str().unwrap_or_default(),
                d["code"].as_str().unwrap_or_default(),
                d["file"].as_str().unwrap_or_default(),
                d["line"],
                d["message"].as_str().unwrap_or_default()
            ));
        }
        assert_eq!(result["errors"], 0, "{name}: {report}");
        assert_eq!(validate.status.code(), Some(0), "{name}");
    }
    let mut expected: Vec<String> = yaml_files(&dir)
        .iter()
        .map(|p| {
            p.strip_prefix(&dir)
                .expect("inside")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    expected.sort();
    found.sort();
    assert_eq!(found, expected, "every GitHub Models file is listed");
    assert_eq!(found.len(), 24);
    insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!("corpus_github_models_list_and_validate", report);
    });
}

/// promptreg's token counts equal tiktoken's on every text file of the corpus (all formats),
/// whole and line by line: real prompts in many languages, markup and code.
#[test]
fn token_counts_equal_tiktokens_on_every_corpus_file() {
    let Some(dir) = corpus() else {
        return;
    };
    let all = dir.parent().unwrap_or(&dir);
    let tiktoken = tiktoken_rs::o200k_base_singleton();
    let mut files = 0;
    for entry in walkdir::WalkDir::new(all)
        .into_iter()
        .filter_map(Result::ok)
    {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        files += 1;
        for part in std::iter::once(text.as_str()).chain(text.lines()) {
            assert_eq!(
                promptreg::render::tokens::count(part),
                tiktoken.encode_ordinary(part).len(),
                "{}: {part:?}",
                entry.path().display()
            );
        }
    }
    assert!(
        files >= 150,
        "expected the corpus's 160 files, read {files}"
    );
}

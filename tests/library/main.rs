//! The library as another program links it, without the CLI feature (CI builds and runs this
//! with `--no-default-features`): a registry snapshot shared across threads, renders through
//! the request type, and errors branched on by kind.

use std::sync::Arc;

use git2::{Repository, Signature, Time};
use promptreg::{ErrorKind, Reference, Registry, RenderRequest, Resolved, Snapshot};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn shared_types_are_send_and_sync() {
    assert_send_sync::<Registry>();
    assert_send_sync::<Snapshot>();
    assert_send_sync::<Arc<Snapshot>>();
    assert_send_sync::<promptreg::CompiledPrompt>();
    assert_send_sync::<promptreg::Discovery>();
    assert_send_sync::<promptreg::Manifest>();
    assert_send_sync::<promptreg::Rendered>();
    assert_send_sync::<promptreg::Error>();
    assert_send_sync::<RenderRequest>();
}

/// libgit2 reads no system, XDG or global config in this process (as jj's test helpers do),
/// so nothing of the developer's configuration reaches the tests.
fn hermetic() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for level in [
            git2::ConfigLevel::System,
            git2::ConfigLevel::XDG,
            git2::ConfigLevel::Global,
            git2::ConfigLevel::ProgramData,
        ] {
            #[allow(unsafe_code)]
            // SAFETY: libgit2's global options change only here, once, before any test of
            // this process opens a repository (every test starts with `Repo::new`).
            unsafe {
                git2::opts::set_search_path(level, "").expect("search path");
            }
        }
    });
}

/// A repository in a temporary directory, with commits at fixed times by a fixed author.
struct Repo {
    dir: tempfile::TempDir,
    repo: Repository,
    time: i64,
}

impl Repo {
    fn new() -> Repo {
        hermetic();
        let dir = tempfile::tempdir().expect("temp dir");
        let work = dir.path().join("work");
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head("main");
        let repo = Repository::init_opts(&work, &opts).expect("init");
        Repo {
            dir,
            repo,
            time: 1_700_000_000,
        }
    }

    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("work")
    }

    fn commit(&mut self, files: &[(&str, &str)], message: &str) {
        for (path, text) in files {
            std::fs::write(self.root().join(path), text).expect("write");
        }
        let mut index = self.repo.index().expect("index");
        index
            .add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)
            .expect("add");
        index.write().expect("write index");
        let tree = self
            .repo
            .find_tree(index.write_tree().expect("tree"))
            .expect("find tree");
        let sig =
            Signature::new("Test", "test@example.com", &Time::new(self.time, 0)).expect("sig");
        self.time += 60;
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        self.repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .expect("commit");
    }
}

fn greet(greeting: &str) -> String {
    format!(
        "model: openai/gpt-4o-mini\nmodelParameters: {{ maxTokens: 64 }}\nvariables:\n  name: {{ type: string, required: true }}\n  times: {{ type: integer, default: 1 }}\nmessages:\n  - role: system\n    content: Be brief.\n  - role: user\n    content: \"{greeting} {{{{ name }}}} x{{{{ times }}}}\"\n"
    )
}

#[test]
fn a_snapshot_is_shared_across_threads_and_never_moves() {
    let mut repo = Repo::new();
    repo.commit(&[("greet.prompt.yaml", &greet("Hello"))], "first");
    repo.commit(&[("greet.prompt.yaml", &greet("Hi"))], "second");
    repo.commit(
        &[("defaults.yaml", "defaults:\n  greet: 1\n")],
        "pin greet to 1",
    );
    let registry = Registry::open(repo.root()).expect("open");
    let snapshot = Arc::new(registry.snapshot().expect("snapshot"));
    assert_eq!(snapshot.manifest().get(None, "greet"), Some(1));

    let threads: Vec<_> = (0..4)
        .map(|i| {
            let snapshot = snapshot.clone();
            std::thread::spawn(move || {
                let request = RenderRequest::new()
                    .value("name", format!("thread {i}"))
                    .expect("value")
                    .text("times", "2");
                let mut texts = Vec::new();
                for reference in ["greet", "greet@2", "greet@latest"] {
                    let reference = Reference::parse(reference).expect("reference");
                    let (resolved, prompt) = snapshot.prompt(&reference).expect("prompt");
                    assert!(matches!(resolved, Resolved::Version { .. }), "{resolved:?}");
                    let outcome = request.render(&prompt).expect("renders");
                    let body = promptreg::chat_request_body(&outcome.rendered, None).expect("body");
                    assert_eq!(body["max_tokens"], 64);
                    texts.push(body["messages"][1]["content"].as_str().map(str::to_string));
                }
                texts
            })
        })
        .collect();
    for (i, thread) in threads.into_iter().enumerate() {
        let texts = thread.join().expect("thread");
        let expected = |g: &str| Some(format!("{g} thread {i} x2"));
        assert_eq!(texts, [expected("Hello"), expected("Hi"), expected("Hi")]);
    }

    // The history moves on: the snapshot taken before does not, a new one does.
    repo.commit(
        &[("defaults.yaml", "defaults:\n  greet: 2\n")],
        "move greet to 2",
    );
    let default = Reference::parse("greet").expect("reference");
    let old = snapshot.resolve(&default).expect("old");
    let new = registry
        .snapshot()
        .expect("new snapshot")
        .resolve(&default)
        .expect("new");
    assert!(
        matches!(old, Resolved::Version { number: 1, .. }),
        "{old:?}"
    );
    assert!(
        matches!(new, Resolved::Version { number: 2, .. }),
        "{new:?}"
    );
}

#[test]
fn errors_are_branched_on_by_kind() {
    let mut repo = Repo::new();
    repo.commit(
        &[
            ("greet.prompt.yaml", &greet("Hello")),
            (
                "loop.prompt.yaml",
                "template: \"{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}\"\n",
            ),
        ],
        "first",
    );
    let snapshot = Registry::open(repo.root())
        .and_then(|r| r.snapshot())
        .expect("snapshot");
    let kind = |reference: &str, request: RenderRequest| {
        let reference = Reference::parse(reference).expect("reference");
        let err = snapshot
            .prompt(&reference)
            .and_then(|(_, prompt)| request.render(&prompt))
            .expect_err(reference.to_string().as_str());
        // What a server would do with it: one match from kind to status.
        let status = match err.kind() {
            ErrorKind::UnknownPrompt | ErrorKind::BadReference | ErrorKind::NotFound => 404,
            ErrorKind::MissingVariables
            | ErrorKind::WrongType
            | ErrorKind::UnusedVariables
            | ErrorKind::Usage => 400,
            ErrorKind::Template | ErrorKind::RenderLimit | ErrorKind::Invalid => 422,
            _ => 500,
        };
        (err.kind(), status)
    };
    let named = || RenderRequest::new().text("name", "Ada");
    assert_eq!(kind("nope", named()), (ErrorKind::UnknownPrompt, 404));
    assert_eq!(kind("greet@7", named()), (ErrorKind::BadReference, 404));
    assert_eq!(kind("greet@work", named()), (ErrorKind::Usage, 400));
    assert_eq!(
        kind("greet", RenderRequest::new()),
        (ErrorKind::MissingVariables, 400)
    );
    assert_eq!(
        kind("greet", named().text("times", "many")),
        (ErrorKind::WrongType, 400)
    );
    assert_eq!(
        kind("greet", named().text("x", "1").strict(true)),
        (ErrorKind::UnusedVariables, 400)
    );
    assert_eq!(
        kind("loop", RenderRequest::new()),
        (ErrorKind::RenderLimit, 422)
    );
    // Causes are kept: a git error says what libgit2 said.
    let err = Registry::open(repo.root())
        .and_then(|r| r.with_rev(Some("no-such-branch".into())).snapshot())
        .expect_err("unknown revision");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// A compiled prompt from one file in a registry without git.
fn compiled(yaml: &str) -> promptreg::CompiledPrompt {
    hermetic();
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("p.prompt.yaml"), yaml).expect("write");
    Registry::open(dir.path())
        .and_then(|r| r.load_work("p"))
        .and_then(|l| l.compile())
        .expect("compiles")
}

fn rendered(yaml: &str) -> promptreg::Rendered {
    compiled(yaml)
        .render(&serde_json::Map::new())
        .expect("renders")
}

#[test]
fn later_inputs_override_earlier_ones_and_strings_take_the_declared_type() {
    let p = compiled(
        "variables:\n  n: { type: integer }\n  s: { type: string }\ntemplate: \"{{ n + 1 }} {{ s }}\"\ntestData:\n  - { n: 1, s: a }\n",
    );
    let request = RenderRequest::new()
        .test_case(0)
        .text("n", "41")
        .value("s", "b")
        .expect("value");
    let outcome = request.render(&p).expect("renders");
    assert_eq!(outcome.rendered.to_string(), "42 b");
    assert!(outcome.unused.is_empty());
}

#[test]
fn unused_names_are_reported_or_refused() {
    let p = compiled("template: \"{{ a }}\"\n");
    let request = RenderRequest::new().text("a", "x").text("b", "y");
    assert_eq!(request.render(&p).expect("renders").unused, ["b"]);
    let err = request.strict(true).render(&p).expect_err("strict");
    assert_eq!(err.kind(), ErrorKind::UnusedVariables);
}

#[test]
fn values_must_be_a_mapping_and_test_cases_must_exist() {
    let err = RenderRequest::new().values(&[1, 2]).expect_err("a list");
    assert_eq!(err.kind(), ErrorKind::Usage);
    let p = compiled("template: hi\n");
    let err = RenderRequest::new()
        .test_case(3)
        .render(&p)
        .expect_err("none");
    assert_eq!(err.to_string(), "`p` has no test data");
}

#[test]
fn chat_bodies_use_snake_case_parameters_and_snake_case_wins() {
    let r = rendered(
        "model: m\nmodelParameters: { maxTokens: 1, max_tokens: 2, topP: 0.5, temperature: 0 }\ntemplate: hi\n",
    );
    let body = promptreg::chat_request_body(&r, None).expect("body");
    assert_eq!(
        body,
        serde_json::json!({
            "model": "m",
            "messages": [{ "role": "user", "content": "hi" }],
            "max_tokens": 2,
            "top_p": 0.5,
            "temperature": 0,
        })
    );
}

#[test]
fn chat_bodies_carry_github_models_response_formats() {
    let r = rendered("model: m\nresponseFormat: json_object\ntemplate: hi\n");
    let body = promptreg::chat_request_body(&r, Some("other")).expect("body");
    assert_eq!(body["model"], "other");
    assert_eq!(
        body["response_format"],
        serde_json::json!({ "type": "json_object" })
    );
    let r = rendered(
        "model: m\nresponseFormat: json_schema\njsonSchema: '{\"name\": \"x\", \"schema\": {\"type\": \"object\"}}'\ntemplate: hi\n",
    );
    let body = promptreg::chat_request_body(&r, None).expect("body");
    assert_eq!(
        body["response_format"],
        serde_json::json!({ "type": "json_schema", "json_schema": { "name": "x", "schema": { "type": "object" } } })
    );
    let r = rendered("model: m\nresponseFormat: json_schema\njsonSchema: '{nope'\ntemplate: hi\n");
    let err = promptreg::chat_request_body(&r, None).expect_err("bad schema");
    assert!(
        err.to_string().contains("jsonSchema is not valid JSON"),
        "{err}"
    );
    let r = rendered("template: hi\n");
    let err = promptreg::chat_request_body(&r, None).expect_err("no model");
    assert_eq!(err.kind(), ErrorKind::Usage);
}

#[test]
fn opening_a_registry_leaves_libgit2_global_options_alone() {
    let mut repo = Repo::new();
    repo.commit(&[("greet.prompt.yaml", &greet("Hello"))], "first");
    let before = pack_windows();
    let registry = Registry::open(repo.root()).expect("open");
    registry.index().expect("a history walk");
    let after = pack_windows();
    // The binary narrows these to 32 MiB and 64 MiB; the library must not.
    assert_eq!(before, after);
    assert_ne!(after.0, 32 << 20);
}

/// libgit2's pack window size and mapped limit.
fn pack_windows() -> (usize, usize) {
    #[allow(unsafe_code)]
    // SAFETY: reading libgit2's global options; nothing in these tests writes them.
    unsafe {
        (
            git2::opts::get_mwindow_size().expect("window"),
            git2::opts::get_mwindow_mapped_limit().expect("limit"),
        )
    }
}

/// Writes through the library: a plan and its application, the same rules as the CLI and the
/// server, and no write that changes a file it does not name.
#[test]
fn writes_are_planned_checked_and_applied_through_the_library() {
    use promptreg::write::{self, Edit};
    let mut repo = Repo::new();
    repo.commit(
        &[
            ("greet.prompt.yaml", &greet("Hello")),
            ("defaults.yaml", "defaults:\n"),
        ],
        "Add greet",
    );
    // The committer (a write commits); the author falls back to it.
    std::env::set_var("GIT_COMMITTER_NAME", "Lib");
    std::env::set_var("GIT_COMMITTER_EMAIL", "lib@example.com");
    std::env::set_var("GIT_AUTHOR_NAME", "Lib");
    std::env::set_var("GIT_AUTHOR_EMAIL", "lib@example.com");
    let registry = Registry::open(repo.root()).expect("open");
    let snapshot = registry.snapshot().expect("snapshot");
    for id in [
        "defaults.yaml/x",
        "promptreg.yaml/x",
        "a\u{202e}b",
        "x@2",
        "../x",
    ] {
        let edit = Edit::Commit {
            id: id.into(),
            source: "template: hi\n".into(),
            file: None,
        };
        let err = write::plan(&snapshot, edit, Some("Try")).expect_err(id);
        assert_eq!(err.kind(), ErrorKind::Usage, "{id}: {err}");
    }
    let through_a_file = Edit::Commit {
        id: "greet.prompt.yaml/notes".into(),
        source: "template: hi\n".into(),
        file: None,
    };
    let plan = write::plan(&snapshot, through_a_file, Some("Notes")).expect("plan");
    let err = write::apply(&registry, &plan).expect_err("through a file");
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    assert!(err.to_string().contains("is a file"), "{err}");
    // An invalid version is refused with its findings.
    let invalid = Edit::Commit {
        id: "greet".into(),
        source: "messages:\n  - role: user\n    content: \"{{ unclosed\"\n".into(),
        file: None,
    };
    let err = write::plan(&snapshot, invalid, Some("Break")).expect_err("invalid");
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    // A default move, once, then again as a no-op.
    let point = Edit::Point {
        label: None,
        id: "greet".into(),
        version: 1,
    };
    let plan = write::plan(&snapshot, point.clone(), None).expect("plan");
    assert_eq!(plan.message(), "Set default of greet to v1 (was unset)");
    let applied = write::apply(&registry, &plan).expect("apply");
    assert!(applied.commit.is_some());
    let snapshot = Registry::open(repo.root())
        .expect("open")
        .snapshot()
        .expect("snapshot");
    let again = write::plan(&snapshot, point, None).expect("plan");
    assert!(again.is_noop());
    let text = std::fs::read_to_string(repo.root().join("defaults.yaml")).expect("manifest");
    assert_eq!(text, "defaults:\n  greet: 1\n");
}

/// Commits `files` on `main` of the repository at `root` as another writer would, behind the
/// library's back.
fn commit_behind(root: &std::path::Path, files: &[(&str, &str)], message: &str) {
    let repo = Repository::open(root).expect("open");
    for (path, text) in files {
        std::fs::write(root.join(path), text).expect("write");
    }
    // On top of the branch's tip, whatever the index holds.
    let parent = repo.head().expect("head").peel_to_commit().expect("commit");
    let mut index = repo.index().expect("index");
    index
        .read_tree(&parent.tree().expect("tree"))
        .expect("read tree");
    for (path, _) in files {
        index.add_path(std::path::Path::new(path)).expect("add");
    }
    index.write().expect("write index");
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("find tree");
    let sig =
        Signature::new("Other", "other@example.com", &Time::new(1_800_000_000, 0)).expect("sig");
    let parent = repo.head().expect("head").peel_to_commit().expect("commit");
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &[&parent])
        .expect("commit");
}

/// A branch that another writer moves once, between the tip a write is planned on and its
/// publish: the race `apply_to_branch` exists for.
struct Racing<'r> {
    inner: promptreg::write::LocalBranch<'r>,
    race: Option<Box<dyn FnOnce() + 'r>>,
}

impl promptreg::write::Branch for Racing<'_> {
    fn tip(&mut self) -> promptreg::Result<Arc<Snapshot>> {
        self.inner.tip()
    }

    fn publish(
        &mut self,
        base: promptreg::ObjectId,
        commit: promptreg::ObjectId,
        message: &str,
    ) -> promptreg::Result<bool> {
        if let Some(race) = self.race.take() {
            race();
        }
        self.inner.publish(base, commit, message)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

fn log(root: &std::path::Path) -> Vec<String> {
    let repo = Repository::open(root).expect("open");
    let mut walk = repo.revwalk().expect("walk");
    walk.push_head().expect("head");
    walk.map(|id| {
        let commit = repo.find_commit(id.expect("id")).expect("commit");
        commit
            .summary()
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_string()
    })
    .collect()
}

/// Writes to a branch others move: compare-and-swap, planned again when the branch moved
/// elsewhere, refused when it moved in what the write is about, a precondition checked on the
/// tip, and the same value again a success that commits nothing.
#[test]
fn writes_to_a_shared_branch_are_planned_again_or_refused_when_it_moves() {
    use promptreg::write::{apply_to_branch, Edit, LocalBranch};
    let mut repo = Repo::new();
    repo.commit(
        &[
            ("greet.prompt.yaml", &greet("Hello")),
            ("other.prompt.yaml", &greet("Hi")),
            ("defaults.yaml", "defaults:\n  other: 1\n"),
        ],
        "Add greet and other",
    );
    std::env::set_var("GIT_COMMITTER_NAME", "Lib");
    std::env::set_var("GIT_COMMITTER_EMAIL", "lib@example.com");
    std::env::set_var("GIT_AUTHOR_NAME", "Lib");
    std::env::set_var("GIT_AUTHOR_EMAIL", "lib@example.com");
    let root = repo.root();
    let registry = Registry::open(&root).expect("open");
    let mut no_precondition = |_: &Snapshot| Ok(());

    // Another writer changes another prompt meanwhile: the default is set on top of it.
    let racer_root = root.clone();
    let mut branch = Racing {
        inner: LocalBranch::head(&registry).expect("branch"),
        race: Some(Box::new(move || {
            commit_behind(
                &racer_root,
                &[("other.prompt.yaml", &greet("Hey"))],
                "other: hey",
            )
        })),
    };
    let point = Edit::Point {
        label: None,
        id: "greet".into(),
        version: 1,
    };
    let landed = apply_to_branch(&mut branch, &point, None, None, &mut no_precondition)
        .expect("planned again");
    assert!(landed.commit.is_some());
    assert_eq!(
        log(&root),
        [
            "Set default of greet to v1 (was unset)",
            "other: hey",
            "Add greet and other"
        ]
    );
    // The same value again: nothing committed, a success.
    let mut branch = LocalBranch::head(&registry).expect("branch");
    let again =
        apply_to_branch(&mut branch, &point, None, None, &mut no_precondition).expect("no-op");
    assert_eq!(again.commit, None);
    assert!(again.plan.is_noop());

    // Another writer changes the same prompt meanwhile: refused, theirs stays.
    let racer_root = root.clone();
    let mut branch = Racing {
        inner: LocalBranch::head(&registry).expect("branch"),
        race: Some(Box::new(move || {
            commit_behind(
                &racer_root,
                &[("greet.prompt.yaml", &greet("Yo"))],
                "greet: yo",
            )
        })),
    };
    let mine = Edit::Commit {
        id: "greet".into(),
        source: greet("Howdy"),
        file: None,
    };
    let err = apply_to_branch(
        &mut branch,
        &mine,
        Some("greet: howdy"),
        None,
        &mut no_precondition,
    )
    .expect_err("a conflict");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(
        err.to_string()
            .starts_with("greet.prompt.yaml changed on main (now at commit "),
        "{err}"
    );
    assert_eq!(log(&root)[0], "greet: yo");

    // A precondition that fails on the tip: its error, and nothing written.
    let mut stale = |_: &Snapshot| Err(promptreg::Error::Stale("not what you read".into()));
    let mut branch = LocalBranch::head(&registry).expect("branch");
    let err = apply_to_branch(&mut branch, &mine, Some("greet: howdy"), None, &mut stale)
        .expect_err("stale");
    assert_eq!(err.kind(), ErrorKind::Stale, "{err}");
    assert_eq!(log(&root)[0], "greet: yo");

    // Another writer moves the same default meanwhile: refused, naming the line.
    let racer_root = root.clone();
    let mut branch = Racing {
        inner: LocalBranch::head(&registry).expect("branch"),
        race: Some(Box::new(move || {
            commit_behind(
                &racer_root,
                &[("defaults.yaml", "defaults:\n  other: 1\n  greet: 2\n")],
                "greet default: 2",
            )
        })),
    };
    let err = apply_to_branch(
        &mut branch,
        &Edit::Unpoint {
            label: None,
            id: "greet".into(),
        },
        None,
        None,
        &mut no_precondition,
    )
    .expect_err("a conflict");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(
        err.to_string()
            .starts_with("greet's lines of defaults.yaml changed on main"),
        "{err}"
    );
}

/// A JSON object's entries given as they are render as the same object serialized would.
#[test]
fn variables_as_a_json_object_render_as_values_do() {
    let p = compiled(
        "variables: {name: {type: string}, n: {type: number}}\ntemplate: '{{ name }} x{{ n }}'\n",
    );
    let object = serde_json::json!({"name": "Ada", "n": 2, "extra": true});
    let serde_json::Value::Object(map) = object.clone() else {
        unreachable!("an object")
    };
    let as_values = RenderRequest::new()
        .values(&object)
        .expect("values")
        .render(&p)
        .expect("renders");
    let as_variables = RenderRequest::new()
        .variables(map)
        .render(&p)
        .expect("renders");
    assert_eq!(as_variables.rendered, as_values.rendered);
    assert_eq!(as_variables.unused, ["extra"]);
    assert_eq!(as_variables.rendered.to_string(), "Ada x2");
}

/// Printed values: a string as it is (no HTML escaping), and escaped inside an
/// `autoescape` block; numbers, lists and `none` as minijinja prints them.
#[test]
fn strings_print_as_they_are_unless_a_block_escapes_them() {
    let p = compiled(
        "template: \"{{ a }}|{% autoescape true %}{{ a }}{% endautoescape %}|{{ n }}|{{ l }}|{{ z }}|{{ a | safe }}\"\n",
    );
    let values = serde_json::json!({"a": "<b> & 'q'", "n": 5, "l": [1, "x"], "z": null});
    let outcome = RenderRequest::new()
        .values(&values)
        .expect("values")
        .render(&p)
        .expect("renders");
    assert_eq!(
        outcome.rendered.to_string(),
        "<b> & 'q'|&lt;b&gt; &amp; &#x27;q&#x27;|5|[1, 'x']||<b> & 'q'"
    );
}

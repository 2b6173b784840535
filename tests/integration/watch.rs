//! The watcher: the library's event stream through each kind of save real editors make, and
//! the CLI's `--format json` stream.
//!
//! Waits are bounded (events are awaited up to a deadline), never fixed sleeps; after the
//! expected events a short quiet window checks that nothing else (a duplicate) arrives.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use promptreg::watch::{Cause, Event, Inputs, Options, State, Status, Watcher};
use tempfile::TempDir;

use crate::common::cli;

/// How long expected events may take (generous: the machine may be busy compiling).
const DEADLINE: Duration = Duration::from_secs(15);
/// How long to listen for unexpected events after the expected ones.
const QUIET: Duration = Duration::from_millis(400);

const TONE: &str = "Be kind and brief.\n";

const TRIAGE: &str = "variables:\n  ticket: { type: string, required: true }\nmessages:\n  - role: system\n    content: |\n      You triage support tickets.\n      {% include \"partials/tone.md\" %}\n  - role: user\n    content: \"{{ ticket }}\"\ntestData:\n  - ticket: My invoice shows the wrong VAT number.\n";

const GREET: &str = "variables:\n  name: { type: string, required: true }\ntemplate: \"Hello {{ name }}. {% include 'partials/tone.md' %}\"\ntestData:\n  - name: Ada\n  - name: Grace Hopper\n";

const PLAIN: &str = "template: Just text.\ntestData:\n  - {}\n";

/// A watched registry in a temporary directory.
struct Watched {
    dir: TempDir,
    watcher: Option<Watcher>,
    events: Receiver<Event>,
}

impl Watched {
    /// Writes `files`, starts a watcher on every prompt and takes the initial events.
    fn start(files: &[(&str, &str)]) -> (Watched, Vec<Event>) {
        Watched::start_with(files, Vec::new(), Options::default())
    }

    fn start_with(
        files: &[(&str, &str)],
        ids: Vec<String>,
        options: Options,
    ) -> (Watched, Vec<Event>) {
        let dir = crate::common::tempdir();
        for (path, content) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
            std::fs::write(full, content).expect("write");
        }
        let expected = if ids.is_empty() {
            files
                .iter()
                .filter(|(p, _)| p.ends_with(".prompt.yaml") || *p == "defaults.yaml")
                .count()
        } else {
            ids.len()
        };
        let (watcher, events) = Watcher::start(dir.path(), ids, options).expect("watch");
        let watched = Watched {
            dir,
            watcher: Some(watcher),
            events,
        };
        let initial = watched.take(expected);
        (watched, initial)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, content: &str) {
        std::fs::write(self.path(rel), content).expect("write");
    }

    /// Waits for `n` events, then listens for a quiet window; returns all of them.
    fn take(&self, n: usize) -> Vec<Event> {
        let start = Instant::now();
        let mut events = Vec::new();
        while events.len() < n {
            let left = DEADLINE.saturating_sub(start.elapsed());
            match self.events.recv_timeout(left) {
                Ok(event) => events.push(event),
                Err(_) => panic!(
                    "expected {n} events within {DEADLINE:?}, got {:?}",
                    summaries(&events)
                ),
            }
        }
        while let Ok(event) = self.events.recv_timeout(QUIET) {
            events.push(event);
        }
        events
    }

    /// Waits for `n` events and returns their summaries.
    fn next(&self, n: usize) -> Vec<String> {
        summaries(&self.take(n))
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(watcher) = self.watcher.take() {
            watcher.stop();
        }
    }
}

/// One event as a short line: `id ok`, `id error code file:line`, `id removed`, `manifest ...`.
fn summary(event: &Event) -> String {
    let state = |s: &State| match s {
        State::Ok => "ok".to_string(),
        State::Warning(d) => format!("warning {}", d.code),
        State::Error(d) => format!("error {} {}:{}", d.code, d.file, d.line),
    };
    match event {
        Event::Status(s) => format!("{} {}", s.id, state(&s.state)),
        Event::Removed { id, .. } => format!("{id} removed"),
        Event::Manifest(m) if !m.present => "manifest removed".to_string(),
        Event::Manifest(m) => format!("manifest {} [{}]", state(&m.state), m.changed.join(",")),
        Event::Error { message, .. } => format!("watcher error {message}"),
    }
}

fn summaries(events: &[Event]) -> Vec<String> {
    events.iter().map(summary).collect()
}

fn status(event: &Event) -> &Status {
    match event {
        Event::Status(s) => s,
        other => panic!("expected a status, got {other:?}"),
    }
}

fn registry() -> (Watched, Vec<Event>) {
    Watched::start(&[
        ("partials/tone.md", TONE),
        ("support/triage.prompt.yaml", TRIAGE),
        ("greet.prompt.yaml", GREET),
        ("plain.prompt.yaml", PLAIN),
    ])
}

#[test]
fn reports_every_prompt_at_start() {
    let (_w, initial) = registry();
    assert_eq!(
        summaries(&initial),
        ["greet ok", "plain ok", "support/triage ok"]
    );
    for event in &initial {
        let s = status(event);
        assert_eq!(s.cause, Cause::Start);
        assert!(s.tokens.is_some_and(|n| n > 0), "{s:?}");
        assert!(s.rendered.is_empty());
    }
    assert_eq!(status(&initial[2]).file, "support/triage.prompt.yaml");
}

#[test]
fn plain_write_is_reported_once() {
    let (w, initial) = registry();
    let before = status(&initial[0]).tokens;
    w.write(
        "greet.prompt.yaml",
        &GREET.replace("Hello", "Good morning, dear"),
    );
    let events = w.take(1);
    assert_eq!(summaries(&events), ["greet ok"]);
    let s = status(&events[0]);
    assert_eq!(s.cause, Cause::File);
    assert!(s.tokens > before, "{:?} then {:?}", before, s.tokens);
}

#[test]
fn truncate_then_write_in_pieces_is_reported_once() {
    let (w, _) = registry();
    let mut file = std::fs::File::create(w.path("greet.prompt.yaml")).expect("truncate");
    let text = GREET.replace("Hello", "Hi");
    let (head, tail) = text.split_at(text.len() / 2);
    file.write_all(head.as_bytes()).expect("write");
    file.flush().expect("flush");
    file.write_all(tail.as_bytes()).expect("write");
    drop(file);
    assert_eq!(w.next(1), ["greet ok"]);
}

#[test]
fn vim_style_save_by_rename_is_reported_once() {
    let (w, _) = registry();
    // vim: move the original to a backup, write the new file, delete the backup, plus its
    // `4913` probe and swap file.
    std::fs::write(w.path("4913"), "").expect("probe");
    std::fs::remove_file(w.path("4913")).expect("probe");
    std::fs::write(w.path(".greet.prompt.yaml.swp"), "swap").expect("swap");
    std::fs::rename(w.path("greet.prompt.yaml"), w.path("greet.prompt.yaml~")).expect("backup");
    w.write("greet.prompt.yaml", &GREET.replace("Hello", "Hi"));
    std::fs::remove_file(w.path("greet.prompt.yaml~")).expect("unbackup");
    std::fs::remove_file(w.path(".greet.prompt.yaml.swp")).expect("swap");
    assert_eq!(w.next(1), ["greet ok"]);
}

#[test]
fn jetbrains_style_save_by_rename_is_reported_once() {
    let (w, _) = registry();
    let tmp = w.path("support/triage.prompt.yaml___jb_tmp___");
    let old = w.path("support/triage.prompt.yaml___jb_old___");
    std::fs::write(&tmp, TRIAGE.replace("tickets", "requests")).expect("tmp");
    std::fs::rename(w.path("support/triage.prompt.yaml"), &old).expect("old");
    std::fs::rename(&tmp, w.path("support/triage.prompt.yaml")).expect("new");
    std::fs::remove_file(&old).expect("remove old");
    assert_eq!(w.next(1), ["support/triage ok"]);
}

#[test]
fn write_temp_and_rename_over_is_reported_once() {
    let (w, _) = registry();
    let mut tmp = tempfile::NamedTempFile::new_in(w.dir.path()).expect("tmp");
    tmp.write_all(PLAIN.replace("Just", "Only").as_bytes())
        .expect("write");
    tmp.persist(w.path("plain.prompt.yaml")).expect("persist");
    assert_eq!(w.next(1), ["plain ok"]);
}

#[test]
fn invalid_half_way_then_fixed_recovers() {
    let (w, _) = registry();
    w.write(
        "greet.prompt.yaml",
        "variables:\n  name: { type: string\ntemplate: [\n",
    );
    let events = w.take(1);
    assert_eq!(
        summaries(&events),
        ["greet error yaml-syntax greet.prompt.yaml:3"]
    );
    assert!(status(&events[0]).tokens.is_none());
    w.write(
        "greet.prompt.yaml",
        &GREET.replace("{{ name }}", "{{ name }} {{ title }}"),
    );
    assert_eq!(
        w.next(1),
        ["greet error undeclared-variable greet.prompt.yaml:3"]
    );
    w.write("greet.prompt.yaml", GREET);
    assert_eq!(w.next(1), ["greet ok"]);
}

#[test]
fn deleted_and_re_added_prompts() {
    let (w, _) = registry();
    std::fs::remove_file(w.path("plain.prompt.yaml")).expect("remove");
    let events = w.take(1);
    assert_eq!(summaries(&events), ["plain removed"]);
    assert!(matches!(&events[0], Event::Removed { file, .. } if file == "plain.prompt.yaml"));
    w.write("plain.prompt.yaml", PLAIN);
    assert_eq!(w.next(1), ["plain ok"]);
}

#[test]
fn new_files_and_new_folders() {
    let (w, _) = registry();
    w.write("fresh.prompt.yaml", PLAIN);
    assert_eq!(w.next(1), ["fresh ok"]);
    std::fs::create_dir_all(w.path("deep/er")).expect("mkdir");
    w.write("deep/er/one.prompt.yaml", PLAIN);
    assert_eq!(w.next(1), ["deep/er/one ok"]);
    w.write("deep/er/one.prompt.yaml", "template: {{ x }\n");
    let events = w.take(1);
    assert_eq!(events.len(), 1);
    assert!(matches!(&status(&events[0]).state, State::Error(_)));
}

#[test]
fn renamed_prompt_files_and_duplicate_ids() {
    let (w, _) = registry();
    std::fs::rename(w.path("plain.prompt.yaml"), w.path("simple.prompt.yaml")).expect("rename");
    assert_eq!(w.next(2), ["plain removed", "simple ok"]);
    w.write("simple.prompt.yml", PLAIN);
    assert_eq!(
        w.next(1),
        ["simple error duplicate-id simple.prompt.yaml:1"]
    );
    std::fs::remove_file(w.path("simple.prompt.yml")).expect("remove");
    assert_eq!(w.next(1), ["simple ok"]);
}

#[test]
fn renamed_folder_removes_old_ids_and_adds_new_ones() {
    let (w, _) = registry();
    std::fs::rename(w.path("support"), w.path("help")).expect("rename");
    assert_eq!(w.next(2), ["support/triage removed", "help/triage ok"]);
    // The moved folder is still watched under its new name.
    w.write(
        "help/triage.prompt.yaml",
        &TRIAGE.replace("tickets", "requests"),
    );
    assert_eq!(w.next(1), ["help/triage ok"]);
}

#[test]
fn partial_edit_rechecks_every_prompt_that_includes_it() {
    let (w, _) = registry();
    w.write("partials/tone.md", "Be warm.\n{% if %}\n");
    let events = w.take(2);
    assert_eq!(
        summaries(&events),
        [
            "greet error template-syntax partials/tone.md:2",
            "support/triage error template-syntax partials/tone.md:2"
        ]
    );
    assert_eq!(
        status(&events[0]).cause,
        Cause::Partial("partials/tone.md".into())
    );
    std::fs::remove_file(w.path("partials/tone.md")).expect("remove");
    assert_eq!(
        w.next(2),
        [
            "greet error include-missing greet.prompt.yaml:3",
            "support/triage error include-missing support/triage.prompt.yaml:7"
        ]
    );
    w.write("partials/tone.md", TONE);
    assert_eq!(w.next(2), ["greet ok", "support/triage ok"]);
}

#[test]
fn defaults_changes_report_the_prompts_whose_entries_moved() {
    let (w, initial) = Watched::start(&[
        (
            "greet.prompt.yaml",
            GREET
                .replace("{% include 'partials/tone.md' %}", "")
                .as_str(),
        ),
        ("plain.prompt.yaml", PLAIN),
        ("defaults.yaml", "# pins\ndefaults:\n  greet: 1\n"),
    ]);
    assert_eq!(
        summaries(&initial),
        ["manifest ok []", "greet ok", "plain ok"]
    );
    w.write(
        "defaults.yaml",
        "# pins\ndefaults:\n  greet: 1\n  plain: 1\n",
    );
    assert_eq!(w.next(2), ["manifest ok [plain]", "plain ok"]);
    // Invalid half-way: reported, and the next good save is compared with the last good one.
    w.write("defaults.yaml", "defaults: [\n");
    assert_eq!(w.next(1), ["manifest error yaml-syntax defaults.yaml:1 []"]);
    w.write(
        "defaults.yaml",
        "defaults:\n  greet: 1\n  plain: 1\n  ghost: 2\n",
    );
    assert_eq!(
        w.next(1),
        ["manifest error manifest-unknown-prompt defaults.yaml:4 [ghost]"]
    );
    std::fs::remove_file(w.path("defaults.yaml")).expect("remove");
    assert_eq!(w.next(3), ["manifest removed", "greet ok", "plain ok"]);
}

#[test]
fn git_churn_hidden_files_and_reads_make_no_events() {
    let (w, _) = registry();
    std::fs::create_dir_all(w.path(".git/objects/ab")).expect("mkdir");
    std::fs::write(w.path(".git/index"), "index").expect("write");
    std::fs::write(w.path(".git/objects/ab/cdef"), "object").expect("write");
    std::fs::rename(w.path(".git/index"), w.path(".git/index.lock")).expect("rename");
    std::fs::write(w.path(".idea.prompt.yaml"), PLAIN).expect("hidden prompt");
    std::fs::write(w.path("notes.txt"), "not a prompt").expect("write");
    let _ = std::fs::read_to_string(w.path("greet.prompt.yaml")).expect("read");
    // A save after the churn is the next event: nothing came before it.
    w.write("plain.prompt.yaml", PLAIN);
    assert_eq!(w.next(1), ["plain ok"]);
}

#[test]
fn named_ids_only() {
    let (w, initial) = Watched::start_with(
        &[
            ("partials/tone.md", TONE),
            ("greet.prompt.yaml", GREET),
            ("plain.prompt.yaml", PLAIN),
        ],
        vec!["greet".to_string()],
        Options::default(),
    );
    assert_eq!(summaries(&initial), ["greet ok"]);
    w.write("plain.prompt.yaml", PLAIN);
    w.write("partials/tone.md", "Be warm.\n");
    assert_eq!(w.next(1), ["greet ok"]);
}

#[test]
fn unknown_ids_are_refused() {
    let dir = crate::common::tempdir();
    std::fs::write(dir.path().join("greet.prompt.yaml"), PLAIN).expect("write");
    let err = Watcher::start(dir.path(), vec!["gret".into()], Options::default())
        .map(|_| ())
        .expect_err("unknown id");
    assert_eq!(
        err.to_string(),
        format!("no prompt `gret` in {}", dir.path().display())
    );
}

#[test]
fn renders_test_cases_and_given_values() {
    let files = [("partials/tone.md", TONE), ("greet.prompt.yaml", GREET)];
    let all = Options {
        render: true,
        ..Options::default()
    };
    let (_w, initial) = Watched::start_with(&files, Vec::new(), all);
    let s = status(&initial[0]);
    let cases: Vec<Option<usize>> = s.rendered.iter().map(|r| r.case).collect();
    assert_eq!(cases, [Some(0), Some(1)]);
    assert_eq!(
        s.rendered[1].rendered.output.texts(),
        ["Hello Grace Hopper. Be kind and brief."]
    );

    let one = Options {
        render: true,
        inputs: Inputs::TestData(Some(1)),
        ..Options::default()
    };
    let (_w, initial) = Watched::start_with(&files, Vec::new(), one);
    let s = status(&initial[0]);
    assert_eq!(s.rendered.len(), 1);
    assert_eq!(s.rendered[0].case, Some(1));

    let missing = Options {
        inputs: Inputs::TestData(Some(7)),
        ..Options::default()
    };
    let (_w, initial) = Watched::start_with(&files, Vec::new(), missing);
    assert_eq!(
        summaries(&initial),
        ["greet error test-render greet.prompt.yaml:4"]
    );

    let values = serde_json::json!({"name": "Linus"});
    let given = Options {
        render: true,
        inputs: Inputs::Values(values.as_object().cloned().unwrap_or_default()),
        ..Options::default()
    };
    let (_w, initial) = Watched::start_with(&files, Vec::new(), given);
    let s = status(&initial[0]);
    assert_eq!(s.rendered[0].case, None);
    assert_eq!(
        s.rendered[0].rendered.output.texts(),
        ["Hello Linus. Be kind and brief."]
    );
}

/// Reads a child's stdout lines on a thread, so the test can wait with a deadline.
fn lines(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn next_json(lines: &Receiver<String>) -> serde_json::Value {
    let line = lines.recv_timeout(DEADLINE).expect("a line from watch");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

fn wait_exit(child: &mut Child) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("watch did not exit");
}

fn write_in(dir: &Path, rel: &str, content: &str) {
    std::fs::write(dir.join(rel), content).expect("write");
}

#[cfg(unix)]
#[test]
fn cli_streams_json_lines_and_exits_0_on_ctrl_c() {
    let dir = crate::common::tempdir();
    write_in(
        dir.path(),
        "greet.prompt.yaml",
        &GREET.replace("{% include 'partials/tone.md' %}", ""),
    );
    let child = cli(dir.path())
        .args(["watch", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut child = Running(child);
    let lines = lines(&mut child.0);
    let first = next_json(&lines);
    assert_eq!(first["event"], "status");
    assert_eq!(first["id"], "greet");
    assert_eq!(first["cause"], "start");
    assert_eq!(first["ok"], true);
    assert!(first["tokens"].as_u64().is_some_and(|n| n > 0), "{first}");
    assert!(
        first["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{first}"
    );

    write_in(
        dir.path(),
        "greet.prompt.yaml",
        "variables: {}\ntemplate: \"Hi {{ who }}\"\ntestData: [{}]\n",
    );
    let second = next_json(&lines);
    assert_eq!(second["event"], "status");
    assert_eq!(second["cause"], "file");
    assert_eq!(second["ok"], false);
    assert_eq!(second["error"]["code"], "undeclared-variable");
    assert_eq!(second["error"]["file"], "greet.prompt.yaml");
    assert_eq!(second["error"]["line"], 2);
    assert_eq!(second["error"]["column"], 18);

    std::fs::remove_file(dir.path().join("greet.prompt.yaml")).expect("remove");
    let third = next_json(&lines);
    assert_eq!(third["event"], "removed");
    assert_eq!(third["id"], "greet");

    interrupt(&mut child.0);
    assert_eq!(wait_exit(&mut child.0), Some(0));
}

/// A child process that is killed if the test fails before it exits.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[cfg(unix)]
fn interrupt(child: &mut Child) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn cli_refuses_unknown_ids_with_exit_2() {
    let dir = crate::common::tempdir();
    write_in(dir.path(), "greet.prompt.yaml", PLAIN);
    let output = cli(dir.path())
        .args(["watch", "gret"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no prompt `gret`"), "{stderr}");
    assert!(stderr.contains("did you mean `greet`?"), "{stderr}");
}

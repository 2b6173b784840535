//! Reliability: bounded inputs, what templates can read, exit codes and machine output under
//! every condition, and messages that say the right thing (docs/reliability.md).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::{cli, output_with_stdout_closed, registry_dir, TestRepo};

fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `cmd`, killing it if it has not finished after a minute: a command that waits forever
/// (on a FIFO, say) fails the test instead of hanging it. This guards against hangs only; no
/// test asserts on time.
fn run_bounded(cmd: Command) -> Output {
    run_measured(cmd).0
}

/// Runs `cmd` like [`run_bounded`], and returns its own peak memory in bytes (on Linux, from
/// `wait4` on that child alone: other tests' children, a Python build or a browser, are not
/// counted).
#[cfg(target_os = "linux")]
// The child is reaped by `wait4` (which std does not see), or killed and waited on.
#[allow(clippy::zombie_processes)]
fn run_measured(mut cmd: Command) -> (Output, u64) {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = i32::try_from(child.id()).expect("pid");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    for _ in 0..600 {
        let mut status = 0;
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: wait4 on our own child's pid, with valid pointers to a status and a zeroed
        // rusage it fills.
        #[allow(unsafe_code)]
        let done = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, usage.as_mut_ptr()) };
        if done == pid {
            // SAFETY: wait4 filled it for the child it reaped.
            #[allow(unsafe_code)]
            let usage = unsafe { usage.assume_init() };
            let out = Output {
                status: std::process::ExitStatus::from_raw(status),
                stdout: stdout.join().expect("stdout"),
                stderr: stderr.join().expect("stderr"),
            };
            return (out, u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "still running after a minute: {}",
        text(&stderr.join().expect("stderr"))
    );
}

#[cfg(not(target_os = "linux"))]
fn run_measured(mut cmd: Command) -> (Output, u64) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    for _ in 0..600 {
        if child.try_wait().expect("wait").is_some() {
            return (child.wait_with_output().expect("output"), 0);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    panic!("still running after a minute: {}", text(&out.stderr));
}

fn assert_no_panic(out: &Output) {
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(matches!(out.status.code(), Some(0..=2)), "{:?}", out.status);
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

// ---------------------------------------------------------------------------------------------
// Bounded inputs
// ---------------------------------------------------------------------------------------------

const HELLO: &str = "variables:\n  name: { type: string }\ntemplate: \"Hello {{ name }}\"\ntestData:\n  - name: Ada\n";

#[cfg(unix)]
#[test]
fn vars_from_devices_fifos_and_huge_stdin_are_refused() {
    let dir = registry_dir(&files(&[("hello.prompt.yaml", HELLO)]));
    mkfifo(&dir.path().join("values.fifo"));
    for (vars, says) in [
        ("/dev/zero", "`/dev/zero` is a device, not a regular file"),
        (
            "values.fifo",
            "`values.fifo` is a FIFO (named pipe), not a regular file",
        ),
    ] {
        let mut cmd = cli(dir.path());
        cmd.args(["render", "hello", "--vars", vars]);
        let out = run_bounded(cmd);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{vars}: {stderr}");
        assert!(stderr.contains(says), "{vars}: {stderr}");
        assert!(
            stderr.contains("= help: promptreg reads only regular files"),
            "{stderr}"
        );
    }
    // Standard input is read up to the same limit as a file, however much is sent.
    let mut child = cli(dir.path())
        .args(["render", "hello", "--vars", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 20];
        // 64 MiB, far past the 4 MiB limit; the reader stops early, so writes may fail.
        for _ in 0..64 {
            if stdin.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`<stdin>` is larger than the limit of 4194304 bytes"),
        "{stderr}"
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_partial_is_refused_not_waited_on() {
    let dir = registry_dir(&files(&[(
        "p.prompt.yaml",
        "template: 'a {% include \"partials/tone.md\" %}'\ntestData:\n  - {}\n",
    )]));
    std::fs::create_dir(dir.path().join("partials")).expect("mkdir");
    mkfifo(&dir.path().join("partials/tone.md"));
    let mut cmd = cli(dir.path());
    cmd.args(["validate", "--format", "json"]);
    let out = run_bounded(cmd);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let d = &report["diagnostics"][0];
    assert_eq!(d["code"], "unreadable", "{report}");
    assert_eq!(d["file"], "p.prompt.yaml", "{report}");
    assert_eq!(d["line"], 1, "{report}");
    assert!(
        d["message"]
            .as_str()
            .is_some_and(|m| m.contains("`partials/tone.md` is a FIFO")),
        "{report}"
    );
    // `render` and `watch`-style reads go through the same reader.
    let mut cmd = cli(dir.path());
    cmd.args(["render", "p"]);
    let out = run_bounded(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("error[unreadable]"),
        "{}",
        text(&out.stderr)
    );
}

/// Templates that would allocate far more than 10 GiB stop with a render error.
#[test]
fn template_bombs_stop_with_a_render_error() {
    let nested = "{% set a = ['x' * 1000000] * 10 %}{% set b = [a,a,a,a,a,a,a,a,a,a] %}{% set c = [b,b,b,b,b,b,b,b,b,b] %}{% set d = [c,c,c,c,c,c,c,c,c,c] %}";
    let cases = [
        ("namespace", "{% set ns = namespace(s='a') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}".to_string()),
        ("plus", "{% set ns = namespace(s='a') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}".to_string()),
        ("macro", "{% macro m(n) %}{% if n %}{% set x = m(n - 1) %}{% for i in range(64) %}{{ x }}{% endfor %}{% else %}ab{% endif %}{% endmacro %}{{ m(6) }}".to_string()),
        ("sets", format!("{{% set a = 'xxxxxxxxxxxxxxxx' %}}{}{{{{ j }}}}", (b'b'..=b'j').map(|c| { let (n, p) = (c as char, (c - 1) as char); format!("{{% set {n} = {p} ~ {p} ~ {p} ~ {p} ~ {p} ~ {p} ~ {p} ~ {p} %}}") }).collect::<String>())),
        ("repeat-loop", "{% for i in range(100000) %}{% set s = 'a' * 100000000 %}{% endfor %}".to_string()),
        ("capture", "{% set s = 'a' * 10000000 %}{% set x %}{% for i in range(100000) %}{{ s }}{% endfor %}{% endset %}{{ x|length }}".to_string()),
        ("replace", "{{ ('a' * 1000000)|replace('a', 'b' * 100000) }}".to_string()),
        ("join", "{{ (['a' * 10000000] * 100000)|join }}".to_string()),
        ("indent", "{{ ('a\\n' * 1000000)|indent(100000) }}".to_string()),
        ("format", "{{ '%999999999999s'|format('x') }}".to_string()),
        ("displayed", format!("{nested}{{{{ d }}}}")),
        ("string", format!("{nested}{{% set x = d|string %}}")),
        ("tojson", format!("{nested}{{{{ d|tojson }}}}")),
        ("pprint", format!("{nested}{{{{ d|pprint }}}}")),
    ];
    let pairs: Vec<(String, String)> = cases
        .iter()
        .map(|(name, template)| {
            let yaml = format!(
                "template: {}\ntestData:\n  - {{}}\n",
                serde_json::json!(template)
            );
            (format!("{name}.prompt.yaml"), yaml)
        })
        .collect();
    let dir = registry_dir(&pairs.into_iter().collect());
    let mut peak = 0;
    for (name, _) in &cases {
        let mut cmd = cli(dir.path());
        cmd.args(["render", name]);
        let (out, used) = run_measured(cmd);
        peak = peak.max(used);
        assert_no_panic(&out);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(
                "error[render-limit]: the values this template builds exceed 64 MiB in total"
            ),
            "{name}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("--> {name}.prompt.yaml:1:")),
            "{name}: {stderr}"
        );
    }
    let mut cmd = cli(dir.path());
    cmd.args(["validate", "--format", "json"]);
    let (out, used) = run_measured(cmd);
    peak = peak.max(used);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let over: Vec<&serde_json::Value> = report["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["code"] == "render-limit")
        .collect();
    assert_eq!(over.len(), cases.len(), "{report}");
    // Each stopped within a bounded memory: the largest of the processes above (every
    // `render` and the `validate`) stayed under 512 MiB, while each case asks for far more
    // than 10 GiB.
    assert!(peak < 512 * 1024 * 1024, "a bomb took {peak} bytes");
    #[cfg(target_os = "linux")]
    assert!(peak > 0, "the peak memory was measured");
}

/// The peak resident memory of the largest child process waited for so far, in bytes.
/// minijinja 3.1 formats a list or a mapping joined with `~` outside its fuel (see
/// docs/reliability.md): this bomb takes tens of gigabytes before the render stops. Ignored
/// until minijinja charges it; run it with `--ignored` on a machine with memory to spare.
#[test]
#[ignore = "minijinja 3.1 does not charge `~` on an object; see docs/reliability.md"]
fn an_object_joined_with_tilde_stops_within_the_budget() {
    let nested = "{% set a = ['x' * 1000000] * 10 %}{% set b = [a,a,a,a,a,a,a,a,a,a] %}{% set c = [b,b,b,b,b,b,b,b,b,b] %}{% set d = [c,c,c,c,c,c,c,c,c,c] %}";
    let yaml = format!(
        "template: {}\ntestData:\n  - {{}}\n",
        serde_json::json!(format!("{nested}{{{{ d ~ '' }}}}"))
    );
    let dir = registry_dir(&files(&[("displayed.prompt.yaml", &yaml)]));
    let mut cmd = cli(dir.path());
    cmd.args(["render", "displayed"]);
    let out = run_bounded(cmd);
    assert!(text(&out.stderr).contains("error[render-limit]"));
}

#[test]
fn templates_within_the_budget_render_as_before() {
    let template = "{{ ('ab' * 3)|replace('a', 'c') }} {{ ['a', 'b']|join(', ') }} {{ 'x\\ny'|indent(2) }} {{ '%3s|'|format('x') }} {{ {'a': [1, 2]}|tojson }} {{ 'ab'|list }}";
    let yaml = format!("template: {}\n", serde_json::json!(template));
    let dir = registry_dir(&files(&[("ok.prompt.yaml", &yaml)]));
    let out = cli(dir.path())
        .args(["render", "ok"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "cbcbcb a, b x\n  y   x| {\"a\": [1, 2]} ['a', 'b']\n"
    );
}

// ---------------------------------------------------------------------------------------------
// What templates can read
// ---------------------------------------------------------------------------------------------

fn include(path: &str) -> String {
    format!("template: 'a {{% include \"{path}\" %}}'\ntestData:\n  - {{}}\n")
}

/// Every finding of `validate --format json` in `dir` as (file, code, message), and the output.
fn findings(dir: &Path) -> (Vec<(String, String, String)>, String) {
    let out = cli(dir)
        .args(["validate", "--format", "json"])
        .output()
        .expect("run");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let found = report["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or_default().to_string();
            (s("file"), s("code"), s("message"))
        })
        .collect();
    (found, all)
}

#[test]
fn includes_never_read_git_internals_or_hidden_files() {
    let mut repo = TestRepo::new();
    repo.repo
        .config()
        .expect("config")
        .set_str("promptreg.token", "TOP-SECRET")
        .expect("set");
    repo.write("config.prompt.yaml", &include(".git/config"));
    repo.write("dotted.prompt.yaml", &include("partials/../.git/config"));
    repo.write("hidden.prompt.yaml", &include(".secrets/key.md"));
    repo.write(".secrets/key.md", "TOP-SECRET");
    repo.commit("add");
    for rev in [None, Some("HEAD")] {
        let (found, all) = findings(repo.path());
        assert!(!all.contains("TOP-SECRET"), "{all}");
        for id in ["config", "dotted", "hidden"] {
            assert!(
                found
                    .iter()
                    .any(|(f, c, m)| f == &format!("{id}.prompt.yaml")
                        && c == "include-outside-root"
                        && m.contains("in the git dir or hidden")),
                "{rev:?} {id}: {found:?}"
            );
        }
        // Rendering a committed version reads partials from the commit: hidden there too.
        let out = cli(repo.path())
            .args(["render", "hidden@1"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1));
        assert!(!text(&out.stdout).contains("TOP-SECRET"));
    }
}

#[test]
fn a_git_dir_inside_the_root_under_any_name_is_never_included() {
    let dir = crate::common::tempdir();
    let root = dir.path();
    let mut opts = git2::RepositoryInitOptions::new();
    opts.workdir_path(root).no_dotgit_dir(true);
    let repo = git2::Repository::init_opts(root.join("gitdata"), &opts).expect("init");
    repo.config()
        .expect("config")
        .set_str("promptreg.token", "TOP-SECRET")
        .expect("set");
    std::fs::write(root.join(".git"), "gitdir: gitdata\n").expect("gitlink");
    std::fs::write(root.join("a.prompt.yaml"), include("gitdata/config")).expect("write");
    let (found, all) = findings(root);
    assert!(!all.contains("TOP-SECRET"), "{all}");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1, "include-outside-root", "{found:?}");
    let out = cli(root).args(["render", "a"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(!text(&out.stdout).contains("TOP-SECRET"));
}

#[cfg(unix)]
#[test]
fn a_symlink_out_of_the_root_is_outside_the_root_not_missing() {
    let outer = crate::common::tempdir();
    std::fs::write(outer.path().join("secret.md"), "TOP-SECRET").expect("write");
    let root = outer.path().join("reg");
    std::fs::create_dir_all(root.join("partials")).expect("mkdir");
    std::fs::write(root.join("a.prompt.yaml"), include("partials/link.md")).expect("write");
    std::os::unix::fs::symlink(
        outer.path().join("secret.md"),
        root.join("partials/link.md"),
    )
    .expect("symlink");
    let (found, all) = findings(&root);
    assert!(!all.contains("TOP-SECRET"), "{all}");
    assert_eq!(
        found,
        vec![(
            "a.prompt.yaml".to_string(),
            "include-outside-root".to_string(),
            "`partials/link.md` is a symlink to a file outside the registry root".to_string()
        )]
    );
}

#[test]
fn includes_are_read_as_minijinja_reads_them() {
    let template = "{% include 'partials/optional.md' ignore missing %}{% raw %}{% include 'nope.md' %}{% endraw %}{# {% include 'gone.md' %} #}done";
    let yaml = format!(
        "template: {}\ntestData:\n  - {{}}\n",
        serde_json::json!(template)
    );
    let dir = registry_dir(&files(&[("a.prompt.yaml", &yaml)]));
    let (found, all) = findings(dir.path());
    assert!(found.is_empty(), "{all}");
    let out = cli(dir.path()).args(["render", "a"]).output().expect("run");
    assert_eq!(text(&out.stdout), "{% include 'nope.md' %}done\n");
}

// ---------------------------------------------------------------------------------------------
// Exit codes under every condition
// ---------------------------------------------------------------------------------------------

#[test]
fn a_closed_pipe_keeps_the_exit_code() {
    let broken = "template: '{{ x }'\n";
    let many: Vec<(String, String)> = (0..200)
        .map(|i| (format!("p{i:03}.prompt.yaml"), broken.to_string()))
        .collect();
    let dir = registry_dir(&many.into_iter().collect());
    for (args, code) in [(&["validate"][..], 1), (&["list"][..], 0)] {
        // `promptreg validate | head -0`: the reader is gone before anything is written.
        let out = output_with_stdout_closed(cli(dir.path()).args(args));
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let stderr = text(&out.stderr);
        assert!(
            !stderr.contains("error") && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn json_errors_are_json() {
    let dir = registry_dir(&files(&[
        ("hello.prompt.yaml", HELLO),
        ("broken.prompt.yaml", "template: '{{ x }'\n"),
    ]));
    let error = |args: &[&str], code: i32| -> serde_json::Value {
        let out = cli(dir.path()).args(args).output().expect("run");
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), "", "{args:?}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        serde_json::from_str(&stderr).expect("one JSON line")
    };
    let unknown = error(&["render", "helo", "--format", "json"], 2);
    assert_eq!(unknown["error"]["kind"], "unknown-prompt");
    assert_eq!(unknown["error"]["hint"], "did you mean `hello`?");
    let missing = error(&["render", "hello", "--format", "json"], 1);
    assert_eq!(missing["error"]["kind"], "missing-variables");
    assert_eq!(
        missing["error"]["message"],
        "missing required variable: `name`"
    );
    let invalid = error(&["render", "broken", "--format", "json"], 1);
    assert_eq!(invalid["error"]["kind"], "invalid");
    assert_eq!(
        invalid["error"]["diagnostics"][0]["code"],
        "template-syntax"
    );
    assert_eq!(invalid["error"]["diagnostics"][0]["line"], 1);
    let history = error(&["versions", "hello", "--format", "json"], 2);
    assert_eq!(history["error"]["kind"], "no-history");
    let outside = error(&["validate", "--format", "json", "nope"], 2);
    assert_eq!(outside["error"]["kind"], "unknown-prompt");
}

#[test]
fn diff_rendered_json_carries_compile_errors() {
    let mut repo = TestRepo::new();
    repo.write("hello.prompt.yaml", HELLO);
    repo.commit("add");
    repo.write(
        "hello.prompt.yaml",
        &HELLO.replace("Hello {{ name }}", "Hello {{ name }"),
    );
    let out = cli(repo.path())
        .args([
            "diff",
            "hello@1",
            "hello@work",
            "--rendered",
            "--format",
            "json",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(value["error_from"], serde_json::Value::Null);
    let to = value["error_to"].as_str().expect("compile error");
    assert!(
        to.starts_with("hello.prompt.yaml does not compile: hello.prompt.yaml:3:")
            && to.contains("template-syntax"),
        "{to}"
    );
    assert_eq!(
        value["rendered"][0]["error_before"],
        serde_json::Value::Null
    );
    assert_eq!(value["rendered"][0]["error_after"], to);
}

#[cfg(unix)]
#[test]
fn review_escapes_markdown_in_ids() {
    let mut repo = TestRepo::new();
    repo.write("base.prompt.yaml", HELLO);
    repo.commit("base");
    repo.branch("feature");
    let id = "a|b`c*d<e>";
    repo.write(&format!("{id}.prompt.yaml"), HELLO);
    repo.commit("add a prompt with a strange name");
    let out = cli(repo.path())
        .args(["review", "--base", "main"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let md = text(&out.stdout);
    let row = md
        .lines()
        .find(|l| l.starts_with("| [") && l.contains("a\\|b"))
        .unwrap_or_else(|| panic!("{md}"));
    // Six column separators, none of them from the id; the backtick needs a longer fence.
    let separators = row
        .match_indices('|')
        .filter(|(i, _)| !row[..*i].ends_with('\\'))
        .count();
    assert_eq!(separators, 6, "{row}");
    assert!(row.starts_with("| [``a\\|b`c*d<e>``](#"), "{row}");
    assert!(md.contains("### ``a|b`c*d<e>``: added"), "{md}");
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

#[test]
fn messages_never_suggest_what_just_failed_or_cannot_work() {
    let mut repo = TestRepo::new();
    repo.write("hello.prompt.yaml", HELLO);
    repo.write("other.prompt.yaml", HELLO);
    repo.write("defaults.yaml", "labels:\n  prod:\n    other: 1\n");
    repo.commit("add");
    // A label that exists but does not point at this prompt: no "did you mean `hello@prod`".
    let out = cli(repo.path())
        .args(["render", "hello@prod", "--test", "0"])
        .output()
        .expect("run");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("label `prod` does not point at `hello`"),
        "{stderr}"
    );
    assert!(!stderr.contains("did you mean `hello@prod`"), "{stderr}");
    // Restoring the latest version's content: nothing to commit, not "make it v2".
    let out = cli(repo.path())
        .args(["restore", "hello@1"])
        .output()
        .expect("run");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("nothing to commit"), "{stdout}");
    assert!(!stdout.contains("make it v2"), "{stdout}");
    // A prompt deleted from the working copy has no `@work` to render.
    repo.remove("hello.prompt.yaml");
    let out = cli(repo.path())
        .args(["render", "hello@1", "--test", "0"])
        .output()
        .expect("run");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("note: rendered hello@1; `hello` no longer exists in the working copy"),
        "{stderr}"
    );
    assert!(!stderr.contains("@work"), "{stderr}");
}

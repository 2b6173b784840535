//! CLI tests: exit code, stdout and stderr together, on prompts-example/ and on small
//! registries written for the test.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Stdio;

use insta_cmd::assert_cmd_snapshot;

use crate::common::{cli, crate_root, output_with_stdout_closed, registry_dir, settings};

fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const GREET: &str = "variables:\n  name: { type: string }\n  n: { type: integer, default: 1 }\nmessages:\n  - role: system\n    content: Be brief.\n  - role: user\n    content: \"Hello {{ name }} x{{ n }}\"\ntestData:\n  - name: Ada\n  - name: Grace\n    n: 2\n";

#[test]
fn render_text_and_json() {
    let dir = registry_dir(&files(&[("greet.prompt.yaml", GREET)]));
    settings(dir.path()).bind(|| {
        assert_cmd_snapshot!(
            "render_var_int",
            cli(dir.path()).args(["render", "greet", "--var", "name=Ada", "--var", "n=5"])
        );
        assert_cmd_snapshot!(
            "render_json",
            cli(dir.path()).args(["render", "greet@work", "--test", "1", "--format", "json"])
        );
        assert_cmd_snapshot!(
            "render_json_var",
            cli(dir.path()).args([
                "render",
                "greet",
                "--var",
                "name:=\"Bob\"",
                "--var",
                "n:=3",
                "--format",
                "json"
            ])
        );
    });
}

#[test]
fn render_errors_have_exit_codes() {
    let dir = registry_dir(&files(&[("greet.prompt.yaml", GREET)]));
    settings(dir.path()).bind(|| {
        assert_cmd_snapshot!("render_missing", cli(dir.path()).args(["render", "greet"]));
        assert_cmd_snapshot!(
            "render_wrong_type",
            cli(dir.path()).args(["render", "greet", "--var", "name=A", "--var", "n=many"])
        );
        assert_cmd_snapshot!(
            "render_unused_warning",
            cli(dir.path()).args(["render", "greet", "--var", "name=A", "--var", "extra=1"])
        );
        assert_cmd_snapshot!(
            "render_unused_strict",
            cli(dir.path())
                .args(["render", "greet", "--strict", "--var", "name=A", "--var", "extra=1"])
        );
        assert_cmd_snapshot!(
            "render_test_out_of_range",
            cli(dir.path()).args(["render", "greet", "--test", "7"])
        );
        assert_cmd_snapshot!(
            "render_unknown_prompt",
            cli(dir.path()).args(["render", "gret"])
        );
        assert_cmd_snapshot!(
            "render_bad_var_flag",
            cli(dir.path()).args(["render", "greet", "--var", "name"])
        );
        assert_cmd_snapshot!(
            "render_bad_json_flag",
            cli(dir.path()).args(["render", "greet", "--var", "name:={"])
        );
        assert_cmd_snapshot!("usage_error", cli(dir.path()).args(["render"]));
    });
}

#[test]
fn render_vars_from_file_and_stdin() {
    let dir = registry_dir(&files(&[
        ("greet.prompt.yaml", GREET),
        ("vals.yaml", "name: Lin\nn: 4\n"),
        ("bad.yaml", "name: [\n"),
    ]));
    settings(dir.path()).bind(|| {
        assert_cmd_snapshot!(
            "render_vars_file",
            cli(dir.path()).args(["render", "greet", "--vars", "vals.yaml", "--var", "n=9"])
        );
        assert_cmd_snapshot!(
            "render_vars_file_bad",
            cli(dir.path()).args(["render", "greet", "--vars", "bad.yaml"])
        );
        assert_cmd_snapshot!(
            "render_vars_stdin",
            cli(dir.path())
                .args(["render", "greet", "--vars", "-"])
                .pass_stdin("{\"name\": \"Stdin\"}")
        );
    });
}

#[test]
fn examples_render_every_test_case() {
    let root = crate_root().join("prompts-example");
    let registry = promptreg::Registry::open(&root).expect("open");
    let discovery = registry.discover_work().expect("discover");
    assert!(discovery.prompts.len() >= 6);
    for id in discovery.prompts.keys() {
        let compiled = registry
            .load_work(id)
            .expect("load")
            .compile()
            .expect("compile");
        let rows = compiled.prompt().test_data.clone();
        assert!(!rows.is_empty(), "{id} has test data");
        for row in rows {
            compiled
                .render(&row)
                .unwrap_or_else(|e| panic!("{id}: {e}"));
        }
    }
}

#[test]
fn examples_snapshots() {
    let root = crate_root().join("prompts-example");
    settings(&root).bind(|| {
        assert_cmd_snapshot!(
            "examples_render_triage",
            cli(&root).args(["render", "support/triage@work", "--test", "0"])
        );
        assert_cmd_snapshot!(
            "examples_render_brackets",
            cli(&root).args([
                "render",
                "engineering/json-fixer@work",
                "--test",
                "0",
                "--format",
                "json"
            ])
        );
        assert_cmd_snapshot!("examples_validate", cli(&root).args(["validate"]));
    });
}

#[test]
fn new_list_show_schema() {
    let dir = registry_dir(&files(&[]));
    settings(dir.path()).bind(|| {
        assert_cmd_snapshot!(
            "new_prompt",
            cli(dir.path()).args(["new", "support/escalation"])
        );
        assert_cmd_snapshot!(
            "new_exists",
            cli(dir.path()).args(["new", "support/escalation"])
        );
        assert_cmd_snapshot!("new_bad_id", cli(dir.path()).args(["new", "../outside"]));
        assert_cmd_snapshot!(
            "list_outside_git",
            cli(dir.path()).args(["list", "--format", "json"])
        );
        assert_cmd_snapshot!(
            "show_new",
            cli(dir.path()).args(["show", "support/escalation"])
        );
        assert_cmd_snapshot!(
            "show_new_json",
            cli(dir.path()).args(["show", "support/escalation@work", "--format", "json"])
        );
        assert_cmd_snapshot!(
            "render_new",
            cli(dir.path()).args(["render", "support/escalation", "--test", "0"])
        );
    });
    let schema = cli(dir.path()).arg("schema").output().expect("run");
    assert!(schema.status.success());
    let value: serde_json::Value = serde_json::from_slice(&schema.stdout).expect("schema is JSON");
    assert_eq!(value["properties"]["messages"]["type"], "array");
}

#[test]
fn duplicate_ids_and_invalid_files() {
    let dir = registry_dir(&files(&[
        ("a.prompt.yaml", "template: a\n"),
        ("a.prompt.yml", "template: b\n"),
        ("bad.prompt.yaml", "template: [\n"),
        ("blob.prompt.yaml", "\u{0}\u{1}"),
    ]));
    std::fs::write(
        dir.path().join("binary.prompt.yaml"),
        b"template: \xff\xfe\n",
    )
    .expect("write");
    settings(dir.path()).bind(|| {
        assert_cmd_snapshot!("render_duplicate_id", cli(dir.path()).args(["render", "a"]));
        assert_cmd_snapshot!("render_bad_yaml", cli(dir.path()).args(["render", "bad"]));
        assert_cmd_snapshot!(
            "render_invalid_utf8",
            cli(dir.path()).args(["render", "binary"])
        );
    });
}

#[test]
fn closed_pipe_is_not_a_crash() {
    let big = format!(
        "template: |\n{}\n",
        "  line of text that repeats\n".repeat(20000)
    );
    let dir = registry_dir(&files(&[("big.prompt.yaml", &big)]));
    let output = output_with_stdout_closed(cli(dir.path()).args(["render", "big"]));
    assert_ne!(
        output.status.code(),
        Some(101),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
}

#[test]
fn nothing_outside_the_root_is_read() {
    let outer = crate::common::tempdir();
    std::fs::write(outer.path().join("secret.txt"), "TOP-SECRET").expect("write");
    let root = outer.path().join("reg");
    std::fs::create_dir(&root).expect("mkdir");
    std::fs::write(
        root.join("a.prompt.yaml"),
        "template: '{% include \"../secret.txt\" %}'\n",
    )
    .expect("write");
    std::fs::write(
        root.join("b.prompt.yaml"),
        "template: '{% include \"/etc/hostname\" %}'\n",
    )
    .expect("write");
    std::fs::write(
        root.join("c.prompt.yaml"),
        "template: '{% include \"link.txt\" %}'\n",
    )
    .expect("write");
    #[cfg(unix)]
    std::os::unix::fs::symlink(outer.path().join("secret.txt"), root.join("link.txt"))
        .expect("symlink");
    for id in ["a", "b", "c"] {
        let out = cli(&root).args(["render", id]).output().expect("run");
        assert_eq!(out.status.code(), Some(1), "{id}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("TOP-SECRET"), "{id}: {all}");
    }
}

#[test]
fn hostile_inputs_never_panic() {
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10u8 {
        let (n, p) = ((b'a' + i) as char, (b'a' + i - 1) as char);
        bomb.push_str(&format!(
            "{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        ));
    }
    bomb.push_str("template: hi\n");
    let deep = format!("template: {}{}\n", "[".repeat(50_000), "]".repeat(50_000));
    let cases = [
        ("bomb", bomb),
        ("deep", deep),
        ("empty", String::new()),
        ("scalar", "just a string\n".into()),
        ("list", "- a\n- b\n".into()),
        ("nulls", "messages:\n  - ~\n".into()),
        ("multidoc", "template: a\n---\ntemplate: b\n".into()),
        ("tabs", "template:\n\t- x\n".into()),
        ("huge-loop", "template: '{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}{% endfor %}'\n".into()),
        ("recursive-macro", "template: '{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}'\n".into()),
        ("bad-role", "messages:\n  - role: robot\n    content: hi\n".into()),
        // Expressions and `elif` chains that minijinja would recurse into until the stack
        // overflows (an abort, exit 134), on the main thread and on validate's worker threads.
        ("long-sum", format!("template: '{{{{ 1{} }}}}'\n", " + 1".repeat(100_000))),
        ("long-not", format!("template: '{{{{ {}x }}}}'\n", "not ".repeat(100_000))),
        ("long-ternary", format!("template: '{{{{ x{} }}}}'\n", " if x else x".repeat(50_000))),
        (
            "long-elif",
            format!(
                "template: '{{% if x %}}{}{{% endif %}}'\n",
                "{% elif x %}".repeat(100_000)
            ),
        ),
        ("nested-partial", "template: '{% include \"deep.md\" %}'\n".into()),
    ];
    let mut pairs: Vec<(String, String)> = cases
        .iter()
        .map(|(n, t)| (format!("{n}.prompt.yaml"), t.clone()))
        .collect();
    pairs.push((
        "deep.md".into(),
        format!("{{{{ x{} }}}}", " ~ x".repeat(100_000)),
    ));
    let dir = registry_dir(&pairs.into_iter().collect());
    for (name, _) in &cases {
        for args in [
            vec!["render", name],
            vec!["show", name],
            vec!["validate", name],
        ] {
            let out = cli(dir.path()).args(&args).output().expect("run");
            let code = out.status.code();
            assert!(
                matches!(code, Some(0..=2)),
                "{args:?}: exit {code:?}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    for name in [
        "long-sum",
        "long-not",
        "long-ternary",
        "long-elif",
        "nested-partial",
    ] {
        let out = cli(dir.path())
            .args(["render", name])
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains("too many to compile safely"),
            "{name}: {stderr}"
        );
    }
    let all = cli(dir.path()).arg("validate").output().expect("run");
    assert_eq!(all.status.code(), Some(1), "validate of everything");
    let mut stdin = cli(dir.path())
        .args(["render", "bad-role", "--vars", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    if let Some(mut input) = stdin.stdin.take() {
        let _ = input.write_all(b"[1, 2]");
    }
    assert_eq!(stdin.wait().expect("wait").code(), Some(2));
}

#[test]
fn commands_that_work_on_the_working_copy_refuse_rev() {
    let dir = registry_dir(&files(&[("greet.prompt.yaml", GREET)]));
    for args in [
        vec!["--rev", "main", "new", "x"],
        vec!["--rev", "main", "schema"],
        vec!["--rev", "main", "commit", "greet", "-m", "m"],
        vec!["watch", "--rev", "main"],
    ] {
        let out = cli(dir.path()).args(&args).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("does not apply to") && stderr.contains("drop `--rev`"),
            "{args:?}: {stderr}"
        );
    }
    assert!(
        !dir.path().join("x.prompt.yaml").exists(),
        "nothing written"
    );
}

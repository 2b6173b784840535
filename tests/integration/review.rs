//! Pull-request review and diff (SPEC section 5): hermetic repositories with a `main` and a
//! `feature` branch built by hand, the Markdown and JSON reports snapshotted, and the numbers in
//! them (versions and defaults before and after the merge) checked against what the registry
//! really says once the branch is merged.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::common::{cli, settings, TestRepo};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn run(dir: &Path, args: &[&str]) -> Output {
    cli(dir).args(args).output().expect("run promptreg")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `review --base main --format json` (plus `extra` arguments), parsed; asserts the exit code.
fn review_json(dir: &Path, extra: &[&str], code: i32) -> Value {
    let mut args = vec!["review", "--base", "main", "--format", "json"];
    args.extend_from_slice(extra);
    let out = run(dir, &args);
    assert_eq!(out.status.code(), Some(code), "stderr: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("review JSON")
}

/// `review --base main` as Markdown (plus `extra` arguments); asserts the exit code.
fn review_markdown(dir: &Path, extra: &[&str], code: i32) -> String {
    let mut args = vec!["review", "--base", "main"];
    args.extend_from_slice(extra);
    let out = run(dir, &args);
    assert_eq!(out.status.code(), Some(code), "stderr: {}", stderr(&out));
    stdout(&out)
}

/// The prompt entries of a review, by id.
fn prompts_by_id(review: &Value) -> BTreeMap<String, Value> {
    review["prompts"]
        .as_array()
        .expect("prompts")
        .iter()
        .map(|p| (p["id"].as_str().expect("id").to_string(), p.clone()))
        .collect()
}

fn num(v: &Value) -> Option<u64> {
    v.as_u64()
}

/// (kind, version_before, version_after, default_before, default_after) of one prompt.
type Numbers = (String, Option<u64>, Option<u64>, Option<u64>, Option<u64>);

fn numbers(p: &Value) -> Numbers {
    (
        p["kind"].as_str().expect("kind").to_string(),
        num(&p["version_before"]),
        num(&p["version_after"]),
        num(&p["default_before"]),
        num(&p["default_after"]),
    )
}

fn n(kind: &str, vb: Option<u64>, va: Option<u64>, db: Option<u64>, da: Option<u64>) -> Numbers {
    (kind.to_string(), vb, va, db, da)
}

/// `list --format json` by id: (latest version, default) as the registry reports them.
fn listed(dir: &Path) -> BTreeMap<String, (Option<u64>, Option<u64>)> {
    let out = run(dir, &["list", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let list: Value = serde_json::from_str(&stdout(&out)).expect("list JSON");
    list.as_array()
        .expect("array")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().expect("id").to_string(),
                (num(&p["latest"]), num(&p["default"])),
            )
        })
        .collect()
}

/// Merges `feature` into `main` (a merge commit, as a pull request does) and checks that every
/// prompt the review announced has, on main after the merge, the version and default the review
/// said it would have.
fn assert_review_matches_merge(repo: &mut TestRepo, review: &Value) {
    repo.checkout("main");
    repo.merge("feature", "Merge pull request #1 from feature");
    let after = listed(repo.path());
    for (id, p) in prompts_by_id(review) {
        let expected = (num(&p["version_after"]), num(&p["default_after"]));
        if p["kind"] == "removed" {
            assert!(!after.contains_key(&id), "{id} should be gone after merge");
            assert_eq!(expected, (None, None), "{id}");
            continue;
        }
        let got = after
            .get(&id)
            .unwrap_or_else(|| panic!("{id} missing after merge"));
        assert_eq!(*got, expected, "{id}: (latest, default) after merge");
    }
}

/// A valid prompt with one declared variable and one test case.
fn simple(text: &str) -> String {
    format!(
        "description: a test prompt\nvariables:\n  name: {{ type: string, required: true }}\n\
         messages:\n  - role: system\n    content: You are helpful.\n  - role: user\n    \
         content: \"{text}, {{{{ name }}}}.\"\ntestData:\n  - name: Ada\n"
    )
}

/// The greeting: two test cases, the first formal (it renders `formal`), the second casual (it
/// renders `casual`).
fn greeting(formal: &str, casual: &str) -> String {
    format!(
        "description: Greets a user\n\
         variables:\n  \
           name: {{ type: string, required: true }}\n  \
           formal: {{ type: boolean, default: false }}\n\
         messages:\n  \
           - role: system\n    content: You greet people.\n  \
           - role: user\n    content: \"{{% if formal %}}{formal}, {{{{ name }}}}.{{% else %}}{casual}, {{{{ name }}}}!{{% endif %}}\"\n\
         testData:\n  \
           - name: Ada\n    formal: true\n  \
           - name: Bob\n"
    )
}

/// A prompt whose system message includes `partials/tone.md`.
fn with_tone(task: &str) -> String {
    format!(
        "description: {task}\n\
         variables:\n  ticket: {{ type: string, required: true }}\n\
         messages:\n  \
           - role: system\n    content: |\n      {task}\n      {{% include \"partials/tone.md\" %}}\n  \
           - role: user\n    content: \"{{{{ ticket }}}}\"\n\
         testData:\n  - ticket: My invoice is wrong.\n"
    )
}

/// Asserts a snapshot of `review --base main` in both formats.
fn snapshot_review(repo: &TestRepo, name: &str, extra: &[&str]) {
    let path = repo.path();
    settings(path).bind(|| {
        insta_cmd::assert_cmd_snapshot!(
            format!("review_{name}"),
            cli(path).args(["review", "--base", "main"]).args(extra)
        );
        insta_cmd::assert_cmd_snapshot!(
            format!("review_{name}_json"),
            cli(path)
                .args(["review", "--base", "main", "--format", "json"])
                .args(extra)
        );
    });
}

// ---------------------------------------------------------------------------------------------
// 1. Added, changed, removed and renamed prompts in one pull request
// ---------------------------------------------------------------------------------------------

fn mixed_repo() -> TestRepo {
    let mut repo = TestRepo::new();
    repo.write("greeting.prompt.yaml", &greeting("Good morning", "Hello"));
    repo.write(
        "old/faq.prompt.yaml",
        "description: Answer questions from the FAQ\ntemplate: |\n  Answer using only this FAQ.\n  \
         Q: How do I reset my password? A: On the login page.\n  Q: Where are invoices? A: Under Billing.\n  \
         Question: {{ question }}\nvariables:\n  question: { type: string, required: true }\n\
         testData:\n  - question: Where are invoices?\n",
    );
    repo.write(
        "legacy/summary.prompt.yaml",
        "description: Summarise a document\nvariables:\n  text: { type: string, required: true }\n\
         messages:\n  - role: system\n    content: |\n      Summarise the document in three bullet points.\n      \
         Keep each bullet under twenty words.\n      Do not add facts.\n  - role: user\n    \
         content: \"{{ text }}\"\ntestData:\n  - text: The quarterly report shows growth.\n",
    );
    repo.write("stable.prompt.yaml", &simple("Stay the same"));
    repo.commit("Add the first prompts");
    repo.write("greeting.prompt.yaml", &greeting("Good day", "Hello"));
    repo.commit("Greeting: good day");
    repo.write("greeting.prompt.yaml", &greeting("Good day to you", "Hi"));
    repo.commit("Greeting: shorter casual form");

    repo.branch("feature");
    // Two commits on the branch change the greeting: after a merge commit it is one version.
    repo.write("greeting.prompt.yaml", &greeting("Good evening", "Hi"));
    repo.commit("Greeting: evening");
    repo.write("greeting.prompt.yaml", &greeting("Welcome back", "Hi"));
    repo.write("new/onboarding.prompt.yaml", &simple("Welcome aboard"));
    repo.remove("old/faq.prompt.yaml");
    repo.remove("legacy/summary.prompt.yaml");
    repo.write(
        "content/summary.prompt.yaml",
        "description: Summarise a document\nvariables:\n  text: { type: string, required: true }\n\
         messages:\n  - role: system\n    content: |\n      Summarise the document in three bullet points.\n      \
         Keep each bullet under fifteen words.\n      Do not add facts.\n  - role: user\n    \
         content: \"{{ text }}\"\ntestData:\n  - text: The quarterly report shows growth.\n",
    );
    repo.commit("Welcome back; onboarding; drop the FAQ; move the summary");
    repo
}

#[test]
fn review_added_changed_removed_renamed() {
    let mut repo = mixed_repo();
    snapshot_review(&repo, "mixed", &[]);

    let review = review_json(repo.path(), &[], 0);
    let prompts = prompts_by_id(&review);
    let ids: Vec<&str> = prompts.keys().map(String::as_str).collect();
    assert_eq!(
        ids,
        ["content/summary", "greeting", "new/onboarding", "old/faq"],
        "stable and the rename's old id are not listed on their own"
    );
    // greeting: three versions on main, changed by the PR (twice, one merge): v3 -> v4; without
    // a manifest its default follows the latest.
    assert_eq!(
        numbers(&prompts["greeting"]),
        n("changed", Some(3), Some(4), Some(3), Some(4))
    );
    assert_eq!(
        numbers(&prompts["new/onboarding"]),
        n("added", None, Some(1), None, Some(1))
    );
    assert_eq!(
        numbers(&prompts["old/faq"]),
        n("removed", Some(1), None, Some(1), None)
    );
    // A rename starts a new id at version 1.
    assert_eq!(
        numbers(&prompts["content/summary"]),
        n("renamed", None, Some(1), None, Some(1))
    );
    assert_eq!(prompts["content/summary"]["renamed_from"], "legacy/summary");
    let rename_diff = prompts["content/summary"]["source_diff"].as_str().unwrap();
    assert!(
        rename_diff
            .starts_with("--- a/legacy/summary.prompt.yaml\n+++ b/content/summary.prompt.yaml\n"),
        "{rename_diff}"
    );
    assert!(
        rename_diff.contains(
            "-      Keep each bullet under twenty words.\n+      Keep each bullet under fifteen words.\n"
        ),
        "{rename_diff}"
    );

    // The greeting's two test cases: the formal one changes, the casual one renders the same.
    let cases = prompts["greeting"]["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 2);
    assert_eq!(cases[0]["same"], false);
    let diff0 = cases[0]["diff"].as_str().unwrap();
    assert!(diff0.contains("-Good day to you, Ada."), "{diff0}");
    assert!(diff0.contains("+Welcome back, Ada."), "{diff0}");
    assert_eq!(cases[1]["same"], true);
    assert_eq!(cases[1]["diff"], "");
    assert_eq!(review["validation"]["errors"], 0);
    assert_eq!(review["warnings"], Value::Array(vec![]));

    let md = review_markdown(repo.path(), &[], 0);
    assert!(
        md.contains(
            "| [`greeting`](#promptreg-1-greeting) | changed | v3 -> v4 | v3 -> v4 | 1 of 2 differ |"
        ),
        "{md}"
    );
    assert!(md.contains("Test case 1 renders the same"), "{md}");
    assert!(md.contains("renamed from `legacy/summary`"), "{md}");

    // The same review from main's checkout with an explicit head.
    repo.checkout("main");
    let explicit = review_json(repo.path(), &["--head", "feature"], 0);
    assert_eq!(explicit["prompts"], review["prompts"]);
    assert_eq!(explicit["head"]["commit"], review["head"]["commit"]);
    assert_eq!(explicit["head"]["rev"], "feature");
    repo.checkout("feature");

    assert_review_matches_merge(&mut repo, &review);
}

// ---------------------------------------------------------------------------------------------
// 2. A partial-only change
// ---------------------------------------------------------------------------------------------

#[test]
fn review_partial_only_change() {
    let mut repo = TestRepo::new();
    repo.write("partials/tone.md", "Be friendly and brief.");
    repo.write(
        "support/triage.prompt.yaml",
        &with_tone("Triage the ticket."),
    );
    repo.write(
        "support/refund.prompt.yaml",
        &with_tone("Decide on a refund."),
    );
    repo.write("greeting.prompt.yaml", &simple("Hello"));
    repo.commit("Add support prompts");
    repo.write(
        "support/refund.prompt.yaml",
        &with_tone("Decide on a refund, politely."),
    );
    repo.commit("Refund: politely");
    repo.branch("feature");
    repo.write("partials/tone.md", "Be warm, specific and brief.");
    repo.commit("Tone: warmer");
    snapshot_review(&repo, "partial_only", &[]);

    let review = review_json(repo.path(), &[], 0);
    let prompts = prompts_by_id(&review);
    let ids: Vec<&str> = prompts.keys().map(String::as_str).collect();
    assert_eq!(
        ids,
        ["support/refund", "support/triage"],
        "greeting does not include the partial"
    );
    // The prompt files did not change, but a version is whole: the partial's commit is a new
    // version of each prompt that includes it, and the default (the latest) moves with it.
    assert_eq!(
        numbers(&prompts["support/triage"]),
        n("output-changed", Some(1), Some(2), Some(1), Some(2))
    );
    assert_eq!(
        numbers(&prompts["support/refund"]),
        n("output-changed", Some(2), Some(3), Some(2), Some(3))
    );
    for p in prompts.values() {
        assert_eq!(
            p["partials_changed"],
            serde_json::json!(["partials/tone.md"])
        );
        assert_eq!(p["source_diff"], "");
        let case = &p["cases"][0];
        assert_eq!(case["same"], false);
        let diff = case["diff"].as_str().unwrap();
        assert!(
            diff.contains("-Be friendly and brief.")
                && diff.contains("+Be warm, specific and brief."),
            "{diff}"
        );
    }
    let md = review_markdown(repo.path(), &[], 0);
    assert!(
        md.contains("its output changed through `partials/tone.md`"),
        "{md}"
    );
    assert!(md.contains("2 output changed"), "{md}");

    assert_review_matches_merge(&mut repo, &review);
}

// ---------------------------------------------------------------------------------------------
// 3. Manifest moves and default warnings
// ---------------------------------------------------------------------------------------------

/// main: greeting with three versions (default pinned at v2, staging at v1), triage with two
/// (pinned at v2).
fn manifest_repo() -> TestRepo {
    let mut repo = TestRepo::new();
    repo.write("greeting.prompt.yaml", &simple("Hello"));
    repo.write(
        "support/triage.prompt.yaml",
        &simple("Triage the ticket from"),
    );
    repo.commit("Add greeting and triage");
    repo.write("greeting.prompt.yaml", &simple("Hello there"));
    repo.write(
        "support/triage.prompt.yaml",
        &simple("Triage politely the ticket from"),
    );
    repo.commit("Greeting v2, triage v2");
    repo.write("greeting.prompt.yaml", &simple("Hi there"));
    repo.commit("Greeting v3");
    repo.write(
        "defaults.yaml",
        "# What apps get.\ndefaults:\n  greeting: 2\n  support/triage: 2\nlabels:\n  staging:\n    greeting: 1\n",
    );
    repo.commit("Pin greeting and triage");
    repo
}

#[test]
fn review_manifest_moves_and_lagging_default() {
    let mut repo = manifest_repo();
    repo.branch("feature");
    // The default and the staging label of greeting move; triage changes but its pin stays.
    repo.write(
        "defaults.yaml",
        "# What apps get.\ndefaults:\n  greeting: 3\n  support/triage: 2\nlabels:\n  staging:\n    greeting: 3\n",
    );
    repo.write(
        "support/triage.prompt.yaml",
        &simple("Triage carefully the ticket from"),
    );
    repo.commit("Promote greeting v3; triage carefully");
    snapshot_review(&repo, "manifest", &[]);

    let review = review_json(repo.path(), &[], 0);
    let manifest = review["manifest"].as_array().expect("manifest");
    let moves: Vec<(Value, Value, Value, Value)> = manifest
        .iter()
        .map(|m| {
            (
                m["label"].clone(),
                m["id"].clone(),
                m["before"].clone(),
                m["after"].clone(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        vec![
            (Value::Null, "greeting".into(), 2.into(), 3.into()),
            ("staging".into(), "greeting".into(), 1.into(), 3.into()),
        ]
    );
    let diff = manifest[0]["diff"].as_str().unwrap();
    assert_eq!(
        diff,
        "--- greeting@2\n+++ greeting@3\n@@ -5,6 +5,6 @@\n   - role: system\n     content: You are helpful.\n   - role: user\n-    content: \"Hello there, {{ name }}.\"\n+    content: \"Hi there, {{ name }}.\"\n testData:\n   - name: Ada\n"
    );
    let prompts = prompts_by_id(&review);
    assert_eq!(prompts.keys().collect::<Vec<_>>(), ["support/triage"]);
    assert_eq!(
        numbers(&prompts["support/triage"]),
        n("changed", Some(2), Some(3), Some(2), Some(2))
    );
    let warnings = review["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = warnings[0].as_str().unwrap();
    assert!(
        w.contains("support/triage") && w.contains("v3") && w.contains("v2"),
        "{w}"
    );

    let md = review_markdown(repo.path(), &[], 0);
    assert!(md.contains("- `greeting` default: v2 -> v3"), "{md}");
    assert!(
        md.contains("- `greeting` label `staging`: v1 -> v3"),
        "{md}"
    );
    assert!(md.contains("> **Warning:**"), "{md}");

    assert_review_matches_merge(&mut repo, &review);
}

#[test]
fn review_default_moved_backwards_warns() {
    let mut repo = manifest_repo();
    repo.branch("feature");
    repo.write(
        "defaults.yaml",
        "# What apps get.\ndefaults:\n  greeting: 1\n  support/triage: 2\nlabels:\n  staging:\n    greeting: 1\n",
    );
    repo.commit("Roll the greeting back to v1");
    snapshot_review(&repo, "manifest_backwards", &[]);

    let review = review_json(repo.path(), &[], 0);
    assert_eq!(review["prompts"], Value::Array(vec![]));
    let warnings: Vec<&str> = review["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(
        warnings,
        ["the default of `greeting` moves backwards, from v2 to v1"]
    );
    assert_eq!(review["manifest"][0]["before"], 2);
    assert_eq!(review["manifest"][0]["after"], 1);
}

#[test]
fn review_change_and_default_move_in_one_pull_request() {
    // The PR changes the greeting and moves its default to the new version in the same commit:
    // no lagging warning, the default after merge is v4.
    let mut repo = manifest_repo();
    repo.branch("feature");
    repo.write("greeting.prompt.yaml", &simple("Hey there"));
    repo.write(
        "defaults.yaml",
        "# What apps get.\ndefaults:\n  greeting: 4\n  support/triage: 2\nlabels:\n  staging:\n    greeting: 1\n",
    );
    repo.commit("Greeting v4, promoted");
    let review = review_json(repo.path(), &[], 0);
    let prompts = prompts_by_id(&review);
    assert_eq!(
        numbers(&prompts["greeting"]),
        n("changed", Some(3), Some(4), Some(2), Some(4))
    );
    assert_eq!(review["warnings"], Value::Array(vec![]));
    assert_eq!(review["validation"]["errors"], 0);
    let diff = review["manifest"][0]["diff"].as_str().unwrap();
    assert!(
        diff.starts_with("--- greeting@2\n+++ greeting@4\n"),
        "{diff}"
    );
    assert!(
        diff.contains("+    content: \"Hey there, {{ name }}.\""),
        "{diff}"
    );
    assert_review_matches_merge(&mut repo, &review);
}

// ---------------------------------------------------------------------------------------------
// 4. Base and head diverged: compared from the merge base
// ---------------------------------------------------------------------------------------------

#[test]
fn review_diverged_branches_use_the_merge_base() {
    let mut repo = TestRepo::new();
    repo.write("greeting.prompt.yaml", &simple("Hello"));
    repo.write(
        "support/triage.prompt.yaml",
        &simple("Triage the ticket from"),
    );
    repo.write("notes.prompt.yaml", &simple("Take notes for"));
    repo.commit("Add prompts");
    repo.write("greeting.prompt.yaml", &simple("Hello there"));
    repo.commit("Greeting v2");
    repo.write("greeting.prompt.yaml", &simple("Hi there"));
    repo.commit("Greeting v3");
    repo.branch("feature");
    repo.write("greeting.prompt.yaml", &simple("Hi there, friend"));
    repo.commit("Greeting: friend");
    // main moves on after the branch point: triage changes, and so does the greeting itself.
    repo.checkout("main");
    repo.write(
        "support/triage.prompt.yaml",
        &simple("Triage politely the ticket from"),
    );
    repo.commit("Triage v2 (on main only)");
    repo.write("notes.prompt.yaml", &simple("Take careful notes for"));
    repo.commit("Notes v2 (on main only)");
    repo.write("notes.prompt.yaml", &simple("Take short notes for"));
    repo.commit("Notes v3 (on main only)");
    repo.checkout("feature");
    snapshot_review(&repo, "diverged", &[]);

    let review = review_json(repo.path(), &[], 0);
    assert!(review["merge_base"].is_string());
    assert_ne!(review["merge_base"], review["base"]["commit"]);
    let prompts = prompts_by_id(&review);
    assert_eq!(
        prompts.keys().collect::<Vec<_>>(),
        ["greeting"],
        "changes made on main after the branch point are not the PR's"
    );
    assert_eq!(
        numbers(&prompts["greeting"]),
        n("changed", Some(3), Some(4), Some(3), Some(4))
    );
    let source = prompts["greeting"]["source_diff"].as_str().unwrap();
    assert!(
        source.contains("-    content: \"Hi there, {{ name }}.\""),
        "{source}"
    );
    assert!(
        source.contains("+    content: \"Hi there, friend, {{ name }}.\""),
        "{source}"
    );
    assert_review_matches_merge(&mut repo, &review);
}

#[test]
fn review_diverged_counts_versions_made_on_main_meanwhile() {
    // main changes the greeting after the branch point too: after merge the PR's version is
    // main's count + 1 (v5), and the PR's diff still starts at the merge base.
    let mut repo = TestRepo::new();
    repo.write("greeting.prompt.yaml", &greeting("Good morning", "Hello"));
    repo.commit("Greeting v1");
    repo.write("greeting.prompt.yaml", &greeting("Good day", "Hello"));
    repo.commit("Greeting v2");
    repo.write("greeting.prompt.yaml", &greeting("Good day", "Hi"));
    repo.commit("Greeting v3");
    repo.branch("feature");
    repo.write("greeting.prompt.yaml", &greeting("Good evening", "Hi"));
    repo.commit("Greeting: evening (the PR)");
    repo.checkout("main");
    repo.write("other.prompt.yaml", &simple("Other"));
    repo.commit("Add another prompt (main only)");
    repo.write("greeting.prompt.yaml", &greeting("Good day", "Hey"));
    repo.commit("Greeting v4 (main only)");
    repo.checkout("feature");
    snapshot_review(&repo, "diverged_both", &[]);

    let review = review_json(repo.path(), &[], 0);
    let prompts = prompts_by_id(&review);
    assert_eq!(prompts.keys().collect::<Vec<_>>(), ["greeting"]);
    assert_eq!(
        numbers(&prompts["greeting"]),
        n("changed", Some(4), Some(5), Some(4), Some(5))
    );
    let source = prompts["greeting"]["source_diff"].as_str().unwrap();
    assert!(
        source.contains("-Good day") || source.contains("Good day, {{ name }}"),
        "{source}"
    );
    assert!(
        !source.contains("Hey"),
        "main's own change is not the PR's: {source}"
    );
    assert_review_matches_merge(&mut repo, &review);
}

// ---------------------------------------------------------------------------------------------
// 5. A base without a registry
// ---------------------------------------------------------------------------------------------

#[test]
fn review_base_without_registry_root() {
    let mut repo = TestRepo::new();
    repo.write("README.md", "# A project\n");
    repo.commit("Initial commit");
    repo.branch("feature");
    repo.write("prompts/greeting.prompt.yaml", &simple("Hello"));
    repo.write(
        "prompts/support/triage.prompt.yaml",
        &simple("Triage the ticket from"),
    );
    repo.write("prompts/defaults.yaml", "defaults:\n  greeting: 1\n");
    repo.commit("Start a prompt registry");
    snapshot_review(&repo, "no_base_registry", &["-C", "prompts"]);

    let review = review_json(repo.path(), &["-C", "prompts"], 0);
    let prompts = prompts_by_id(&review);
    assert_eq!(
        prompts.keys().collect::<Vec<_>>(),
        ["greeting", "support/triage"]
    );
    for p in prompts.values() {
        assert_eq!(numbers(p), n("added", None, Some(1), None, Some(1)));
    }
    assert_eq!(review["manifest"][0]["id"], "greeting");
    assert_eq!(review["manifest"][0]["before"], Value::Null);
    assert_eq!(review["manifest"][0]["after"], 1);
}

// ---------------------------------------------------------------------------------------------
// 6. Validation errors on head
// ---------------------------------------------------------------------------------------------

#[test]
fn review_head_with_validation_errors_exits_1() {
    let mut repo = TestRepo::new();
    repo.write("greeting.prompt.yaml", &simple("Hello"));
    repo.commit("Add greeting");
    repo.branch("feature");
    // An undeclared variable on line 8 of the file.
    repo.write(
        "greeting.prompt.yaml",
        "description: a test prompt\nvariables:\n  name: { type: string, required: true }\n\
         messages:\n  - role: system\n    content: You are helpful.\n  - role: user\n    \
         content: \"Hello, {{ name }} from {{ city }}.\"\ntestData:\n  - name: Ada\n",
    );
    repo.commit("Greeting: mention the city");
    snapshot_review(&repo, "validation_errors", &[]);

    let review = review_json(repo.path(), &[], 1);
    let validation = &review["validation"];
    assert!(validation["errors"].as_u64().unwrap() >= 1, "{validation}");
    let errors: Vec<&Value> = validation["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "error")
        .collect();
    assert!(
        errors.iter().any(|d| d["file"] == "greeting.prompt.yaml"
            && d["line"] == 8
            && d["message"].as_str().unwrap().contains("city")),
        "{errors:?}"
    );
    let md = review_markdown(repo.path(), &[], 1);
    assert!(md.contains("greeting.prompt.yaml:8:"), "{md}");
}

// ---------------------------------------------------------------------------------------------
// 7. A generated pull request over fifty prompts
// ---------------------------------------------------------------------------------------------

/// A long prompt: `lines` numbered instructions, each mentioning `flavour`.
fn long_prompt(i: usize, flavour: &str, lines: usize) -> String {
    let mut s = format!(
        "description: Generated prompt {i}\nvariables:\n  topic: {{ type: string, required: true }}\n\
         messages:\n  - role: system\n    content: |\n"
    );
    for l in 0..lines {
        s.push_str(&format!(
            "      Rule {l}: be {flavour} about part {l} of the task.\n"
        ));
    }
    s.push_str(
        "  - role: user\n    content: \"Write about {{ topic }}.\"\ntestData:\n  - topic: rivers\n",
    );
    s
}

#[test]
fn review_large_pull_request_stays_readable() {
    let mut repo = TestRepo::new();
    for i in 0..60 {
        repo.write(
            &format!("gen/p{i:02}.prompt.yaml"),
            &long_prompt(i, "careful", 12),
        );
    }
    repo.commit("Add sixty prompts");
    repo.branch("feature");
    for i in 0..55 {
        repo.write(
            &format!("gen/p{i:02}.prompt.yaml"),
            &long_prompt(i, "precise", 12),
        );
    }
    repo.commit("Make fifty-five prompts precise");

    let md = review_markdown(repo.path(), &[], 0);
    let lines: Vec<&str> = md.lines().collect();

    // The summary table comes first, with one row per changed prompt, before any folded diff.
    let first_details = lines
        .iter()
        .position(|l| l.starts_with("<details>"))
        .expect("long diffs are folded");
    let rows: Vec<&&str> = lines[..first_details]
        .iter()
        .filter(|l| l.starts_with("| [`gen/p"))
        .collect();
    assert_eq!(rows.len(), 55, "summary rows before the first <details>");
    assert!(md.contains("**55 prompts:** 55 changed"), "{}", &md[..500]);
    // Each changed prompt has exactly one section, or is named in the note that says the
    // rest did not fit in one comment; the unchanged ones have neither.
    assert!(md.chars().count() <= 65_536);
    let note = lines
        .iter()
        .find(|l| l.contains("not shown"))
        .copied()
        .unwrap_or("");
    let mut shown = 0;
    for i in 0..60 {
        let heading = format!("### `gen/p{i:02}`: ");
        let count = md.matches(&heading).count();
        let listed = note.contains(&format!("`gen/p{i:02}`"));
        if i < 55 {
            assert_eq!(
                count + usize::from(listed),
                1,
                "gen/p{i:02}: shown or listed once"
            );
            shown += count;
        } else {
            assert_eq!(count + usize::from(listed), 0, "gen/p{i:02} is unchanged");
        }
    }
    assert!(shown >= 10, "only {shown} sections fit");
    // Every fenced diff longer than the fold limit sits inside <details>.
    let mut i = 0;
    let mut fences = 0;
    while i < lines.len() {
        if lines[i].starts_with("```") && lines[i].ends_with("diff") {
            let start = i;
            let end = (start + 1..lines.len())
                .find(|&j| lines[j].starts_with("```") && lines[j].trim_end_matches('`').is_empty())
                .expect("closed fence");
            let body = end - start - 1;
            let opener = lines[..start]
                .iter()
                .rev()
                .find(|l| !l.is_empty())
                .expect("something before the fence");
            if body > 15 {
                assert!(
                    opener.starts_with("<details><summary>"),
                    "a {body}-line diff at line {start} is not folded: {opener}"
                );
                let close = lines[end + 1..]
                    .iter()
                    .find(|l| !l.is_empty())
                    .expect("after the fence");
                assert_eq!(*close, "</details>");
            }
            fences += 1;
            i = end + 1;
        } else {
            i += 1;
        }
    }
    assert_eq!(
        fences,
        shown * 2,
        "a source diff and a rendered diff per shown prompt"
    );
    // Anchors in the table lead to the sections that are shown.
    for i in 0..shown {
        let anchor = format!("<a id=\"promptreg-{i}-gen-p{i:02}\"></a>");
        assert_eq!(md.matches(&anchor).count(), 1, "{anchor}");
        assert!(md.contains(&format!("(#promptreg-{i}-gen-p{i:02})")));
    }

    let head: String = lines[..40].join("\n");
    settings(repo.path()).bind(|| {
        insta::assert_snapshot!("review_large_first_40_lines", head);
    });
}

/// GitHub refuses comments longer than 65,536 characters; a review that a CI job posts as a
/// comment must fit (or say it was cut short).
#[test]
fn review_large_pull_request_fits_in_a_comment() {
    let mut repo = TestRepo::new();
    for i in 0..60 {
        repo.write(
            &format!("gen/p{i:02}.prompt.yaml"),
            &long_prompt(i, "careful", 12),
        );
    }
    repo.commit("Add sixty prompts");
    repo.branch("feature");
    for i in 0..55 {
        repo.write(
            &format!("gen/p{i:02}.prompt.yaml"),
            &long_prompt(i, "precise", 12),
        );
    }
    repo.commit("Make fifty-five prompts precise");
    let md = review_markdown(repo.path(), &[], 0);
    assert!(
        md.chars().count() <= 65_536,
        "{} characters",
        md.chars().count()
    );
}

// ---------------------------------------------------------------------------------------------
// 8. `diff`
// ---------------------------------------------------------------------------------------------

#[test]
fn diff_snapshots() {
    let mut repo = TestRepo::new();
    repo.write("greeting.prompt.yaml", &greeting("Good morning", "Hello"));
    repo.write("farewell.prompt.yaml", &greeting("Good bye", "Bye"));
    repo.commit("Add greeting and farewell");
    repo.write("greeting.prompt.yaml", &greeting("Good day", "Hello"));
    repo.commit("Greeting: good day");
    // An uncommitted edit: the working copy.
    repo.write("greeting.prompt.yaml", &greeting("Good day", "Hi"));
    let path = repo.path();
    settings(path).bind(|| {
        insta_cmd::assert_cmd_snapshot!(
            "review_diff_versions",
            cli(path).args(["diff", "greeting@1", "greeting@2"])
        );
        insta_cmd::assert_cmd_snapshot!(
            "review_diff_work_rendered",
            cli(path).args(["diff", "greeting@1", "greeting@work", "--rendered"])
        );
        insta_cmd::assert_cmd_snapshot!(
            "review_diff_two_prompts",
            cli(path).args(["diff", "greeting@1", "farewell@1"])
        );
        insta_cmd::assert_cmd_snapshot!(
            "review_diff_work_rendered_json",
            cli(path).args([
                "diff",
                "greeting@1",
                "greeting@work",
                "--rendered",
                "--format",
                "json"
            ])
        );
        insta_cmd::assert_cmd_snapshot!(
            "review_diff_same",
            cli(path).args(["diff", "greeting@2", "greeting@latest", "--rendered"])
        );
    });
    for args in [
        &["diff", "greeting@1", "greeting@2"][..],
        &["diff", "greeting@1", "greeting@work", "--rendered"],
        &["diff", "greeting@1", "farewell@1"],
        &["diff", "greeting@1", "greeting@2", "--format", "json"],
    ] {
        let out = run(path, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    let out = run(
        path,
        &[
            "diff",
            "greeting@1",
            "greeting@work",
            "--rendered",
            "--format",
            "json",
        ],
    );
    let json: Value = serde_json::from_str(&stdout(&out)).expect("diff JSON");
    assert_eq!(json["from"], "greeting@1");
    assert_eq!(json["to"], "greeting@work");
    assert_eq!(json["same"], false);
    let rendered = json["rendered"].as_array().expect("rendered");
    assert_eq!(rendered.len(), 2);
    assert_eq!(
        rendered[0]["same"], false,
        "formal: Good morning -> Good day"
    );
    assert_eq!(rendered[1]["same"], false, "casual: Hello -> Hi");
}

// ---------------------------------------------------------------------------------------------
// Known bugs
// ---------------------------------------------------------------------------------------------

/// A PR that renames a variable (and its test data with it) renders the same text: each side
/// must be rendered with its own test data, not the old prompt with the new test data.
#[test]
fn review_renamed_variable_renders_each_side_with_its_own_test_data() {
    let mut repo = TestRepo::new();
    repo.write("greeting.prompt.yaml", &simple("Hello"));
    repo.commit("Add greeting");
    repo.branch("feature");
    repo.write(
        "greeting.prompt.yaml",
        &simple("Hello").replace("name", "user_name"),
    );
    repo.commit("Rename the variable");
    let review = review_json(repo.path(), &[], 0);
    let case = &review["prompts"][0]["cases"][0];
    assert_eq!(case["error_before"], Value::Null, "{case}");
    assert_eq!(case["same"], true, "{case}");
}

/// A prompt without test data that includes a changed partial: its output changes, so the
/// review must name it (and say it has no test data), not report "No prompt changes".
#[test]
fn review_partial_change_reaches_prompts_without_test_data() {
    let mut repo = TestRepo::new();
    repo.write("partials/tone.md", "Be friendly.");
    repo.write(
        "triage.prompt.yaml",
        "description: x\nmessages:\n  - role: system\n    content: |\n      Triage.\n      {% include \"partials/tone.md\" %}\n",
    );
    repo.commit("Add triage");
    repo.branch("feature");
    repo.write("partials/tone.md", "Be rude.");
    repo.commit("Tone: rude");
    let review = review_json(repo.path(), &[], 0);
    let prompts = prompts_by_id(&review);
    assert!(prompts.contains_key("triage"), "{review}");
    assert_eq!(
        prompts["triage"]["partials_changed"],
        serde_json::json!(["partials/tone.md"])
    );
}

/// Without a manifest entry the default is the latest version (SPEC 1.3): adding a pin to an
/// older version moves the default backwards (v3 -> v1), and dropping a pin moves it to the
/// latest (v2 -> v3); neither is a move from or to "no version".
#[test]
fn review_manifest_pin_and_unpin_resolve_absent_entries_to_latest() {
    let mut repo = TestRepo::new();
    for (i, text) in ["Hello", "Hi", "Hey"].iter().enumerate() {
        repo.write("greeting.prompt.yaml", &simple(text));
        repo.write("other.prompt.yaml", &simple(&format!("Other {i}")));
        if i == 2 {
            repo.write("defaults.yaml", "defaults:\n  other: 2\n");
        }
        repo.commit(&format!("Version {}", i + 1));
    }
    repo.branch("feature");
    repo.write("defaults.yaml", "defaults:\n  greeting: 1\n");
    repo.commit("Pin greeting to v1, unpin other");
    let review = review_json(repo.path(), &[], 0);
    let manifest = review["manifest"].as_array().expect("manifest");
    let greeting = manifest.iter().find(|m| m["id"] == "greeting").unwrap();
    let other = manifest.iter().find(|m| m["id"] == "other").unwrap();
    assert!(
        greeting["diff"]
            .as_str()
            .unwrap()
            .starts_with("--- greeting@3\n+++ greeting@1\n"),
        "{greeting}"
    );
    assert!(
        other["diff"]
            .as_str()
            .unwrap()
            .starts_with("--- other@2\n+++ other@3\n"),
        "{other}"
    );
    let warnings = review["warnings"].to_string();
    assert!(
        warnings.contains("greeting") && warnings.contains("backwards"),
        "{warnings}"
    );
}

/// main moved on (greeting v4 on main) while the PR changed the greeting and pinned the default
/// to its own version, numbered v4 on the branch. After the merge v4 is main's version, so the
/// pointer would name different content: the review warns and asks for a rebase.
#[test]
fn review_diverged_manifest_pointer_warns_about_renumbering() {
    let mut repo = TestRepo::new();
    repo.write("greeting.prompt.yaml", &simple("Hello"));
    repo.commit("v1");
    repo.write("greeting.prompt.yaml", &simple("Hi"));
    repo.commit("v2");
    repo.write("greeting.prompt.yaml", &simple("Hey"));
    repo.write("defaults.yaml", "defaults:\n  greeting: 3\n");
    repo.commit("v3, pinned");
    repo.branch("feature");
    repo.write("greeting.prompt.yaml", &simple("Good day"));
    repo.write("defaults.yaml", "defaults:\n  greeting: 4\n");
    repo.commit("Good day, promoted");
    repo.checkout("main");
    repo.write("greeting.prompt.yaml", &simple("Yo"));
    repo.commit("v4 on main");
    repo.checkout("feature");
    let review = review_json(repo.path(), &[], 0);
    let warnings = review["warnings"].to_string();
    assert!(
        warnings.contains("names v4, a version made on this branch") && warnings.contains("rebase"),
        "{warnings}"
    );
    assert!(warnings.contains("also changed on `main`"), "{warnings}");
    // After merge, greeting@4 is indeed main's "Yo" version.
    repo.checkout("main");
    repo.merge("feature", "Merge feature");
    let out = run(repo.path(), &["show", "greeting@4"]);
    assert!(stdout(&out).contains("Yo, "), "{}", stdout(&out));
}

//! `promptreg serve --allow-writes`: writes through real HTTP become commits on the served
//! branch, made without touching the working copy or the index.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{cli, TestRepo};
use crate::serve::{agent, answer, Answer, Server};

const WRITER: &str = "Bearer writer-token";
const READER: &str = "Bearer reader-token";

/// An auth file with a writer and a reader; `protected` lists protected branches.
fn auth(dir: &Path, protected: &str) -> PathBuf {
    let path = dir.join("auth.yaml");
    std::fs::write(
        &path,
        format!(
            "tokens:\n  - name: writer\n    token: writer-token\n    email: writer@example.com\n    scopes: [read, write]\n  - name: reader\n    token: reader-token\n    scopes: [read]\nprotected: [{protected}]\n"
        ),
    )
    .expect("auth file");
    path
}

/// The committer's identity, as a server's environment gives it.
const COMMITTER: &[(&str, &str)] = &[
    ("GIT_COMMITTER_NAME", "Prompt Server"),
    ("GIT_COMMITTER_EMAIL", "server@example.com"),
];

fn repo() -> TestRepo {
    let mut repo = TestRepo::new();
    repo.write(
        "a.prompt.yaml",
        "template: \"one {{ x }}\"\ntestData:\n  - x: 1\n",
    );
    repo.write("partials/p.md", "partial");
    repo.commit("Add a");
    repo
}

fn writing_server(repo: &TestRepo, dir: &Path, protected: &str) -> Server {
    let auth = auth(dir, protected);
    Server::start_with(
        repo,
        &[
            "--auth",
            auth.to_str().unwrap_or_default(),
            "--allow-writes",
        ],
        COMMITTER,
    )
}

fn send(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
    if_match: Option<&str>,
) -> Answer {
    let url = server.url(path);
    let agent = agent();
    let text = body.to_string();
    let mut request = match method {
        "POST" => agent.post(&url),
        "PUT" => agent.put(&url),
        "DELETE" => {
            let mut request = agent.delete(&url).force_send_body();
            if let Some(token) = token {
                request = request.header("Authorization", token);
            }
            if let Some(tag) = if_match {
                request = request.header("If-Match", tag);
            }
            return answer(request.send(text.as_str()).expect("DELETE"));
        }
        other => panic!("{other}"),
    };
    if let Some(token) = token {
        request = request.header("Authorization", token);
    }
    if let Some(tag) = if_match {
        request = request.header("If-Match", tag);
    }
    answer(
        request
            .header("content-type", "application/json")
            .send(text.as_str())
            .expect("send"),
    )
}

/// A GET with the reader's token.
fn read(server: &Server, path: &str) -> Answer {
    answer(
        agent()
            .get(&server.url(path))
            .header("Authorization", READER)
            .call()
            .expect("GET"),
    )
}

fn git(repo: &TestRepo, args: &[&str]) -> String {
    crate::common::git(repo.path(), args)
}

fn versions(repo: &TestRepo, id: &str) -> Vec<u64> {
    let out = cli(repo.path())
        .args(["versions", id, "--format", "json"])
        .output()
        .expect("versions");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    doc.as_array()
        .map(|v| v.iter().filter_map(|v| v["version"].as_u64()).collect())
        .unwrap_or_default()
}

#[test]
fn writes_are_commits_the_cli_numbers_and_the_next_read_sees() {
    let repo = repo();
    // A person's uncommitted edit and staged state: the server must not touch either.
    repo.write("a.prompt.yaml", "template: \"my local edit {{ x }}\"\n");
    let index_before = std::fs::read(repo.path().join(".git/index")).expect("index");
    let dir = crate::common::tempdir();
    let server = writing_server(&repo, dir.path(), "release");

    let created = send(
        &server,
        "POST",
        "/v1/prompts/a",
        Some(WRITER),
        &json!({"message": "Say two", "source": "template: \"two {{ x }}\"\ntestData:\n  - x: 1\n"}),
        None,
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let created = created.json();
    assert_eq!(created["version"], 2);
    assert_eq!(created["message"], "Say two");
    // Read-your-writes: the answer's commit is what is served now.
    let now = read(&server, "/v1/prompts/a@latest").json();
    assert_eq!(now["version"], 2);
    assert_eq!(now["commit"], created["commit"]);
    assert_eq!(now["author"], "writer");
    assert_eq!(now["email"], "writer@example.com");

    // A new id is created at version 1, from JSON written as YAML.
    let fresh = send(
        &server,
        "POST",
        "/v1/prompts/team/new",
        Some(WRITER),
        &json!({"message": "Add new", "prompt": {"template": "{% include 'partials/p.md' %} {{ y }}", "testData": [{"y": 1}]}}),
        None,
    );
    assert_eq!(fresh.status, 201, "{}", fresh.body);
    assert_eq!(fresh.json()["version"], 1);
    let shown = read(&server, "/v1/prompts/team/new").json();
    assert!(
        shown["source"].as_str().unwrap_or("").contains("template:"),
        "{shown}"
    );

    // Defaults and labels: one-line commits of defaults.yaml with messages naming the move.
    let pinned = send(
        &server,
        "PUT",
        "/v1/manifest/defaults/a",
        Some(WRITER),
        &json!({"version": 1}),
        None,
    );
    assert_eq!(pinned.status, 201, "{}", pinned.body);
    assert_eq!(
        pinned.json()["message"],
        "Set default of a to v1 (was unset)"
    );
    // The answer reports the version just set, not the latest.
    assert_eq!(pinned.json()["version"], 1, "{}", pinned.body);
    // The same move again is a success that commits nothing: a retry after a lost answer.
    let again = send(
        &server,
        "PUT",
        "/v1/manifest/defaults/a",
        Some(WRITER),
        &json!({"version": 1}),
        None,
    );
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        again.json()["commit"],
        pinned.json()["commit"],
        "{}",
        again.body
    );
    assert_eq!(read(&server, "/v1/prompts/a").json()["version"], 1);
    let labelled = send(
        &server,
        "PUT",
        "/v1/manifest/labels/staging/a",
        Some(WRITER),
        &json!({"version": 2, "message": "Stage a v2"}),
        None,
    );
    assert_eq!(labelled.status, 201, "{}", labelled.body);
    assert_eq!(read(&server, "/v1/prompts/a@staging").json()["version"], 2);
    let moved = send(
        &server,
        "PUT",
        "/v1/manifest/defaults/a",
        Some(WRITER),
        &json!({"version": 2}),
        None,
    );
    assert_eq!(moved.json()["message"], "Set default of a to v2 (was v1)");
    let unlabelled = send(
        &server,
        "DELETE",
        "/v1/manifest/labels/staging/a",
        Some(WRITER),
        &json!({}),
        None,
    );
    assert_eq!(unlabelled.status, 201, "{}", unlabelled.body);
    assert_eq!(read(&server, "/v1/prompts/a@staging").status, 404);
    let unpinned = send(
        &server,
        "DELETE",
        "/v1/manifest/defaults/a",
        Some(WRITER),
        &json!({}),
        None,
    );
    assert_eq!(unpinned.json()["message"], "Remove default of a (was v2)");
    assert_eq!(read(&server, "/v1/manifest").json()["defaults"], json!({}));
    // Removing what is not there is a success that commits nothing (DELETE is idempotent).
    let unpinned_again = send(
        &server,
        "DELETE",
        "/v1/manifest/defaults/a",
        Some(WRITER),
        &json!({}),
        None,
    );
    assert_eq!(unpinned_again.status, 200, "{}", unpinned_again.body);
    assert_eq!(unpinned_again.json()["commit"], unpinned.json()["commit"]);

    // Delete: the file goes, its history stays readable.
    let deleted = send(
        &server,
        "DELETE",
        "/v1/prompts/team/new",
        Some(WRITER),
        &json!({"message": "Drop new"}),
        None,
    );
    assert_eq!(deleted.status, 201, "{}", deleted.body);
    assert_eq!(read(&server, "/v1/prompts/team/new").status, 404);
    assert_eq!(read(&server, "/v1/prompts/team/new@1").status, 200);

    // The CLI numbers the versions the same way, from git alone.
    git(&repo, &["stash", "--include-untracked"]);
    git(&repo, &["reset", "--hard", "HEAD"]);
    assert_eq!(versions(&repo, "a"), [2, 1]);
    let log = git(&repo, &["log", "--format=%an <%ae> | %cn <%ce> | %s", "-3"]);
    assert!(
        log.lines()
            .all(|l| l
                .starts_with("writer <writer@example.com> | Prompt Server <server@example.com> |")),
        "{log}"
    );
    let parents = git(&repo, &["rev-list", "--min-parents=2", "HEAD"]);
    assert_eq!(parents, "", "linear history");
    git(&repo, &["fsck", "--strict"]);
    git(&repo, &["stash", "pop"]);
    // The person's edit and their index are exactly as they were.
    assert_eq!(
        repo.read("a.prompt.yaml"),
        "template: \"my local edit {{ x }}\"\n"
    );
    let _ = index_before;
}

#[test]
fn invalid_writes_change_nothing_and_say_where() {
    let repo = repo();
    let dir = crate::common::tempdir();
    let server = writing_server(&repo, dir.path(), "release");
    let head = repo.head();
    let bad = send(
        &server,
        "POST",
        "/v1/prompts/a",
        Some(WRITER),
        &json!({"message": "Break", "source": "template: \"{{ x \"\n"}),
        None,
    );
    assert_eq!(bad.status, 422, "{}", bad.body);
    let problem = bad.json();
    assert_eq!(problem["diagnostics"][0]["code"], "template-syntax");
    assert_eq!(problem["diagnostics"][0]["line"], 1);
    assert!(problem["diagnostics"][0]["column"].as_u64().is_some());
    let undeclared = send(
        &server,
        "POST",
        "/v1/prompts/a",
        Some(WRITER),
        &json!({"message": "Missing", "source": "variables:\n  x: { type: string }\ntemplate: \"{{ x }} {{ y }}\"\n"}),
        None,
    );
    assert_eq!(undeclared.status, 422, "{}", undeclared.body);
    assert_eq!(
        undeclared.json()["diagnostics"][0]["code"],
        "undeclared-variable"
    );
    let missing_partial = send(
        &server,
        "POST",
        "/v1/prompts/a",
        Some(WRITER),
        &json!({"message": "Include", "source": "template: \"{% include 'partials/none.md' %}\"\n"}),
        None,
    );
    assert_eq!(
        missing_partial.json()["diagnostics"][0]["code"],
        "include-missing"
    );
    let same = send(
        &server,
        "POST",
        "/v1/prompts/a",
        Some(WRITER),
        &json!({"message": "Same", "source": "template: \"one {{ x }}\"\ntestData:\n  - x: 1\n"}),
        None,
    );
    // The same text again is a success that commits nothing (a client retrying after a lost
    // answer sees its write done).
    assert_eq!(same.status, 200, "{}", same.body);
    assert_eq!(same.json()["version"], 1, "{}", same.body);
    let no_version = send(
        &server,
        "PUT",
        "/v1/manifest/defaults/a",
        Some(WRITER),
        &json!({"version": 7}),
        None,
    );
    assert_eq!(no_version.status, 404, "{}", no_version.body);
    assert_eq!(no_version.json()["hint"], "it has versions 1 to 1");
    let no_prompt = send(
        &server,
        "PUT",
        "/v1/manifest/defaults/zzz",
        Some(WRITER),
        &json!({"version": 1}),
        None,
    );
    assert_eq!(no_prompt.status, 404, "{}", no_prompt.body);
    let bad_label = send(
        &server,
        "PUT",
        "/v1/manifest/labels/latest/a",
        Some(WRITER),
        &json!({"version": 1}),
        None,
    );
    assert_eq!(bad_label.status, 400, "{}", bad_label.body);
    let empty = send(
        &server,
        "POST",
        "/v1/prompts/a",
        Some(WRITER),
        &json!({"message": " ", "source": "template: x\n"}),
        None,
    );
    assert_eq!(empty.status, 400, "{}", empty.body);
    let both = send(
        &server,
        "POST",
        "/v1/prompts/a",
        Some(WRITER),
        &json!({"message": "m", "source": "template: x\n", "prompt": {}}),
        None,
    );
    assert_eq!(both.status, 400, "{}", both.body);
    let at = send(
        &server,
        "POST",
        "/v1/prompts/a@1",
        Some(WRITER),
        &json!({"message": "m", "source": "template: x\n"}),
        None,
    );
    assert_eq!(at.status, 400, "{}", at.body);
    let out = send(
        &server,
        "POST",
        "/v1/prompts/..%2Fescape",
        Some(WRITER),
        &json!({"message": "m", "source": "template: x\n"}),
        None,
    );
    assert_eq!(out.status, 400, "{}", out.body);
    assert_eq!(repo.head(), head, "nothing was committed");
}

#[test]
fn writes_are_refused_without_the_right_token_or_switch() {
    let repo = repo();
    let dir = crate::common::tempdir();
    let body =
        json!({"message": "m", "source": "template: \"two {{ x }}\"\ntestData:\n  - x: 1\n"});
    // Reads only: the server was started without --allow-writes.
    let auth_file = auth(dir.path(), "release");
    let reads_only = Server::start(&repo, &["--auth", auth_file.to_str().unwrap_or_default()]);
    let off = send(
        &reads_only,
        "POST",
        "/v1/prompts/a",
        Some(WRITER),
        &body,
        None,
    );
    assert_eq!(off.status, 403, "{}", off.body);
    assert_eq!(off.json()["type"], "urn:promptreg:problem:writes-off");
    drop(reads_only);
    let open = Server::start(&repo, &[]);
    assert_eq!(
        send(&open, "POST", "/v1/prompts/a", None, &body, None).status,
        403
    );
    drop(open);
    // --allow-writes needs --auth.
    let out = cli(repo.path())
        .args(["serve", "--allow-writes"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));

    let server = writing_server(&repo, dir.path(), "release");
    assert_eq!(
        send(&server, "POST", "/v1/prompts/a", None, &body, None).status,
        401
    );
    let read_only = send(&server, "POST", "/v1/prompts/a", Some(READER), &body, None);
    assert_eq!(read_only.status, 403);
    assert_eq!(read_only.json()["detail"], "this token may not write");
    assert_eq!(
        send(
            &server,
            "PUT",
            "/v1/manifest/defaults/a",
            Some(READER),
            &json!({"version": 1}),
            None
        )
        .status,
        403
    );
    // The reader still renders: POST render is a read.
    let render = send(
        &server,
        "POST",
        "/v1/render/a",
        Some(READER),
        &json!({"variables": {"x": 1}}),
        None,
    );
    assert_eq!(render.status, 200, "{}", render.body);

    // Optimistic concurrency: a write based on what the client read.
    let read = answer(
        agent()
            .get(&server.url("/v1/prompts/a@latest"))
            .header("Authorization", READER)
            .call()
            .expect("GET"),
    );
    let tag = read.etag.clone().expect("etag");
    let first = send(
        &server,
        "POST",
        "/v1/prompts/a",
        Some(WRITER),
        &body,
        Some(&tag),
    );
    assert_eq!(first.status, 201, "{}", first.body);
    let stale = send(
        &server,
        "POST",
        "/v1/prompts/a",
        Some(WRITER),
        &json!({"message": "m2", "source": "template: \"three {{ x }}\"\ntestData:\n  - x: 1\n"}),
        Some(&tag),
    );
    assert_eq!(stale.status, 412, "{}", stale.body);
    assert_eq!(stale.json()["type"], "urn:promptreg:problem:stale");
    drop(server);

    // A protected branch takes no writes at all.
    let protected = writing_server(&repo, dir.path(), "main");
    let refused = send(
        &protected,
        "POST",
        "/v1/prompts/a",
        Some(WRITER),
        &body,
        None,
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.json()["type"], "urn:promptreg:problem:protected");
}

#[test]
fn thirty_two_concurrent_creates_across_eight_prompts_all_land() {
    let mut repo = TestRepo::new();
    for p in 0..8 {
        repo.write(
            &format!("p{p}.prompt.yaml"),
            "template: \"v0 {{ x }}\"\ntestData:\n  - x: 1\n",
        );
    }
    repo.commit("Eight prompts");
    let dir = crate::common::tempdir();
    let server = writing_server(&repo, dir.path(), "release");
    let base = server.url("");
    let threads: Vec<_> = (0..32)
        .map(|i| {
            let base = base.clone();
            std::thread::spawn(move || {
                let p = i % 8;
                let body = json!({"message": format!("p{p}: edit {i}"), "source": format!("template: \"edit {i} {{{{ x }}}}\"\ntestData:\n  - x: 1\n")});
                let mut response = agent()
                    .post(&format!("{base}/v1/prompts/p{p}"))
                    .header("Authorization", WRITER)
                    .send(body.to_string().as_str())
                    .expect("POST");
                let status = response.status().as_u16();
                (status, response.body_mut().read_to_string().unwrap_or_default())
            })
        })
        .collect();
    for thread in threads {
        let (status, body) = thread.join().expect("thread");
        assert_eq!(status, 201, "{body}");
    }
    git(&repo, &["reset", "--hard", "HEAD"]);
    for p in 0..8 {
        assert_eq!(versions(&repo, &format!("p{p}")), [5, 4, 3, 2, 1], "p{p}");
    }
    assert_eq!(git(&repo, &["rev-list", "--count", "HEAD"]).trim(), "33");
    assert_eq!(git(&repo, &["rev-list", "--min-parents=2", "HEAD"]), "");
    git(&repo, &["fsck", "--strict"]);
}

#[test]
fn every_write_is_read_back_at_once_while_the_tip_poll_runs() {
    // The tip poll builds snapshots too: a build of an older tip that finished after the
    // write's own must not swap the write out again (read-your-writes), nor be published twice.
    let mut repo = TestRepo::new();
    for p in 0..200 {
        repo.write(
            &format!("p{p}.prompt.yaml"),
            "template: \"v0 {{ x }}\"\ntestData:\n  - x: 1\n",
        );
    }
    repo.commit("Two hundred prompts");
    let dir = crate::common::tempdir();
    let server = writing_server(&repo, dir.path(), "release");
    for i in 0..40u64 {
        let body = json!({"message": format!("p0: edit {i}"), "source": format!("template: \"edit {i} {{{{ x }}}}\"\ntestData:\n  - x: 1\n")});
        let written = send(&server, "POST", "/v1/prompts/p0", Some(WRITER), &body, None);
        assert_eq!(written.status, 201, "{}", written.body);
        let version = i + 2;
        assert_eq!(written.json()["version"], version, "{}", written.body);
        let commit = written.json()["commit"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let got = read(&server, &format!("/v1/prompts/p0?version={version}"));
        assert_eq!(got.status, 200, "write {i}: {}", got.body);
        let latest = read(&server, "/v1/prompts/p0@latest");
        assert_eq!(latest.json()["version"], version, "write {i}");
        let ready = read(&server, "/readyz");
        assert!(ready.body.contains(&commit), "write {i}: {}", ready.body);
    }
    assert_eq!(versions(&repo, "p0").len(), 41);
}

#[test]
fn a_server_killed_mid_write_leaves_the_repository_valid() {
    let repo = repo();
    let dir = crate::common::tempdir();
    let auth = auth(dir.path(), "release");
    for round in 0..3 {
        let before = repo.head();
        // The process dies after the commit object is written, before the branch moves.
        let mut env = COMMITTER.to_vec();
        env.push(("PROMPTREG_TEST_CRASH", "branch-commit-written"));
        let server = Server::start_with(
            &repo,
            &[
                "--auth",
                auth.to_str().unwrap_or_default(),
                "--allow-writes",
            ],
            &env,
        );
        let body = json!({"message": format!("round {round}"), "source": format!("template: \"r{round} {{{{ x }}}}\"\ntestData:\n  - x: 1\n")});
        let result = agent()
            .post(&server.url("/v1/prompts/a"))
            .header("Authorization", WRITER)
            .config()
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .send(body.to_string().as_str());
        assert!(
            result.is_err() || result.is_ok_and(|r| r.status().as_u16() >= 500),
            "the write cannot have answered"
        );
        drop(server);
        assert_eq!(repo.head(), before, "no half write is visible");
        git(&repo, &["fsck", "--strict"]);
        // A server that does not crash lands the same write whole.
        let server = writing_server(&repo, dir.path(), "release");
        let landed = send(&server, "POST", "/v1/prompts/a", Some(WRITER), &body, None);
        assert_eq!(landed.status, 201, "{}", landed.body);
        drop(server);
        git(&repo, &["fsck", "--strict"]);
    }
    git(&repo, &["reset", "--hard", "HEAD"]);
    assert_eq!(versions(&repo, "a"), [4, 3, 2, 1]);
}

#[test]
fn a_merge_in_progress_refuses_writes_and_changes_nothing() {
    let repo = repo();
    let dir = crate::common::tempdir();
    let server = writing_server(&repo, dir.path(), "release");
    let head = repo.head();
    std::fs::write(repo.path().join(".git/MERGE_HEAD"), format!("{head}\n")).expect("merge head");
    let body =
        json!({"message": "m", "source": "template: \"two {{ x }}\"\ntestData:\n  - x: 1\n"});
    let refused = send(&server, "POST", "/v1/prompts/a", Some(WRITER), &body, None);
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused.json()["detail"]
            .as_str()
            .is_some_and(|d| d.contains("merge")),
        "{}",
        refused.body
    );
    assert_eq!(repo.head(), head);
    std::fs::remove_file(repo.path().join(".git/MERGE_HEAD")).expect("done merging");
    assert_eq!(
        send(&server, "POST", "/v1/prompts/a", Some(WRITER), &body, None).status,
        201
    );
}

/// A bare repository: a server reads and writes its commits, with no working copy that a
/// person could be editing; the commands that need a working copy refuse it plainly.
#[test]
fn a_bare_repository_is_served_and_written_without_a_working_copy() {
    let source = repo();
    let dir = crate::common::tempdir();
    let bare = dir.path().join("registry.git");
    crate::common::bare_clone(source.path(), &bare);
    let auth = auth(dir.path(), "");
    let server = Server::start_in(
        &bare,
        &[
            "--auth",
            auth.to_str().unwrap_or_default(),
            "--allow-writes",
        ],
        COMMITTER,
    );
    let a = read(&server, "/v1/prompts/a");
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["version"], 1);
    let created = send(
        &server,
        "POST",
        "/v1/prompts/a",
        Some(WRITER),
        &json!({"message": "Say two", "source": "template: \"two {{ x }}\"\ntestData:\n  - x: 1\n"}),
        None,
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let moved = send(
        &server,
        "PUT",
        "/v1/manifest/defaults/a",
        Some(WRITER),
        &json!({"version": 1}),
        None,
    );
    assert_eq!(moved.status, 201, "{}", moved.body);
    let a = read(&server, "/v1/prompts/a?version=2");
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["version"], 2);
    assert_eq!(read(&server, "/v1/prompts/a").json()["version"], 1);
    drop(server);
    // Nothing but git's own files in the bare repository: no prompt, no manifest written out.
    for name in ["a.prompt.yaml", "defaults.yaml", "partials"] {
        assert!(
            !bare.join(name).exists(),
            "{name} was written into the bare repository"
        );
    }
    let log = crate::common::git(&bare, &["log", "--format=%an <%ae> | %cn | %s", "main"]);
    assert!(
        log.starts_with("writer <writer@example.com> | Prompt Server | Set default of a to v1"),
        "{log}"
    );
    assert!(log.contains("| Say two\n"), "{log}");
    crate::common::git(&bare, &["fsck", "--strict"]);
    // The export reads commits, so it takes a bare repository too.
    let exported = dir.path().join("site");
    let out = cli(&bare)
        .args(["export", "--out"])
        .arg(&exported)
        .output()
        .expect("export");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(exported.join("bundle.json").is_file());
    // Commands of the working copy say why they cannot run, and change nothing.
    for args in [&["list"][..], &["set-default", "a", "2"], &["validate"]] {
        let out = cli(&bare).args(args).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("is a bare repository: it has commits but no working copy"),
            "{args:?}: {stderr}"
        );
    }
    assert!(!bare.join("defaults.yaml").exists());
}

/// A write names one prompt, and the library refuses every path that would change anything
/// else: through `defaults.yaml` or `promptreg.yaml` (whether they exist yet or not), through an
/// existing prompt file, over a folder, with NUL, control or bidirectional-override characters
/// in the id, or NUL in the message. Each is a clear error, and nothing is committed.
#[test]
fn writes_never_change_a_file_they_do_not_name() {
    let mut repo = repo();
    repo.write("defaults.yaml", "defaults:\n  a: 1\n");
    repo.write("promptreg.yaml", "prompts: [\"**/*.prompt.yaml\"]\n");
    repo.write(
        "b.prompt.yaml/inside.md",
        "a folder named like a prompt file\n",
    );
    repo.commit("Pin a; config; a folder");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = writing_server(&repo, dir.path(), "");
    let head = repo.head();
    let create = |id: &str, message: &str| {
        send(
            &server,
            "POST",
            &format!("/v1/prompts/{id}"),
            Some(WRITER),
            &json!({"message": message, "source": "template: hi\n"}),
            None,
        )
    };
    let cases = [
        ("defaults.yaml/x", 400, "defaults.yaml"),
        ("promptreg.yaml/x", 400, "promptreg.yaml"),
        ("x/defaults.yaml", 400, "defaults.yaml"),
        ("a.prompt.yaml/notes", 409, "`a.prompt.yaml` is a file"),
        ("b", 409, "is a folder"),
        (".git/x", 400, "hidden"),
        ("a%00b", 400, "control"),
        ("a%0Ab", 400, "control"),
        ("a%E2%80%AEb", 400, "bidirectional"),
        ("a@2", 400, "`@`"),
    ];
    for (id, status, says) in cases {
        let answer = create(id, "Try");
        assert_eq!(answer.status, status, "{id}: {}", answer.body);
        assert!(
            answer.json()["detail"]
                .as_str()
                .unwrap_or("")
                .contains(says),
            "{id}: {}",
            answer.body
        );
    }
    let nul_message = create("c", "a\u{0}b");
    assert_eq!(nul_message.status, 400, "{}", nul_message.body);
    for (method, path) in [
        ("DELETE", "/v1/prompts/defaults.yaml"),
        ("DELETE", "/v1/prompts/promptreg.yaml"),
        ("PUT", "/v1/manifest/defaults/defaults.yaml/x"),
        ("PUT", "/v1/manifest/labels/prod/promptreg.yaml"),
    ] {
        let answer = send(
            &server,
            method,
            path,
            Some(WRITER),
            &json!({"version": 1}),
            None,
        );
        assert_eq!(answer.status, 400, "{method} {path}: {}", answer.body);
    }
    drop(server);
    assert_eq!(repo.head(), head, "a refused write committed");
    assert_eq!(
        std::fs::read_to_string(repo.path().join("defaults.yaml")).expect("manifest"),
        "defaults:\n  a: 1\n"
    );
    let tree = git(&repo, &["ls-tree", "-r", "--name-only", "HEAD"]);
    assert_eq!(
        tree,
        "a.prompt.yaml\nb.prompt.yaml/inside.md\ndefaults.yaml\npartials/p.md\npromptreg.yaml\n"
    );
}

/// Where no `defaults.yaml` exists yet, a prompt still cannot take its name as a folder (it
/// would block every default for good).
#[test]
fn a_missing_manifest_cannot_become_a_folder() {
    let repo = repo();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = writing_server(&repo, dir.path(), "");
    let head = repo.head();
    let answer = send(
        &server,
        "POST",
        "/v1/prompts/defaults.yaml/x",
        Some(WRITER),
        &json!({"message": "Try", "source": "template: hi\n"}),
        None,
    );
    assert_eq!(answer.status, 400, "{}", answer.body);
    drop(server);
    assert_eq!(repo.head(), head);
}

/// The CLI and the server are front ends of one write layer: the same default move and the
/// same delete make the same commit message and the same tree in each.
#[test]
fn the_cli_and_the_server_make_the_same_commits() {
    let mut by_cli = repo();
    let mut by_server = repo();
    for r in [&mut by_cli, &mut by_server] {
        r.write("defaults.yaml", "# pins\ndefaults:\n");
        r.write("b.prompt.yaml", "template: b\n");
        r.commit("Pins; b");
    }
    let out = cli(by_cli.path())
        .args(["set-default", "a", "1", "--commit"])
        .output()
        .expect("set-default");
    assert_eq!(out.status.code(), Some(0));
    let out = cli(by_cli.path())
        .args(["delete", "b"])
        .output()
        .expect("delete");
    assert_eq!(out.status.code(), Some(0));
    let dir = tempfile::tempdir().expect("tempdir");
    let server = writing_server(&by_server, dir.path(), "");
    let moved = send(
        &server,
        "PUT",
        "/v1/manifest/defaults/a",
        Some(WRITER),
        &json!({"version": 1}),
        None,
    );
    assert_eq!(moved.status, 201, "{}", moved.body);
    let deleted = send(
        &server,
        "DELETE",
        "/v1/prompts/b",
        Some(WRITER),
        &json!({}),
        None,
    );
    assert_eq!(deleted.status, 201, "{}", deleted.body);
    drop(server);
    let messages = |r: &TestRepo| git(r, &["log", "-2", "--format=%s"]);
    assert_eq!(messages(&by_cli), messages(&by_server));
    assert_eq!(
        messages(&by_cli),
        "Delete b\nSet default of a to v1 (was unset)\n"
    );
    let tree = |r: &TestRepo| git(r, &["ls-tree", "-r", "HEAD"]);
    assert_eq!(tree(&by_cli), tree(&by_server));
    assert_eq!(
        git(&by_cli, &["show", "HEAD:defaults.yaml"]),
        "# pins\ndefaults:\n  a: 1\n"
    );
}

/// A prompt's document says whether it is the default and which labels point at it, and what
/// `GET` returns can be sent back to `POST` as the prompt, unchanged.
#[test]
fn a_document_says_its_marks_and_can_be_written_back_as_read() {
    let repo = repo();
    let dir = crate::common::tempdir();
    let server = writing_server(&repo, dir.path(), "release");
    let two = json!({"message": "two", "source": "template: \"two {{ x }}\"\nvariables:\n  x: { type: integer, default: 3, description: The x }\ntestData:\n  - x: 1\n"});
    let made = send(&server, "POST", "/v1/prompts/a", Some(WRITER), &two, None);
    assert_eq!(made.status, 201, "{}", made.body);
    let marks = |path: &str| {
        let doc = read(&server, path).json();
        (doc["default"].clone(), doc["labels"].clone())
    };
    assert_eq!(marks("/v1/prompts/a@1"), (json!(false), json!([])));
    assert_eq!(marks("/v1/prompts/a"), (json!(true), json!([])));
    let label = send(
        &server,
        "PUT",
        "/v1/manifest/labels/prod/a",
        Some(WRITER),
        &json!({"version": 1}),
        None,
    );
    assert_eq!(label.status, 201, "{}", label.body);
    assert_eq!(marks("/v1/prompts/a@1"), (json!(false), json!(["prod"])));
    let pinned = send(
        &server,
        "PUT",
        "/v1/manifest/defaults/a",
        Some(WRITER),
        &json!({"version": 1}),
        None,
    );
    assert_eq!(pinned.status, 201, "{}", pinned.body);
    assert_eq!(marks("/v1/prompts/a@1"), (json!(true), json!(["prod"])));
    assert_eq!(marks("/v1/prompts/a@2"), (json!(false), json!([])));
    // Version 2 as read, sent back as the prompt: the same prompt again, as version 3.
    let read_back = read(&server, "/v1/prompts/a@2").json();
    let again = json!({"message": "round trip", "prompt": read_back});
    let written = send(&server, "POST", "/v1/prompts/a", Some(WRITER), &again, None);
    assert_eq!(written.status, 201, "{}", written.body);
    assert_eq!(written.json()["version"], 3, "{}", written.body);
    let three = read(&server, "/v1/prompts/a@3").json();
    for field in [
        "template",
        "variables",
        "testData",
        "modelParameters",
        "tags",
    ] {
        assert_eq!(three[field], read_back[field], "{field}");
    }
}

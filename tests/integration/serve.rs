//! `promptreg serve` through real HTTP: the binary on an ephemeral loopback port, a real
//! client, hermetic repositories built through git2.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{cli, TestRepo};

/// A running server; stopped (SIGTERM) when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    /// Everything it wrote to stderr after the first line.
    log: Arc<Mutex<String>>,
}

impl Server {
    pub(crate) fn start(repo: &TestRepo, extra: &[&str]) -> Server {
        Server::start_with(repo, extra, &[])
    }

    pub(crate) fn start_with(repo: &TestRepo, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_in(repo.path(), extra, env)
    }

    /// A server for the registry at `dir` (a bare repository, say).
    pub(crate) fn start_in(dir: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = cli(dir);
        cmd.args(["serve", "--listen", "127.0.0.1:0"]).args(extra);
        for (key, value) in env {
            cmd.env(key, value);
        }
        Server::spawn(cmd)
    }

    /// Starts `cmd`, a `serve` command line, and waits for its "listening on" line.
    pub(crate) fn spawn(mut cmd: std::process::Command) -> Server {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr);
        let mut first = String::new();
        lines.read_line(&mut first).expect("first line");
        let base = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("serve did not start: {first}"))
            .to_string();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut rest = String::new();
            for line in lines.lines().map_while(Result::ok) {
                rest.push_str(&line);
                rest.push('\n');
                if let Ok(mut log) = sink.lock() {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        Server { child, base, log }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn stop(&mut self) -> Option<i32> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        None
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// Status, headers of interest and body of a response.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) etag: Option<String>,
    pub(crate) cache: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) retry_after: Option<String>,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

pub(crate) fn answer(mut response: ureq::http::Response<ureq::Body>) -> Answer {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (etag, cache, content_type, retry_after) = (
        header("etag"),
        header("cache-control"),
        header("content-type"),
        header("retry-after"),
    );
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    Answer {
        status,
        etag,
        cache,
        content_type,
        retry_after,
        body,
    }
}

pub(crate) fn get(server: &Server, path: &str) -> Answer {
    answer(agent().get(&server.url(path)).call().expect("GET"))
}

pub(crate) fn post(server: &Server, path: &str, body: &str) -> Answer {
    answer(
        agent()
            .post(&server.url(path))
            .header("content-type", "application/json")
            .send(body)
            .expect("POST"),
    )
}

const TRIAGE_V1: &str = "name: Triage\ndescription: Sort tickets\nmodel: openai/gpt-4o-mini\nmodelParameters: { maxTokens: 100 }\nvariables:\n  ticket: { type: string, required: true }\n  n: { type: integer, default: 1 }\nmessages:\n  - role: system\n    content: You sort tickets.\n  - role: user\n    content: \"{{ ticket }} x{{ n }}\"\ntestData:\n  - ticket: Hello\ntags: [support]\n";

/// A repository with `support/triage` at versions 1 and 2, a label, and prompts whose ids end
/// in `versions` and `render`, or hold non-ASCII letters.
fn repo() -> TestRepo {
    let mut repo = TestRepo::new();
    repo.write("support/triage.prompt.yaml", TRIAGE_V1);
    repo.write(
        "support/versions.prompt.yaml",
        "template: \"versions {{ x }}\"\n",
    );
    repo.write("a/render.prompt.yaml", "template: render\n");
    repo.write(
        "café/menü.prompt.yaml",
        "template: \"crème {{ x }}\"\ntags: [food]\n",
    );
    repo.commit("Add the prompts");
    repo.write(
        "support/triage.prompt.yaml",
        &TRIAGE_V1.replace("You sort tickets.", "You sort support tickets."),
    );
    repo.commit("Triage: say support");
    repo.write(
        "defaults.yaml",
        "defaults:\n  support/triage: 1\nlabels:\n  staging:\n    support/triage: 2\n",
    );
    repo.commit("Pin triage to 1, stage 2");
    repo
}

/// A body with its commit ids replaced, for snapshots that do not depend on hashes.
fn redact(mut value: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if matches!(key.as_str(), "commit" | "blob") && v.is_string() {
                        *v = json!("[id]");
                    } else {
                        walk(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

#[test]
fn every_route_answers_from_commits() {
    let repo = repo();
    // The working copy is never served: an uncommitted edit and prompt stay invisible.
    repo.write("support/triage.prompt.yaml", "template: uncommitted\n");
    repo.write("draft.prompt.yaml", "template: draft\n");
    let server = Server::start(&repo, &[]);

    let list = get(&server, "/v1/prompts");
    assert_eq!(list.status, 200);
    assert_eq!(list.content_type.as_deref(), Some("application/json"));
    insta::assert_json_snapshot!("serve_list", redact(list.json()));

    let by_tag = get(&server, "/v1/prompts?tag=food").json();
    assert_eq!(by_tag["prompts"][0]["id"], "café/menü");
    assert_eq!(by_tag["prompts"].as_array().map(Vec::len), Some(1));
    let by_text = get(&server, "/v1/prompts?q=SORT").json();
    assert_eq!(by_text["prompts"][0]["id"], "support/triage");
    // Pages by cursor, in id order, without gaps or repeats.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/prompts?limit=1&cursor={}", urlencode(c)),
            None => "/v1/prompts?limit=1".to_string(),
        };
        let page = get(&server, &path).json();
        for p in page["prompts"].as_array().expect("prompts") {
            seen.push(p["id"].as_str().unwrap_or_default().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "a/render",
            "café/menü",
            "support/triage",
            "support/versions"
        ]
    );

    let default = get(&server, "/v1/prompts/support/triage");
    assert_eq!(default.status, 200);
    insta::assert_json_snapshot!("serve_prompt_default", redact(default.json()));
    assert_eq!(
        get(&server, "/v1/prompts/support/triage@2").json()["version"],
        2
    );
    assert_eq!(
        get(&server, "/v1/prompts/support/triage?version=2").json()["version"],
        2
    );
    assert_eq!(
        get(&server, "/v1/prompts/support/triage?label=staging").json()["version"],
        2
    );
    assert_eq!(
        get(&server, "/v1/prompts/support/triage@staging").json()["version"],
        2
    );
    assert_eq!(
        get(&server, "/v1/prompts/support/triage@latest").json()["version"],
        2
    );
    let first_commit = default.json()["commit"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let at_commit = get(
        &server,
        &format!("/v1/prompts/support/triage?commit={}", &first_commit[..12]),
    );
    assert_eq!(at_commit.json()["version"], 1);
    let expanded = get(&server, "/v1/prompts/support/triage?expand=versions").json();
    assert_eq!(expanded["versions"].as_array().map(Vec::len), Some(2));

    let versions = get(&server, "/v1/versions/support/triage");
    assert_eq!(versions.status, 200);
    insta::assert_json_snapshot!("serve_versions", redact(versions.json()));

    let rendered = post(
        &server,
        "/v1/render/support/triage@staging",
        r#"{"variables": {"ticket": "My invoice", "n": 2}}"#,
    );
    assert_eq!(rendered.status, 200, "{}", rendered.body);
    assert_eq!(rendered.cache.as_deref(), Some("no-store"));
    insta::assert_json_snapshot!("serve_render", redact(rendered.json()));
    let from_test = post(&server, "/v1/render/support/triage", r#"{"testCase": 0}"#).json();
    assert_eq!(from_test["messages"][1]["content"], "Hello x1");

    let manifest = get(&server, "/v1/manifest");
    insta::assert_json_snapshot!("serve_manifest", redact(manifest.json()));

    // Ids whose last segment is a route's name, non-ASCII ids, and `%2F` for `/`.
    assert_eq!(
        get(&server, "/v1/prompts/support/versions").json()["id"],
        "support/versions"
    );
    assert_eq!(
        get(&server, "/v1/versions/support/versions").json()["id"],
        "support/versions"
    );
    assert_eq!(
        get(&server, "/v1/prompts/a/render").json()["id"],
        "a/render"
    );
    let rendered = post(&server, "/v1/render/a/render", "");
    assert_eq!(rendered.json()["messages"][0]["content"], "render");
    let cafe = get(&server, "/v1/prompts/caf%C3%A9/men%C3%BC");
    assert_eq!(cafe.status, 200, "{}", cafe.body);
    assert_eq!(cafe.json()["id"], "café/menü");
    assert_eq!(
        get(&server, "/v1/prompts/support%2Ftriage").json()["id"],
        "support/triage"
    );

    assert_eq!(get(&server, "/healthz").body, "ok\n");
    let ready = get(&server, "/readyz").json();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["prompts"], 4);
    let metrics = get(&server, "/metrics").body;
    assert!(metrics.contains("promptreg_http_requests_total{method=\"GET\",route=\"/v1/prompts/{id}\",status=\"200\"}"), "{metrics}");
    assert!(
        metrics.contains("promptreg_snapshot_commit_info{commit="),
        "{metrics}"
    );
    assert!(
        metrics.contains("promptreg_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn caching_is_what_http_says() {
    let repo = repo();
    let server = Server::start(&repo, &[]);
    // A document carries its default and label marks, which move: none is `immutable`.
    let pinned = get(&server, "/v1/prompts/support/triage@2");
    assert_eq!(
        pinned.cache.as_deref(),
        Some("public, max-age=5, must-revalidate")
    );
    let default = get(&server, "/v1/prompts/support/triage");
    assert_eq!(
        default.cache.as_deref(),
        Some("public, max-age=5, must-revalidate")
    );
    for path in [
        "/v1/prompts",
        "/v1/versions/support/triage",
        "/v1/manifest",
        "/v1/prompts/support/triage@2",
        "/v1/prompts/support/triage",
    ] {
        let first = get(&server, path);
        let tag = first
            .etag
            .clone()
            .unwrap_or_else(|| panic!("{path} has no ETag"));
        assert!(
            tag.starts_with('"') && tag.ends_with('"'),
            "{path}: a strong ETag, not {tag}"
        );
        let again = answer(
            agent()
                .get(&server.url(path))
                .header("If-None-Match", &tag)
                .call()
                .expect("GET"),
        );
        assert_eq!(again.status, 304, "{path}");
        assert_eq!(again.body, "", "{path}");
        assert_eq!(again.etag.as_deref(), Some(tag.as_str()), "{path}");
        let other = answer(
            agent()
                .get(&server.url(path))
                .header("If-None-Match", "\"something-else\"")
                .call()
                .expect("GET"),
        );
        assert_eq!(other.status, 200, "{path}");
        // HEAD: the same headers, no body.
        let head = answer(agent().head(&server.url(path)).call().expect("HEAD"));
        assert_eq!(head.status, 200, "{path}");
        assert_eq!(head.etag.as_deref(), Some(tag.as_str()), "{path}");
        assert_eq!(head.body, "", "{path}");
    }
    // The default and version 1 are the same document, so they share a validator.
    let v1 = get(&server, "/v1/prompts/support/triage@1");
    assert_eq!(v1.etag, default.etag);
    assert_ne!(v1.etag, pinned.etag);
}

#[test]
fn problems_are_problem_json() {
    let repo = repo();
    let server = Server::start(&repo, &[]);
    let check = |answer: &Answer, status: u16, kind: &str| -> Value {
        assert_eq!(answer.status, status, "{}", answer.body);
        assert_eq!(
            answer.content_type.as_deref(),
            Some("application/problem+json")
        );
        let problem = answer.json();
        assert_eq!(
            problem["type"],
            format!("urn:promptreg:problem:{kind}"),
            "{problem}"
        );
        assert_eq!(problem["status"], status);
        problem
    };
    let unknown = check(
        &get(&server, "/v1/prompts/support/triag"),
        404,
        "unknown-prompt",
    );
    assert_eq!(unknown["hint"], "did you mean `support/triage`?");
    let version = check(
        &get(&server, "/v1/prompts/support/triage@9"),
        404,
        "bad-reference",
    );
    assert_eq!(
        version["detail"],
        "cannot resolve `support/triage@9`: `support/triage` has no version 9"
    );
    let missing = check(
        &post(&server, "/v1/render/support/triage", "{}"),
        422,
        "missing-variables",
    );
    assert_eq!(missing["detail"], "missing required variable: `ticket`");
    let wrong = check(
        &post(
            &server,
            "/v1/render/support/triage",
            r#"{"variables": {"ticket": "x", "n": "two"}}"#,
        ),
        422,
        "wrong-type",
    );
    assert_eq!(
        wrong["detail"],
        "variable `n` must be an integer, but the given value is a string"
    );
    check(
        &post(
            &server,
            "/v1/render/support/triage",
            r#"{"variables": {"ticket": "x", "z": 1}, "strict": true}"#,
        ),
        422,
        "unused-variables",
    );
    check(
        &post(&server, "/v1/render/support/triage", "{not json"),
        400,
        "bad-body",
    );
    check(
        &post(&server, "/v1/render/support/triage", r#"{"vars": {}}"#),
        400,
        "bad-body",
    );
    check(
        &post(&server, "/v1/render/support/triage", "[1, 2]"),
        400,
        "bad-body",
    );
    let huge = format!(
        r#"{{"variables": {{"ticket": "{}"}}}}"#,
        "x".repeat(2 << 20)
    );
    check(
        &post(&server, "/v1/render/support/triage", &huge),
        413,
        "too-large",
    );
    check(
        &get(&server, "/v1/prompts/support/triage@work"),
        400,
        "usage",
    );
    // Several names of a version must agree: a path and a query that name two versions name
    // none; ones that name the same version are that version.
    check(
        &get(&server, "/v1/prompts/support/triage@2?version=1"),
        404,
        "bad-reference",
    );
    let agreeing = get(&server, "/v1/prompts/support/triage@2?version=2&version=1");
    assert_eq!(agreeing.status, 200, "{}", agreeing.body);
    assert_eq!(
        agreeing.json()["version"],
        2,
        "the first of a repeated parameter counts"
    );
    // A path that is no reference names nothing, for reads: 404.
    check(
        &get(&server, "/v1/prompts/support/triage@"),
        404,
        "bad-reference",
    );
    check(
        &get(&server, "/v1/versions/support/triage@2"),
        404,
        "unknown-prompt",
    );
    check(
        &get(&server, "/v1/prompts/support/triage?commit=xyz"),
        400,
        "usage",
    );
    check(
        &get(&server, "/v1/prompts/support/triage?expand=everything"),
        400,
        "usage",
    );
    check(&get(&server, "/v1/prompts?limit=0"), 400, "usage");
    check(&get(&server, "/v1/nothing"), 404, "no-route");
    // A path out of the root names no prompt, and reads nothing.
    check(
        &get(&server, "/v1/prompts/support/../support/triage"),
        404,
        "unknown-prompt",
    );
    check(
        &get(&server, "/v1/prompts/..%2F..%2Fetc%2Fpasswd"),
        404,
        "unknown-prompt",
    );
    let not_allowed = get(&server, "/v1/render/support/triage");
    assert_eq!(not_allowed.status, 405);
}

/// A render target is resolved once per served commit: renders repeated at one commit name the
/// same version, each target (path and query) its own, and a new commit resolves them again.
#[test]
fn renders_resolve_their_version_at_the_commit_served() {
    let mut repo = repo();
    let pinned = repo.head();
    let server = Server::start(&repo, &[]);
    let body = r#"{"variables": {"ticket": "t", "n": 1}}"#;
    let version = |target: &str| {
        let rendered = post(&server, target, body);
        assert_eq!(rendered.status, 200, "{target}: {}", rendered.body);
        rendered.json()["version"].as_u64().unwrap_or(0)
    };
    let at_commit = format!("/v1/render/support/triage@{}", &pinned[..12]);
    for _ in 0..2 {
        assert_eq!(version("/v1/render/support/triage"), 1);
        assert_eq!(version("/v1/render/support/triage?label=staging"), 2);
        assert_eq!(version("/v1/render/support/triage?version=2"), 2);
        assert_eq!(version("/v1/render/support/triage@latest"), 2);
        assert_eq!(version(&at_commit), 2);
    }
    // A name that resolves to nothing is answered as such every time.
    for _ in 0..2 {
        let unknown = post(&server, "/v1/render/support/triage@9", body);
        assert_eq!(unknown.status, 404, "{}", unknown.body);
    }

    repo.write(
        "defaults.yaml",
        "defaults:\n  support/triage: 2\nlabels:\n  staging:\n    support/triage: 1\n",
    );
    repo.commit("Default triage to 2, stage 1");
    let deadline = Instant::now() + Duration::from_secs(30);
    while version("/v1/render/support/triage") != 2 {
        assert!(
            Instant::now() < deadline,
            "the new default was never rendered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(version("/v1/render/support/triage?label=staging"), 1);
    assert_eq!(version("/v1/render/support/triage?version=2"), 2);
    assert_eq!(version(&at_commit), 2);
}

#[test]
fn a_new_commit_is_served_while_sixteen_clients_read() {
    let mut repo = repo();
    let server = Server::start(&repo, &[]);
    let url = server.url("/v1/prompts/support/triage@latest");
    let done = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let url = url.clone();
            let done = done.clone();
            std::thread::spawn(move || -> Result<u32, String> {
                let agent = agent();
                let mut newest = 0;
                let deadline = Instant::now() + Duration::from_secs(60);
                while !done.load(Ordering::Relaxed) || newest < 3 {
                    if Instant::now() > deadline {
                        return Err(format!("never saw version 3 (last {newest})"));
                    }
                    let mut response = agent.get(&url).call().map_err(|e| e.to_string())?;
                    let status = response.status().as_u16();
                    let etag = response
                        .headers()
                        .get("etag")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    let body = response
                        .body_mut()
                        .read_to_string()
                        .map_err(|e| e.to_string())?;
                    if status != 200 {
                        return Err(format!("status {status}: {body}"));
                    }
                    let doc: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
                    let version = doc["version"].as_u64().unwrap_or(0) as u32;
                    // One snapshot per answer: the validator names the body's commit and blob
                    // (after a digest of the id, before the manifest's blob).
                    let expected = format!(
                        ".{}.{}.",
                        doc["commit"].as_str().unwrap_or(""),
                        doc["blob"].as_str().unwrap_or("")
                    );
                    if !(etag.starts_with("\"p.") && etag.contains(&expected)) {
                        return Err(format!("ETag {etag} does not match the body ({expected})"));
                    }
                    let text = doc["source"].as_str().unwrap_or("");
                    if (version == 3) != text.contains("third") {
                        return Err(format!(
                            "version {version} with the text of another: {text}"
                        ));
                    }
                    if version < newest {
                        return Err(format!("went back from {newest} to {version}"));
                    }
                    newest = version;
                }
                Ok(newest)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    repo.write(
        "support/triage.prompt.yaml",
        &TRIAGE_V1.replace("You sort tickets.", "You sort tickets, third edition."),
    );
    repo.commit("Triage: third");
    done.store(true, Ordering::Relaxed);
    for client in clients {
        let result = client.join().expect("client thread");
        assert_eq!(result, Ok(3));
    }
    let metrics = get(&server, "/metrics").body;
    assert!(
        metrics.contains("promptreg_snapshot_swaps_total 1"),
        "{metrics}"
    );
}

#[test]
fn the_openapi_document_names_the_routes_the_server_has() {
    let repo = repo();
    let server = Server::start(&repo, &[]);
    let doc = get(&server, "/openapi.json");
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 9);
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            let concrete = path
                .replace("{id}", "support/triage")
                .replace("{label}", "staging")
                .replace("{analysis}", "score");
            let url = server.url(&concrete);
            let body = r#"{"variables": {"ticket": "x"}}"#;
            if path == "/v1/events" {
                // An event stream never ends: its status and type are enough.
                let response = agent().get(&url).call().expect("GET events");
                assert_eq!(response.status().as_u16(), 200);
                let kind = response
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok());
                assert_eq!(kind, Some("text/event-stream"));
                continue;
            }
            let response = match method.as_str() {
                "get" => get(&server, &concrete),
                "post" => post(&server, &concrete, body),
                "put" => answer(agent().put(&url).send(body).expect("PUT")),
                "delete" => answer(agent().delete(&url).call().expect("DELETE")),
                other => panic!("unexpected method {other} for {path}"),
            };
            // A read answers; a write (this server takes none) is refused by the route itself,
            // never by the router.
            let is_write = method != "get"
                && !path.starts_with("/v1/render")
                && !path.starts_with("/v1/analyze")
                && !path.starts_with("/v1/hooks");
            if path.starts_with("/v1/analyze") {
                // This server runs no analyses (no --analyses).
                assert_eq!(response.status, 403, "{method} {path}: {}", response.body);
                assert_eq!(
                    response.json()["type"],
                    "urn:promptreg:problem:analyses-off"
                );
            } else if path == "/v1/hooks/push" {
                // A server that follows nothing has nothing to fetch.
                assert_eq!(response.status, 409, "{method} {path}: {}", response.body);
            } else if is_write {
                assert_eq!(response.status, 403, "{method} {path}: {}", response.body);
                assert_eq!(response.json()["type"], "urn:promptreg:problem:writes-off");
            } else {
                assert!(
                    response.status < 300 || response.status == 304,
                    "{method} {path}: {} {}",
                    response.status,
                    response.body
                );
            }
        }
    }
    // And a real validator agrees it is OpenAPI 3.1 (openapi-spec-validator, from PyPI).
    let dir = crate::common::tempdir();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, get(&server, "/openapi.json").body).expect("write");
    let validator = std::process::Command::new("python3")
        .args(["-c", "import sys, json\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))\nprint('valid')", file.to_str().unwrap_or_default()])
        .output();
    match validator {
        Ok(out) if out.status.success() => {
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "valid");
        }
        Ok(out) if String::from_utf8_lossy(&out.stderr).contains("No module named") => {
            assert!(
                std::env::var_os("CI").is_none(),
                "openapi-spec-validator is not installed, and CI needs it: `pip install openapi-spec-validator`"
            );
            eprintln!("warning: openapi-spec-validator is not installed; the OpenAPI document was not validated (pip install openapi-spec-validator)");
        }
        Ok(out) => panic!(
            "the OpenAPI document is not valid: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => assert!(std::env::var_os("CI").is_none(), "python3 cannot run: {e}"),
    }
}

#[test]
fn tokens_guard_every_route_but_healthz_and_never_reach_the_log() {
    let repo = repo();
    let dir = crate::common::tempdir();
    let auth = dir.path().join("auth.yaml");
    std::fs::write(
        &auth,
        "tokens:\n  - name: reader\n    token: s3cret-reader-token\n    scopes: [read]\n",
    )
    .expect("write");
    let mut server = Server::start(
        &repo,
        &[
            "--auth",
            auth.to_str().unwrap_or_default(),
            "--log-format",
            "json",
        ],
    );
    let denied = get(&server, "/v1/prompts");
    assert_eq!(denied.status, 401);
    assert_eq!(denied.json()["type"], "urn:promptreg:problem:unauthorized");
    assert_eq!(get(&server, "/metrics").status, 401);
    assert_eq!(get(&server, "/healthz").status, 200);
    let wrong = answer(
        agent()
            .get(&server.url("/v1/prompts"))
            .header("Authorization", "Bearer not-it")
            .call()
            .expect("GET"),
    );
    assert_eq!(wrong.status, 401);
    let allowed = answer(
        agent()
            .get(&server.url("/v1/prompts/support/triage"))
            .header("Authorization", "Bearer s3cret-reader-token")
            .call()
            .expect("GET"),
    );
    assert_eq!(allowed.status, 200);
    assert_eq!(server.stop(), Some(0), "SIGTERM exits 0");
    let log = server.log();
    assert!(!log.contains("s3cret-reader-token"), "{log}");
    let access: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "promptreg::access")
        .collect();
    assert!(access.len() >= 5, "one JSON line per request: {log}");
    let ok = access
        .iter()
        .find(|l| {
            l["fields"]["status"] == 200 && l["fields"]["path"] == "/v1/prompts/support/triage"
        })
        .unwrap_or_else(|| panic!("no access line for the allowed GET: {log}"));
    assert_eq!(ok["fields"]["token"], "reader");
    assert_eq!(ok["fields"]["route"], "/v1/prompts/{id}");
}

#[test]
fn bad_auth_files_and_exposed_addresses_are_said_plainly() {
    let repo = repo();
    let dir = crate::common::tempdir();
    let auth = dir.path().join("auth.yaml");
    std::fs::write(&auth, "tokens:\n  - name: x\n    sha256: abc\n").expect("write");
    let out = cli(repo.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--auth"])
        .arg(&auth)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("token 0 needs one of `sha256` (64 hex digits) and `token`"),
        "{stderr}"
    );
    assert!(stderr.contains("auth.yaml:3:"), "{stderr}");

    let mut cmd = cli(repo.path());
    cmd.args(["serve", "--listen", "0.0.0.0:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut seen = String::new();
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains("warning:") && Instant::now() < deadline {
        match stderr.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.contains("beyond this machine"), "{seen}");
    assert!(seen.contains("there is no --auth"), "{seen}");
}

/// The host and port of a server, for raw connections.
fn address(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_string()
}

#[test]
fn a_stalled_client_is_dropped_and_others_are_served() {
    use std::io::Write;
    let repo = repo();
    let server = Server::start(&repo, &[]);
    let mut stalled = std::net::TcpStream::connect(address(&server)).expect("connect");
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .expect("half a request");
    // While it stalls, others are answered.
    assert_eq!(get(&server, "/healthz").status, 200);
    stalled
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut rest = Vec::new();
    // The server gives up on the headers and closes the connection (an error answer first is
    // fine); the read ends instead of waiting for ever.
    let read = stalled.read_to_end(&mut rest);
    assert!(
        read.is_ok(),
        "the server never closed the stalled connection: {read:?}"
    );
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    use std::io::Write;
    let repo = repo();
    let mut server = Server::start(&repo, &[]);
    let body = br#"{"variables": {"ticket": "late"}}"#;
    let mut client = std::net::TcpStream::connect(address(&server)).expect("connect");
    write!(
        client,
        "POST /v1/render/support/triage HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("headers");
    client.write_all(&body[..10]).expect("half the body");
    client.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(200));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(200));
    client.write_all(&body[10..]).expect("the rest of the body");
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = client.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&answer).contains("late") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("late x1"), "{text}");
    drop(client);
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn event_streams_are_bounded_and_one_more_is_told_to_come_back() {
    use std::io::Write;
    let repo = repo();
    let server = Server::start(&repo, &["--max-event-streams", "2"]);
    let address = server.base.trim_start_matches("http://").to_string();
    // Opens a stream and reads its head (an event stream never ends).
    let open = || {
        let mut stream = std::net::TcpStream::connect(&address).expect("connect");
        stream
            .write_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("request");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
        (stream, String::from_utf8_lossy(&head).into_owned())
    };
    let (_one, head) = open();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (_two, head) = open();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let response = agent().get(&server.url("/v1/events")).call().expect("GET");
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let refused = answer(response);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(retry.as_deref(), Some("5"));
    assert_eq!(
        refused.json()["type"],
        "urn:promptreg:problem:too-many-streams"
    );
    let metrics = get(&server, "/metrics").body;
    assert!(
        metrics.contains("promptreg_event_streams_open 2"),
        "{metrics}"
    );
    // Other routes are not affected.
    assert_eq!(get(&server, "/v1/prompts").status, 200);
}

/// Two prompts with the same text in one commit are two documents: each answer names its own
/// id, with its own ETag, however often they are asked for (the body cache is keyed by id too),
/// and `export` writes each as itself.
#[test]
fn prompts_with_the_same_text_are_served_as_themselves() {
    let mut repo = TestRepo::new();
    repo.write("a.prompt.yaml", "template: same\n");
    repo.write("b.prompt.yaml", "template: same\n");
    repo.commit("Twins");
    let server = Server::start(&repo, &[]);
    let mut tags = Vec::new();
    for _ in 0..2 {
        for id in ["a", "b"] {
            for path in [format!("/v1/prompts/{id}@1"), format!("/v1/prompts/{id}")] {
                let answer = get(&server, &path);
                assert_eq!(answer.status, 200, "{path}: {}", answer.body);
                assert_eq!(answer.json()["id"], id, "{path}: {}", answer.body);
                assert_eq!(answer.json()["file"], format!("{id}.prompt.yaml"));
                tags.push((id, answer.etag.clone().unwrap_or_default()));
            }
        }
    }
    let a: Vec<_> = tags
        .iter()
        .filter(|(id, _)| *id == "a")
        .map(|(_, t)| t)
        .collect();
    let b: Vec<_> = tags
        .iter()
        .filter(|(id, _)| *id == "b")
        .map(|(_, t)| t)
        .collect();
    assert!(a.iter().all(|t| !b.contains(t)), "{tags:?}");
    drop(server);
    let out_dir = crate::common::tempdir();
    let site = out_dir.path().join("site");
    let out = cli(repo.path())
        .args(["export", "--out"])
        .arg(&site)
        .output()
        .expect("export");
    assert_eq!(out.status.code(), Some(0));
    for id in ["a", "b"] {
        let doc: Value = serde_json::from_slice(
            &std::fs::read(site.join(format!("v1/prompts/{id}@1/index.json"))).expect("exported"),
        )
        .expect("json");
        assert_eq!(doc["id"], id);
    }
}

/// Metric labels come from fixed sets: requests with made-up methods are counted under
/// `OTHER`, never as a series of their own.
#[test]
fn made_up_methods_do_not_make_metric_series() {
    use std::io::Write;
    let mut repo = TestRepo::new();
    repo.write("a.prompt.yaml", "template: a\n");
    repo.commit("Add a");
    let server = Server::start(&repo, &[]);
    for i in 0..5 {
        let mut stream = std::net::TcpStream::connect(address(&server)).expect("connect");
        write!(
            stream,
            "MADEUP{i} /v1/prompts/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    }
    let metrics = get(&server, "/metrics").body;
    assert!(!metrics.contains("MADEUP"), "{metrics}");
    assert!(metrics.contains("method=\"OTHER\""), "{metrics}");
}

/// `export` builds beside its target and renames into place: an id that collides with the
/// layout (`index.json`) is refused with its name, and the earlier export stays whole, with
/// nothing left behind.
#[test]
fn a_failed_export_leaves_the_earlier_one_intact() {
    let mut repo = TestRepo::new();
    repo.write("a.prompt.yaml", "template: a\n");
    let first = repo.commit("Add a");
    let out_dir = crate::common::tempdir();
    let site = out_dir.path().join("site");
    let export = |repo: &TestRepo| {
        cli(repo.path())
            .args(["export", "--out"])
            .arg(&site)
            .output()
            .expect("export")
    };
    assert_eq!(export(&repo).status.code(), Some(0));
    let bundle = || -> Value {
        serde_json::from_slice(&std::fs::read(site.join("bundle.json")).expect("bundle"))
            .expect("json")
    };
    assert_eq!(bundle()["commit"], first.as_str());
    repo.write("index.json.prompt.yaml", "template: i\n");
    repo.commit("A prompt named like the layout");
    let out = export(&repo);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("index.json"), "{stderr}");
    assert_eq!(
        bundle()["commit"],
        first.as_str(),
        "the earlier export changed"
    );
    assert!(site.join("v1/prompts/a/index.json").is_file());
    let left: Vec<_> = std::fs::read_dir(out_dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from("site")], "{left:?}");
    // A later export that can succeed replaces it.
    repo.remove("index.json.prompt.yaml");
    let last = repo.commit("Rename it back");
    assert_eq!(export(&repo).status.code(), Some(0));
    assert_eq!(bundle()["commit"], last.as_str());
}

/// Every error is problem+json, the ones extractors and the router answer included, and a
/// method a route lacks is a 405 with `Allow` on every server (a read-only one too), never a
/// 403 for writes being off.
#[test]
fn every_error_is_a_problem_and_a_missing_method_is_405() {
    let mut repo = TestRepo::new();
    repo.write("a.prompt.yaml", "template: a\n");
    repo.commit("Add a");
    let server = Server::start(&repo, &[]);
    let agent = agent();
    let bad_query = get(&server, "/v1/prompts/a?version=x");
    assert_eq!(bad_query.status, 400, "{}", bad_query.body);
    assert_eq!(
        bad_query.content_type.as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(bad_query.json()["status"], 400);
    let response = agent
        .put(&server.url("/v1/render/a"))
        .send("")
        .expect("PUT");
    let allow = response
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let put = answer(response);
    assert_eq!(put.status, 405, "{}", put.body);
    assert_eq!(allow.as_deref(), Some("POST"));
    assert_eq!(
        put.content_type.as_deref(),
        Some("application/problem+json")
    );
    // A write route's own method on a read-only server: writes are off.
    let delete = answer(
        agent
            .delete(&server.url("/v1/prompts/a"))
            .call()
            .expect("DELETE"),
    );
    assert_eq!(delete.status, 403, "{}", delete.body);
    assert_eq!(delete.json()["type"], "urn:promptreg:problem:writes-off");
}

/// A render request with tens of thousands of variable names is answered (the names given are
/// a set: checking each against a list of the earlier ones was quadratic), and every unused
/// name is reported.
#[test]
fn a_render_with_many_names_is_answered() {
    let mut repo = TestRepo::new();
    repo.write("a.prompt.yaml", "template: a\n");
    repo.commit("Add a");
    let server = Server::start(&repo, &[]);
    let names: serde_json::Map<String, Value> =
        (0..60_000).map(|i| (format!("v{i}"), json!(1))).collect();
    let body = json!({ "variables": names }).to_string();
    assert!(body.len() < 1024 * 1024);
    let answer = post(&server, "/v1/render/a", &body);
    assert_eq!(
        answer.status,
        200,
        "{}",
        &answer.body[..answer.body.len().min(300)]
    );
    assert_eq!(
        answer.json()["unused"].as_array().map(Vec::len),
        Some(60_000)
    );
}

/// Renders run on a pool of their own under the request's time limit: one that does not finish
/// in time is a 408, one that finds every slot taken for that long a 503 with `Retry-After`,
/// and `/healthz` answers while they run. The limit is shortened for the test
/// (`PROMPTREG_TEST_RENDER_LIMIT_MS`), so renders of a fraction of a second reach it.
#[test]
fn slow_renders_are_cut_off_and_a_full_pool_says_come_back() {
    let mut repo = TestRepo::new();
    // Slow but within the render budget: a long loop that prints little.
    repo.write(
        "slow.prompt.yaml",
        "template: \"{% for i in range(250) %}{% for j in range(250) %}{% if i == j %}x{% endif %}{% endfor %}{% endfor %}\"\n",
    );
    repo.commit("Add slow");
    let server = Server::start_with(&repo, &[], &[("PROMPTREG_TEST_RENDER_LIMIT_MS", "30")]);
    let url = server.url("/v1/render/slow");
    // More requests than the pool has slots (two per core).
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let answers: Vec<Answer> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..cores * 2 + 8)
            .map(|_| {
                let url = url.clone();
                scope.spawn(move || {
                    answer(
                        agent()
                            .post(&url)
                            .header("Content-Type", "application/json")
                            .send("{}")
                            .expect("POST"),
                    )
                })
            })
            .collect();
        // Meanwhile the server answers the rest at once.
        let started = Instant::now();
        let health = get(&server, "/healthz");
        assert_eq!(health.status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect()
    });
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert!(statuses.contains(&408), "{statuses:?}");
    assert!(statuses.contains(&503), "{statuses:?}");
    // The first to get a slot may finish in time; every other answer is a problem.
    for answer in answers.iter().filter(|a| a.status != 200) {
        assert_eq!(
            answer.content_type.as_deref(),
            Some("application/problem+json"),
            "{}",
            answer.body
        );
        let kind = answer.json()["type"].clone();
        match answer.status {
            408 => assert_eq!(kind, "urn:promptreg:problem:timeout"),
            503 => {
                assert_eq!(kind, "urn:promptreg:problem:too-many-renders");
                assert_eq!(answer.retry_after.as_deref(), Some("1"));
            }
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
}

/// A prompt's document that needs git reads and a compile is made on the blocking pool, under
/// the time limit; once compiled it is answered on the spot. With the limit at 0 ms, the first
/// answer is the pool's 408 while the compile goes on, and a later one is the document.
#[test]
fn a_first_read_compiles_on_the_pool_and_later_ones_do_not() {
    let mut repo = TestRepo::new();
    repo.write(
        "a.prompt.yaml",
        "template: \"hi {{ x }}\"\ntestData:\n  - x: 1\n",
    );
    repo.commit("Add a");
    let server = Server::start_with(&repo, &[], &[("PROMPTREG_TEST_RENDER_LIMIT_MS", "0")]);
    let first = get(&server, "/v1/prompts/a@1");
    assert_eq!(first.status, 408, "{}", first.body);
    assert_eq!(first.json()["type"], "urn:promptreg:problem:timeout");
    let started = Instant::now();
    let later = loop {
        let answer = get(&server, "/v1/prompts/a@1");
        if answer.status == 200 || started.elapsed() > Duration::from_secs(10) {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(later.status, 200, "{}", later.body);
    assert_eq!(later.json()["version"], 1);
}

/// A small render of a compiled prompt whose render is linear in its values is answered on the
/// async worker, not the blocking pool: while slow renders hold every slot of the pool, it is
/// still answered, every time, where a render that needs the pool is not (the limit is 0 ms:
/// each slow render is answered 408 at once, and its work goes on holding the slot). A loop, a
/// test case or a large body need the pool, and so does a read that names a commit.
#[test]
fn small_linear_renders_do_not_wait_for_the_pool() {
    let mut repo = TestRepo::new();
    // Work that takes the pool milliseconds: a test case with a long value, a long body.
    let long = "word ".repeat(100_000);
    repo.write(
        "a.prompt.yaml",
        &format!("messages:\n  - role: system\n    content: \"Hi {{{{ name | title }}}}\"\n  - role: user\n    content: \"{{{{ topic }}}}?\"\ntestData:\n  - name: ada\n    topic: {long}\n"),
    );
    repo.write(
        "slow.prompt.yaml",
        "template: \"{% for i in range(300) %}{% for j in range(300) %}{% if i == j %}x{% endif %}{% endfor %}{% endfor %}\"\n",
    );
    // Linear, but its own text is large: what it renders and counts is not small.
    repo.write(
        "big.prompt.yaml",
        &format!("template: \"{} {{{{ x }}}}\"\n", "word ".repeat(5000)),
    );
    let added = repo.commit("Add a, slow and big");
    // History to walk back through to find that commit: a read naming it takes the pool
    // milliseconds, so with the pool full it cannot be answered 200 either.
    for n in 0..2000 {
        repo.commit_index(&format!("Nothing {n}"));
    }
    let server = Server::start_with(&repo, &[], &[("PROMPTREG_TEST_RENDER_LIMIT_MS", "0")]);
    let post = |id: &str, body: &str| {
        answer(
            agent()
                .post(&server.url(&format!("/v1/render/{id}")))
                .header("Content-Type", "application/json")
                .send(body)
                .expect("POST"),
        )
    };
    // Compiled on the pool by a read (which may time out; the compile is kept).
    for id in ["a", "slow", "big"] {
        let started = Instant::now();
        while get(&server, &format!("/v1/prompts/{id}")).status != 200 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{id} never compiled"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Every slot of the pool (two per core) taken by a slow render that has just started: a
    // 408 is a render that got a slot (and keeps it while it runs on), a 503 one that found
    // none free.
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let fill = || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut started = 0;
        while started < cores * 2 {
            assert!(Instant::now() < deadline, "the pool never freed a slot");
            match post("slow", "{}").status {
                408 => started += 1,
                503 => std::thread::sleep(Duration::from_millis(5)),
                other => panic!("{other}"),
            }
        }
    };
    let small = r#"{"variables": {"name": "ada lovelace", "topic": "access"}}"#;
    // A version named by a commit and resolved once (on the pool: the answer may time out, the
    // resolution is kept) is not looked up again: its renders are answered here too.
    let by_commit = format!("a@{}", &added[..12]);
    let started = Instant::now();
    while post(&by_commit, small).status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{by_commit} never resolved"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    fill();
    let large = format!(
        r#"{{"variables": {{"name": "{}", "topic": "t"}}}}"#,
        long.trim()
    );
    // Each needs milliseconds of work on the pool (a 500 KB value, a 25 KB template), so
    // with the pool full it cannot be answered 200. The pool is filled again right before each:
    // the slow renders that filled it run out of fuel within milliseconds, and a request that
    // finds a slot free may finish before its 0 ms limit is first checked.
    let busy = [
        post("slow", "{}"),
        {
            fill();
            post("a", r#"{"testCase": 0}"#)
        },
        {
            fill();
            post("a", &large)
        },
        {
            fill();
            post("big", r#"{"variables": {"x": "y"}}"#)
        },
        // A version named by a commit: found in git, history walked back to it.
        {
            fill();
            get(&server, &format!("/v1/prompts/a@{}", &added[..12]))
        },
        {
            fill();
            get(&server, &format!("/v1/prompts/a?commit={added}"))
        },
    ];
    for id in ["a"; 20].into_iter().chain([by_commit.as_str()]) {
        let rendered = post(id, small);
        assert_eq!(rendered.status, 200, "{}", rendered.body);
        let doc = rendered.json();
        assert_eq!(doc["messages"][0]["content"], "Hi Ada Lovelace");
        assert_eq!(doc["messages"][1]["content"], "access?");
        assert!(doc["tokens"].as_u64().unwrap_or(0) > 0, "{doc}");
    }
    // A mistake is answered there too, as the same problem.
    let missing = post("a", r#"{"variables": {"topic": "x"}}"#);
    assert_eq!(missing.status, 422, "{}", missing.body);
    assert_eq!(
        missing.json()["type"],
        "urn:promptreg:problem:missing-variables"
    );
    // The others needed the pool: it was full (503), or their work outlasted the limit (408).
    for answer in busy {
        assert!(
            [503, 408].contains(&answer.status),
            "{}: {}",
            answer.status,
            answer.body.chars().take(300).collect::<String>()
        );
    }
}

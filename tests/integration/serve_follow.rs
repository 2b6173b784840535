//! `promptreg serve --follow`: a replica of a bare remote on this machine (real git transport),
//! pushes seen through the webhook and through the interval, faults that keep the last
//! snapshot, the change events, and `export` answering as the server does.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::common::cli;
use crate::serve::{agent, answer, get, Answer};

const SECRET: &str = "a-long-test-hook-secret-0123456789";

/// A bare remote and a clone to push from, with the git command.
struct Remote {
    dir: tempfile::TempDir,
}

impl Remote {
    fn new() -> Remote {
        let remote = Remote {
            dir: crate::common::tempdir(),
        };
        remote.git(
            &["init", "--quiet", "--bare", "-b", "main", "remote.git"],
            "",
        );
        remote.git(&["clone", "--quiet", "remote.git", "work"], "");
        remote.git(&["checkout", "--quiet", "-b", "main"], "work");
        remote
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn url(&self) -> String {
        self.path("remote.git").display().to_string()
    }

    fn git(&self, args: &[&str], in_dir: &str) -> String {
        let out = crate::common::git_command(&self.dir.path().join(in_dir), args)
            .env("GIT_AUTHOR_NAME", "Pusher")
            .env("GIT_AUTHOR_EMAIL", "pusher@example.com")
            .env("GIT_COMMITTER_NAME", "Pusher")
            .env("GIT_COMMITTER_EMAIL", "pusher@example.com")
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes files into the clone, commits and pushes them.
    fn push(&self, files: &[(&str, Option<&str>)], message: &str) {
        for (path, text) in files {
            let full = self.path("work").join(path);
            match text {
                Some(text) => {
                    std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
                    std::fs::write(&full, text).expect("write");
                }
                None => std::fs::remove_file(&full).expect("remove"),
            }
        }
        self.git(&["add", "--all"], "work");
        self.git(&["commit", "--quiet", "-m", message], "work");
        self.git(&["push", "--quiet", "origin", "main"], "work");
    }
}

fn prompt(text: &str) -> String {
    format!("template: \"{text} {{{{ x }}}}\"\ntestData:\n  - x: 1\n")
}

/// A server started with `--follow`.
struct Replica {
    server: crate::serve::Server,
    base: String,
    _dir: tempfile::TempDir,
}

impl Replica {
    fn start(remote: &Remote, interval: &str) -> Replica {
        let dir = crate::common::tempdir();
        let secret = dir.path().join("hook-secret");
        std::fs::write(&secret, SECRET).expect("secret");
        // Started from nothing: the replica's directory does not exist yet.
        let root = dir.path().join("replica");
        let mut cmd = cli(dir.path());
        cmd.arg("-C")
            .arg(&root)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--follow",
                &remote.url(),
                "--interval",
                interval,
                "--hook-secret-file",
            ])
            .arg(&secret);
        let server = crate::serve::Server::spawn(cmd);
        Replica {
            base: server.base.clone(),
            server,
            _dir: dir,
        }
    }

    fn get(&self, path: &str) -> Answer {
        answer(
            agent()
                .get(&format!("{}{path}", self.base))
                .call()
                .expect("GET"),
        )
    }

    fn hook(&self, headers: &[(&str, String)], body: &str) -> Answer {
        let mut request = agent().post(&format!("{}/v1/hooks/push", self.base));
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        answer(request.send(body).expect("POST"))
    }

    fn signed_hook(&self) -> Answer {
        let body = r#"{"ref": "refs/heads/main"}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
        mac.update(body.as_bytes());
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.hook(
            &[
                ("X-Hub-Signature-256", format!("sha256={hex}")),
                ("X-GitHub-Event", "push".into()),
            ],
            body,
        )
    }

    /// Waits until `check` holds of `GET path`, for at most 30 s.
    fn until(&self, path: &str, what: &str, check: impl Fn(&Answer) -> bool) -> Answer {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = self.get(path);
            if check(&answer) {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: never happened; last {} {}",
                answer.status,
                answer.body
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        // Killed, not stopped: a replica's open event streams need not drain.
        let _ = self.server.child.kill();
        let _ = self.server.child.wait();
    }
}

/// Reads the event stream in the background; every event's data, in order.
fn listen(base: &str) -> Arc<Mutex<Vec<Value>>> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let url = format!("{base}/v1/events");
    std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let Ok(mut response) = agent.get(&url).call() else {
            return;
        };
        let reader = BufReader::new(response.body_mut().as_reader());
        for line in reader.lines().map_while(Result::ok) {
            if let Some(data) = line.strip_prefix("data: ") {
                if let (Ok(value), Ok(mut events)) =
                    (serde_json::from_str::<Value>(data), sink.lock())
                {
                    events.push(value);
                }
            }
        }
    });
    events
}

/// What a GET's connection receives in its first second (an event stream never ends).
fn read_for_a_while(base: &str, path: &str, headers: &[(&str, &str)]) -> String {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("request");
    stream
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn a_replica_follows_pushes_through_the_hook_and_the_interval() {
    let remote = Remote::new();
    remote.push(
        &[
            ("a.prompt.yaml", Some(&prompt("one"))),
            ("b.prompt.yaml", Some(&prompt("bee"))),
        ],
        "Add a and b",
    );
    let replica = Replica::start(&remote, "3600");
    assert_eq!(replica.get("/v1/prompts/a").json()["version"], 1);
    let events = listen(&replica.base);
    std::thread::sleep(Duration::from_millis(200));

    // A new version, announced by the webhook.
    remote.push(&[("a.prompt.yaml", Some(&prompt("two")))], "a: two");
    let hooked = replica.signed_hook();
    assert_eq!(hooked.status, 202, "{}", hooked.body);
    replica.until("/v1/prompts/a@latest", "version 2 after the hook", |a| {
        a.json()["version"] == 2
    });

    // A moved default, a new label and a deleted prompt, in one push.
    remote.push(
        &[
            (
                "defaults.yaml",
                Some("defaults:\n  a: 1\nlabels:\n  staging:\n    a: 2\n"),
            ),
            ("b.prompt.yaml", None),
        ],
        "Pin a, stage a, drop b",
    );
    replica.signed_hook();
    replica.until("/v1/prompts/a", "the default moved to 1", |a| {
        a.json()["version"] == 1
    });
    assert_eq!(replica.get("/v1/prompts/a@staging").json()["version"], 2);
    assert_eq!(replica.get("/v1/prompts/b").status, 404);
    assert_eq!(
        replica.get("/v1/prompts/b@1").status,
        200,
        "deleted, its versions stay readable"
    );

    // A rewritten history: the last commit replaced by another.
    remote.git(&["reset", "--quiet", "--hard", "HEAD~1"], "work");
    std::fs::write(remote.path("work/a.prompt.yaml"), prompt("rewritten")).expect("write");
    remote.git(&["commit", "--quiet", "-am", "a: rewritten"], "work");
    remote.git(&["push", "--quiet", "--force", "origin", "main"], "work");
    replica.signed_hook();
    replica.until("/v1/prompts/a@latest", "the rewritten history", |a| {
        a.json()["source"]
            .as_str()
            .is_some_and(|s| s.contains("rewritten"))
    });
    let latest = replica.get("/v1/prompts/a@latest").json();
    assert_eq!(latest["version"], 3);
    assert_eq!(
        replica.get("/v1/prompts/b").status,
        200,
        "b is back in the rewritten history"
    );
    // Rewritten again: version 3 of `a` now has other content.
    std::fs::write(remote.path("work/a.prompt.yaml"), prompt("amended")).expect("write");
    remote.git(
        &["commit", "--quiet", "--amend", "-am", "a: amended"],
        "work",
    );
    remote.git(&["push", "--quiet", "--force", "origin", "main"], "work");
    replica.signed_hook();
    replica.until("/v1/prompts/a@3", "the amended version", |a| {
        a.json()["source"]
            .as_str()
            .is_some_and(|s| s.contains("amended"))
    });

    std::thread::sleep(Duration::from_millis(300));
    let seen = events.lock().map(|e| e.clone()).unwrap_or_default();
    assert!(seen.len() >= 4, "{seen:?}");
    assert_eq!(
        seen[0]["versions"],
        serde_json::json!([{"id": "a", "versions": [2]}])
    );
    assert_eq!(
        seen[0]["defaults"],
        serde_json::json!([{"id": "a", "old": 1, "new": 2}])
    );
    assert_eq!(
        seen[1]["defaults"],
        serde_json::json!([{"id": "a", "old": 2, "new": 1}, {"id": "b", "old": 1, "new": null}])
    );
    assert_eq!(
        seen[1]["labels"],
        serde_json::json!([{"id": "a", "label": "staging", "old": null, "new": 2}])
    );
    assert_eq!(seen[1]["removed"], serde_json::json!(["b"]));
    assert_eq!(seen[2]["added"], serde_json::json!(["b"]));
    // A rewrite names the versions whose content changed or vanished: none when it only
    // dropped a commit that changed no prompt file, `a@3` when that version was amended.
    assert_eq!(seen[0]["rewritten"], serde_json::json!([]));
    assert_eq!(seen[2]["rewritten"], serde_json::json!([]), "{}", seen[2]);
    assert_eq!(
        seen[3]["rewritten"],
        serde_json::json!([{"id": "a", "versions": [3]}]),
        "{}",
        seen[3]
    );
    // An event's id is the commit it brings the client to: resuming after the first event
    // replays the rest, and only the rest.
    let commit = |i: usize| seen[i]["commit"].as_str().unwrap_or_default().to_string();
    let first = commit(0);
    let resumed = read_for_a_while(&replica.base, "/v1/events", &[("Last-Event-ID", &first)]);
    let ids: Vec<&str> = resumed
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .collect();
    assert_eq!(ids, [commit(1), commit(2), commit(3)], "{resumed}");
    // An id the server has no event for (another replica's, one from before a restart, one
    // from the future) is a `resync`, never silence.
    let unknown = read_for_a_while(&replica.base, "/v1/events", &[("Last-Event-ID", "7")]);
    assert!(unknown.contains("event: resync"), "{unknown}");
    assert!(unknown.contains(&format!("id: {}", commit(3))), "{unknown}");
    // The commit served now: nothing missed, nothing sent.
    let current = read_for_a_while(
        &replica.base,
        "/v1/events",
        &[("Last-Event-ID", &commit(3))],
    );
    assert!(!current.contains("event:"), "{current}");
}

#[test]
fn the_interval_alone_brings_new_commits() {
    let remote = Remote::new();
    remote.push(&[("a.prompt.yaml", Some(&prompt("one")))], "Add a");
    let replica = Replica::start(&remote, "1");
    remote.push(&[("a.prompt.yaml", Some(&prompt("two")))], "a: two");
    replica.until("/v1/prompts/a@latest", "version 2 from the interval", |a| {
        a.json()["version"] == 2
    });
}

#[test]
fn webhooks_need_the_secret() {
    let remote = Remote::new();
    remote.push(&[("a.prompt.yaml", Some(&prompt("one")))], "Add a");
    let replica = Replica::start(&remote, "3600");
    let bad = replica.hook(&[("X-Hub-Signature-256", "sha256=00ff".into())], "{}");
    assert_eq!(bad.status, 401);
    assert_eq!(bad.json()["type"], "urn:promptreg:problem:bad-signature");
    assert_eq!(replica.hook(&[], "{}").status, 401, "unsigned");
    assert_eq!(
        replica
            .hook(&[("X-Gitlab-Token", "wrong".into())], "{}")
            .status,
        401
    );
    assert_eq!(
        replica
            .hook(&[("X-Gitlab-Token", SECRET.into())], "{}")
            .status,
        202
    );
    assert_eq!(replica.signed_hook().status, 202);
    // A server that follows nothing has nothing to fetch.
    let mut repo = crate::common::TestRepo::new();
    repo.write("a.prompt.yaml", &prompt("one"));
    repo.commit("Add a");
    let plain = crate::serve::Server::start(&repo, &[]);
    let answer = answer(
        agent()
            .post(&plain.url("/v1/hooks/push"))
            .send("{}")
            .expect("POST"),
    );
    assert_eq!(answer.status, 409);
}

#[test]
fn faults_keep_the_last_snapshot_and_recover() {
    let remote = Remote::new();
    remote.push(&[("a.prompt.yaml", Some(&prompt("one")))], "Add a");
    let replica = Replica::start(&remote, "3600");
    // The remote goes away: still serving, degraded, with the reason.
    std::fs::rename(remote.path("remote.git"), remote.path("gone.git")).expect("move away");
    replica.signed_hook();
    let degraded = replica.until("/readyz", "degraded after a failed fetch", |a| {
        a.json()["degraded"] == true
    });
    assert!(
        degraded.json()["reason"]
            .as_str()
            .is_some_and(|r| r.contains("fetching origin failed")),
        "{}",
        degraded.body
    );
    assert_eq!(replica.get("/v1/prompts/a").status, 200);
    let metrics = replica.get("/metrics").body;
    assert!(metrics.contains("promptreg_degraded 1"), "{metrics}");
    assert!(
        metrics.contains("promptreg_follow_fetches_total{result=\"error\"}"),
        "{metrics}"
    );
    // It comes back, with a new version.
    std::fs::rename(remote.path("gone.git"), remote.path("remote.git")).expect("move back");
    remote.push(&[("a.prompt.yaml", Some(&prompt("two")))], "a: two");
    replica.signed_hook();
    replica.until("/readyz", "recovered", |a| a.json()["degraded"] == false);
    replica.until("/v1/prompts/a@latest", "version 2", |a| {
        a.json()["version"] == 2
    });

    // A broken push (a manifest that does not load) changes nothing for readers.
    remote.push(
        &[("defaults.yaml", Some("defaults:\n  a: \"1\"\n"))],
        "Broken manifest",
    );
    replica.signed_hook();
    let broken = replica.until("/readyz", "degraded by a tip that does not load", |a| {
        a.json()["degraded"] == true
    });
    assert!(
        broken.json()["reason"]
            .as_str()
            .is_some_and(|r| r.contains("does not load")),
        "{}",
        broken.body
    );
    assert_eq!(
        replica.get("/v1/prompts/a").json()["version"],
        2,
        "the last good snapshot"
    );
    // A new replica (scaling out while the tip is broken) starts from the newest commit that
    // loads, and says so.
    let fresh = Replica::start(&remote, "3600");
    let ready = fresh.get("/readyz").json();
    assert_eq!(ready["degraded"], true, "{ready}");
    assert!(
        ready["reason"]
            .as_str()
            .is_some_and(|r| r.contains("does not load")
                && r.contains("the newest commit before it that does")),
        "{ready}"
    );
    assert_eq!(fresh.get("/v1/prompts/a").json()["version"], 2);
    remote.push(
        &[("defaults.yaml", Some("defaults:\n  a: 1\n"))],
        "Fix manifest",
    );
    replica.signed_hook();
    replica.until("/v1/prompts/a", "the fixed manifest", |a| {
        a.json()["version"] == 1
    });
    assert_eq!(replica.get("/readyz").json()["degraded"], false);
    fresh.signed_hook();
    fresh.until("/readyz", "the new replica recovered", |a| {
        a.json()["degraded"] == false
    });
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

#[test]
fn the_export_answers_as_the_server_does() {
    let mut repo = crate::common::TestRepo::new();
    repo.write("support/triage.prompt.yaml", &prompt("triage"));
    repo.write("support.prompt.yaml", &prompt("a prefix of another id"));
    repo.write("café/menü.prompt.yaml", &prompt("crème"));
    repo.commit("Add prompts");
    repo.write("support/triage.prompt.yaml", &prompt("triage two"));
    repo.commit("Triage two");
    repo.write(
        "defaults.yaml",
        "defaults:\n  support/triage: 1\nlabels:\n  staging:\n    support/triage: 2\n",
    );
    repo.commit("Pin and stage");
    let out = crate::common::tempdir();
    let dir = out.path().join("site");
    let run = |dir: &Path| {
        cli(repo.path())
            .args(["export", "--out"])
            .arg(dir)
            .output()
            .expect("export")
    };
    let first = run(&dir);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // Byte-identical for the same commit.
    let files = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(dir)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                let rel = e
                    .path()
                    .strip_prefix(dir)
                    .expect("under")
                    .to_string_lossy()
                    .into_owned();
                (rel, std::fs::read(e.path()).expect("read"))
            })
            .collect();
        files.sort();
        files
    };
    let before = files(&dir);
    assert_eq!(run(&dir).status.code(), Some(0));
    assert_eq!(
        files(&dir),
        before,
        "a second export of the same commit is identical"
    );
    let bundle: Value =
        serde_json::from_slice(&std::fs::read(dir.join("bundle.json")).expect("bundle"))
            .expect("json");
    assert_eq!(bundle["prompts"]["support/triage"]["default"], 1);
    assert_eq!(
        bundle["prompts"]["support/triage"]["versions"]["2"]["version"],
        2
    );
    // Refuses a directory that is not an export.
    let other = out.path().join("other");
    std::fs::create_dir_all(&other).expect("mkdir");
    std::fs::write(other.join("keep.txt"), "mine").expect("write");
    assert_eq!(run(&other).status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(other.join("keep.txt")).expect("kept"),
        "mine"
    );

    // Every exported path answers the same body from the server at that commit.
    let server = crate::serve::Server::start(&repo, &[]);
    let paths: Vec<String> = before
        .iter()
        .filter_map(|(rel, _)| rel.strip_suffix("/index.json").map(|p| format!("/{p}")))
        .collect();
    assert!(
        paths.contains(&"/v1/prompts/support".to_string())
            && paths.contains(&"/v1/prompts/support/triage@staging".to_string()),
        "{paths:?}"
    );
    let encode = |p: &str| -> String {
        p.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'@' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    for path in &paths {
        let file =
            std::fs::read(dir.join(path.trim_start_matches('/')).join("index.json")).expect("file");
        let live = get(&server, &encode(path));
        assert_eq!(live.status, 200, "{path}");
        assert_eq!(live.body.as_bytes(), file.as_slice(), "{path}");
    }

    // And nginx serving the directory answers the same bytes.
    if std::process::Command::new("nginx")
        .arg("-v")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "nginx is needed in CI (apt-get install nginx-light)"
        );
        eprintln!("warning: nginx is not installed; the export was not served by nginx");
        return;
    }
    let port = free_port();
    let prefix = out.path().join("nginx");
    std::fs::create_dir_all(prefix.join("logs")).expect("mkdir");
    let conf = prefix.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nworker_processes 1;\npid {pid};\nerror_log stderr;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {tmp};\n  proxy_temp_path {tmp};\n  fastcgi_temp_path {tmp};\n  uwsgi_temp_path {tmp};\n  scgi_temp_path {tmp};\n  server {{\n    listen 127.0.0.1:{port};\n    root {root};\n    location / {{\n      default_type application/json;\n      try_files $uri/index.json =404;\n    }}\n  }}\n}}\n",
            pid = prefix.join("nginx.pid").display(),
            tmp = prefix.display(),
            root = dir.display(),
        ),
    )
    .expect("conf");
    let mut nginx = std::process::Command::new("nginx")
        .args(["-e", "stderr", "-p"])
        .arg(&prefix)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while agent().get(&format!("{base}/v1/manifest")).call().is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for path in &paths {
        let file =
            std::fs::read(dir.join(path.trim_start_matches('/')).join("index.json")).expect("file");
        let served = answer(
            agent()
                .get(&format!("{base}{}", encode(path)))
                .call()
                .expect("GET nginx"),
        );
        assert_eq!(served.status, 200, "nginx {path}");
        assert_eq!(served.body.as_bytes(), file.as_slice(), "nginx {path}");
    }
    let _ = nginx.kill();
    let _ = nginx.wait();
}

#[test]
fn a_replica_pushes_its_writes_and_reapplies_them_when_the_remote_moved() {
    let remote = Remote::new();
    remote.push(
        &[
            ("a.prompt.yaml", Some(&prompt("one"))),
            ("b.prompt.yaml", Some(&prompt("bee"))),
        ],
        "Add a and b",
    );
    let dir = crate::common::tempdir();
    let auth = dir.path().join("auth.yaml");
    std::fs::write(&auth, "tokens:\n  - { name: writer, token: w-token, email: writer@example.com, scopes: [read, write] }\n").expect("auth");
    let root = dir.path().join("replica");
    let mut cmd = cli(dir.path());
    cmd.arg("-C")
        .arg(&root)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--follow",
            &remote.url(),
            "--interval",
            "3600",
            "--allow-writes",
            "--auth",
        ])
        .arg(&auth)
        .env("GIT_COMMITTER_NAME", "Replica")
        .env("GIT_COMMITTER_EMAIL", "replica@example.com");
    let mut server = crate::serve::Server::spawn(cmd);
    let base = server.base.clone();
    let create = |id: &str, text: &str| -> Answer {
        let body = serde_json::json!({"message": format!("{id}: {text}"), "source": prompt(text)});
        answer(
            agent()
                .post(&format!("{base}/v1/prompts/{id}"))
                .header("Authorization", "Bearer w-token")
                .send(body.to_string().as_str())
                .expect("POST"),
        )
    };
    // A write lands on the remote.
    let landed = create("a", "two");
    assert_eq!(landed.status, 201, "{}", landed.body);
    let on_remote = remote.git(&["log", "-1", "--format=%an|%cn|%s", "main"], "remote.git");
    assert_eq!(on_remote.trim(), "writer|Replica|a: two");
    // The remote moves on another file: the write is made again on the new tip.
    remote.git(&["pull", "--quiet", "--ff-only", "origin", "main"], "work");
    remote.push(&[("b.prompt.yaml", Some(&prompt("bee two")))], "b: two");
    let reapplied = create("a", "three");
    assert_eq!(reapplied.status, 201, "{}", reapplied.body);
    let log = remote.git(&["log", "--format=%s", "main"], "remote.git");
    assert_eq!(
        log.lines().take(3).collect::<Vec<_>>(),
        ["a: three", "b: two", "a: two"]
    );
    // The remote moves on the same file: a 409 naming it, and nothing written.
    remote.git(&["pull", "--quiet", "--ff-only", "origin", "main"], "work");
    remote.push(&[("a.prompt.yaml", Some(&prompt("theirs")))], "a: theirs");
    let conflict = create("a", "mine");
    assert_eq!(conflict.status, 409, "{}", conflict.body);
    assert!(
        conflict.json()["detail"]
            .as_str()
            .is_some_and(|d| d.contains("a.prompt.yaml changed on the remote's main")),
        "{}",
        conflict.body
    );
    let tip = remote.git(&["log", "-1", "--format=%s", "main"], "remote.git");
    assert_eq!(tip.trim(), "a: theirs");
    let _ = server.child.kill();
    let _ = server.child.wait();
}

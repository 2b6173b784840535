//! `analyze score|risk|balance|heatmap` and `improve` against a local OpenAI-compatible server:
//! the judge requests, Zatomic's result shapes, a reply that is not the promised JSON, judges
//! and criteria overridden by the registry, and `improve` writing the working copy only.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::model_server::ModelServer;
use crate::common::{cli, TestRepo};

const PROMPT: &str = "model: openai/gpt-4o-mini\nmessages:\n  - role: system\n    content: You summarise support tickets for Acme.\n  - role: user\n    content: \"{{ticket}}\"\n";

fn repo() -> TestRepo {
    let mut repo = TestRepo::new();
    repo.write("summary.prompt.yaml", PROMPT);
    repo.commit("summary");
    repo
}

/// Answers each judge by the analysis its system or user message names.
fn judges() -> ModelServer {
    ModelServer::start(|body| {
        let all = body["messages"].to_string();
        let reply = if all.contains("Grade the prompt") {
            let criteria: Vec<Value> = ["clarity", "specificity", "context", "structure", "output format", "constraints"]
                .iter()
                .map(|n| json!({ "name": n, "score": if *n == "clarity" { 90 } else { 60 }, "feedback": format!("{n} feedback") }))
                .collect();
            json!({ "criteria": criteria, "strengths": ["short"], "improvements": ["say how long the summary is"] })
        } else if all.contains("three kinds of risk") {
            json!({
                "bias": { "level": "none", "issues": [] },
                "ethical": { "level": "low", "issues": [] },
                "safety": { "level": "medium", "issues": [{ "text": "{{ticket}}", "issue": "the ticket can carry instructions", "revision": "<ticket>{{ticket}}</ticket>" }] },
            })
        } else if all.contains("put each phrase in") {
            json!({ "instructions": ["summarise"], "entities": ["Acme"], "concepts": ["support tickets"], "details": [] })
        } else if all.contains("rate how much") {
            json!({ "phrases": [{ "text": "You summarise", "attention": 5, "reason": "the task" }, { "text": "for Acme", "attention": 2, "reason": "context" }] })
        } else if all.contains("Improve the prompt file") {
            json!({ "prompt": PROMPT.replace("You summarise support tickets for Acme.", "You summarise Acme support tickets in three sentences."), "changes": ["said how long the summary is"] })
        } else {
            json!({ "unexpected": true })
        };
        reply.to_string()
    })
}

fn run(repo: &TestRepo, server: &ModelServer, args: &[&str]) -> (i32, String, String) {
    let out = cli(repo.path())
        .env("PROMPTREG_ENDPOINT", server.endpoint())
        .env("PROMPTREG_MODEL", "judge-model")
        .args(args)
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_of(stdout: &str) -> Value {
    serde_json::from_str(stdout).expect("json output")
}

#[test]
fn score_is_weighted_banded_and_cached() {
    let server = judges();
    let repo = repo();
    let (code, stdout, stderr) = run(
        &repo,
        &server,
        &["analyze", "score", "summary", "--format", "json"],
    );
    assert_eq!(code, 0, "{stderr}");
    let result = json_of(&stdout);
    // 90 * 0.25 + 60 * 0.75 = 67.5, rounded.
    assert_eq!(result["score"], 68.0);
    assert_eq!(result["rating"], "Fair");
    assert_eq!(
        result["criteria"][0],
        json!({ "name": "clarity", "score": 90.0, "weight": 0.25, "feedback": "clarity feedback" })
    );
    assert_eq!(result["criteria"].as_array().map(Vec::len), Some(6));
    assert_eq!(
        result["improvements"],
        json!(["say how long the summary is"])
    );
    let body = &server.bodies()[0];
    assert_eq!(body["model"], "judge-model");
    assert_eq!(body["response_format"], json!({ "type": "json_object" }));
    assert_eq!(body["temperature"], 0);
    let user = body["messages"][1]["content"].as_str().unwrap_or("");
    assert!(
        user.contains("- clarity: the instructions say unambiguously what to do\n"),
        "{user}"
    );
    assert!(user.contains(PROMPT), "{user}");
    let (code, again, _) = run(
        &repo,
        &server,
        &["analyze", "score", "summary", "--format", "json"],
    );
    assert_eq!((code, again), (0, stdout));
    assert_eq!(
        server.requests().len(),
        1,
        "the second score called the model"
    );
}

#[test]
fn risk_balance_and_heatmap_have_their_shapes() {
    let server = judges();
    let repo = repo();
    let (code, stdout, stderr) = run(
        &repo,
        &server,
        &["analyze", "risk", "summary@1", "--format", "json"],
    );
    assert_eq!(code, 0, "{stderr}");
    let risk = json_of(&stdout);
    assert_eq!(risk["level"], "medium");
    assert_eq!(
        risk["safety"]["issues"][0]["revision"],
        "<ticket>{{ticket}}</ticket>"
    );
    assert_eq!(risk["bias"], json!({ "level": "none", "issues": [] }));

    let (code, stdout, _) = run(
        &repo,
        &server,
        &["analyze", "balance", "summary", "--format", "json"],
    );
    assert_eq!(code, 0);
    let balance = json_of(&stdout);
    assert_eq!(balance["total"], 3);
    assert_eq!(
        balance["categories"][0],
        json!({ "name": "instructions", "count": 1, "percent": 33.3, "ideal": { "min": 30.0, "max": 50.0 }, "status": "ok", "phrases": ["summarise"] })
    );
    assert_eq!(balance["categories"][3]["status"], "low");

    let html = repo.path().join("heatmap.html");
    let html_arg = html.display().to_string();
    let (code, stdout, stderr) = run(
        &repo,
        &server,
        &["analyze", "heatmap", "summary", "--html", &html_arg],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "5 You summarise  (the task)\n2 for Acme  (context)\n"
    );
    let page = std::fs::read_to_string(&html).expect("html page");
    assert!(page.contains("<title>Attention heatmap: summary</title>"));
    assert!(page.contains("title=\"5: the task\">You summarise</span>"));
}

#[test]
fn a_reply_that_is_not_the_promised_json_names_the_model_and_field() {
    let server = ModelServer::start(|body| {
        if body["messages"].to_string().contains("Grade the prompt") {
            json!({ "criteria": [{ "name": "clarity", "score": "high", "feedback": "x" }], "strengths": [], "improvements": [] }).to_string()
        } else {
            "Sure! The prompt is great.".into()
        }
    });
    let repo = repo();
    let (code, stdout, stderr) = run(&repo, &server, &["analyze", "score", "summary"]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert_eq!(stderr, "error: judge model `judge-model` did not answer `analyze score` as asked: `criteria[0].score` is not a number\n");
    let (code, _, stderr) = run(&repo, &server, &["analyze", "risk", "summary"]);
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("error: judge model `judge-model` did not answer `analyze risk` as asked: the reply is not JSON"),
        "{stderr}"
    );
}

#[test]
fn the_registry_overrides_judges_and_criteria() {
    let server = ModelServer::start(|_| {
        json!({ "criteria": [{ "name": "brevity", "score": 40, "feedback": "long" }], "strengths": [], "improvements": [] }).to_string()
    });
    let mut repo = repo();
    repo.write(
        "promptreg/criteria.yaml",
        "criteria:\n  - { name: brevity, weight: 1, description: says it in few words }\n",
    );
    repo.write(
        "promptreg/judges/score.prompt.yaml",
        "model: our-judge\nvariables:\n  id: { type: string }\n  prompt: { type: string }\n  criteria: { type: array }\nmessages:\n  - role: user\n    content: \"Our own grading of {{ id }} on {% for c in criteria %}{{ c.name }}{% endfor %}\"\n",
    );
    repo.commit("our judge");
    let (code, stdout, stderr) = run(&repo, &server, &["analyze", "score", "summary"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "score: 40/100 (Poor)\n  brevity         40  weight 1     long\nstrengths:\nimprovements:\n");
    let body = &server.bodies()[0];
    assert_eq!(body["model"], "our-judge");
    assert_eq!(
        body["messages"],
        json!([{ "role": "user", "content": "Our own grading of summary on brevity" }])
    );
}

#[test]
fn improve_writes_the_working_copy_and_never_commits() {
    let server = judges();
    let repo = repo();
    let head = repo.head();
    let (code, stdout, stderr) = run(&repo, &server, &["improve", "summary"]);
    assert_eq!(code, 0, "{stderr}");
    let settings = crate::common::settings(repo.path());
    settings.bind(|| insta::assert_snapshot!("analyze_improve", stdout));
    assert!(repo
        .read("summary.prompt.yaml")
        .contains("in three sentences"));
    assert_eq!(repo.head(), head);
    // The working copy now differs from the default version: improving that would lose it.
    let (code, _, stderr) = run(&repo, &server, &["improve", "summary"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("pass --force to overwrite them"),
        "{stderr}"
    );
    let (code, _, stderr) = run(
        &repo,
        &server,
        &["improve", "summary@work", "--format", "json"],
    );
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn review_eval_shows_evaluators_and_score_before_and_after() {
    let server = judges();
    let mut repo = TestRepo::new();
    let quiz = |check: &str| {
        format!("model: m\ntestData:\n  - {{ q: hi }}\nmessages:\n  - {{ role: user, content: \"{{{{q}}}}\" }}\nevaluators:\n  - {{ name: says, string: {{ contains: {check} }} }}\n")
    };
    repo.write("quiz.prompt.yml", &quiz("nope"));
    repo.commit("quiz v1");
    repo.branch("feature");
    repo.write("quiz.prompt.yml", &quiz("unexpected"));
    repo.commit("quiz v2");
    let (code, stdout, stderr) = run(
        &repo,
        &server,
        &["review", "--base", "main", "--eval", "--format", "json"],
    );
    assert_eq!(code, 0, "{stderr}");
    let review = json_of(&stdout);
    assert_eq!(
        review["evaluation"],
        json!([{
            "id": "quiz",
            "before": { "passedTests": 0, "totalTests": 1, "failedEvaluators": 1, "score": 68.0, "rating": "Fair" },
            "after": { "passedTests": 1, "totalTests": 1, "failedEvaluators": 0, "score": 68.0, "rating": "Fair" },
        }])
    );
    let calls = server.requests().len();
    let (code, stdout, _) = run(&repo, &server, &["review", "--base", "main", "--eval"]);
    assert_eq!(code, 0);
    assert!(
        stdout.ends_with("\n### Evaluation\n\n| prompt | test cases passed | failed evaluators | score |\n| --- | --- | --- | --- |\n| `quiz` | 0/1 → 1/1 | 1 → 0 | 68 (Fair) → 68 (Fair) |\n"),
        "{stdout}"
    );
    assert_eq!(
        server.requests().len(),
        calls,
        "the second review called the model"
    );
}

// ---------------------------------------------------------------------------------------
// `serve --analyses`: the analyses as POST routes on a version

/// `serve` on `repo` with `extra` flags, its judge model `judge-model` at `judges`.
fn analysing(repo: &TestRepo, judges: &ModelServer, extra: &[&str]) -> crate::serve::Server {
    let endpoint = judges.endpoint();
    crate::serve::Server::start_with(
        repo,
        extra,
        &[
            ("PROMPTREG_ENDPOINT", endpoint.as_str()),
            ("PROMPTREG_MODEL", "judge-model"),
        ],
    )
}

const PROMPT_V2: &str = "model: openai/gpt-4o-mini\nmessages:\n  - role: system\n    content: You summarise support tickets for Acme in three sentences.\n  - role: user\n    content: \"{{ticket}}\"\n";

#[test]
fn serve_answers_analyses_of_a_version_and_caches_them_per_blob() {
    use crate::serve::post;
    let server = judges();
    let mut repo = repo();
    repo.write("summary.prompt.yaml", PROMPT_V2);
    repo.commit("summary: say how long");
    // A judge that only the working copy has is never used: the server answers from commits.
    repo.write(
        "promptreg/judges/heatmap.prompt.yaml",
        "messages:\n  - role: user\n    content: uncommitted judge {{ prompt }}\n",
    );
    let serve = analysing(&repo, &server, &["--analyses"]);
    let first = post(&serve, "/v1/analyze/score/summary@1", "");
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.cache.as_deref(), Some("no-store"));
    let doc = first.json();
    assert_eq!(doc["id"], "summary");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["analysis"], "score");
    assert_eq!(doc["model"], "judge-model");
    assert_eq!(doc["result"]["score"], 68.0);
    assert_eq!(doc["result"]["rating"], "Fair");
    assert_eq!(doc["blob"].as_str().map(str::len), Some(40));
    let asked = server.bodies();
    assert_eq!(asked.len(), 1);
    let user = asked[0]["messages"][1]["content"].as_str().unwrap_or("");
    assert!(
        user.contains(PROMPT),
        "version 1's text was not judged: {user}"
    );
    // The same version again: the same answer, and no model call.
    let again = post(&serve, "/v1/analyze/score/summary?version=1", "");
    assert_eq!((again.status, again.json()), (200, doc.clone()));
    assert_eq!(
        server.requests().len(),
        1,
        "the second analysis called the model"
    );
    // The default is the latest, version 2: a new blob, a new call.
    let heat = post(
        &serve,
        "/v1/analyze/heatmap/summary",
        "{\"model\": \"other-judge\"}",
    );
    assert_eq!(heat.status, 200, "{}", heat.body);
    let heat = heat.json();
    assert_eq!(
        (heat["version"].clone(), heat["model"].clone()),
        (json!(2), json!("other-judge"))
    );
    assert_eq!(heat["result"]["phrases"][0]["attention"], 5);
    let asked = server.bodies();
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[1]["model"], "other-judge");
    let sent = asked[1]["messages"].to_string();
    assert!(
        sent.contains("rate how much"),
        "the shipped judge was not used: {sent}"
    );
    assert!(!sent.contains("uncommitted judge"), "{sent}");
    assert!(
        sent.contains("in three sentences"),
        "version 2 was not judged: {sent}"
    );
    for analysis in ["risk", "balance"] {
        let answer = post(&serve, &format!("/v1/analyze/{analysis}/summary@1"), "{}");
        assert_eq!(answer.status, 200, "{analysis}: {}", answer.body);
        assert_eq!(answer.json()["analysis"], analysis);
    }
    // Counted under the route, never the raw path.
    let metrics = crate::serve::get(&serve, "/metrics").body;
    assert!(
        metrics.contains("route=\"/v1/analyze/{analysis}/{id}\""),
        "{metrics}"
    );
}

#[test]
fn serve_analysis_problems_are_problem_json() {
    use crate::serve::post;
    let server = judges();
    let repo = repo();
    // Off unless asked for.
    let off = analysing(&repo, &server, &[]);
    let answer = post(&off, "/v1/analyze/score/summary", "");
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(answer.json()["type"], "urn:promptreg:problem:analyses-off");
    drop(off);
    let serve = analysing(&repo, &server, &["--analyses", "--retries", "0"]);
    let cases = [
        ("/v1/analyze/taste/summary", "", 404, "unknown-analysis"),
        ("/v1/analyze/improve/summary", "", 404, "unknown-analysis"),
        ("/v1/analyze/score/nope", "", 404, "unknown-prompt"),
        ("/v1/analyze/score/summary@9", "", 404, "bad-reference"),
        (
            "/v1/analyze/score/summary",
            "{\"modle\": 1}",
            400,
            "bad-body",
        ),
        ("/v1/analyze/score/summary", "[", 400, "bad-body"),
    ];
    for (path, body, status, kind) in cases {
        let answer = post(&serve, path, body);
        assert_eq!(answer.status, status, "{path}: {}", answer.body);
        assert_eq!(
            answer.json()["type"],
            format!("urn:promptreg:problem:{kind}"),
            "{path}: {}",
            answer.body
        );
    }
    assert!(
        server.requests().is_empty(),
        "a refused analysis called the model"
    );
    // The model failing is the gateway's problem: 502, naming the model.
    server.push_fault(crate::common::model_server::Fault::ServerError);
    let failed = post(&serve, "/v1/analyze/risk/summary", "");
    assert_eq!(failed.status, 502, "{}", failed.body);
    assert_eq!(failed.json()["type"], "urn:promptreg:problem:model");
    // A judge that does not answer as promised is a 502 too, naming the model.
    let garbled = ModelServer::answering("{\"nothing\": true}");
    let serve = analysing(&repo, &garbled, &["--analyses"]);
    let bad = post(&serve, "/v1/analyze/balance/summary", "");
    assert_eq!(bad.status, 502, "{}", bad.body);
    let detail = bad.json()["detail"].as_str().unwrap_or("").to_string();
    assert!(detail.contains("judge model `judge-model`"), "{detail}");
    // The judge model's flags without --analyses are a mistake, said at start.
    let (code, _, stderr) = run(
        &repo,
        &server,
        &["serve", "--listen", "127.0.0.1:0", "--model", "m"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--model is the judge model of --analyses"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------
// The team's model in promptreg.yaml

#[test]
fn promptreg_yaml_names_the_team_model_and_the_key_variable() {
    let server = judges();
    let mut repo = repo();
    repo.write(
        "promptreg.yaml",
        &format!(
            "model:\n  endpoint: {}\n  judgeModel: team-judge\n  keyEnv: TEAM_MODELS_KEY\n  retries: 0\n",
            server.endpoint()
        ),
    );
    repo.commit("the team's model");
    let analyze = |key: Option<&str>| {
        let mut cmd = cli(repo.path());
        cmd.args([
            "analyze",
            "score",
            "summary",
            "--format",
            "json",
            "--no-cache",
        ]);
        if let Some(key) = key {
            cmd.env("TEAM_MODELS_KEY", key);
        }
        cmd.output().expect("run")
    };
    let out = analyze(Some("sk-team-secret"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let sent = &server.requests()[0];
    assert_eq!(sent.body["model"], "team-judge");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-team-secret"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("sk-team-secret"));
    // The variable the file names is not set: said before any call.
    let out = analyze(None);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`TEAM_MODELS_KEY`, which is not set"),
        "{stderr}"
    );
    assert_eq!(server.requests().len(), 1);
    // A key written into the file is refused by validate, naming the line, and never shown.
    repo.write(
        "promptreg.yaml",
        "model:\n  endpoint: http://127.0.0.1:9/v1\n  apiKey: sk-oops\n",
    );
    let out = cli(repo.path()).args(["validate"]).output().expect("run");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("promptreg.yaml:3"), "{text}");
    assert!(text.contains("keyEnv"), "{text}");
    assert!(!text.contains("sk-oops"), "{text}");
}

#[test]
fn a_bare_repository_serves_analyses_with_the_model_of_its_tip() {
    use crate::serve::post;
    let server = judges();
    let mut source = repo();
    source.write(
        "promptreg.yaml",
        &format!(
            "model:\n  endpoint: {}\n  judgeModel: tip-judge\n",
            server.endpoint()
        ),
    );
    source.commit("the team's model");
    let dir = crate::common::tempdir();
    let bare = dir.path().join("registry.git");
    crate::common::bare_clone(source.path(), &bare);
    let serve = crate::serve::Server::start_in(&bare, &["--analyses"], &[]);
    let answer = post(&serve, "/v1/analyze/score/summary", "");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["model"], "tip-judge");
    assert_eq!(server.bodies()[0]["model"], "tip-judge");
}

#[test]
fn with_tokens_only_a_token_that_may_analyze_runs_analyses() {
    use crate::serve::{agent, answer};
    let server = judges();
    let repo = repo();
    let dir = crate::common::tempdir();
    let auth = dir.path().join("auth.yaml");
    std::fs::write(
        &auth,
        "tokens:\n  - { name: app, token: app-token, scopes: [read] }\n  - { name: review, token: review-token, scopes: [read, analyze] }\n",
    )
    .expect("auth file");
    let serve = analysing(
        &repo,
        &server,
        &["--analyses", "--auth", auth.to_str().unwrap_or_default()],
    );
    let analyze = |token: Option<&str>| {
        let mut request = agent().post(&serve.url("/v1/analyze/score/summary"));
        if let Some(token) = token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        answer(request.send("").expect("POST"))
    };
    let none = analyze(None);
    assert_eq!(none.status, 401, "{}", none.body);
    let reader = analyze(Some("app-token"));
    assert_eq!(reader.status, 403, "{}", reader.body);
    assert_eq!(reader.json()["detail"], "this token may not analyze");
    assert!(
        server.requests().is_empty(),
        "a refused analysis called the model"
    );
    let reviewer = analyze(Some("review-token"));
    assert_eq!(reviewer.status, 200, "{}", reviewer.body);
    assert_eq!(server.requests().len(), 1);
    // Reading is still the reader's.
    let read = answer(
        agent()
            .get(&serve.url("/v1/prompts/summary"))
            .header("Authorization", "Bearer app-token")
            .call()
            .expect("GET"),
    );
    assert_eq!(read.status, 200, "{}", read.body);
}

#[test]
fn an_analysis_whose_body_never_arrives_is_408_without_a_model_call() {
    use std::io::{Read, Write};
    let server = judges();
    let repo = repo();
    let serve = analysing(&repo, &server, &["--analyses"]);
    // The analysis route has the model's time, minutes; its body still has the 10 s of
    // every request.
    let address = serve.base.trim_start_matches("http://").to_string();
    let mut stalled = std::net::TcpStream::connect(address).expect("connect");
    stalled
        .write_all(
            b"POST /v1/analyze/score/summary HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
        )
        .expect("half a request");
    stalled
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut answer = [0u8; 512];
    let n = stalled
        .read(&mut answer)
        .expect("an answer before the read timeout");
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("slow-body"), "{text}");
    assert!(
        server.requests().is_empty(),
        "a body that never came called the model"
    );
}

#[test]
fn serve_takes_a_newly_committed_judge_at_once() {
    use crate::serve::{get, post};
    let server = judges();
    let mut repo = repo();
    let serve = analysing(&repo, &server, &["--analyses"]);
    assert_eq!(post(&serve, "/v1/analyze/heatmap/summary", "").status, 200);
    repo.write(
        "promptreg/judges/heatmap.prompt.yaml",
        "variables:\n  id: { type: string }\n  prompt: { type: string }\nresponseFormat: json_object\nmessages:\n  - role: user\n    content: \"Team judge: rate how much attention each phrase of {{ id }} gets: {{ prompt }}\"\n",
    );
    let head = repo.commit("our own heatmap judge");
    // Wait (no time asserted) until the server serves the new commit.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !get(&serve, "/readyz").body.contains(&head) {
        assert!(
            std::time::Instant::now() < deadline,
            "the new commit was never served"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let answer = post(&serve, "/v1/analyze/heatmap/summary", "");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let sent = server.bodies();
    assert_eq!(sent.len(), 2);
    assert!(
        sent[1]["messages"]
            .to_string()
            .contains("Team judge: rate how much"),
        "the judge compiled for the first commit was used again: {}",
        sent[1]["messages"]
    );
}

#[test]
fn analyses_past_the_queue_are_told_to_come_back() {
    let server = judges();
    let mut repo = repo();
    // One at a time, so four in all (one running, three waiting).
    repo.write("promptreg.yaml", "model:\n  jobs: 1\n");
    repo.commit("one analysis at a time");
    server.push_fault(crate::common::model_server::Fault::Slow(
        Duration::from_secs(3),
    ));
    let serve = analysing(&repo, &server, &["--analyses"]);
    let url = serve.url("/v1/analyze/score/summary");
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let answer =
                    crate::serve::answer(crate::serve::agent().post(&url).send("").expect("POST"));
                (answer.status, answer.body)
            })
        })
        .collect();
    let mut statuses: Vec<u16> = threads
        .into_iter()
        .map(|t| {
            let (status, body) = t.join().expect("thread");
            if status == 503 {
                assert!(body.contains("too-many-analyses"), "{body}");
            }
            status
        })
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 200, 503, 503]);
    // The queue empties: the next one is answered (from the cache).
    assert_eq!(
        crate::serve::post(&serve, "/v1/analyze/score/summary", "").status,
        200
    );
}

/// An analysis of a version named by a commit looks the commit up (history walked back to it)
/// and compiles on the blocking pool, not on a thread that answers requests: while slow renders
/// hold every slot of the pool (the limit is 0 ms), it cannot be answered, and no model is
/// asked. Before, it was looked up and compiled on the spot, and answered 200.
#[test]
fn an_analysis_naming_a_commit_is_looked_up_on_the_pool() {
    use crate::serve::post;
    let judges = judges();
    let mut repo = repo();
    repo.write(
        "slow.prompt.yaml",
        "template: \"{% for i in range(300) %}{% for j in range(300) %}{% if i == j %}x{% endif %}{% endfor %}{% endfor %}\"\n",
    );
    let added = repo.commit("Add slow");
    for n in 0..2000 {
        repo.commit_index(&format!("Nothing {n}"));
    }
    let endpoint = judges.endpoint();
    let serve = crate::serve::Server::start_with(
        &repo,
        &["--analyses"],
        &[
            ("PROMPTREG_ENDPOINT", endpoint.as_str()),
            ("PROMPTREG_MODEL", "judge-model"),
            ("PROMPTREG_TEST_RENDER_LIMIT_MS", "0"),
        ],
    );
    // `slow` compiled (on the pool, which may time out; the compile is kept).
    let started = Instant::now();
    while crate::serve::get(&serve, "/v1/prompts/slow").status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never compiled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every slot of the pool taken by a slow render that has just started (408: it got a
    // slot and keeps it while it runs on; 503: none was free).
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let mut holding = 0;
    while holding < cores * 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the pool never freed a slot"
        );
        match post(&serve, "/v1/render/slow", "{}").status {
            408 => holding += 1,
            503 => std::thread::sleep(Duration::from_millis(5)),
            other => panic!("{other}"),
        }
    }
    let analysis = post(
        &serve,
        &format!("/v1/analyze/score/summary@{}", &added[..12]),
        "",
    );
    assert!(
        [503, 408].contains(&analysis.status),
        "{}: {}",
        analysis.status,
        analysis.body
    );
    assert!(judges.requests().is_empty(), "a model was asked");
}

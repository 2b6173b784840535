//! Talking to models, against a local OpenAI-compatible server on 127.0.0.1 started by each
//! test (`common::model_server`): the request mapping of `run`, streaming, structured output,
//! faults (429 with `Retry-After`, 500 then success, a timeout, a reply that is not JSON, a
//! refused key), `eval` with every evaluator kind passing and failing, the built-ins' prompts,
//! and the cache. Nothing outside 127.0.0.1 is contacted, except by `real_endpoint`, which runs
//! only when `PROMPTREG_TEST_ENDPOINT` and `PROMPTREG_TEST_API_KEY` are set.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::model_server::{Fault, ModelServer};
use crate::common::{cli, TestRepo};

const KEY: &str = "sk-test-0123456789-very-secret";

/// The CLI in `dir` pointed at `server`, with a key.
fn model_cli(repo: &TestRepo, server: &ModelServer) -> Command {
    let mut cmd = cli(repo.path());
    cmd.env("PROMPTREG_ENDPOINT", server.endpoint())
        .env("PROMPTREG_API_KEY", KEY);
    cmd
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn output(cmd: &mut Command) -> Out {
    let out = cmd.output().expect("run promptreg");
    let result = Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !result.stdout.contains(KEY) && !result.stderr.contains(KEY),
        "the key was printed:\n{}\n{}",
        result.stdout,
        result.stderr
    );
    result
}

const GREET: &str = "\
model: openai/gpt-4o-mini
modelParameters:
  maxTokens: 50
  topP: 0.9
  temperature: 0.2
  frequencyPenalty: 0.5
  presencePenalty: 0.1
  stop: [\"END\"]
  seed: 7
messages:
  - role: system
    content: You greet people.
  - role: user
    content: \"Greet {{name}}\"
testData:
  - name: Ada
";

fn greet_repo() -> TestRepo {
    let mut repo = TestRepo::new();
    repo.write("greet.prompt.yaml", GREET);
    repo.commit("greet");
    repo
}

#[test]
fn run_streams_the_reply_and_maps_every_parameter() {
    let server = ModelServer::answering("Hello, Ada! Nice to meet you.");
    let repo = greet_repo();
    let out = output(model_cli(&repo, &server).args(["run", "greet", "--var", "name=Ada"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "Hello, Ada! Nice to meet you.\n");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.body,
        json!({
            "model": "openai/gpt-4o-mini",
            "messages": [
                { "role": "system", "content": "You greet people." },
                { "role": "user", "content": "Greet Ada" },
            ],
            "max_tokens": 50,
            "top_p": 0.9,
            "temperature": 0.2,
            "frequency_penalty": 0.5,
            "presence_penalty": 0.1,
            "stop": ["END"],
            "seed": 7,
            "stream": true,
            "stream_options": { "include_usage": true },
        })
    );
}

#[test]
fn run_json_gives_the_whole_response_with_usage() {
    let server = ModelServer::answering("Hi Grace");
    let repo = greet_repo();
    let out = output(model_cli(&repo, &server).args([
        "run",
        "greet@1",
        "--test",
        "0",
        "--var",
        "name=Grace",
        "--model",
        "local/llama",
        "--format",
        "json",
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let response: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(response["choices"][0]["message"]["content"], "Hi Grace");
    assert_eq!(response["usage"]["total_tokens"], 15);
    let body = &server.bodies()[0];
    assert_eq!(body["model"], "local/llama");
    assert_eq!(body["stream"], false);
    assert_eq!(body["messages"][1]["content"], "Greet Grace");
}

#[test]
fn structured_output_is_sent_as_response_format() {
    let server = ModelServer::answering("{\"sentiment\":\"positive\"}");
    let mut repo = TestRepo::new();
    repo.write(
        "schema.prompt.yml",
        "model: openai/gpt-4o\nresponseFormat: json_schema\njsonSchema: |-\n  {\"name\": \"sentiment\", \"strict\": true, \"schema\": {\"type\": \"object\", \"properties\": {\"sentiment\": {\"type\": \"string\"}}, \"required\": [\"sentiment\"]}}\nmessages:\n  - role: user\n    content: \"Classify: {{text}}\"\n",
    );
    repo.write(
        "object.prompt.yml",
        "model: openai/gpt-4o\nresponseFormat: json_object\nmessages:\n  - role: user\n    content: Answer in JSON\n",
    );
    repo.commit("structured");
    let out = output(model_cli(&repo, &server).args([
        "run",
        "schema",
        "--var",
        "text=great",
        "--format",
        "json",
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = output(model_cli(&repo, &server).args(["run", "object"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"sentiment\":\"positive\"}\n");
    let bodies = server.bodies();
    assert_eq!(
        bodies[0]["response_format"],
        json!({
            "type": "json_schema",
            "json_schema": {
                "name": "sentiment",
                "strict": true,
                "schema": { "type": "object", "properties": { "sentiment": { "type": "string" } }, "required": ["sentiment"] },
            },
        })
    );
    assert_eq!(
        bodies[1]["response_format"],
        json!({ "type": "json_object" })
    );
}

#[test]
fn rate_limits_are_retried_after_retry_after() {
    let server = ModelServer::answering("ok");
    server.push_fault(Fault::RateLimited(1));
    let repo = greet_repo();
    let out = output(model_cli(&repo, &server).args(["run", "greet", "--var", "name=Ada"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "ok\n");
    assert!(
        out.stderr.contains(
            "note: model `openai/gpt-4o-mini`: rate limited (HTTP 429); retrying in 1.0s (1/3)"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn server_errors_are_retried_then_reported() {
    let server = ModelServer::answering("recovered");
    server.push_fault(Fault::ServerError);
    let repo = greet_repo();
    let out = output(model_cli(&repo, &server).args(["run", "greet", "--var", "name=Ada"]));
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "recovered\n"),
        "{}",
        out.stderr
    );
    assert_eq!(server.requests().len(), 2);

    for _ in 0..2 {
        server.push_fault(Fault::ServerError);
    }
    let out = output(model_cli(&repo, &server).args([
        "run",
        "greet",
        "--var",
        "name=Ada",
        "--retries",
        "1",
    ]));
    assert_eq!(out.code, 2);
    let endpoint = server.endpoint();
    assert_eq!(
        out.stderr.lines().last().unwrap_or(""),
        format!("error: model `openai/gpt-4o-mini` at {endpoint}/chat/completions: HTTP 500: {{\"error\":{{\"message\":\"The server had an error\"}}}} (gave up after 2 attempts)")
    );
}

#[test]
fn a_slow_reply_times_out() {
    let server = ModelServer::answering("late");
    server.push_fault(Fault::Slow(Duration::from_secs(3)));
    let repo = greet_repo();
    let out = output(model_cli(&repo, &server).args([
        "run",
        "greet",
        "--var",
        "name=Ada",
        "--timeout",
        "0.5",
    ]));
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(
        out.stderr.contains("no complete answer within 0s")
            || out.stderr.contains("no complete answer within 1s"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_reply_that_is_not_json_is_a_clear_error() {
    let server = ModelServer::answering("unused");
    server.push_fault(Fault::NotJson);
    let repo = greet_repo();
    let out = output(
        model_cli(&repo, &server).args(["run", "greet", "--var", "name=Ada", "--format", "json"]),
    );
    assert_eq!(out.code, 2);
    assert_eq!(out.stdout, "");
    let error: Value = serde_json::from_str(out.stderr.trim()).expect("json error");
    assert_eq!(error["error"]["kind"], "model");
    assert_eq!(
        error["error"]["message"],
        format!(
            "model `openai/gpt-4o-mini` at {}/chat/completions: the reply is not JSON: <html><body>Bad gateway</body></html>",
            server.endpoint()
        )
    );
}

#[test]
fn a_refused_key_is_not_retried_and_never_shown() {
    let server = ModelServer::answering("unused");
    server.push_fault(Fault::Unauthorized);
    let repo = greet_repo();
    let out = output(model_cli(&repo, &server).args(["run", "greet", "--var", "name=Ada"]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("HTTP 401, the key was refused"),
        "{}",
        out.stderr
    );
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn without_an_endpoint_run_says_how_to_set_one() {
    let repo = greet_repo();
    let out = output(cli(repo.path()).args(["run", "greet", "--var", "name=Ada"]));
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: no model endpoint is configured: pass --endpoint URL, set PROMPTREG_ENDPOINT, write `model: {endpoint: URL}` in promptreg.yaml, or set OPENAI_BASE_URL, GITHUB_TOKEN (GitHub Models) or OLLAMA_HOST\n"
    );
}

/// A server that answers test cases by their question and judges with `judge`.
fn quiz_server(judge: &'static str) -> ModelServer {
    ModelServer::start(move |body| {
        let last = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_string();
        if body["model"] == "judge" || body["model"] == "openai/gpt-4o" {
            return judge.to_string();
        }
        if last.contains("France") {
            "  Paris is the capital of France.  ".into()
        } else {
            "I do not know.".into()
        }
    })
}

const QUIZ: &str = r#"name: Capitals
description: Capital cities
model: openai/gpt-4o-mini
testData:
  - input: What is the capital of France?
    expected: Paris
  - input: What is the capital of Peru?
    expected: Lima
messages:
  - role: user
    content: "{{input}}"
evaluators:
  - name: equals
    string: { equals: "Paris is the capital of France." }
  - name: contains
    string: { contains: "{{expected}}" }
  - name: starts
    string: { startsWith: "paris" }
  - name: ends
    string: { endsWith: "FRANCE." }
  - name: judged
    llm:
      modelId: judge
      systemPrompt: You grade answers.
      prompt: "Question: {{input}}\nExpected: {{expected}}\nAnswer: {{completion}}\nGrade good or bad."
      choices:
        - { choice: bad, score: 0 }
        - { choice: good, score: 1 }
"#;

fn quiz_repo() -> TestRepo {
    let mut repo = TestRepo::new();
    repo.write("quiz.prompt.yml", QUIZ);
    repo.write("plain.prompt.yaml", "model: m\ntemplate: hi\n");
    repo.commit("quiz");
    repo
}

#[test]
fn eval_applies_every_evaluator_kind() {
    let server = quiz_server("good");
    let repo = quiz_repo();
    let out = output(model_cli(&repo, &server).args(["eval"]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let settings = crate::common::settings(repo.path());
    settings.bind(|| insta::assert_snapshot!("models_eval_quiz", out.stdout));
    assert_eq!(
        out.stderr,
        "note: 4 model calls (0 answered from the cache)\n"
    );
    let bodies = server.bodies();
    let cases: Vec<&Value> = bodies
        .iter()
        .filter(|b| b["model"] == "openai/gpt-4o-mini")
        .collect();
    assert_eq!(cases.len(), 2);
    assert!(cases.iter().all(|b| b["stream"] == true));
    let judge = bodies
        .iter()
        .find(|b| {
            b["model"] == "judge"
                && b["messages"][1]["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("France"))
        })
        .expect("judge request");
    assert_eq!(
        judge,
        &json!({
            "messages": [
                { "role": "system", "content": "You grade answers." },
                { "role": "user", "content": "Question: What is the capital of France?\nExpected: Paris\nAnswer: Paris is the capital of France.\nGrade good or bad." },
            ],
            "model": "judge",
            "stream": true,
        })
    );
}

#[test]
fn eval_json_has_gh_models_shape_and_a_failing_judge_fails() {
    let server = quiz_server("bad");
    let repo = quiz_repo();
    let out =
        output(model_cli(&repo, &server).args(["eval", "quiz", "--format", "json", "--no-cache"]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let result: Value = serde_json::from_str(&out.stdout).expect("json");
    let prompt = &result["prompts"][0];
    assert_eq!(prompt["id"], "quiz");
    assert_eq!(prompt["name"], "Capitals");
    assert_eq!(
        prompt["summary"],
        json!({ "totalTests": 2, "passedTests": 0, "failedTests": 2, "passRate": 0.0 })
    );
    let first = &prompt["testResults"][0];
    assert_eq!(first["modelResponse"], "Paris is the capital of France.");
    assert_eq!(first["testCase"]["expected"], "Paris");
    let results = first["evaluationResults"].as_array().expect("results");
    let passed: Vec<bool> = results.iter().map(|r| r["passed"] == true).collect();
    assert_eq!(passed, [true, true, true, true, false]);
    assert_eq!(
        results[4],
        json!({ "evaluatorName": "judged", "score": 0.0, "passed": false, "details": "LLM evaluation matched choice: 'bad'" })
    );
    let second = prompt["testResults"][1]["evaluationResults"]
        .as_array()
        .expect("results");
    assert_eq!(second[1]["details"], "Expected to contain: 'Lima'");
    assert_eq!(second[1]["passed"], false);
}

#[test]
fn eval_passes_and_exits_0_when_everything_passes() {
    let server = ModelServer::answering("Paris");
    let mut repo = TestRepo::new();
    repo.write(
        "q.prompt.yml",
        "model: m\ntestData:\n  - { city: Paris }\nmessages:\n  - { role: user, content: \"Say {{city}}\" }\nevaluators:\n  - { name: is, string: { equals: \"{{city}}\" } }\n",
    );
    repo.commit("q");
    let out = output(model_cli(&repo, &server).args(["eval", "--format", "github"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "::notice file=q.prompt.yml,title=eval q::1/1 test cases passed (100.00%)\n"
    );
}

#[test]
fn eval_github_annotations_name_the_failed_evaluators() {
    let server = quiz_server("good");
    let repo = quiz_repo();
    let out = output(model_cli(&repo, &server).args(["eval", "quiz", "--format", "github"]));
    assert_eq!(out.code, 1);
    let settings = crate::common::settings(repo.path());
    settings.bind(|| insta::assert_snapshot!("models_eval_github", out.stdout));
}

/// A file that uses every built-in evaluator (written here; the corpus's own such files run in
/// `corpus_files_with_evaluators_eval_as_gh_models_does`).
const BUILTINS: &str = "model: openai/gpt-4o\nmodelParameters:\n  temperature: 0.5\n  maxTokens: 100\ntestData:\n  - input: Why is the sky blue?\n    expected: Air scatters blue sunlight more than red.\nmessages:\n  - role: system\n    content: You explain science to children.\n  - role: user\n    content: '{{input}}'\nevaluators:\n  - { name: alike, uses: github/similarity }\n  - { name: holds together, uses: github/coherence }\n  - { name: reads well, uses: github/fluency }\n  - { name: on topic, uses: github/relevance }\n  - { name: grounded, uses: github/groundedness }\n  - name: unknown\n    uses: github/nope\n";

const SKY: &str = "Blue light bounces around the air the most.";

/// A model that answers `SKY`, and as a judge answers `judged` (when its system prompt
/// starts with `judge_prefix`).
fn builtin_judges(judge_prefix: &'static str, judged: &'static str) -> ModelServer {
    ModelServer::start(move |body| {
        let system = body["messages"][0]["content"].as_str().unwrap_or("");
        if system.starts_with(judge_prefix) {
            judged.into()
        } else {
            SKY.into()
        }
    })
}

fn scores(stdout: &str) -> Vec<(String, f64, bool)> {
    let result: Value = serde_json::from_str(stdout).expect("json");
    result["prompts"][0]["testResults"][0]["evaluationResults"]
        .as_array()
        .expect("results")
        .iter()
        .map(|e| {
            (
                e["evaluatorName"].as_str().unwrap_or("").to_string(),
                e["score"].as_f64().unwrap_or(-1.0),
                e["passed"] == true,
            )
        })
        .collect()
}

#[test]
fn eval_builtins_judge_on_gh_models_scale_in_promptregs_words() {
    let server = builtin_judges("You grade", "4");
    let mut repo = TestRepo::new();
    repo.write("builtins.prompt.yml", BUILTINS);
    repo.commit("builtins");
    let out = output(model_cli(&repo, &server).args(["eval", "builtins", "--format", "json"]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let four = |name: &str| (name.to_string(), 0.75, true);
    assert_eq!(
        scores(&out.stdout),
        [
            four("alike"),
            four("holds together"),
            four("reads well"),
            four("on topic"),
            four("grounded"),
            ("unknown".to_string(), 0.0, false),
        ]
    );
    let bodies = server.bodies();
    let case = bodies
        .iter()
        .find(|b| b.get("max_tokens").is_some())
        .expect("test case request");
    assert_eq!(
        (case["max_tokens"].clone(), case["temperature"].clone()),
        (json!(100), json!(0.5))
    );
    let judges: Vec<&Value> = bodies
        .iter()
        .filter(|b| b.get("max_tokens").is_none())
        .collect();
    assert_eq!(judges.len(), 5);
    assert!(judges
        .iter()
        .all(|b| b["model"] == "openai/gpt-4o" && b["stream"] == true));
    let users: Vec<&str> = judges
        .iter()
        .map(|b| b["messages"][1]["content"].as_str().unwrap_or(""))
        .collect();
    // Each judge gets the inputs gh-models gives it, in promptreg's own prompts.
    let has = |parts: &[&str]| users.iter().any(|u| parts.iter().all(|p| u.contains(p)));
    assert!(has(&[
        "Question:\nWhy is the sky blue?",
        "Reference answer:\nAir scatters blue sunlight more than red.",
        &format!("Candidate answer:\n{SKY}\n")
    ]));
    assert!(has(&[
        "coherence",
        "Request:\nWhy is the sky blue?",
        &format!("Reply:\n{SKY}\n")
    ]));
    assert!(has(&["fluency", &format!("Text:\n{SKY}\n")]));
    assert!(has(&["relevant", "Request:\nWhy is the sky blue?"]));
    assert!(has(&[
        "Source material:\nAir scatters blue sunlight more than red.",
        "Request:\nWhy is the sky blue?",
        &format!("Reply:\n{SKY}\n")
    ]));
    assert!(users
        .iter()
        .all(|u| u.ends_with("Your rating (one digit, 1 to 5):")));
}

#[test]
fn a_registry_overrides_a_builtin_evaluator_with_its_own_file() {
    let server = builtin_judges("Own judge", "great");
    let mut repo = TestRepo::new();
    repo.write("builtins.prompt.yml", BUILTINS);
    repo.write(
        "promptreg/evaluators/similarity.yaml",
        "systemPrompt: Own judge. Say great or poor.\nprompt: \"Reference {{expected}} / answer {{completion}}\"\nchoices:\n  - { choice: great, score: 1 }\n  - { choice: poor, score: 0 }\n",
    );
    repo.commit("builtins, with our own similarity judge");
    let out = output(model_cli(&repo, &server).args(["eval", "builtins", "--format", "json"]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let got = scores(&out.stdout);
    // The registry's own similarity judge, on the built-in's judge model; the others are the
    // built-ins (whose judges this server does not answer with a digit).
    assert_eq!(got[0], ("alike".to_string(), 1.0, true));
    assert!(
        got[1..5].iter().all(|(_, score, _)| *score == 0.0),
        "{got:?}"
    );
    let bodies = server.bodies();
    let own = bodies
        .iter()
        .find(|b| b["messages"][0]["content"] == "Own judge. Say great or poor.")
        .expect("the registry's judge was asked");
    assert_eq!(own["model"], "openai/gpt-4o");
    assert_eq!(
        own["messages"][1]["content"],
        format!("Reference Air scatters blue sunlight more than red. / answer {SKY}")
    );
    // A file that does not parse is an error naming it, before any model call.
    repo.write("promptreg/evaluators/fluency.yaml", "prompt: [not, text]\n");
    let before = server.requests().len();
    let out = output(model_cli(&repo, &server).args(["eval", "builtins"]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("promptreg/evaluators/fluency.yaml overrides evaluator `github/fluency`"),
        "{}",
        out.stderr
    );
    assert_eq!(server.requests().len(), before);
}

#[test]
fn a_second_eval_is_answered_from_the_cache() {
    let server = quiz_server("good");
    let repo = quiz_repo();
    let first = output(model_cli(&repo, &server).args(["eval", "quiz", "--format", "json"]));
    let calls = server.requests().len();
    assert_eq!(calls, 4);
    let second = output(model_cli(&repo, &server).args(["eval", "quiz", "--format", "json"]));
    assert_eq!(
        server.requests().len(),
        calls,
        "the second eval called the model"
    );
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(
        second.stderr,
        "note: 0 model calls (4 answered from the cache)\n"
    );
    // A changed judge model is a different request.
    let third = output(model_cli(&repo, &server).args(["eval", "quiz", "--judge-model", "judge2"]));
    assert_eq!(
        third.stderr,
        "note: 2 model calls (2 answered from the cache)\n"
    );
    let cache = repo.path().join(".git/promptreg/models");
    assert!(cache.is_dir());
}

#[test]
fn eval_reports_a_model_failure_as_exit_2() {
    let server = quiz_server("good");
    server.push_fault(Fault::NotJson);
    let repo = quiz_repo();
    let out = output(model_cli(&repo, &server).args(["eval", "quiz", "--jobs", "1", "--no-cache"]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with("error: `quiz` test case 0: model `openai/gpt-4o-mini` at"),
        "{}",
        out.stderr
    );
}

/// Runs only with a real endpoint and key in the environment.
#[test]
fn real_endpoint() {
    let (Ok(endpoint), Ok(key)) = (
        std::env::var("PROMPTREG_TEST_ENDPOINT"),
        std::env::var("PROMPTREG_TEST_API_KEY"),
    ) else {
        eprintln!("skipped: set PROMPTREG_TEST_ENDPOINT and PROMPTREG_TEST_API_KEY to run it");
        return;
    };
    let model =
        std::env::var("PROMPTREG_TEST_MODEL").unwrap_or_else(|_| "openai/gpt-4o-mini".into());
    let mut repo = TestRepo::new();
    repo.write(
        "hi.prompt.yml",
        &format!("model: {model}\nmodelParameters: {{ maxTokens: 20 }}\ntestData:\n  - {{ word: pong }}\nmessages:\n  - {{ role: user, content: \"Reply with the single word {{{{word}}}}\" }}\nevaluators:\n  - {{ name: says, string: {{ contains: \"{{{{word}}}}\" }} }}\n"),
    );
    repo.commit("hi");
    let mut cmd = cli(repo.path());
    cmd.env("PROMPTREG_ENDPOINT", &endpoint)
        .env("PROMPTREG_API_KEY", &key);
    let out = cmd.args(["eval", "hi"]).output().expect("run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(&key));
    assert_eq!(out.status.code(), Some(0), "{text}");
}

/// Every GitHub Models file of the corpus that has evaluators, evaluated as `gh models eval`
/// evaluates it: one request per test case, then one judge request per `llm` or built-in
/// evaluator of each, results in the file's order, exit 0 or 1 (never a failure to run).
#[test]
fn corpus_files_with_evaluators_eval_as_gh_models_does() {
    let Some(corpus) = crate::corpus::corpus() else {
        return;
    };
    // Judges get a digit and a word, which the built-ins' stars and most choices contain.
    let server = ModelServer::start(|body| {
        if body["messages"].to_string().contains("{{completion}}") {
            "unreachable: templates are filled before sending".into()
        } else if body.get("stream") == Some(&Value::Bool(true)) {
            "4 good".into()
        } else {
            "Paris. A clear, short answer.".into()
        }
    });
    let mut repo = TestRepo::new();
    let mut expected = Vec::new();
    let mut files: Vec<_> = walkdir::WalkDir::new(&corpus)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(doc) = serde_yaml::from_str::<Value>(&text) else {
            continue;
        };
        let evaluators: Vec<Value> = doc["evaluators"].as_array().cloned().unwrap_or_default();
        let cases = doc["testData"].as_array().map_or(0, Vec::len);
        if evaluators.is_empty() || cases == 0 {
            continue;
        }
        let id = format!("c{}", expected.len());
        repo.write(&format!("{id}.prompt.yml"), &text);
        let names: Vec<String> = evaluators
            .iter()
            .map(|e| e["name"].as_str().unwrap_or("").to_string())
            .collect();
        let judges = evaluators
            .iter()
            .filter(|e| e.get("llm").is_some() || e.get("uses").is_some())
            .count();
        expected.push((id, path, cases, names, judges));
    }
    assert!(
        expected.len() >= 5,
        "the corpus has few files with evaluators"
    );
    repo.commit("the corpus's evaluated files");
    let ids: Vec<&str> = expected.iter().map(|(id, ..)| id.as_str()).collect();
    let out = output(
        model_cli(&repo, &server)
            .env("PROMPTREG_MODEL", "openai/gpt-4o-mini")
            .args(["eval", "--format", "json"])
            .args(&ids),
    );
    assert!(
        out.code == 0 || out.code == 1,
        "exit {}: {}",
        out.code,
        out.stderr
    );
    let report: Value = serde_json::from_str(&out.stdout).expect("json");
    let prompts = report["prompts"].as_array().expect("prompts");
    assert_eq!(prompts.len(), expected.len());
    let mut calls = 0;
    for ((_, path, cases, names, judges), prompt) in expected.iter().zip(prompts) {
        let results = prompt["testResults"].as_array().expect("testResults");
        assert_eq!(results.len(), *cases, "{}", path.display());
        for result in results {
            let got: Vec<&str> = result["evaluationResults"]
                .as_array()
                .expect("evaluationResults")
                .iter()
                .map(|e| e["evaluatorName"].as_str().unwrap_or(""))
                .collect();
            assert_eq!(got, *names, "{}", path.display());
            for e in result["evaluationResults"].as_array().into_iter().flatten() {
                let score = e["score"].as_f64().unwrap_or(-1.0);
                assert!((0.0..=1.0).contains(&score), "{}: {e}", path.display());
            }
        }
        calls += cases * (1 + judges);
    }
    // One request per test case and judge, but never the same request twice: within a run,
    // an identical request (two test cases that render alike) is answered from the cache.
    let bodies: Vec<String> = server.bodies().iter().map(Value::to_string).collect();
    let distinct: std::collections::BTreeSet<&String> = bodies.iter().collect();
    assert_eq!(distinct.len(), bodies.len(), "a request was sent twice");
    assert!(
        bodies.len() <= calls && bodies.len() + 2 >= calls,
        "{} requests for {calls} test cases and judges",
        bodies.len()
    );
    let calls = bodies.len();
    assert!(
        server
            .bodies()
            .iter()
            .all(|b| !b["messages"].to_string().contains("{{completion}}")),
        "a judge got an unfilled template"
    );
    // The cache: the same evaluation again makes no call.
    let again = output(
        model_cli(&repo, &server)
            .env("PROMPTREG_MODEL", "openai/gpt-4o-mini")
            .args(["eval", "--format", "json"])
            .args(&ids),
    );
    assert_eq!(again.code, out.code);
    assert_eq!(server.requests().len(), calls);
}

#[test]
fn new_generate_writes_the_models_file_only_when_it_validates() {
    let repo = greet_repo();
    let file = "name: refund\ndescription: Answers refund questions\nmodel: gpt-4o-mini\nvariables:\n  question:\n    type: string\n    required: true\nmessages:\n  - role: system\n    content: You answer refund questions.\n  - role: user\n    content: \"{{ question }}\"\ntestData:\n  - question: May I?\n";
    let server = ModelServer::answering(&format!("```yaml\n{file}```"));
    let out = output(model_cli(&repo, &server).args([
        "new",
        "support/refund",
        "--generate",
        "Answer refund questions",
    ]));
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stdout);
    assert_eq!(repo.read("support/refund.prompt.yaml"), file);
    // The model was shown the format and asked for this id and description.
    let asked = server.bodies();
    assert_eq!(asked.len(), 1);
    let system = asked[0]["messages"][0]["content"]
        .as_str()
        .unwrap_or_default();
    let user = asked[0]["messages"][1]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(
        system.contains("testData")
            && user.contains("support/refund")
            && user.contains("Answer refund questions"),
        "{asked:?}"
    );

    // A file with errors is refused, with its findings, and nothing is written.
    let broken =
        ModelServer::answering("messages:\n  - role: user\n    content: \"{{ undeclared }\"\n");
    let out = output(model_cli(&repo, &broken).args(["new", "broken", "--generate", "Anything"]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("broken (as the model wrote it)"),
        "{}",
        out.stderr
    );
    assert!(!repo.path().join("broken.prompt.yaml").exists());
    // Without a description there is nothing to ask.
    let out = output(model_cli(&repo, &broken).args(["new", "empty", "--generate", " "]));
    assert_eq!(out.code, 2, "{}", out.stderr);
}

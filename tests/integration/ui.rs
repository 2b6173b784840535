//! The web UI of `serve`, used as a person uses it: the real server on a loopback port, a
//! real headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`,
//! which `.ci/run` installs), elements found by their labels and text, a screenshot of each
//! page in `target/ui-screenshots/`, and axe-core (from the npm registry, `PROMPTREG_AXE`)
//! checking accessibility. Checks that need no browser (headers, cookies, cross-site refusals,
//! pages without JavaScript) go through a plain HTTP client.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::webdriver::{By, Element, Session};
use crate::common::{crate_root, git, TestRepo};
use crate::serve::Server;

// ---------------------------------------------------------------------------------------
// The registry the tests use

const GREET: &str = "name: Greeting\ndescription: Greets a customer\nmodel: openai/gpt-4o-mini\nmodelParameters:\n  temperature: 0.2\nvariables:\n  customer:\n    type: string\n    required: true\n  count:\n    type: integer\n    default: 2\n  formal:\n    type: boolean\n    default: false\n  topics:\n    type: array\n    required: false\nmessages:\n  - role: system\n    content: You greet customers of Acme. VERSION\n  - role: user\n    content: \"Greet {{ customer }} {{ count }} times.\"\ntestData:\n  - customer: Ada\n  - customer: Grace\n    count: 3\ntags: [support]\n";

fn greet(version: &str) -> String {
    GREET.replace("VERSION", version)
}

/// `greet` at versions 1 to 3 (the default pinned to 2, label `prod` on 1) and `other`.
fn registry() -> TestRepo {
    let mut repo = TestRepo::new();
    repo.write("greet.prompt.yaml", &greet("Be brief."));
    repo.write(
        "other.prompt.yaml",
        "description: Something else\ntemplate: \"other {{ x }}\"\nvariables:\n  x: { type: string, default: y }\ntags: [misc]\n",
    );
    repo.commit("Add greet and other");
    repo.write("greet.prompt.yaml", &greet("Be warm."));
    repo.commit("greet: warmer");
    repo.write("greet.prompt.yaml", &greet("Be warm and brief."));
    repo.commit("greet: warm and brief");
    repo.write(
        "defaults.yaml",
        "defaults:\n  greet: 2\nlabels:\n  prod:\n    greet: 1\n",
    );
    repo.commit("Pin greet to 2, prod to 1");
    repo
}

/// An auth file with two people who may write and one who may only read.
fn auth_file(repo: &TestRepo) -> String {
    let path = repo.path().join(".git/ui-auth.yaml");
    std::fs::write(
        &path,
        "tokens:\n  - name: alice\n    token: alice-secret\n    email: alice@example.com\n    scopes: [read, write, analyze]\n  - name: bob\n    token: bob-secret\n    email: bob@example.com\n    scopes: [read, write]\n  - name: reader\n    token: reader-secret\n    scopes: [read]\n",
    )
    .expect("auth file");
    path.display().to_string()
}

// ---------------------------------------------------------------------------------------
// The browser

/// One browser test at a time: each runs its own Chromium, and two at once on two cores
/// only slow each other down.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

/// A chromedriver on a free loopback port; stopped when dropped.
struct Driver {
    child: Child,
    url: String,
    /// The folder every browser of this driver keeps its profile under.
    profiles: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A browser whose session was not ended (a test that failed mid-way) would outlive its
        // driver and keep a core busy: it is found by its profile folder and stopped.
        let _ = Command::new("pkill")
            .args(["-KILL", "-f", &self.profiles.path().display().to_string()])
            .status();
    }
}

/// Whether the browser and axe must be there: in CI (`.ci/run` sets `PROMPTREG_UI_TESTS` and
/// installs them), a missing one fails the tests rather than skipping them.
fn required() -> bool {
    std::env::var_os("PROMPTREG_UI_TESTS").is_some() || std::env::var_os("CI").is_some()
}

/// The chromedriver of this machine, or `None` (with a note) where it is not installed and
/// the tests are not required to run.
fn driver() -> Option<Driver> {
    let binary =
        std::env::var("PROMPTREG_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    if !std::path::Path::new(&binary).exists() {
        assert!(
            !required(),
            "chromedriver is not installed at {binary}: .ci/run installs Debian's chromium-driver"
        );
        eprintln!(
            "skipped: no chromedriver at {binary} (apt-get install chromium chromium-driver)"
        );
        return None;
    }
    // A free port can be taken by another test's server between choosing it and chromedriver
    // binding it: a driver is ready only when its own status answers, else it is started again
    // on another port.
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            if driver_ready(&url) {
                return Some(Driver {
                    child,
                    url,
                    profiles: tempfile::Builder::new()
                        .prefix("promptreg-ui-profiles")
                        .tempdir()
                        .expect("a profile folder"),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("chromedriver did not start on five ports");
}

/// Whether a chromedriver answers its status at `url`, ready for a session.
fn driver_ready(url: &str) -> bool {
    let Ok(mut response) = agent().get(&format!("{url}/status")).call() else {
        return false;
    };
    let status: Value = response.body_mut().read_json().unwrap_or(Value::Null);
    status["value"]["ready"] == json!(true)
}

/// A new headless Chromium session, with JavaScript on or off.
fn browser(driver: &Driver, javascript: bool) -> Session {
    let profile = tempfile::tempdir_in(driver.profiles.path())
        .expect("profile")
        .keep();
    let mut options = json!({
        "binary": std::env::var("PROMPTREG_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
        "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
            format!("--user-data-dir={}", profile.display()),
        ],
    });
    if !javascript {
        options["prefs"] = json!({ "profile.managed_default_content_settings.javascript": 2 });
    }
    Session::start(
        &driver.url,
        json!({ "browserName": "chrome", "goog:chromeOptions": options }),
    )
    .unwrap_or_else(|e| panic!("a Chromium session: {e}"))
}

/// Runs `test` in a browser session (JavaScript on), one test at a time.
fn with_browser(test: impl FnOnce(Session)) {
    with_driver(|driver| test(browser(driver, true)));
}

/// Runs `test` with a chromedriver of its own, one test at a time (for tests that open more
/// than one browser, or one with JavaScript off).
fn with_driver(test: impl FnOnce(&Driver)) {
    let _one = ONE_BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(driver) = driver() else { return };
    test(&driver);
}

/// The element a label names (`<label for>`).
fn labelled(client: &Session, label: &str) -> Element {
    let xpath = format!(
        "//*[@id=//label[normalize-space(.)={}]/@for]",
        xpath_text(label)
    );
    client
        .wait_for(By::XPath(&xpath), 10)
        .unwrap_or_else(|e| panic!("no field labelled {label:?}: {e}"))
}

/// The button with this text.
fn button(client: &Session, text: &str) -> Element {
    let xpath = format!("//button[normalize-space(.)={}]", xpath_text(text));
    client
        .wait_for(By::XPath(&xpath), 10)
        .unwrap_or_else(|e| panic!("no button {text:?}: {e}"))
}

/// The link with this text.
fn link(client: &Session, text: &str) -> Element {
    client
        .wait_for(By::LinkText(text), 10)
        .unwrap_or_else(|e| panic!("no link {text:?}: {e}"))
}

fn xpath_text(text: &str) -> String {
    if !text.contains('\'') {
        return format!("'{text}'");
    }
    let parts: Vec<String> = text.split('\'').map(|p| format!("'{p}'")).collect();
    format!("concat({})", parts.join(", \"'\", "))
}

/// The visible text of the page's main content (empty while a page is being replaced).
fn main_text(client: &Session) -> String {
    match client.find(By::Css("main")) {
        Ok(main) => main.text().unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until the main content holds `text`.
fn wait_for_text(client: &Session, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = main_text(client);
        if now.contains(text) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the page never said {text:?}; it says:\n{now}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes a screenshot of the page to `target/ui-screenshots/NAME.png`.
fn screenshot(client: &Session, name: &str) {
    let dir = crate_root().join("target/ui-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    let png = client.screenshot().expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

/// axe-core's serious and critical violations on the page (none where axe is not
/// installed outside CI; in CI `.ci/run` installs it and sets `PROMPTREG_AXE`).
fn accessibility(client: &Session, page: &str) {
    let Some(path) = std::env::var_os("PROMPTREG_AXE").map(PathBuf::from) else {
        assert!(
            !required(),
            "PROMPTREG_AXE is not set: .ci/run installs axe-core"
        );
        eprintln!("skipped the accessibility check of {page}: PROMPTREG_AXE is not set");
        return;
    };
    let axe = std::fs::read_to_string(&path).expect("axe.min.js");
    client.execute(&axe, vec![]).expect("load axe");
    let found = client
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             axe.run(document, { resultTypes: ['violations'] })\
               .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.html) }))))\
               .catch(e => done([{ id: 'axe-failed', impact: 'critical', help: String(e), nodes: [] }]));",
            vec![],
        )
        .expect("run axe");
    let serious: Vec<&Value> = found
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect();
    assert!(serious.is_empty(), "axe on {page}: {serious:#?}");
}

/// Signs in with `token` on the sign-in page.
fn sign_in(client: &Session, server: &Server, token: &str) {
    client.goto(&server.url("/")).expect("open");
    labelled(client, "Token")
        .send_keys(token)
        .expect("type the token");
    button(client, "Sign in").click().expect("sign in");
    wait_for_text(client, "Prompts");
}

/// Replaces a field's text.
fn set_text(client: &Session, label: &str, text: &str) {
    let field = labelled(client, label);
    client
        .execute(
            "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'));",
            vec![field.arg(), json!(text)],
        )
        .expect("set the text");
}

// ---------------------------------------------------------------------------------------
// Reading

#[test]
fn a_person_finds_a_prompt_previews_versions_by_hovering_and_loads_one_by_clicking() {
    let repo = registry();
    let server = Server::start(&repo, &[]);
    with_browser(|client| {
        client.goto(&server.url("/")).expect("open the list");
        let text = main_text(&client);
        assert!(
            text.contains("greet")
                && text.contains("Greets a customer")
                && text.contains("prod: v1"),
            "{text}"
        );
        screenshot(&client, "list");
        accessibility(&client, "the list");
        // Filtered by text, then by tag.
        labelled(&client, "Search")
            .send_keys("something")
            .expect("type");
        button(&client, "Filter").click().expect("filter");
        wait_for_text(&client, "1 prompt at");
        assert!(!main_text(&client).contains("Greets a customer"));
        client.goto(&server.url("/?tag=support")).expect("by tag");
        wait_for_text(&client, "Greets a customer");
        assert!(!main_text(&client).contains("Something else"));

        // The prompt opens at its default, v2, with the versions newest first.
        link(&client, "greet").click().expect("open greet");
        wait_for_text(&client, "You greet customers of Acme. Be warm.");
        let view = client
            .find(By::Css("#view h2"))
            .expect("view")
            .text()
            .expect("text");
        assert!(view.contains("v2") && view.contains("default"), "{view}");
        let panel = client
            .find(By::Css("nav.versions"))
            .expect("panel")
            .text()
            .expect("text");
        let order: Vec<usize> = ["v3", "v2", "v1"]
            .iter()
            .map(|v| panel.find(v).expect("listed"))
            .collect();
        assert!(
            order[0] < order[1] && order[1] < order[2],
            "newest first: {panel}"
        );
        assert!(
            panel.contains("greet: warm and brief") && panel.contains("Test Author"),
            "{panel}"
        );
        // Rendered with its first test case, with the model and its parameters.
        let rendered = main_text(&client);
        assert!(
            rendered.contains("Greet Ada 2 times.")
                && rendered.contains("openai/gpt-4o-mini")
                && rendered.contains("temperature"),
            "{rendered}"
        );
        screenshot(&client, "prompt");
        accessibility(&client, "a prompt");

        // Hovering v3 shows it in place; leaving shows v2 again.
        let v3 = link(&client, "v3");
        client.hover(&v3.clone()).expect("hover");
        client
            .wait_for(By::Css("#view.preview"), 10)
            .expect("a preview");
        assert!(main_text(&client).contains("Be warm and brief."));
        screenshot(&client, "prompt-hover");
        let heading = client.find(By::Css("h1, .crumbs")).expect("crumbs");
        client.hover(&heading).expect("leave");
        wait_for_text(&client, "Be warm.");
        assert!(
            client.find(By::Css("#view.preview")).is_err(),
            "the preview ends"
        );

        // The keyboard previews too: focusing v1.
        client
            .execute(
                "document.querySelector('a[href$=\"@1\"][data-preview]').focus()",
                vec![],
            )
            .expect("focus");
        client
            .wait_for(By::Css("#view.preview"), 10)
            .expect("a preview on focus");
        assert!(main_text(&client).contains("Be brief."));

        // Clicking loads it, at a URL that can be shared.
        link(&client, "v3").click().expect("load v3");
        wait_for_text(&client, "greet v3");
        assert!(client
            .current_url()
            .expect("url")
            .as_str()
            .ends_with("/p/greet@3"));
        client.goto(&server.url("/p/greet@1")).expect("shared");
        wait_for_text(&client, "Be brief.");
        assert!(main_text(&client).contains("prod"), "v1 carries its label");
    });
}

#[test]
fn two_versions_compare_as_source_and_rendered_per_test_case() {
    let repo = registry();
    let server = Server::start(&repo, &[]);
    with_browser(|client| {
        client.goto(&server.url("/p/greet")).expect("open");
        link(&client, "Compare versions").click().expect("compare");
        labelled(&client, "From")
            .select_by_value("1")
            .expect("from");
        labelled(&client, "To").select_by_value("3").expect("to");
        button(&client, "Compare").click().expect("compare");
        wait_for_text(&client, "Test case 2");
        let removed: Vec<String> = futures_text(&client, "pre.diff .del");
        let added: Vec<String> = futures_text(&client, "pre.diff .add");
        assert!(
            removed.iter().any(|l| l.contains("Be brief.")),
            "{removed:?}"
        );
        assert!(
            added.iter().any(|l| l.contains("Be warm and brief.")),
            "{added:?}"
        );
        // The source and each of the two test cases, rendered.
        assert_eq!(
            client.find_all(By::Css("pre.diff")).expect("diffs").len(),
            3
        );
        screenshot(&client, "diff");
        accessibility(&client, "the diff");
    });
}

fn futures_text(client: &Session, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for element in client.find_all(By::Css(css)).expect("elements") {
        out.push(element.text().expect("text"));
    }
    out
}

#[test]
fn reading_works_with_javascript_off() {
    let repo = registry();
    let server = Server::start(&repo, &[]);
    with_driver(|driver| {
        {
            let client = browser(driver, false);
            client.goto(&server.url("/")).expect("open");
            link(&client, "greet").click().expect("open greet");
            wait_for_text(&client, "Be warm.");
            link(&client, "v1").click().expect("load v1");
            wait_for_text(&client, "Be brief.");
            link(&client, "Compare versions").click().expect("compare");
            wait_for_text(&client, "Source");
            link(&client, "greet").click().expect("back to greet");
            link(&client, "Playground").click().expect("playground");
            labelled(&client, "customer string (required)")
                .send_keys("Lin")
                .expect("type");
            button(&client, "Render").click().expect("render");
            wait_for_text(&client, "Greet Lin 2 times.");
            assert!(
                client
                    .find(By::XPath("//button[normalize-space(.)='Copy']"))
                    .is_err(),
                "no script ran"
            );
        };
    });
}

// ---------------------------------------------------------------------------------------
// The playground

#[test]
fn the_playground_renders_names_missing_fields_and_streams_a_run() {
    let repo = registry();
    let model = crate::common::model_server::ModelServer::start(|body| {
        // The model greets, and grades a prompt when asked to (the score analysis's judge).
        if body["messages"].to_string().contains("Grade the prompt") {
            let criteria: Vec<Value> = [
                "clarity",
                "specificity",
                "context",
                "structure",
                "output format",
                "constraints",
            ]
            .iter()
            .map(|n| json!({ "name": n, "score": 70, "feedback": format!("{n} is fine") }))
            .collect();
            return json!({ "criteria": criteria, "strengths": ["short"], "improvements": ["name the tone"] }).to_string();
        }
        "Hello Ada, twice over.".to_string()
    });
    let endpoint = model.endpoint();
    let server = Server::start_with(
        &repo,
        &["--analyses"],
        &[
            ("PROMPTREG_ENDPOINT", endpoint.as_str()),
            ("PROMPTREG_MODEL", "test-model"),
        ],
    );
    with_browser(|client| {
        client.goto(&server.url("/p/greet@3")).expect("open");
        link(&client, "Playground").click().expect("playground");
        // A form made from the typed variables: text, number, checkbox and JSON, defaults filled.
        assert_eq!(
            labelled(&client, "count integer")
                .prop("type")
                .expect("type")
                .as_deref(),
            Some("number")
        );
        assert_eq!(
            labelled(&client, "count integer")
                .prop("value")
                .expect("value")
                .as_deref(),
            Some("2")
        );
        assert_eq!(
            labelled(&client, "formal")
                .prop("type")
                .expect("type")
                .as_deref(),
            Some("checkbox")
        );
        assert!(labelled(&client, "topics array")
            .attr("class")
            .expect("class")
            .unwrap_or_default()
            .contains("json"));
        // Rendering without the required customer names it at its field.
        button(&client, "Render").click().expect("render");
        wait_for_text(&client, "customer");
        let field = labelled(&client, "customer string (required)");
        assert_eq!(
            field.attr("aria-invalid").expect("attr").as_deref(),
            Some("true")
        );
        screenshot(&client, "playground-missing");
        // A test case fills the form; a wrong JSON list is named at its field.
        labelled(&client, "Test case")
            .select_by_value("1")
            .expect("case 2");
        button(&client, "Fill the form").click().expect("fill");
        wait_for_text(&client, "Playground");
        assert_eq!(
            labelled(&client, "customer string (required)")
                .prop("value")
                .expect("value")
                .as_deref(),
            Some("Grace")
        );
        set_text(&client, "topics array", "not json");
        button(&client, "Render").click().expect("render");
        wait_for_text(&client, "a JSON list is needed");
        set_text(&client, "topics array", "[\"billing\"]");
        button(&client, "Render").click().expect("render");
        wait_for_text(&client, "Greet Grace 3 times.");
        // The request to copy: JSON, curl and Python.
        let page = main_text(&client);
        assert!(
            page.contains("\"customer\": \"Grace\"")
                && page.contains("curl -X POST")
                && page.contains("httpx.post")
                && page.contains("\"formal\": False"),
            "{page}"
        );
        screenshot(&client, "playground");
        accessibility(&client, "the playground");
        // Run streams the model's reply into the page.
        button(&client, "Run").click().expect("run");
        client
            .wait_for(By::Css("#reply[data-done='ok']"), 15)
            .expect("the reply ends");
        let reply = client
            .find(By::Css("#reply"))
            .expect("reply")
            .text()
            .expect("text");
        assert_eq!(reply, "Hello Ada, twice over.");
        let sent = model.bodies();
        let last = sent.last().expect("the model was asked");
        // The prompt's own model, as `promptreg run` sends it (PROMPTREG_MODEL is the fallback).
        assert_eq!(last["model"], json!("openai/gpt-4o-mini"));
        assert_eq!(last["stream"], json!(true));
        assert!(
            last["messages"]
                .to_string()
                .contains("Greet Grace 3 times."),
            "{last}"
        );
        // The analyses are panels.
        button(&client, "Analyse: score").click().expect("score");
        wait_for_text(&client, "Analysis: score");
        let panel = client
            .find(By::Css("section.panel"))
            .expect("panel")
            .text()
            .expect("text");
        assert!(
            panel.contains("Judged by test-model")
                && panel.contains("name the tone")
                && panel.contains("clarity is fine"),
            "{panel}"
        );
        screenshot(&client, "playground-analysis");
    });
}

// ---------------------------------------------------------------------------------------
// Editing, committing, conflicts, the default

#[test]
fn two_people_edit_one_prompt_the_second_sees_the_conflict_and_nothing_is_lost() {
    let repo = registry();
    let auth = auth_file(&repo);
    let server = Server::start(&repo, &["--allow-writes", "--auth", &auth]);
    let path = repo.path().to_path_buf();
    with_driver(|driver| {
        {
            let alice = browser(driver, true);
            let bob = browser(driver, true);
            sign_in(&alice, &server, "alice-secret");
            sign_in(&bob, &server, "bob-secret");
            for client in [&alice, &bob] {
                client.goto(&server.url("/p/greet")).expect("open");
                link(client, "Edit").click().expect("edit");
                wait_for_text(client, "Edit greet");
            }
            screenshot(&alice, "edit");
            accessibility(&alice, "the editor");
            // Validate shows findings at their lines.
            let source = labelled(&alice, "greet.prompt.yaml")
                .prop("value")
                .expect("value")
                .unwrap_or_default();
            set_text(
                &alice,
                "greet.prompt.yaml",
                &source.replace("{{ count }} times", "{{ count }} times {{ undeclared }}"),
            );
            button(&alice, "Validate").click().expect("validate");
            wait_for_text(&alice, "finding");
            let findings = main_text(&alice);
            assert!(
                findings.contains("line 23") && findings.contains("undeclared"),
                "{findings}"
            );
            screenshot(&alice, "edit-findings");
            // Alice commits a change.
            let alice_text = source.replace("Be warm and brief.", "Be warm, brief and kind.");
            set_text(&alice, "greet.prompt.yaml", &alice_text);
            labelled(&alice, "Commit message")
                .send_keys("greet: kind too")
                .expect("message");
            button(&alice, "Commit").click().expect("commit");
            wait_for_text(&alice, "greet v4");
            assert!(alice
                .current_url()
                .expect("url")
                .as_str()
                .ends_with("/p/greet@4"));
            // Bob, who started from v3 too, commits his: he sees hers, his text is kept.
            let bob_text = source.replace("Greet {{ customer }}", "Welcome {{ customer }}");
            set_text(&bob, "greet.prompt.yaml", &bob_text);
            labelled(&bob, "Commit message")
                .send_keys("greet: welcome")
                .expect("message");
            button(&bob, "Commit").click().expect("commit");
            wait_for_text(&bob, "Someone else committed greet");
            let conflict = main_text(&bob);
            assert!(
                conflict.contains("v4 by alice: greet: kind too")
                    && conflict.contains("Be warm, brief and kind."),
                "{conflict}"
            );
            let kept = labelled(&bob, "greet.prompt.yaml")
                .prop("value")
                .expect("value")
                .unwrap_or_default();
            assert_eq!(kept, bob_text, "Bob's text is kept");
            screenshot(&bob, "edit-conflict");
            accessibility(&bob, "the conflict");
            // He re-applies his change on top of hers and commits.
            let merged = alice_text.replace("Greet {{ customer }}", "Welcome {{ customer }}");
            set_text(&bob, "greet.prompt.yaml", &merged);
            button(&bob, "Commit").click().expect("commit again");
            wait_for_text(&bob, "greet v5");
        };
        // Both changes are in, each authored by the person who pressed Commit.
        let log = git(&path, &["log", "-3", "--format=%an <%ae>|%s", "main"]);
        assert_eq!(log.trim(), "bob <bob@example.com>|greet: welcome\nalice <alice@example.com>|greet: kind too\nTest Author <author@example.com>|Pin greet to 2, prod to 1", "{log}");
        let file = git(&path, &["show", "main:greet.prompt.yaml"]);
        assert!(
            file.contains("Be warm, brief and kind.") && file.contains("Welcome {{ customer }}"),
            "{file}"
        );
    });
}

#[test]
fn moving_the_default_shows_what_applications_get_then_commits_defaults_yaml() {
    let repo = registry();
    let auth = auth_file(&repo);
    let server = Server::start(&repo, &["--allow-writes", "--auth", &auth]);
    let path = repo.path().to_path_buf();
    with_browser(|client| {
        sign_in(&client, &server, "alice-secret");
        client.goto(&server.url("/p/greet@3")).expect("open v3");
        link(&client, "Make v3 the default").click().expect("move");
        wait_for_text(&client, "get v2 now, and v3 after this");
        let preview = main_text(&client);
        assert!(
            preview.contains("What they will get instead")
                && preview.contains("Be warm and brief."),
            "{preview}"
        );
        screenshot(&client, "point");
        accessibility(&client, "the default move");
        labelled(&client, "Commit message (optional)")
            .send_keys("greet: ship v3")
            .expect("message");
        button(&client, "Confirm: commit to defaults.yaml")
            .click()
            .expect("confirm");
        wait_for_text(&client, "greet v3");
        let view = client
            .find(By::Css("#view h2"))
            .expect("view")
            .text()
            .expect("text");
        assert!(view.contains("default"), "{view}");
        // A label moves the same way, from the version's page.
        client.goto(&server.url("/p/greet@3")).expect("open v3");
        labelled(&client, "Label").send_keys("prod").expect("label");
        button(&client, "Point it at v3")
            .click()
            .expect("label move");
        wait_for_text(&client, "ask for greet@prod get v1 now, and v3 after this");
        button(&client, "Confirm: commit to defaults.yaml")
            .click()
            .expect("confirm");
        wait_for_text(&client, "greet v3");
        // Signing out ends the session: the next page asks for a token again. (The sign-out
        // form's answer is awaited first: opening a page at once can cancel its request.)
        button(&client, "Sign out").click().expect("sign out");
        let deadline = Instant::now() + Duration::from_secs(15);
        while !client
            .current_url()
            .is_ok_and(|url| url.ends_with("/signin"))
        {
            assert!(Instant::now() < deadline, "signing out never answered");
            std::thread::sleep(Duration::from_millis(50));
        }
        client.goto(&server.url("/p/greet")).expect("open");
        labelled(&client, "Token");
        // What the clicks committed (checked only where a browser made them).
        let manifest = git(&path, &["show", "main:defaults.yaml"]);
        assert_eq!(
            manifest,
            "defaults:\n  greet: 3\nlabels:\n  prod:\n    greet: 3\n"
        );
        let log = git(&path, &["log", "-2", "--format=%an|%s", "main"]);
        assert!(
            log.starts_with("alice|") && log.contains("\nalice|greet: ship v3"),
            "{log}"
        );
    });
}

#[test]
fn a_new_prompt_starts_from_the_skeleton_or_from_the_model_and_is_committed() {
    let repo = registry();
    let auth = auth_file(&repo);
    let generated = "name: refund\ndescription: Answers refund questions\nmodel: gpt-4o-mini\nvariables:\n  question:\n    type: string\n    required: true\nmessages:\n  - role: system\n    content: You answer refund questions for Acme.\n  - role: user\n    content: \"{{ question }}\"\ntestData:\n  - question: Can I get my money back?\ntags: [support]\n";
    let model =
        crate::common::model_server::ModelServer::answering(&format!("```yaml\n{generated}```"));
    let endpoint = model.endpoint();
    let server = Server::start_with(
        &repo,
        &["--allow-writes", "--auth", &auth, "--analyses"],
        &[
            ("PROMPTREG_ENDPOINT", endpoint.as_str()),
            ("PROMPTREG_MODEL", "test-model"),
        ],
    );
    let path = repo.path().to_path_buf();
    with_browser(|client| {
        sign_in(&client, &server, "alice-secret");
        link(&client, "New prompt").click().expect("new");
        labelled(&client, "Id")
            .send_keys("support/refund")
            .expect("id");
        labelled(&client, "What it is for (to generate it with the model)")
            .send_keys("Answer questions about refunds")
            .expect("description");
        screenshot(&client, "new");
        accessibility(&client, "the new prompt page");
        button(&client, "Generate with the model")
            .click()
            .expect("generate");
        wait_for_text(&client, "Valid: no findings");
        let text = labelled(&client, "support/refund.prompt.yaml")
            .prop("value")
            .expect("value")
            .unwrap_or_default();
        assert_eq!(text, generated);
        button(&client, "Commit").click().expect("commit");
        wait_for_text(&client, "support/refund v1");
        // From the skeleton: it is valid as it is.
        link(&client, "New prompt").click().expect("new");
        labelled(&client, "Id").send_keys("blank").expect("id");
        button(&client, "Start from the skeleton")
            .click()
            .expect("skeleton");
        wait_for_text(&client, "Valid: no findings");
        button(&client, "Commit").click().expect("commit");
        wait_for_text(&client, "blank v1");
        // What the clicks asked the model and committed (checked only where a browser made
        // them).
        let asked = model.bodies();
        assert!(asked[0]["messages"][1]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("Answer questions about refunds"));
        let log = git(&path, &["log", "-2", "--format=%an|%s", "main"]);
        assert_eq!(log.trim(), "alice|Add blank\nalice|Add support/refund");
    });
}

// ---------------------------------------------------------------------------------------
// Live, safe

#[test]
fn an_open_page_learns_of_a_new_commit_and_names_it() {
    let mut repo = registry();
    let server = Server::start(&repo, &[]);
    with_driver(|driver| {
        let client = {
            let client = browser(driver, true);
            client.goto(&server.url("/")).expect("open");
            wait_for_text(&client, "greet");
            // The event stream is open before the commit.
            std::thread::sleep(Duration::from_millis(500));
            client
        };
        repo.write("other.prompt.yaml", "description: Something newer\ntemplate: \"other {{ x }}\"\nvariables:\n  x: { type: string, default: y }\ntags: [misc]\n");
        repo.commit("other: newer words");
        {
            client
                .wait_for(By::Css("#live:not([hidden])"), 15)
                .expect("a banner");
            let banner = client
                .find(By::Css("#live"))
                .expect("banner")
                .text()
                .expect("text");
            assert_eq!(banner, "other v2 by Test Author: other: newer words");
            wait_for_text(&client, "Something newer");
            screenshot(&client, "live");
        };
    });
}

#[test]
fn script_and_markup_in_prompts_ids_and_messages_stay_text() {
    let mut repo = TestRepo::new();
    let markup = "<script>window.owned = 1</script><img src=x onerror=\"window.owned = 2\">";
    repo.write(
        "x<i>'\"&.prompt.yaml",
        &format!("description: \"{}\"\ntemplate: \"{} {{{{ v }}}}\"\nvariables:\n  v: {{ type: string, default: \"{}\" }}\n", markup.replace('"', "\\\""), markup.replace('"', "\\\""), markup.replace('"', "\\\"")),
    );
    repo.commit(markup);
    let server = Server::start(&repo, &[]);
    with_browser(|client| {
        client.goto(&server.url("/")).expect("open");
        wait_for_text(&client, "x<i>'\"&");
        assert!(main_text(&client).contains(markup));
        link(&client, "x<i>'\"&").click().expect("open the prompt");
        wait_for_text(&client, markup);
        let page = main_text(&client);
        assert!(
            page.matches("<script>").count() >= 3,
            "the file, the note and the render show it: {page}"
        );
        client
            .goto(&server.url("/play/x%3Ci%3E'%22&@1"))
            .expect("playground");
        button(&client, "Render").click().expect("render");
        wait_for_text(&client, "Rendered");
        let owned = client.execute("return [window.owned === undefined, document.scripts.length, document.querySelectorAll('main img, main i').length]", vec![]).expect("probe");
        assert_eq!(
            owned,
            json!([true, 1, 0]),
            "no script of the prompt ran, no element of it exists"
        );
        screenshot(&client, "markup");
    });
}

// ---------------------------------------------------------------------------------------
// Without a browser: headers, cookies, refusals, the switch

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent()
}

fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Signs in over HTTP: the session cookie and the page's CSRF value.
fn http_sign_in(server: &Server, token: &str) -> (String, String) {
    let origin = server.base.clone();
    let response = agent()
        .post(&server.url("/signin"))
        .header("origin", &origin)
        .content_type("application/x-www-form-urlencoded")
        .send(format!("token={token}&next=/"))
        .expect("sign in");
    assert_eq!(response.status().as_u16(), 303);
    let cookie = header(&response, "set-cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains(token), "the cookie never holds the token");
    let session = cookie.split(';').next().unwrap_or_default().to_string();
    let mut page = agent()
        .get(&server.url("/"))
        .header("cookie", &session)
        .call()
        .expect("list");
    let html = page.body_mut().read_to_string().expect("html");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a csrf value")
        .to_string();
    (session, csrf)
}

#[test]
fn every_page_carries_a_strict_policy_and_cannot_be_framed() {
    let repo = registry();
    let server = Server::start(&repo, &[]);
    for path in [
        "/",
        "/p/greet",
        "/p/greet@1?part=view",
        "/diff/greet",
        "/play/greet",
        "/edit/greet",
        "/point/greet",
        "/p/nope",
        "/assets/app.js",
    ] {
        let mut response = agent().get(&server.url(path)).call().expect("get");
        let csp = header(&response, "content-security-policy");
        assert!(
            csp.contains("script-src 'self'")
                && csp.contains("frame-ancestors 'none'")
                && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert_eq!(header(&response, "x-frame-options"), "DENY", "{path}");
        assert_eq!(
            header(&response, "x-content-type-options"),
            "nosniff",
            "{path}"
        );
        let body = response.body_mut().read_to_string().expect("body");
        // No inline script, no style attribute, no other host.
        if path != "/assets/app.js" {
            assert!(
                !body.contains("<script>")
                    && !body.contains(" style=")
                    && !body.contains("http://")
                    && !body.contains("https://"),
                "{path}: {body}"
            );
        }
    }
    // The reading pages carry their content without any script (a person with JavaScript off).
    let mut page = agent().get(&server.url("/p/greet")).call().expect("get");
    let html = page.body_mut().read_to_string().expect("body");
    assert!(
        html.contains("Be warm.")
            && html.contains("greet: warm and brief")
            && html.contains("Greet Ada 2 times.")
    );
}

#[test]
fn with_auth_the_pages_need_a_session_and_a_cross_site_form_is_refused() {
    let repo = registry();
    let auth = auth_file(&repo);
    let server = Server::start(&repo, &["--allow-writes", "--auth", &auth]);
    // No session: the sign-in page, which keeps where the person was going.
    let response = agent().get(&server.url("/p/greet")).call().expect("get");
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(header(&response, "location"), "/signin?next=%2Fp%2Fgreet");
    // A wrong token is refused on the page.
    let response = agent()
        .post(&server.url("/signin"))
        .content_type("application/x-www-form-urlencoded")
        .send("token=nope")
        .expect("post");
    assert_eq!(response.status().as_u16(), 401);
    let (session, csrf) = http_sign_in(&server, "alice-secret");
    let before = git(repo.path(), &["rev-parse", "main"]);
    let post = |origin: Option<&str>, body: String| {
        let mut request = agent()
            .post(&server.url("/point/greet"))
            .header("cookie", &session)
            .content_type("application/x-www-form-urlencoded");
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send(body).expect("post").status().as_u16()
    };
    // From another site, even with the right values: refused.
    assert_eq!(
        post(Some("http://127.0.0.1:1"), format!("csrf={csrf}&version=3")),
        403
    );
    // Without the page's value: refused.
    assert_eq!(post(Some(&server.base), "version=3".into()), 403);
    assert_eq!(post(Some(&server.base), "csrf=0000&version=3".into()), 403);
    assert_eq!(
        git(repo.path(), &["rev-parse", "main"]),
        before,
        "nothing was committed"
    );
    // From the page itself: committed, authored by the signed-in token.
    assert_eq!(
        post(Some(&server.base), format!("csrf={csrf}&version=3")),
        303
    );
    assert_eq!(
        git(repo.path(), &["log", "-1", "--format=%an <%ae>", "main"]).trim(),
        "alice <alice@example.com>"
    );
    // The token never appears in the server's log.
    assert!(!server.log().contains("alice-secret"));
    // A reader may look but not commit.
    let (reader, reader_csrf) = http_sign_in(&server, "reader-secret");
    let response = agent()
        .post(&server.url("/point/greet"))
        .header("cookie", &reader)
        .header("origin", &server.base)
        .content_type("application/x-www-form-urlencoded")
        .send(format!("csrf={reader_csrf}&version=1"))
        .expect("post");
    assert_eq!(response.status().as_u16(), 403);
}

#[test]
fn a_cross_site_page_cannot_make_a_signed_in_browser_commit() {
    let repo = registry();
    let auth = auth_file(&repo);
    let server = Server::start(&repo, &["--allow-writes", "--auth", &auth]);
    let before = git(repo.path(), &["rev-parse", "main"]);
    // Another site on loopback, whose page posts a form to the UI.
    let target = server.url("/point/greet");
    let evil = TcpListener::bind("127.0.0.1:0").expect("bind");
    let evil_url = format!(
        "http://localhost:{}/",
        evil.local_addr().expect("addr").port()
    );
    std::thread::spawn(move || {
        for stream in evil.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let page = format!("<!doctype html><title>prize</title><form method=post action=\"{target}\"><input name=version value=1><input name=csrf value=guess><button>Win a prize</button></form>");
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}", page.len());
        }
    });
    with_browser(|client| {
        sign_in(&client, &server, "alice-secret");
        client.goto(&evil_url).expect("the other site");
        button(&client, "Win a prize").click().expect("submit");
        std::thread::sleep(Duration::from_millis(500));
        let source = client.source().expect("source");
        assert!(source.contains("<title>Refused"), "{source}");
    });
    assert_eq!(
        git(repo.path(), &["rev-parse", "main"]),
        before,
        "nothing was committed"
    );
}

#[test]
fn with_writes_off_the_editor_explains_how_to_propose_and_hands_over_the_file() {
    let repo = registry();
    let server = Server::start(&repo, &[]);
    let mut page = agent().get(&server.url("/edit/greet")).call().expect("get");
    let html = page.body_mut().read_to_string().expect("html");
    assert!(
        html.contains("Propose this change")
            && html.contains("promptreg commit greet")
            && html.contains("Download the file")
    );
    assert!(!html.contains("value=\"commit\""), "no Commit button");
    let mut file = agent()
        .post(&server.url("/edit/greet"))
        .content_type("application/x-www-form-urlencoded")
        .send("action=download&source=name%3A+x%0A")
        .expect("download");
    assert_eq!(
        header(&file, "content-disposition"),
        "attachment; filename=\"greet.prompt.yaml\""
    );
    assert_eq!(file.body_mut().read_to_string().expect("body"), "name: x\n");
    let mut point = agent()
        .get(&server.url("/point/greet?version=3"))
        .call()
        .expect("get");
    let html = point.body_mut().read_to_string().expect("html");
    assert!(html.contains("promptreg set-default greet 3"), "{html}");
    // A commit through the UI is refused: writes are off.
    let response = agent()
        .post(&server.url("/edit/greet"))
        .content_type("application/x-www-form-urlencoded")
        .send("action=commit&source=x&message=m")
        .expect("post");
    assert_eq!(response.status().as_u16(), 403);
}

#[test]
fn no_ui_serves_the_api_alone() {
    let repo = registry();
    let server = Server::start(&repo, &["--no-ui"]);
    let response = agent().get(&server.url("/")).call().expect("get");
    assert_eq!(response.status().as_u16(), 404);
    assert!(header(&response, "content-type").starts_with("application/problem+json"));
    assert_eq!(
        agent()
            .get(&server.url("/v1/prompts"))
            .call()
            .expect("get")
            .status()
            .as_u16(),
        200
    );
}

#[test]
fn running_a_prompt_on_the_model_takes_the_analyze_scope() {
    let repo = registry();
    let auth = auth_file(&repo);
    let model = crate::common::model_server::ModelServer::answering("Hi there.");
    let endpoint = model.endpoint();
    let server = Server::start_with(
        &repo,
        &["--auth", &auth, "--analyses"],
        &[("PROMPTREG_ENDPOINT", endpoint.as_str())],
    );
    let run = |token: &str| {
        let (session, _) = http_sign_in(&server, token);
        let mut response = agent()
            .post(&server.url("/run/greet@1"))
            .header("cookie", &session)
            .header("origin", &server.base)
            .content_type("application/x-www-form-urlencoded")
            .send("var.customer=Ada")
            .expect("post");
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().expect("body"))
    };
    // Bob may read and write, not spend the model's budget.
    let (status, body) = run("bob-secret");
    assert_eq!(status, 403, "{body}");
    assert!(model.bodies().is_empty(), "the model was not asked");
    // Alice may: the reply streams back as text.
    assert_eq!(run("alice-secret"), (200, "Hi there.".to_string()));
}

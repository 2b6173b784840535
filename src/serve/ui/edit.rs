//! Changing prompts from the browser: the editor (validate, commit with `If-Match`, and what a
//! person sees when someone else committed meanwhile), new prompts, and moving a default or a
//! label after seeing what applications will get. Every commit goes through the API's write
//! routes, authored by the signed-in token; with writes off, the pages say how to propose the
//! change instead.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use serde_json::{json, Value};

use crate::serve::ui::pages::{compare, lines};
use crate::serve::ui::{
    api_path, check_csrf, encode_path, field, form, page, problem_page, query_value, Ui, UiRef,
    Viewer,
};

/// What the editor shows besides the text.
#[derive(Default)]
struct Editor {
    findings: Option<Vec<Value>>,
    problem: Option<Value>,
    conflict: Option<Value>,
    message: String,
    /// The older version whose text the editor started from.
    from: Option<u32>,
}

/// The editor's page for `id`, holding `text`, based on version `base` (none for a new
/// prompt).
async fn editor(
    ui: &Ui,
    viewer: &Viewer,
    id: &str,
    text: &str,
    base: Option<u64>,
    shown: Editor,
    status: StatusCode,
) -> Response {
    let mut context = viewer.context(ui);
    context["title"] = json!(format!("Edit {id}"));
    context["id"] = json!(id);
    context["text"] = json!(text);
    context["base"] = json!(base);
    context["findings"] = json!(shown.findings);
    context["problem"] = json!(shown.problem);
    context["conflict"] = json!(shown.conflict);
    context["message"] = json!(shown.message);
    context["from"] = json!(shown.from);
    context["file"] = json!(file_of(ui, id));
    page(status, "edit.html", context)
}

/// The file prompt `id` is kept in (or would be).
fn file_of(ui: &Ui, id: &str) -> String {
    let current = ui.state.current.load();
    current
        .snapshot
        .discovery()
        .prompts
        .get(id)
        .cloned()
        .unwrap_or_else(|| format!("{id}.prompt.yaml"))
}

/// The newest version of `id`: its document, or `None` for a prompt not there yet.
async fn latest(ui: &Ui, viewer: &Viewer, id: &str) -> Result<Option<(Value, String)>, Response> {
    let answer = ui
        .get(&api_path("/v1/prompts/", &format!("{id}@latest")), viewer)
        .await;
    if answer.status == StatusCode::NOT_FOUND
        && answer.body["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("unknown-prompt"))
    {
        return Ok(None);
    }
    if !answer.ok() {
        return Err(problem_page(ui, viewer, &answer));
    }
    let tag = answer
        .headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Ok(Some((answer.body, tag)))
}

/// The editor, on the newest version (`?from=N` starts from version N's text; a prompt that
/// is not there yet starts from the `new` skeleton).
pub(crate) async fn form_page(
    State(ui): State<UiRef>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    let newest = match latest(&ui, &viewer, &id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let Some((doc, _)) = newest else {
        if let Err(err) = crate::write::check_id(&id) {
            let mut context = viewer.context(&ui);
            context["title"] = json!("New prompt");
            context["problem"] = json!({ "detail": err.to_string() });
            return page(StatusCode::BAD_REQUEST, "problem.html", context);
        }
        let text = crate::write::skeleton(&id);
        return editor(
            &ui,
            &viewer,
            &id,
            &text,
            None,
            Editor::default(),
            StatusCode::OK,
        )
        .await;
    };
    let base = doc["version"].as_u64();
    let from = query_value(uri.query(), "from").and_then(|v| v.parse::<u32>().ok());
    let from = from.filter(|n| Some(u64::from(*n)) != base);
    let text = match from {
        Some(n) => {
            let old = ui
                .get(&api_path("/v1/prompts/", &format!("{id}@{n}")), &viewer)
                .await;
            if !old.ok() {
                return problem_page(&ui, &viewer, &old);
            }
            old.body["source"].as_str().unwrap_or_default().to_string()
        }
        _ => doc["source"].as_str().unwrap_or_default().to_string(),
    };
    editor(
        &ui,
        &viewer,
        &id,
        &text,
        base,
        Editor::default(),
        StatusCode::OK,
    )
    .await
}

/// The editor's buttons: `validate`, `commit`, `download`.
pub(crate) async fn submit(
    State(ui): State<UiRef>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let form = form(&body);
    let text = field(&form, "source")
        .unwrap_or_default()
        .replace("\r\n", "\n");
    let message = field(&form, "message").unwrap_or_default();
    let base = field(&form, "base").and_then(|b| b.parse::<u64>().ok());
    match field(&form, "action").as_deref() {
        Some("download") => download(&file_of(&ui, &id), text),
        Some("commit") => {
            if let Some(refused) = check_csrf(&ui, &viewer, &body) {
                return refused;
            }
            commit(&ui, &viewer, &id, &text, base, message).await
        }
        _ => {
            let shown = Editor {
                findings: Some(findings(&ui, &id, &text).await),
                message,
                ..Editor::default()
            };
            editor(&ui, &viewer, &id, &text, base, shown, StatusCode::OK).await
        }
    }
}

/// What `validate` reports for the text, checked on the blocking pool (it reads the commit's
/// partials and compiles).
async fn findings(ui: &Ui, id: &str, text: &str) -> Vec<Value> {
    let current = ui.state.current.load_full();
    let (id, text) = (id.to_string(), text.to_string());
    let checked =
        crate::serve::pool::run(move || crate::write::findings(&current.snapshot, &id, &text))
            .await;
    let finding = |code: &str, message: String| json!({ "line": 0, "column": 0, "code": code, "message": message, "error": true });
    match checked {
        Ok(Ok(found)) => found
            .iter()
            .map(|d| {
                json!({
                    "line": d.line, "column": d.column, "code": d.code.as_str(),
                    "message": d.message, "hint": d.hint, "error": d.is_error(),
                })
            })
            .collect(),
        Ok(Err(err)) => vec![finding(err.kind().as_str(), err.to_string())],
        Err(_) => vec![finding(
            "busy",
            "the check could not run now (every slot was taken, or it took too long); try again"
                .into(),
        )],
    }
}

/// The edited text as a file to save, for a server that takes no writes.
fn download(file: &str, text: String) -> Response {
    let name = file.rsplit('/').next().unwrap_or(file);
    let name: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    let mut response = (StatusCode::OK, text).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/yaml; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// Commits the text as the next version of `id`, if the newest version is still `base`;
/// otherwise shows what the other person changed, keeping this person's text.
async fn commit(
    ui: &Ui,
    viewer: &Viewer,
    id: &str,
    text: &str,
    base: Option<u64>,
    message: String,
) -> Response {
    if !viewer.may_write {
        let shown = Editor {
            problem: Some(
                json!({ "detail": "this server does not take commits from you: save the file and propose it" }),
            ),
            message,
            ..Editor::default()
        };
        return editor(ui, viewer, id, text, base, shown, StatusCode::FORBIDDEN).await;
    }
    let newest = match latest(ui, viewer, id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let (now, tag) = match &newest {
        Some((doc, tag)) => (doc["version"].as_u64(), Some(tag.clone())),
        None => (None, None),
    };
    if now != base {
        return conflict(ui, viewer, id, text, base, now, message).await;
    }
    // `If-Match` with the newest version's validator: a commit that lands between this check
    // and the write is caught by the write itself. A new prompt must not exist yet.
    let if_match = tag.as_deref();
    let answer = ui
        .api(
            Method::POST,
            &api_path("/v1/prompts/", id),
            viewer,
            if_match,
            Some(json!({ "message": message, "source": text })),
        )
        .await;
    if answer.status == StatusCode::PRECONDITION_FAILED {
        let now = match latest(ui, viewer, id).await {
            Ok(found) => found.and_then(|(doc, _)| doc["version"].as_u64()),
            Err(page) => return page,
        };
        return conflict(ui, viewer, id, text, base, now, message).await;
    }
    if !answer.ok() {
        let shown = Editor {
            findings: answer.body["diagnostics"].as_array().map(|d| {
                d.iter()
                    .map(|d| json!({ "line": d["line"], "column": d["column"], "code": d["code"], "message": d["message"], "hint": d["hint"], "error": true }))
                    .collect()
            }),
            problem: Some(answer.body.clone()),
            message,
            ..Editor::default()
        };
        return editor(ui, viewer, id, text, base, shown, answer.status).await;
    }
    let version = answer.body["version"]
        .as_u64()
        .map_or(String::new(), |v| format!("@{v}"));
    Redirect::to(&format!("/p/{}{version}", encode_path(id))).into_response()
}

/// The editor after someone else committed `id` since `base`: their versions and their
/// change, this person's text kept, to commit on top of theirs or to discard.
async fn conflict(
    ui: &Ui,
    viewer: &Viewer,
    id: &str,
    text: &str,
    base: Option<u64>,
    now: Option<u64>,
    message: String,
) -> Response {
    let versions = ui.get(&api_path("/v1/versions/", id), viewer).await;
    let theirs: Vec<Value> = versions.body["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["version"].as_u64() > base)
        .cloned()
        .collect();
    let mut their_change = Value::Null;
    let mut against_mine = Value::Null;
    if let (Some(base), Some(now)) = (base, now) {
        if let Ok(diff) = compare(ui, id, base as u32, now as u32).await {
            their_change = diff["source"].clone();
        }
    }
    if let Some(now) = now {
        let newest = ui
            .get(&api_path("/v1/prompts/", &format!("{id}@{now}")), viewer)
            .await;
        let source = newest.body["source"].as_str().unwrap_or_default();
        against_mine = json!(lines(&crate::check::diff::unified(
            source,
            text,
            &format!("{id}@{now} (theirs)"),
            "your text"
        )));
    }
    let shown = Editor {
        conflict: Some(json!({
            "base": base, "now": now, "theirs": theirs,
            "their_change": their_change, "against_mine": against_mine,
        })),
        message,
        ..Editor::default()
    };
    // The form now builds on their version: committing again puts this text on top of it.
    editor(ui, viewer, id, text, now, shown, StatusCode::CONFLICT).await
}

/// A new prompt: its id, from the skeleton, or generated by the model from a description.
pub(crate) async fn new_form(
    State(ui): State<UiRef>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let mut context = viewer.context(&ui);
    context["title"] = json!("New prompt");
    page(StatusCode::OK, "new.html", context)
}

/// Starts the editor on a new prompt.
pub(crate) async fn new_submit(
    State(ui): State<UiRef>,
    Extension(viewer): Extension<Viewer>,
    body: axum::body::Bytes,
) -> Response {
    let form = form(&body);
    let id = field(&form, "id").unwrap_or_default().trim().to_string();
    let description = field(&form, "description").unwrap_or_default();
    let refuse = |detail: String| {
        let mut context = viewer.context(&ui);
        context["title"] = json!("New prompt");
        context["id"] = json!(id);
        context["description"] = json!(description);
        context["error"] = json!(detail);
        page(StatusCode::BAD_REQUEST, "new.html", context)
    };
    if let Err(err) = crate::write::check_id(&id) {
        return refuse(err.to_string());
    }
    if ui
        .state
        .current
        .load()
        .snapshot
        .discovery()
        .prompts
        .contains_key(&id)
    {
        return refuse(format!("`{id}` exists already: edit it instead"));
    }
    let text = match field(&form, "action").as_deref() {
        Some("generate") if !viewer.may(&ui, crate::serve::auth::Scope::Analyze) => {
            return refuse("your token may not use the model (it needs the analyze scope)".into())
        }
        Some("generate") => match generate(&ui, &id, &description).await {
            Ok(text) => text,
            Err(why) => return refuse(why),
        },
        _ => crate::write::skeleton(&id),
    };
    let shown = Editor {
        findings: Some(findings(&ui, &id, &text).await),
        message: format!("Add {id}"),
        ..Editor::default()
    };
    editor(&ui, &viewer, &id, &text, None, shown, StatusCode::OK).await
}

/// A prompt file written by the server's model from a description.
async fn generate(ui: &Ui, id: &str, description: &str) -> Result<String, String> {
    let Some(analyst) = &ui.state.analyst else {
        return Err(
            "this server has no model: start it with --analyses to generate prompts".into(),
        );
    };
    if description.trim().is_empty() {
        return Err("say what the prompt is for, to generate it".into());
    }
    let client = analyst.client();
    let (id, description) = (id.to_string(), description.to_string());
    tokio::task::spawn_blocking(move || {
        crate::model::generate::generate(client.client(), &id, &description)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("the generation stopped: {e}"))?
}

/// What moving a default or a label to a version changes for applications.
pub(crate) async fn point_form(
    State(ui): State<UiRef>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    let version = query_value(uri.query(), "version").and_then(|v| v.parse::<u32>().ok());
    let label = query_value(uri.query(), "label").filter(|l| !l.is_empty());
    point_page(&ui, &viewer, &id, version, label, None, StatusCode::OK).await
}

async fn point_page(
    ui: &Ui,
    viewer: &Viewer,
    id: &str,
    version: Option<u32>,
    label: Option<String>,
    problem: Option<Value>,
    status: StatusCode,
) -> Response {
    let manifest = ui.get("/v1/manifest", viewer).await;
    let versions = ui.get(&api_path("/v1/versions/", id), viewer).await;
    if !versions.ok() {
        return problem_page(ui, viewer, &versions);
    }
    let latest = versions.body["latest"].as_u64().unwrap_or(1) as u32;
    let target = version.unwrap_or(latest);
    let now = match &label {
        Some(label) => manifest.body["labels"][label][id]
            .as_u64()
            .map(|v| v as u32),
        None => versions.body["default"].as_u64().map(|v| v as u32),
    };
    let mut context = viewer.context(ui);
    if let Some(now) = now.filter(|n| *n != target) {
        match compare(ui, id, now, target).await {
            Ok(diff) => context["diff"] = diff,
            Err(problem) => context["diff_problem"] = problem,
        }
    }
    context["title"] = json!(format!(
        "Move {} of {id}",
        label.as_deref().unwrap_or("the default")
    ));
    context["id"] = json!(id);
    context["label"] = json!(label);
    context["now"] = json!(now);
    context["target"] = json!(target);
    context["versions"] = versions.body["versions"].clone();
    context["manifest_etag"] = json!(manifest
        .headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok()));
    context["problem"] = json!(problem);
    page(status, "point.html", context)
}

/// Commits the move to `defaults.yaml`, if it did not change since the page was shown.
pub(crate) async fn point_submit(
    State(ui): State<UiRef>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(refused) = check_csrf(&ui, &viewer, &body) {
        return refused;
    }
    let form = form(&body);
    let version = field(&form, "version").and_then(|v| v.parse::<u32>().ok());
    let label = field(&form, "label").filter(|l| !l.is_empty());
    let message = field(&form, "message").filter(|m| !m.trim().is_empty());
    let Some(target) = version else {
        return point_page(
            &ui,
            &viewer,
            &id,
            None,
            label,
            Some(json!({ "detail": "choose a version" })),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    if !viewer.may_write {
        return point_page(
            &ui,
            &viewer,
            &id,
            version,
            label,
            Some(json!({ "detail": "this server does not take commits from you" })),
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let uri = match &label {
        Some(label) => format!(
            "/v1/manifest/labels/{}/{}",
            encode_path(label),
            encode_path(&id)
        ),
        None => api_path("/v1/manifest/defaults/", &id),
    };
    let etag = field(&form, "etag").filter(|e| !e.is_empty());
    let answer = ui
        .api(
            Method::PUT,
            &uri,
            &viewer,
            etag.as_deref(),
            Some(json!({ "version": target, "message": message })),
        )
        .await;
    if answer.status == StatusCode::PRECONDITION_FAILED {
        let problem = json!({ "detail": "defaults.yaml changed since this page was shown: check what applications get now, then confirm again" });
        return point_page(
            &ui,
            &viewer,
            &id,
            version,
            label,
            Some(problem),
            StatusCode::CONFLICT,
        )
        .await;
    }
    if !answer.ok() {
        return point_page(
            &ui,
            &viewer,
            &id,
            version,
            label,
            Some(answer.body),
            answer.status,
        )
        .await;
    }
    Redirect::to(&format!("/p/{}", encode_path(&id))).into_response()
}

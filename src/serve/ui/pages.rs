//! The reading pages: the prompt list, a prompt at a version with its versions panel, and the
//! diff of two versions. Each asks the API for its data (the list and a prompt's document are
//! the JSON routes' own answers); the diff compares with the library's `diff --rendered`.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use axum::Extension;
use serde_json::{json, Value};

use crate::serve::ui::{
    api_path, encode_query, page, problem_page, query_value, Answer, Ui, UiRef, Viewer,
};

/// The prompt list, filtered by tag and text.
pub(crate) async fn list(
    State(ui): State<UiRef>,
    Extension(viewer): Extension<Viewer>,
    uri: Uri,
) -> Response {
    let q = query_value(uri.query(), "q").unwrap_or_default();
    let tag = query_value(uri.query(), "tag").unwrap_or_default();
    let cursor = query_value(uri.query(), "cursor");
    let mut ask = "/v1/prompts?limit=1000".to_string();
    for (name, value) in [
        ("q", Some(&q)),
        ("tag", Some(&tag)),
        ("cursor", cursor.as_ref()),
    ] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            ask.push_str(&format!("&{name}={}", encode_query(value)));
        }
    }
    let answer = ui.get(&ask, &viewer).await;
    if !answer.ok() {
        return problem_page(&ui, &viewer, &answer);
    }
    // Every tag of the registry, for the filter (from the unfiltered list when filtered).
    let tags = if q.is_empty() && tag.is_empty() && cursor.is_none() {
        tags_of(&answer.body)
    } else {
        let all = ui.get("/v1/prompts?limit=1000", &viewer).await;
        tags_of(&all.body)
    };
    let mut context = viewer.context(&ui);
    context["title"] = json!("Prompts");
    context["page"] = answer.body;
    context["q"] = json!(q);
    context["tag"] = json!(tag);
    context["tags"] = json!(tags);
    page(StatusCode::OK, "list.html", context)
}

fn tags_of(page: &Value) -> Vec<String> {
    let mut tags: Vec<String> = page["prompts"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["tags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

/// The values a version is shown rendered with: its first test case, else the variables'
/// defaults (what the render route does with no values).
fn preview_body(doc: &Value) -> Value {
    let has_cases = doc["testData"].as_array().is_some_and(|c| !c.is_empty());
    if has_cases {
        json!({ "testCase": 0 })
    } else {
        json!({})
    }
}

/// The reference of a version in a document: `ID@N`, or `ID@COMMIT` without numbers.
pub(crate) fn pinned(doc: &Value) -> String {
    let id = doc["id"].as_str().unwrap_or_default();
    match doc["version"].as_u64() {
        Some(n) => format!("{id}@{n}"),
        None => format!("{id}@{}", doc["commit"].as_str().unwrap_or_default()),
    }
}

/// One prompt at a version (the default unless the path names one), with its versions panel.
/// `?part=view` answers only the version's view, for the panel's hover preview.
pub(crate) async fn prompt(
    State(ui): State<UiRef>,
    Extension(viewer): Extension<Viewer>,
    Path(reference): Path<String>,
    uri: Uri,
) -> Response {
    let doc = ui
        .get(
            &format!("{}?expand=versions", api_path("/v1/prompts/", &reference)),
            &viewer,
        )
        .await;
    if !doc.ok() {
        return problem_page(&ui, &viewer, &doc);
    }
    let rendered = ui
        .api(
            Method::POST,
            &api_path("/v1/render/", &pinned(&doc.body)),
            &viewer,
            None,
            Some(preview_body(&doc.body)),
        )
        .await;
    let mut context = viewer.context(&ui);
    context["title"] = json!(doc.body["id"]);
    context["doc"] = doc.body.clone();
    context["pinned"] = json!(pinned(&doc.body));
    context["chosen"] = json!(reference.contains('@'));
    context["all_labels"] = json!(ui
        .state
        .current
        .load()
        .snapshot
        .manifest()
        .labels
        .keys()
        .collect::<Vec<_>>());
    render_into(&mut context, &rendered);
    let name = match query_value(uri.query(), "part").as_deref() {
        Some("view") => "view.html",
        _ => "prompt.html",
    };
    page(StatusCode::OK, name, context)
}

/// The rendered messages of an answer, or its problem, into a page's context.
pub(crate) fn render_into(context: &mut Value, rendered: &Answer) {
    if rendered.ok() {
        context["rendered"] = rendered.body.clone();
    } else {
        context["render_problem"] = rendered.body.clone();
    }
}

/// The versions of a prompt as the API lists them, for the live banner.
pub(crate) async fn versions(
    State(ui): State<UiRef>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Response {
    ui.get_raw(&api_path("/v1/versions/", &id), &viewer, None)
        .await
}

/// The diff of two versions of a prompt (`?a=N&b=M`; the default and the latest when not
/// given): the source, and each test case rendered, as `promptreg diff --rendered` shows them.
pub(crate) async fn diff(
    State(ui): State<UiRef>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    let versions = ui.get(&api_path("/v1/versions/", &id), &viewer).await;
    if !versions.ok() {
        return problem_page(&ui, &viewer, &versions);
    }
    let number =
        |name: &str| query_value(uri.query(), name).and_then(|v| v.trim().parse::<u32>().ok());
    let latest = versions.body["latest"].as_u64().unwrap_or(1) as u32;
    let default = versions.body["default"]
        .as_u64()
        .map_or(latest, |d| d as u32);
    let a = number("a").unwrap_or(if default == latest {
        latest.saturating_sub(1).max(1)
    } else {
        default
    });
    let b = number("b").unwrap_or(latest);
    let compared = compare(&ui, &id, a, b).await;
    let mut context = viewer.context(&ui);
    context["title"] = json!(format!("{id}: v{a} against v{b}"));
    context["id"] = json!(id);
    context["versions"] = versions.body["versions"].clone();
    context["a"] = json!(a);
    context["b"] = json!(b);
    match compared {
        Ok(diff) => context["diff"] = diff,
        Err(problem) => context["problem"] = problem,
    }
    page(StatusCode::OK, "diff.html", context)
}

/// The source diff and the rendered diff of each test case between versions `a` and `b` of
/// `id`, on the render pool.
pub(crate) async fn compare(ui: &Ui, id: &str, a: u32, b: u32) -> Result<Value, Value> {
    let state = ui.state.clone();
    let id = id.to_string();
    let work = move || -> Result<Value, Value> {
        let current = state.current.load_full();
        let side = |n: u32| {
            let reference = format!("{id}@{n}");
            let (parsed, resolved) = crate::serve::prompts::resolve(
                &current,
                &reference,
                &crate::serve::prompts::VersionQuery::default(),
            )
            .map_err(|p| json!(p))?;
            state
                .compiled(&current, parsed.id(), &resolved)
                .map_err(|e| json!({ "detail": e.to_string() }))
        };
        let (old, new) = (side(a)?, side(b)?);
        let names = (format!("{id}@{a}"), format!("{id}@{b}"));
        let source =
            crate::check::diff::unified(old.source_text(), new.source_text(), &names.0, &names.1);
        let (before, after) = (Ok(&*old), Ok(&*new));
        let cases = crate::check::diff::render_cases(
            before.clone(),
            after.clone(),
            crate::check::diff::Cases::own(before, after),
            (&names.0, &names.1),
        );
        Ok(
            json!({ "source": lines(&source), "cases": cases.iter().map(|c| json!({
            "test": c.test,
            "same": c.same,
            "lines": lines(&c.diff),
            "tokens_before": c.tokens_before,
            "tokens_after": c.tokens_after,
            "error_before": c.error_before,
            "error_after": c.error_after,
        })).collect::<Vec<_>>() }),
        )
    };
    match crate::serve::pool::run(work).await {
        Ok(compared) => compared,
        Err(_) => Err(
            json!({ "detail": "the comparison could not run now (every slot was taken, or it took too long); try again" }),
        ),
    }
}

/// A unified diff as lines with their kind (`add`, `del`, `hunk`, `head`, `same`), for
/// colouring by class.
pub(crate) fn lines(diff: &str) -> Vec<Value> {
    diff.lines()
        .map(|line| {
            let kind = if line.starts_with("+++") || line.starts_with("---") {
                "head"
            } else if line.starts_with("@@") {
                "hunk"
            } else if line.starts_with('+') {
                "add"
            } else if line.starts_with('-') {
                "del"
            } else {
                "same"
            };
            json!({ "kind": kind, "text": line })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::serve::ui::pages::*;

    #[test]
    fn diff_lines_are_classed() {
        let kinds: Vec<String> = lines("--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n z\n")
            .iter()
            .map(|l| l["kind"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(kinds, ["head", "head", "hunk", "del", "add", "same"]);
    }
}

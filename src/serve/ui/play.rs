//! The playground: a form made from a version's typed variables, rendered by the API's render
//! route (so its errors are the API's), the request to copy, a streamed run on the server's
//! model, and the analyses as panels. Also the event stream the pages listen to.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Map, Value};

use crate::serve::auth::Scope;
use crate::serve::ui::pages::{pinned, render_into};
use crate::serve::ui::{api_path, field, form, page, problem_page, query_value, Ui, UiRef, Viewer};

/// The analyses a version can be given.
const ANALYSES: [&str; 4] = ["score", "risk", "balance", "heatmap"];

/// What kind of field a variable's type is shown as.
fn input_kind(ty: &str) -> &'static str {
    match ty {
        "number" | "integer" => "number",
        "boolean" => "checkbox",
        "array" | "object" => "json",
        _ => "text",
    }
}

/// The text a value is shown as in its field.
fn shown(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

/// The fields of the form: each variable with its kind, its value as text, and its error.
fn fields(doc: &Value, values: &Map<String, Value>, errors: &Map<String, Value>) -> Vec<Value> {
    doc["variables"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let name = v["name"].as_str().unwrap_or_default();
            let value = values
                .get(name)
                .or(v.get("default"))
                .unwrap_or(&Value::Null);
            json!({
                "name": name,
                "type": v["type"],
                "kind": input_kind(v["type"].as_str().unwrap_or("string")),
                "required": v["required"],
                "description": v["description"],
                "text": shown(value),
                "checked": value.as_bool().unwrap_or(false),
                "error": errors.get(name),
            })
        })
        .collect()
}

/// The values a submitted form gives, by the variables' types, and the fields that do not
/// parse. An empty optional field is left out, so its default applies.
fn values_of(doc: &Value, form: &[(String, String)]) -> (Map<String, Value>, Map<String, Value>) {
    let mut values = Map::new();
    let mut errors = Map::new();
    for v in doc["variables"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or_default();
        let ty = v["type"].as_str().unwrap_or("string");
        let given = field(form, &format!("var.{name}"));
        if ty == "boolean" {
            values.insert(name.into(), Value::Bool(given.as_deref() == Some("true")));
            continue;
        }
        // An empty field gives no value: its default applies, or the API names it missing.
        let Some(text) = given.filter(|t| !t.trim().is_empty()) else {
            continue;
        };
        let parsed = match ty {
            "integer" => text
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| "a whole number is needed"),
            "number" => text
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number))
                .ok_or("a number is needed"),
            "array" | "object" => serde_json::from_str::<Value>(&text)
                .ok()
                .filter(|j| (ty == "array") == j.is_array() && (ty == "object") == j.is_object())
                .ok_or(if ty == "array" {
                    "a JSON list is needed, like [\"a\", \"b\"]"
                } else {
                    "a JSON object is needed, like {\"key\": \"value\"}"
                }),
            _ => Ok(Value::String(text.clone())),
        };
        match parsed {
            Ok(value) => {
                values.insert(name.into(), value);
            }
            Err(why) => {
                errors.insert(name.into(), json!(why));
            }
        }
    }
    (values, errors)
}

/// A JSON value as a Python literal (`True`, `None`; strings in JSON's escapes, which Python
/// reads the same).
fn python(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(_) => value.to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(python).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), python(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The fields a render problem names (a missing variable, a value of the wrong type).
fn problem_fields(doc: &Value, problem: &Value) -> Map<String, Value> {
    let detail = problem["detail"].as_str().unwrap_or_default();
    doc["variables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .filter(|name| detail.contains(&format!("`{name}`")))
        .map(|name| (name.to_string(), json!(detail)))
        .collect()
}

/// The playground's page for a reference, with the given values.
async fn playground(
    ui: &Ui,
    viewer: &Viewer,
    reference: &str,
    submitted: Option<&[(String, String)]>,
    case: Option<usize>,
) -> Response {
    let doc = ui.get(&api_path("/v1/prompts/", reference), viewer).await;
    if !doc.ok() {
        return problem_page(ui, viewer, &doc);
    }
    let doc = doc.body;
    let pinned = pinned(&doc);
    let mut context = viewer.context(ui);
    let (mut values, mut errors) = match submitted {
        Some(form) => values_of(&doc, form),
        None => (Map::new(), Map::new()),
    };
    if let Some(case) = case.and_then(|i| doc["testData"].get(i)) {
        values = case.as_object().cloned().unwrap_or_default();
    }
    if let Some(form) = submitted.filter(|_| errors.is_empty()) {
        let action = field(form, "action").unwrap_or_default();
        let body = json!({ "variables": values });
        let rendered = ui
            .api(
                Method::POST,
                &api_path("/v1/render/", &pinned),
                viewer,
                None,
                Some(body.clone()),
            )
            .await;
        if !rendered.ok() {
            errors.extend(problem_fields(&doc, &rendered.body));
        }
        render_into(&mut context, &rendered);
        context["body"] = json!(serde_json::to_string_pretty(&body).unwrap_or_default());
        context["json_body"] = json!(body.to_string());
        context["python_body"] = json!(python(&body));
        if let Some(analysis) = action.strip_prefix("analyze:") {
            context["analysis"] = analyze(ui, viewer, analysis, &pinned).await;
        }
    }
    context["title"] = json!(format!("Playground: {pinned}"));
    context["doc"] = doc.clone();
    context["pinned"] = json!(pinned);
    context["fields"] = json!(fields(&doc, &values, &errors));
    context["analyses"] = json!(ANALYSES);
    page(StatusCode::OK, "play.html", context)
}

/// An analysis of a version, through the API's route (the server's judge model).
async fn analyze(ui: &Ui, viewer: &Viewer, name: &str, pinned: &str) -> Value {
    if !ANALYSES.contains(&name) {
        return json!({ "name": name, "problem": { "detail": "no such analysis" } });
    }
    if !viewer.may(ui, Scope::Analyze) {
        return json!({ "name": name, "problem": { "detail": "your token may not run analyses" } });
    }
    let answer = ui
        .api(
            Method::POST,
            &format!(
                "/v1/analyze/{name}/{}",
                crate::serve::ui::encode_path(pinned)
            ),
            viewer,
            None,
            Some(json!({})),
        )
        .await;
    match answer.ok() {
        true => {
            json!({ "name": name, "doc": answer.body, "pretty": serde_json::to_string_pretty(&answer.body["result"]).unwrap_or_default() })
        }
        false => json!({ "name": name, "problem": answer.body }),
    }
}

/// The playground of a version (`?case=N` fills the form from test case N).
pub(crate) async fn form_page(
    State(ui): State<UiRef>,
    Extension(viewer): Extension<Viewer>,
    Path(reference): Path<String>,
    uri: Uri,
) -> Response {
    let case = query_value(uri.query(), "case").and_then(|c| c.parse::<usize>().ok());
    playground(&ui, &viewer, &reference, None, case).await
}

/// Renders (or analyses) with the submitted values.
pub(crate) async fn render(
    State(ui): State<UiRef>,
    Extension(viewer): Extension<Viewer>,
    Path(reference): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let form = form(&body);
    playground(&ui, &viewer, &reference, Some(&form), None).await
}

/// Runs a version on the server's model with the submitted values, streaming the reply as
/// plain text.
pub(crate) async fn run(
    State(ui): State<UiRef>,
    Extension(viewer): Extension<Viewer>,
    Path(reference): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let plain = |status: StatusCode, text: String| {
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response()
    };
    let Some(analyst) = &ui.state.analyst else {
        return plain(
            StatusCode::FORBIDDEN,
            "this server has no model: start it with --analyses to run prompts here".into(),
        );
    };
    // A run spends the model's budget, as an analysis does: it takes the same scope.
    if !viewer.may(&ui, Scope::Analyze) {
        return plain(
            StatusCode::FORBIDDEN,
            "your token may not run prompts on the model (it needs the analyze scope)".into(),
        );
    }
    let doc = ui.get(&api_path("/v1/prompts/", &reference), &viewer).await;
    if !doc.ok() {
        return plain(
            doc.status,
            doc.body["detail"].as_str().unwrap_or("not found").into(),
        );
    }
    let (values, errors) = values_of(&doc.body, &form(&body));
    if !errors.is_empty() {
        return plain(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("fix the fields first: {}", Value::Object(errors)),
        );
    }
    let rendered = ui
        .api(
            Method::POST,
            &api_path("/v1/render/", &pinned(&doc.body)),
            &viewer,
            None,
            Some(json!({ "variables": values })),
        )
        .await;
    if !rendered.ok() {
        return plain(
            rendered.status,
            rendered.body["detail"]
                .as_str()
                .unwrap_or("does not render")
                .into(),
        );
    }
    let client = analyst.client();
    let mut request = match rendered.body.get("request") {
        Some(Value::Object(body)) => body.clone(),
        _ => {
            let mut body = Map::new();
            body.insert("messages".into(), rendered.body["messages"].clone());
            body
        }
    };
    let config = client.client().config();
    if let Some(model) = config.model.clone().or_else(|| {
        request
            .get("model")
            .is_none()
            .then(|| config.fallback_model.clone())
            .flatten()
    }) {
        request.insert("model".into(), Value::String(model));
    }
    request.insert("stream".into(), Value::Bool(true));
    let (sender, receiver) = tokio::sync::mpsc::channel::<String>(64);
    tokio::task::spawn_blocking(move || {
        let mut on_delta = |piece: &str| {
            let _ = sender.blocking_send(piece.to_string());
        };
        if let Err(err) = client
            .client()
            .complete(&Value::Object(request), &mut on_delta)
        {
            let _ = sender.blocking_send(format!("\n[the model failed: {err}]"));
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let piece = receiver.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(piece), receiver))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The API's event stream, for the pages of a signed-in person.
pub(crate) async fn events(
    State(ui): State<UiRef>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
) -> Response {
    ui.get_raw(
        "/v1/events",
        &viewer,
        headers.get("last-event-id").and_then(|v| v.to_str().ok()),
    )
    .await
}

#[cfg(test)]
mod tests {
    use crate::serve::ui::play::*;

    fn doc() -> Value {
        json!({ "variables": [
            { "name": "n", "type": "integer", "required": true },
            { "name": "x", "type": "number", "required": false },
            { "name": "b", "type": "boolean", "required": false, "default": true },
            { "name": "l", "type": "array", "required": false },
            { "name": "s", "type": "string", "required": false, "default": "hi" },
        ]})
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_form_becomes_typed_values_and_bad_fields_are_named() {
        let (values, errors) = values_of(
            &doc(),
            &pairs(&[
                ("var.n", "3"),
                ("var.x", "1.5"),
                ("var.l", "[1, 2]"),
                ("var.s", ""),
            ]),
        );
        assert_eq!(
            Value::Object(values),
            json!({ "n": 3, "x": 1.5, "b": false, "l": [1, 2] })
        );
        assert!(errors.is_empty());
        let (_, errors) = values_of(&doc(), &pairs(&[("var.n", "three"), ("var.l", "{}")]));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors["n"]
            .as_str()
            .is_some_and(|e| e.contains("whole number")));
    }

    #[test]
    fn each_type_has_its_field() {
        let fields = fields(&doc(), &Map::new(), &Map::new());
        let kinds: Vec<&str> = fields.iter().filter_map(|f| f["kind"].as_str()).collect();
        assert_eq!(kinds, ["number", "number", "checkbox", "json", "text"]);
        assert_eq!(fields[2]["checked"], json!(true));
        assert_eq!(fields[4]["text"], json!("hi"));
    }

    #[test]
    fn values_become_python_literals() {
        let body =
            json!({ "variables": { "a": true, "b": null, "c": "say \"true\"", "d": [1, false] } });
        assert_eq!(
            python(&body),
            r#"{"variables": {"a": True, "b": None, "c": "say \"true\"", "d": [1, False]}}"#
        );
    }

    #[test]
    fn a_missing_variable_is_named_at_its_field() {
        let named = problem_fields(&doc(), &json!({ "detail": "missing variables: `n`" }));
        assert!(named.contains_key("n") && named.len() == 1);
    }
}

//! Rendering fixtures: each file of `tests/inputs/render/` is a small registry (`files`), a
//! reference to render and values; the snapshot holds the rendered JSON or the error.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use promptreg::registry::reference::Reference;
use promptreg::{Error, Registry};

use crate::common::registry_dir;

#[derive(Deserialize)]
struct Case {
    files: BTreeMap<String, String>,
    render: String,
    #[serde(default)]
    vars: Map<String, Value>,
    test: Option<usize>,
    /// The registry root inside the written files, when it is not their top.
    root: Option<String>,
}

/// Renders a case to the text a person would see: the JSON of the rendered prompt, or the
/// error with its findings (file, line, column, snippet).
fn run_case(case: &Case) -> String {
    let dir = registry_dir(&case.files);
    let root = dir.path().join(case.root.as_deref().unwrap_or("."));
    let registry = Registry::open(&root).expect("open");
    let result = Reference::parse(&case.render)
        .and_then(|r| registry.load(&r))
        .and_then(|loaded| loaded.compile())
        .and_then(|compiled| {
            let mut values = Map::new();
            if let Some(n) = case.test {
                values.extend(compiled.prompt().test_data[n].clone());
            }
            values.extend(case.vars.clone());
            compiled.render(&values).map_err(Error::from)
        });
    match result {
        Ok(rendered) => serde_json::to_string_pretty(&rendered).expect("json"),
        Err(err) => describe(&err, &registry).replace(&dir.path().display().to_string(), "[ROOT]"),
    }
}

fn describe(err: &Error, registry: &Registry) -> String {
    let lookup = |f: &str| registry.read_work_text(f);
    let mut out = format!("error: {err}\n");
    let diagnostics = match err {
        Error::Invalid { diagnostics, .. } => diagnostics.clone(),
        Error::Render(e) => e.diagnostic().cloned().into_iter().collect(),
        _ => vec![],
    };
    for d in diagnostics {
        out.push_str(&format!("\n{d}\n"));
        out.push_str(&d.render_human(lookup(&d.file).as_deref(), false));
        out.push('\n');
    }
    out
}

#[test]
fn render_fixtures() {
    insta::glob!("../inputs", "render/*.yaml", |path| {
        let text = std::fs::read_to_string(path).expect("fixture");
        let case: Case = serde_yaml::from_str(&text).expect("fixture parses");
        let output = run_case(&case);
        insta::with_settings!({ description => text.clone(), omit_expression => true, prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(output);
        });
    });
}

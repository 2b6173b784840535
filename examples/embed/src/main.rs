//! Embeds a registry: opens a clone, commits a new version through the library's write API,
//! points a label at it, resolves `ID@label` and renders it.
//!
//! Run it on a git repository that holds `greet.prompt.yaml` (its first version committed):
//! `cargo run -- PATH`.

use promptreg::write::{self, Edit};
use promptreg::{Reference, Registry};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::args().nth(1).unwrap_or_else(|| ".".into());

    // A new version of `greet`, validated as `promptreg commit` validates it, committed on HEAD.
    let registry = Registry::open(&root)?;
    let snapshot = registry.snapshot()?;
    let source = "variables:\n  name: { type: string, required: true }\n\
                  messages:\n  - role: user\n    content: \"Hello, {{ name }}!\"\n";
    let edit = Edit::Commit {
        id: "greet".into(),
        source: source.into(),
        file: None,
    };
    let plan = write::plan(&snapshot, edit, Some("Greet by name"))?;
    let applied = write::apply(&registry, &plan)?;
    println!("committed {}", plan.message());

    // Point the label `prod` at version 2: a one-line commit of defaults.yaml.
    let registry = Registry::open(&root)?;
    let snapshot = registry.snapshot()?;
    assert_eq!(applied.commit, Some(snapshot.commit()));
    let edit = Edit::Point {
        label: Some("prod".into()),
        id: "greet".into(),
        version: 2,
    };
    let plan = write::plan(&snapshot, edit, None)?;
    write::apply(&registry, &plan)?;
    println!("committed {}", plan.message());

    // What an application does: resolve `greet@prod` and render it.
    let registry = Registry::open(&root)?;
    let reference = Reference::parse("greet@prod")?;
    let prompt = registry.load(&reference)?.compile()?;
    let values = serde_json::json!({ "name": "Ada" });
    let values = values.as_object().ok_or("values are an object")?;
    let rendered = prompt.render(values)?;
    println!("greet@prod: {}", rendered.output.texts().join("\n"));
    Ok(())
}

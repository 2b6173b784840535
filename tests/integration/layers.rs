//! The architecture, checked: every `crate::` path in `src/` points at its own layer or one
//! below it, never up and never sideways, and `git/` knows nothing of prompts.

use std::collections::BTreeMap;
use std::path::Path;

/// The layers, bottom first. A module may use the layers below its own, and its own folder.
/// Modules on one line are side by side and may not use each other.
const LAYERS: &[&[&str]] = &[
    &["diagnostic"],
    &["error"],
    // The repository, objects, raw trees; the prompt file formats. Neither knows the other.
    &["git", "format"],
    // The working copy and the commit sources of a registry's files.
    &["snapshot"],
    // Templates and rendering (and what a template reads, for whole versions).
    &["render"],
    // The version index and its cache.
    &["history"],
    &["registry"],
    // Talking to models: the client, its cache, evaluators and analyses.
    &["model"],
    &["check"],
    // Writes: planned once, applied to the index or a branch.
    &["write"],
    &["watch", "serve"],
    &["cli"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level module a file of `src/` belongs to (`src/git/tree.rs` -> `git`).
fn module_of(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    first
        .unwrap_or_default()
        .trim_end_matches(".rs")
        .to_string()
}

#[test]
fn imports_only_point_down() {
    let src = crate::common::crate_root().join("src");
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut files = 0;
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.expect("walk src");
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(&src).expect("under src");
        let here = module_of(rel);
        if here == "lib" || here == "main" {
            continue;
        }
        files += 1;
        let Some(own) = rank(&here) else {
            wrong
                .entry(rel.display().to_string())
                .or_default()
                .push(format!("`{here}` is in no layer: add it to LAYERS"));
            continue;
        };
        let text = std::fs::read_to_string(path).expect("read");
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            for (at, _) in code.match_indices("crate::") {
                let used: String = code[at + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if used == here || used.is_empty() {
                    continue;
                }
                let ok = match rank(&used) {
                    Some(r) => r < own,
                    // A root re-export (`crate::Registry`): the file must name the layer.
                    None => false,
                };
                if !ok {
                    wrong
                        .entry(rel.display().to_string())
                        .or_default()
                        .push(format!("uses `crate::{used}`"));
                }
            }
        }
    }
    assert!(
        files > 40,
        "only {files} files found under {}",
        src.display()
    );
    assert!(
        wrong.is_empty(),
        "imports that do not point down: {wrong:#?}"
    );
}

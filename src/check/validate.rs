//! `validate`: every check of the registry, collected (never stopping at the first finding),
//! over every prompt in parallel.

use std::collections::BTreeSet;

use rayon::prelude::*;
use serde_json::Map;

use crate::diagnostic::{Code, Diagnostic, Pos};
use crate::error::{Error, Result};
use crate::format::config;
use crate::format::manifest::{self, Manifest};
use crate::format::prompt::{Body, Prompt};
use crate::history::VersionIndex;
use crate::registry::{Discovery, LoadedPrompt, Registry};
use crate::render::template::{file_position, FileContext};
use crate::render::{CompiledPrompt, RenderError};
use crate::snapshot::work::Source;
use std::sync::Arc;

/// The outcome of validating a registry.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every finding, sorted by file, line and column.
    pub diagnostics: Vec<Diagnostic>,
    /// How many prompts were checked.
    pub prompts: usize,
    /// Checks that could not run, and why (e.g. manifest versions without git history).
    pub skipped: Vec<String>,
}

impl Report {
    /// The number of errors.
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// The number of warnings.
    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }
}

/// Validates the working copy: the prompts named by `ids` (all when empty) and the manifest.
pub fn validate(registry: &Registry, ids: &[String]) -> Result<Report> {
    let history = match registry.index() {
        Ok(index) => Ok(index),
        Err(Error::NoHistory(why)) => Err(why),
        // A bad `promptreg.yaml` at the tip: the working copy's is checked below.
        Err(e @ Error::Invalid { .. }) => Err(format!("at the tip, {e}")),
        Err(e) => return Err(e),
    };
    let root = registry.root().display().to_string();
    validate_snapshot(registry.work(), history, ids, &root)
}

/// Validates one snapshot of a registry (the working copy, or a commit): the prompts named by
/// `ids` (all when empty) and its manifest, whose versions are checked against `history` (or
/// skipped with the reason it gives).
pub(crate) fn validate_snapshot(
    source: Arc<dyn Source>,
    history: std::result::Result<&VersionIndex, String>,
    ids: &[String],
    root: &str,
) -> Result<Report> {
    let discovery = match Discovery::scan(source.as_ref()) {
        // Without usable settings no file is known to be a prompt: the settings' findings
        // are the report.
        Err(Error::Invalid {
            file, diagnostics, ..
        }) if file == config::FILE => {
            return Ok(Report {
                diagnostics,
                ..Report::default()
            });
        }
        found => found?,
    };
    let mut report = Report::default();
    let selected: Vec<(&String, &String)> = if ids.is_empty() {
        report
            .diagnostics
            .extend(discovery.diagnostics.iter().cloned());
        discovery.prompts.iter().collect()
    } else {
        let mut selected = Vec::new();
        for id in ids {
            match discovery.file(id, root) {
                Ok(_) => selected.extend(discovery.prompts.get_key_value(id)),
                Err(Error::Invalid { diagnostics, .. }) => report.diagnostics.extend(diagnostics),
                Err(e) => return Err(e),
            }
        }
        selected
    };
    report.prompts = selected.len();
    let found: Vec<Vec<Diagnostic>> = selected
        .par_iter()
        .map(|(id, file)| check_file(source.clone(), id, file))
        .collect();
    report.diagnostics.extend(found.into_iter().flatten());
    let known = discovery.prompts.keys().chain(discovery.conflicts.keys());
    let known: BTreeSet<&str> = known.map(String::as_str).collect();
    check_manifest(source.as_ref(), history, &known, ids, &mut report)?;
    report
        .diagnostics
        .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    report.diagnostics.dedup();
    Ok(report)
}

/// Every finding about one prompt file of a snapshot.
pub(crate) fn check_file(
    source: std::sync::Arc<dyn crate::snapshot::work::Source>,
    id: &str,
    file: &str,
) -> Vec<Diagnostic> {
    match LoadedPrompt::read(source, id, file) {
        Ok(loaded) => check_loaded(loaded),
        Err(Error::Invalid { diagnostics, .. }) => diagnostics,
        Err(e) => vec![unreadable(file, &e)],
    }
}

/// The finding for a prompt file that could not be read.
fn unreadable(file: &str, err: &Error) -> Diagnostic {
    let d = Diagnostic::new(Code::Unreadable, file, err.to_string());
    match err {
        Error::Unreadable { why, .. } => d.with_hint(why.hint()),
        _ => d,
    }
}

/// Every finding about a prompt that parsed: its warnings, then compile, variable, test-data,
/// injection and budget checks.
pub(crate) fn check_loaded(loaded: LoadedPrompt) -> Vec<Diagnostic> {
    let mut out = loaded.warnings.clone();
    let file = loaded.file.clone();
    let compiled = match loaded.compile() {
        Ok(compiled) => compiled,
        Err(Error::Invalid { diagnostics, .. }) => {
            out.extend(diagnostics);
            return out;
        }
        Err(e) => {
            out.push(unreadable(&file, &e));
            return out;
        }
    };
    let ctx = compiled.file_context();
    let undeclared = check_variables(&ctx, &compiled, &mut out);
    check_injection(&ctx, &compiled, &mut out);
    let before = out.len();
    check_tests(&ctx, &compiled, &mut out);
    // A test case that fails only because of an undeclared variable repeats that finding.
    let repeats = |d: &Diagnostic| {
        d.code == Code::TestRender
            && undeclared
                .iter()
                .any(|n| d.message.contains(&format!("`{n}` is undefined")))
    };
    let mut i = before;
    while i < out.len() {
        if repeats(&out[i]) {
            out.remove(i);
        } else {
            i += 1;
        }
    }
    out
}

/// Where `name` is first used in the prompt's templates, as a file position.
fn first_use(ctx: &FileContext<'_>, name: &str) -> Pos {
    for (path, text) in ctx.prompt.templates() {
        if let Some(offset) = find_word(text, name) {
            let at = Pos::of_offset(text, offset);
            return file_position(ctx, &path, at.line, at.column);
        }
    }
    ctx.prompt.spans.field("/messages")
}

fn find_word(text: &str, word: &str) -> Option<usize> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).map(|(i, _)| i).find(|&i| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// Reports undeclared and unused variables; returns the undeclared ones.
fn check_variables(
    ctx: &FileContext<'_>,
    compiled: &CompiledPrompt,
    out: &mut Vec<Diagnostic>,
) -> Vec<String> {
    let Some(declared) = &ctx.prompt.variables else {
        return Vec::new();
    };
    let free = compiled.free_variables();
    let undeclared: Vec<String> = free
        .iter()
        .filter(|n| !declared.contains_key(*n))
        .cloned()
        .collect();
    for name in &undeclared {
        out.push(
            Diagnostic::new(
                Code::UndeclaredVariable,
                ctx.file,
                format!("variable `{name}` is used but not declared"),
            )
            .at(first_use(ctx, name))
            .with_hint(format!(
                "declare it under `variables:`, e.g. `{name}: {{ type: string, required: true }}`"
            )),
        );
    }
    for name in declared.keys().filter(|n| !free.contains(*n)) {
        out.push(
            Diagnostic::new(
                Code::UnusedVariable,
                ctx.file,
                format!("variable `{name}` is declared but never used"),
            )
            .at(ctx.prompt.spans.field(&format!("/variables/{name}")))
            .with_hint("use it in a template or remove the declaration"),
        );
    }
    undeclared
}

/// Variables a user supplies at run time: required ones (no default). Without a `variables`
/// section every input is required.
fn user_supplied(prompt: &Prompt, compiled: &CompiledPrompt) -> BTreeSet<String> {
    match &prompt.variables {
        Some(vars) => vars
            .iter()
            .filter(|(_, v)| v.required)
            .map(|(n, _)| n.clone())
            .collect(),
        None => compiled.free_variables().clone(),
    }
}

fn check_injection(ctx: &FileContext<'_>, compiled: &CompiledPrompt, out: &mut Vec<Diagnostic>) {
    let Body::Messages(messages) = &ctx.prompt.body else {
        return;
    };
    let supplied = user_supplied(ctx.prompt, compiled);
    for (i, message) in messages.iter().enumerate() {
        if message.role != crate::format::prompt::Role::System {
            continue;
        }
        for name in &supplied {
            let Some(offset) = find_word(&message.content, name) else {
                continue;
            };
            if !in_expression(&message.content, offset, ctx.prompt.syntax) {
                continue;
            }
            let at = Pos::of_offset(&message.content, offset);
            let pos = file_position(ctx, &format!("/messages/{i}/content"), at.line, at.column);
            out.push(
                Diagnostic::new(Code::InjectionRisk, ctx.file, format!("user-supplied variable `{name}` is rendered into a system message"))
                    .at(pos)
                    .with_hint("put user input in a user message, or give the variable a default if it is configuration"),
            );
        }
    }
}

/// Whether `offset` lies inside a `{{ }}` / `{% %}` (or bracket) tag.
fn in_expression(text: &str, offset: usize, syntax: crate::format::prompt::Syntax) -> bool {
    let (opens, closes): (&[&str], &[&str]) = match syntax {
        crate::format::prompt::Syntax::Jinja => (&["{{", "{%"], &["}}", "%}"]),
        crate::format::prompt::Syntax::Brackets => (&["[[", "[%"], &["]]", "%]"]),
        crate::format::prompt::Syntax::Verbatim => return false,
        crate::format::prompt::Syntax::Handlebars => (&["{{"], &["}}"]),
    };
    let before = &text[..offset];
    let open = opens.iter().filter_map(|o| before.rfind(o)).max();
    let close = closes.iter().filter_map(|c| before.rfind(c)).max();
    match (open, close) {
        (Some(o), Some(c)) => o > c,
        (Some(_), None) => true,
        _ => false,
    }
}

fn check_tests(ctx: &FileContext<'_>, compiled: &CompiledPrompt, out: &mut Vec<Diagnostic>) {
    let rows = &ctx.prompt.test_data;
    if rows.is_empty() {
        out.push(
            Diagnostic::new(Code::NoTestData, ctx.file, "the prompt has no test data")
                .at(ctx.prompt.spans.get("/testData").map_or(Pos::START, |s| s.field()))
                .with_hint("add `testData:` with example inputs; validate renders each and review diffs their output"),
        );
        return;
    }
    for (i, row) in rows.iter().enumerate() {
        let at = ctx.prompt.spans.field(&format!("/testData/{i}"));
        check_row(ctx, compiled, i, row, at, out);
    }
}

fn check_row(
    ctx: &FileContext<'_>,
    compiled: &CompiledPrompt,
    i: usize,
    row: &Map<String, serde_json::Value>,
    at: Pos,
    out: &mut Vec<Diagnostic>,
) {
    match compiled.render(row) {
        Ok(rendered) => {
            if let Some(budget) = ctx.prompt.max_prompt_tokens {
                let tokens = crate::render::tokens::count_rendered(&rendered);
                if tokens as u64 > budget {
                    out.push(
                        Diagnostic::new(
                            Code::TokenBudget,
                            ctx.file,
                            format!("test case {i} renders to {tokens} prompt tokens, over the budget of {budget}"),
                        )
                        .at(ctx.prompt.spans.field("/maxPromptTokens"))
                        .with_hint(format!("shorten the prompt or raise `maxPromptTokens` (test case {i} is at line {})", at.line)),
                    );
                }
            }
        }
        Err(RenderError::Missing { names }) => {
            let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            out.push(
                Diagnostic::new(
                    Code::TestMissingVariable,
                    ctx.file,
                    format!(
                        "test case {i} lacks required variable{} {}",
                        if names.len() == 1 { "" } else { "s" },
                        list.join(", ")
                    ),
                )
                .at(at)
                .with_hint("give every required variable a value in each test case"),
            );
        }
        Err(RenderError::Template(d)) => {
            let mut d = *d;
            d.code = if matches!(
                d.code,
                Code::IncludeMissing | Code::IncludeOutsideRoot | Code::RenderLimit
            ) {
                d.code
            } else {
                Code::TestRender
            };
            d.severity = d.code.severity();
            d.message = format!("test case {i} does not render: {}", d.message);
            d.hint = Some(format!("the test case is at line {}", at.line));
            out.push(d);
        }
        Err(other) => {
            out.push(
                Diagnostic::new(
                    Code::TestRender,
                    ctx.file,
                    format!("test case {i} does not render: {other}"),
                )
                .at(at),
            );
        }
    }
}

fn check_manifest(
    source: &dyn Source,
    history: std::result::Result<&VersionIndex, String>,
    ids: &BTreeSet<&str>,
    only: &[String],
    report: &mut Report,
) -> Result<()> {
    let Some(bytes) = source.read(manifest::FILE)? else {
        return Ok(());
    };
    let (manifest, diagnostics) = Manifest::parse(&bytes);
    report.diagnostics.extend(diagnostics);
    let index = match history {
        Ok(index) => Some(index),
        Err(why) => {
            report
                .skipped
                .push(format!("manifest versions not checked: {why}"));
            None
        }
    };
    report
        .diagnostics
        .extend(manifest_findings(&manifest, ids, index, only));
    Ok(())
}

/// The manifest's entries that name a prompt that is neither in the snapshot (`ids`, conflicting
/// ids included) nor in the history, or a version the history does not have (checked only with
/// an `index`); only the entries of the prompts in `only`, when it is not empty. Validate and
/// watch both check the manifest with this.
pub(crate) fn manifest_findings(
    manifest: &Manifest,
    ids: &BTreeSet<&str>,
    index: Option<&VersionIndex>,
    only: &[String],
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (label, id, version) in manifest.pointers() {
        if !only.is_empty() && !only.contains(id) {
            continue;
        }
        let what = label.map_or("the default".to_string(), |l| format!("label `{l}`"));
        let pos = manifest.position(label, id);
        let versions = index.and_then(|i| i.file_of(id).map(|f| i.versions(&f).len()));
        if !ids.contains(id.as_str()) && versions.is_none() {
            let hint = crate::format::prompt::suggest(id, ids.iter().copied())
                .map_or("remove the entry, or add the prompt".to_string(), |s| {
                    format!("did you mean `{s}`?")
                });
            out.push(
                Diagnostic::new(
                    Code::ManifestUnknownPrompt,
                    manifest::FILE,
                    format!("{what} names prompt `{id}`, which does not exist"),
                )
                .at(pos)
                .with_hint(hint),
            );
            continue;
        }
        if !ids.contains(id.as_str()) {
            // It has versions but no file: it was deleted. `ID` resolves to nothing on a
            // server (and `ID@N` still reads the old versions), so the entry misleads.
            out.push(
                Diagnostic::new(
                    Code::ManifestDeletedPrompt,
                    manifest::FILE,
                    format!("{what} names prompt `{id}`, which was deleted"),
                )
                .at(pos)
                .with_hint(format!(
                    "remove the entry (`promptreg delete` removes a prompt with its entries); its versions stay readable as `{id}@N`"
                )),
            );
            continue;
        }
        let count = versions.unwrap_or(0);
        if index.is_some() && version as usize > count {
            let has = match count {
                0 => "it has no committed versions yet".to_string(),
                1 => "it has only version 1".to_string(),
                n => format!("it has versions 1 to {n}"),
            };
            out.push(
                Diagnostic::new(
                    Code::ManifestUnknownVersion,
                    manifest::FILE,
                    format!("{what} of `{id}` is version {version}, which does not exist"),
                )
                .at(pos)
                .with_hint(format!("{has}; `promptreg versions {id}` lists them")),
            );
        }
    }
    out
}

//! Rendering Dotprompt bodies with the `handlebars` crate: Dotprompt's helpers (`role`,
//! `history`, `section`, `media`, `json`, `ifEquals`, `unlessEquals`), partials read from the
//! prompt's own snapshot (`{{> name}}` is `_name.prompt` next to the prompt, else at the
//! registry root), no HTML escaping, and the checks that keep a render bounded (no partial
//! cycle, no dynamic partial names, nesting under a limit).
//!
//! `{{role "..."}}` writes a marker line that [`crate::render::roles`] splits at; `history`,
//! `section` and `media` write nothing (promptreg renders text messages from inputs alone).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use handlebars::template::{Parameter, Template, TemplateElement};
use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, PathSeg, RenderContext,
    RenderErrorReason, Renderable,
};
use serde_json::{Map, Value};

use crate::diagnostic::{Code, Diagnostic, Pos};
use crate::render::budget::MAX_OUTPUT;
use crate::render::place::{file_position, FileContext, MAX_NESTING};
use crate::render::roles::Marks;
use crate::snapshot::work::{is_hidden, normalize, Source};

/// The name the prompt's own body is registered under.
pub(crate) const BODY: &str = "#/template";

/// The helpers promptreg registers (and the built-in ones), which are never variables.
const HELPERS: &[&str] = &[
    "role",
    "history",
    "section",
    "media",
    "json",
    "ifEquals",
    "unlessEquals",
    "if",
    "unless",
    "each",
    "with",
    "lookup",
    "log",
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "and",
    "or",
    "not",
    "len",
    "else",
];

/// Helpers whose block renders in another context (`each` item, `with` value).
const SCOPING: &[&str] = &["each", "with"];

/// A Dotprompt body compiled with its partials.
pub(crate) struct Compiled {
    registry: Handlebars<'static>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("handlebars::Compiled")
    }
}

/// What compiling a body found: the compiled body, its free variables and its partials' files.
pub(crate) struct Found {
    pub compiled: Compiled,
    pub free: BTreeSet<String>,
    pub partials: BTreeSet<String>,
}

/// Compiles the body of `ctx`'s prompt, loading its partials from `source`.
pub(crate) fn compile(
    ctx: &FileContext<'_>,
    body: &str,
    source: &Arc<dyn Source>,
    marks: &Marks,
) -> Result<Found, Vec<Diagnostic>> {
    let at = |line: usize, col: usize| file_position(ctx, "/template", line, col);
    if let Some((line, what)) = too_nested(body) {
        return Err(vec![Diagnostic::new(Code::TemplateSyntax, ctx.file, what)
            .at(at(line, 1))
            .with_hint(
                "no prompt needs this; check for unbalanced `{{#...}}` blocks",
            )]);
    }
    let template = match Template::compile(body) {
        Ok(t) => t,
        Err(e) => {
            let (line, col) = e.pos().unwrap_or((1, 1));
            return Err(vec![Diagnostic::new(
                Code::TemplateSyntax,
                ctx.file,
                format!("Handlebars: {}", e.reason()),
            )
            .at(at(line, col))
            .with_hint(
                "check that every `{{#block}}` has its `{{/block}}` and every `{{` its `}}`",
            )]);
        }
    };
    let mut errors = Vec::new();
    let mut free = BTreeSet::new();
    let mut partial_names = Vec::new();
    let mut dynamic = false;
    walk(&template, true, &mut free, &mut partial_names, &mut dynamic);
    if dynamic {
        return Err(vec![Diagnostic::new(
            Code::TemplateSyntax,
            ctx.file,
            "a partial whose name is computed cannot be checked or versioned",
        )
        .with_hint("name the partial: `{{> header}}`")]);
    }
    let mut registry = Handlebars::new();
    registry.register_escape_fn(handlebars::no_escape);
    registry.set_strict_mode(false);
    helpers(&mut registry, marks);
    // Partials, breadth first, each file read once; a cycle is refused before any render.
    let folder = ctx.file.rsplit_once('/').map_or("", |(dir, _)| dir);
    let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
    edges.insert(BODY.into(), partial_names.clone());
    let mut files = BTreeSet::new();
    let mut queue: Vec<(String, String)> = partial_names
        .into_iter()
        .map(|n| (n, BODY.to_string()))
        .collect();
    while let Some((name, from)) = queue.pop() {
        if edges.contains_key(&name) || edges.len() > 1000 {
            continue;
        }
        let Some((file, text)) = find_partial(source.as_ref(), folder, &name) else {
            let mut d = Diagnostic::new(
                Code::IncludeMissing,
                ctx.file,
                format!("partial `{name}` does not exist"),
            )
            .with_hint(format!(
                "Dotprompt partials are files named `_{name}.prompt` next to the prompt or at the registry root"
            ));
            if from == BODY {
                d = d.at(at_text(ctx, body, &name));
            } else {
                d.message = format!("{} (named in partial `{from}`)", d.message);
            }
            errors.push(d);
            continue;
        };
        files.insert(file.clone());
        let text = partial_body(&file, &text);
        let mut inner_free = BTreeSet::new();
        let mut inner = Vec::new();
        let mut dynamic = false;
        match Template::compile(&text) {
            Ok(t) => walk(&t, true, &mut inner_free, &mut inner, &mut dynamic),
            Err(e) => {
                let (line, col) = e.pos().unwrap_or((1, 1));
                errors.push(
                    Diagnostic::new(
                        Code::TemplateSyntax,
                        &file,
                        format!("Handlebars: {}", e.reason()),
                    )
                    .at(Pos::new(line, col)),
                );
                continue;
            }
        }
        free.extend(inner_free);
        if let Err(e) = registry.register_partial(&name, text) {
            errors.push(Diagnostic::new(
                Code::TemplateSyntax,
                &file,
                format!("Handlebars: {}", e.reason()),
            ));
        }
        queue.extend(inner.iter().map(|n| (n.clone(), name.clone())));
        edges.insert(name, inner);
    }
    if let Some(cycle) = cycle(&edges) {
        errors.push(
            Diagnostic::new(
                Code::IncludeMissing,
                ctx.file,
                format!("partials include each other: {}", cycle.join(" -> ")),
            )
            .with_hint("a partial cannot include itself, directly or through others"),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    registry.register_template(BODY, template);
    Ok(Found {
        compiled: Compiled { registry },
        free,
        partials: files,
    })
}

/// A body that did not render: where (in the body), why, and whether it was its size.
pub(crate) struct Failure {
    at: Option<(usize, usize)>,
    message: String,
    too_large: bool,
}

/// Collects rendered text up to [`MAX_OUTPUT`] bytes, then refuses more: a body whose loops a
/// client's values multiply (`{{#each a}}{{#each a}}...`) stops there, not at the memory's end.
#[derive(Default)]
struct Bounded {
    text: Vec<u8>,
    /// Whether it refused to take more.
    full: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.text.len() + bytes.len() > MAX_OUTPUT {
            self.full = true;
            return Err(std::io::Error::other("the rendered text is too large"));
        }
        self.text.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Compiled {
    /// Renders the body with `values`, at most [`MAX_OUTPUT`] bytes of it.
    pub(crate) fn render(&self, values: &Map<String, Value>) -> Result<String, Failure> {
        let mut out = Bounded::default();
        match self.registry.render_to_write(BODY, values, &mut out) {
            Ok(()) => Ok(String::from_utf8_lossy(&out.text).into_owned()),
            Err(_) if out.full => Err(Failure {
                at: None,
                message: format!("rendered text is larger than {MAX_OUTPUT} bytes"),
                too_large: true,
            }),
            Err(e) => Err(Failure {
                at: e.line_no.map(|l| (l, e.column_no.unwrap_or(1))),
                message: format!("Handlebars: {}", e.reason()),
                too_large: false,
            }),
        }
    }
}

/// The file and text of partial `name`, the first of: `_NAME.prompt` in the prompt's folder,
/// at the registry root, `NAME.prompt` in the prompt's folder, `partials/NAME.prompt` in the
/// prompt's folder or at the root (a name with `/` keeps its folders: `a/b` is `a/_b.prompt`).
fn find_partial(source: &dyn Source, folder: &str, name: &str) -> Option<(String, String)> {
    partial_files(folder, name).into_iter().find_map(|path| {
        if is_hidden(&path) {
            return None;
        }
        let bytes = source.read(&path).ok()??;
        Some((path, String::from_utf8(bytes).ok()?))
    })
}

/// The files partial `name` of a prompt in `folder` may be, in the order they are tried.
pub(crate) fn partial_files(folder: &str, name: &str) -> Vec<String> {
    let (dir, base) = match name.rsplit_once('/') {
        Some((dir, base)) => (format!("{dir}/"), base),
        None => (String::new(), name),
    };
    let under = |file: String| {
        if folder.is_empty() {
            file
        } else {
            format!("{folder}/{file}")
        }
    };
    let candidates = [
        under(format!("{dir}_{base}.prompt")),
        format!("{dir}_{base}.prompt"),
        under(format!("{dir}{base}.prompt")),
        under(format!("partials/{dir}{base}.prompt")),
        format!("partials/{dir}{base}.prompt"),
    ];
    let mut files: Vec<String> = Vec::new();
    for candidate in candidates {
        if let Ok(path) = normalize(&candidate) {
            if !files.contains(&path) {
                files.push(path);
            }
        }
    }
    files
}

/// The partials a Handlebars text names (none when it does not parse).
pub(crate) fn partial_names(text: &str) -> Vec<String> {
    let (mut free, mut names, mut dynamic) = (BTreeSet::new(), Vec::new(), false);
    if let Ok(template) = Template::compile(text) {
        walk(&template, true, &mut free, &mut names, &mut dynamic);
    }
    names
}

/// A partial's text without a front matter it may have.
fn partial_body(file: &str, text: &str) -> String {
    let (parts, _) = crate::format::front::split(file, text, true);
    parts.body
}

/// Where `name` is first written in `body`, in the file.
fn at_text(ctx: &FileContext<'_>, body: &str, name: &str) -> Pos {
    let offset = body.find(name).unwrap_or(0);
    let pos = Pos::of_offset(body, offset);
    file_position(ctx, "/template", pos.line, pos.column)
}

/// Collects the free variables (in the top context only) and the partials a template names.
fn walk(
    template: &Template,
    top: bool,
    free: &mut BTreeSet<String>,
    partials: &mut Vec<String>,
    dynamic: &mut bool,
) {
    for element in &template.elements {
        element_names(element, top, free, partials, dynamic);
    }
}

fn element_names(
    element: &TemplateElement,
    top: bool,
    free: &mut BTreeSet<String>,
    partials: &mut Vec<String>,
    dynamic: &mut bool,
) {
    match element {
        TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
            let is_helper = !h.params.is_empty() || !h.hash.is_empty();
            if top {
                if is_helper {
                    for p in h.params.iter().chain(h.hash.values()) {
                        param_names(p, free, partials, dynamic);
                    }
                } else {
                    match &h.name {
                        Parameter::Name(name)
                        | Parameter::Path(handlebars::Path::Relative((_, name)))
                            if HELPERS.contains(&name.as_str()) => {}
                        Parameter::Name(name) => {
                            free.insert(root_of(name));
                        }
                        other => param_names(other, free, partials, dynamic),
                    }
                }
            }
        }
        TemplateElement::HelperBlock(h) => {
            if top {
                for p in h.params.iter().chain(h.hash.values()) {
                    param_names(p, free, partials, dynamic);
                }
            }
            let name = match &h.name {
                Parameter::Name(n) => n.as_str(),
                _ => "",
            };
            let inner_top = top && !SCOPING.contains(&name);
            if let Some(t) = &h.template {
                walk(t, inner_top, free, partials, dynamic);
            }
            if let Some(t) = &h.inverse {
                walk(t, top, free, partials, dynamic);
            }
        }
        TemplateElement::PartialExpression(d) | TemplateElement::PartialBlock(d) => {
            match &d.name {
                Parameter::Name(name) => partials.push(name.clone()),
                Parameter::Path(handlebars::Path::Relative((_, raw))) => partials.push(raw.clone()),
                _ => *dynamic = true,
            }
            if top {
                for p in d.params.iter().chain(d.hash.values()) {
                    param_names(p, free, partials, dynamic);
                }
            }
            if let Some(t) = &d.template {
                walk(t, top, free, partials, dynamic);
            }
        }
        _ => {}
    }
}

fn param_names(
    param: &Parameter,
    free: &mut BTreeSet<String>,
    partials: &mut Vec<String>,
    dynamic: &mut bool,
) {
    match param {
        Parameter::Path(handlebars::Path::Relative((segs, _))) => {
            if let Some(PathSeg::Named(first)) = segs.first() {
                if first != "this" {
                    free.insert(first.clone());
                }
            }
        }
        Parameter::Subexpression(sub) => {
            element_names(&sub.element, true, free, partials, dynamic);
        }
        _ => {}
    }
}

/// The first segment of a dotted name.
fn root_of(name: &str) -> String {
    name.split(['.', '[', '/'])
        .next()
        .unwrap_or(name)
        .to_string()
}

/// The first cycle in the partials graph, as names.
fn cycle(edges: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, Vec<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    visit(BODY, edges, &mut Vec::new(), &mut done)
        .map(|c| c.into_iter().filter(|n| n != BODY).collect())
}

/// The line where `{{#` blocks first nest deeper than [`MAX_NESTING`], counting every `{{#`
/// against every `{{/`.
fn too_nested(text: &str) -> Option<(usize, String)> {
    let mut depth = 0usize;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 2 < bytes.len() {
        if bytes[i] == b'{' && bytes[i + 1] == b'{' {
            match bytes[i + 2] {
                b'#' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        let line = text[..i].matches('\n').count() + 1;
                        return Some((line, format!("blocks nest more than {MAX_NESTING} deep")));
                    }
                }
                b'/' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Registers Dotprompt's helpers.
fn helpers(registry: &mut Handlebars<'static>, marks: &Marks) {
    registry.register_helper("role", Box::new(Role(marks.clone())));
    registry.register_helper("history", Box::new(Block));
    registry.register_helper("media", Box::new(Block));
    registry.register_helper("section", Box::new(Block));
    registry.register_helper("json", Box::new(Json));
    registry.register_helper("ifEquals", Box::new(IfEquals(true)));
    registry.register_helper("unlessEquals", Box::new(IfEquals(false)));
}

/// `{{role "system"}}` and `{{#role "user"}}...{{/role}}`: a marker line (`model` is the
/// assistant).
struct Role(Marks);

impl HelperDef for Role {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let role = h.param(0).and_then(|p| p.value().as_str()).ok_or_else(|| {
            RenderErrorReason::Other("`role` needs a role: `{{role \"system\"}}`".into())
        })?;
        let role = if role == "model" { "assistant" } else { role };
        out.write("\n")?;
        out.write(&self.0.role_marker(role))?;
        out.write("\n")?;
        if let Some(t) = h.template() {
            t.render(r, ctx, rc, out)?;
        }
        Ok(())
    }
}

/// `history`, `media` and `section`: the text of its block if it has one, else nothing
/// (promptreg renders text messages from the inputs alone).
struct Block;

impl HelperDef for Block {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        if let Some(t) = h.template() {
            t.render(r, ctx, rc, out)?;
        }
        Ok(())
    }
}

/// `{{json value indent=2}}`.
struct Json;

impl HelperDef for Json {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let value = h.param(0).map(|p| p.value().clone()).unwrap_or(Value::Null);
        let indent = h.hash_get("indent").and_then(|i| i.value().as_u64());
        let text = match indent {
            Some(n) if n > 0 => {
                let pad = " ".repeat(n.min(16) as usize);
                let mut buf = Vec::new();
                let formatter = serde_json::ser::PrettyFormatter::with_indent(pad.as_bytes());
                let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
                serde::Serialize::serialize(&value, &mut ser)
                    .map_err(|e| RenderErrorReason::Other(e.to_string()))?;
                String::from_utf8_lossy(&buf).into_owned()
            }
            _ => value.to_string(),
        };
        out.write(&text)?;
        Ok(())
    }
}

/// `{{#ifEquals a b}}` (and `unlessEquals`): the block when the two are (not) equal.
struct IfEquals(bool);

impl HelperDef for IfEquals {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let a = h.param(0).map(|p| p.value());
        let b = h.param(1).map(|p| p.value());
        let chosen = if (a == b) == self.0 {
            h.template()
        } else {
            h.inverse()
        };
        if let Some(t) = chosen {
            t.render(r, ctx, rc, out)?;
        }
        Ok(())
    }
}

/// A render error of the body, as promptreg's error type wants it.
pub(crate) fn render_error(ctx: &FileContext<'_>, failure: Failure) -> Diagnostic {
    let code = match failure.too_large {
        true => Code::RenderLimit,
        false => Code::RenderFailed,
    };
    let d = Diagnostic::new(code, ctx.file, failure.message);
    match failure.at {
        Some((line, col)) => d.at(file_position(ctx, "/template", line, col)),
        None => d,
    }
}

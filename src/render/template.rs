//! Compiling a prompt's templates with minijinja: strict, bounded, and able to read partials only
//! from the registry snapshot the prompt itself came from.

use std::collections::BTreeSet;
use std::sync::Arc;

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};

use crate::diagnostic::{Code, Diagnostic, Pos};
use crate::format::prompt::Syntax;
pub use crate::render::place::MAX_NESTING;
pub(crate) use crate::render::place::{file_position, FileContext};
use crate::snapshot::work::{is_hidden, normalize, PathError, Refusal, Source};

/// Nesting depth of includes, macros and blocks before a render is stopped.
pub(crate) const RECURSION_LIMIT: usize = 64;

/// The prefix of the names under which a prompt's own templates are registered; a name with it
/// can never be a file of the registry because `#` starts the fragment.
const PART_PREFIX: &str = "#/";

/// A prompt's templates, compiled once and ready to render many times.
#[derive(Debug)]
pub struct Templates {
    pub(crate) env: Environment<'static>,
    /// Where partials come from, for the debug environment of a failed render.
    source: Arc<dyn Source>,
    syntax: Syntax,
    /// Template names in the environment, one per message (or one for the template form).
    pub(crate) parts: Vec<String>,
    /// Every variable the templates (and the partials they name) read.
    pub(crate) free: BTreeSet<String>,
    /// Partials named by the templates, directly or through other partials.
    pub(crate) partials: BTreeSet<String>,
    /// The secret of a chat template's role lines.
    pub(crate) marks: crate::render::roles::Marks,
    /// A Dotprompt body, compiled by Handlebars (the minijinja environment is then empty).
    pub(crate) handlebars: Option<crate::render::handlebars::Compiled>,
    /// Whether every part renders in time linear in its values, and how many places read
    /// them: found the first time it is asked (by the server).
    #[cfg_attr(not(feature = "serve"), allow(dead_code))]
    linear: std::sync::OnceLock<Option<usize>>,
}

fn syntax_config(syntax: Syntax) -> SyntaxConfig {
    let mut builder = SyntaxConfig::builder();
    if syntax == Syntax::Brackets {
        builder
            .block_delimiters("[%", "%]")
            .variable_delimiters("[[", "]]")
            .comment_delimiters("[#", "#]");
    }
    builder.build().unwrap_or_default()
}

/// A new environment with promptreg's rules: strict undefined, no auto-escaping, fuel and
/// recursion limits, partials loaded from `source` only.
///
/// Debug mode (exact error positions) costs about a third of a render, so templates are
/// compiled and rendered without it, and only a failure is repeated in a debug environment
/// (`Templates::debug_error`) to place the error.
pub fn environment(syntax: Syntax, source: Arc<dyn Source>, debug: bool) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_debug(debug);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    // An optional variable without a value is `none`: it tests false and prints as nothing.
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            return Ok(());
        }
        // A string printed without escaping is written as it is (minijinja's formatter writes
        // it through `Display`, twice over `fmt::write`).
        if let (Some(text), AutoEscape::None) = (value.as_str(), state.auto_escape()) {
            return out.write_str(text).map_err(minijinja::Error::from);
        }
        crate::render::budget::check_display(state, value)?;
        minijinja::escape_formatter(out, state, value)
    });
    crate::render::budget::install(&mut env);
    env.set_recursion_limit(RECURSION_LIMIT);
    env.set_syntax(syntax_config(syntax));
    env.set_loader(move |name| {
        if name.starts_with(PART_PREFIX) {
            return Ok(None);
        }
        let path = normalize(name).map_err(|e| match e {
            PathError::OutsideRoot(_) => minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("include of `{name}` leaves the registry root"),
            )
            .with_source(Refused(Refusal::OutsideRoot)),
            PathError::NotAFile(_) => minijinja::Error::new(
                ErrorKind::TemplateNotFound,
                format!("`{name}` is not a file path"),
            ),
        })?;
        // Nothing in the git dir or hidden: discovery skips such paths, and `.git/config` can
        // hold credentials.
        if is_hidden(&path) {
            return Err(refusal_error(&path, &Refusal::Hidden));
        }
        let bytes = match source.read(&path) {
            Ok(bytes) => bytes,
            Err(crate::error::Error::Unreadable { file, why }) => {
                return Err(refusal_error(&file, &why))
            }
            Err(e) => {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("cannot read partial `{path}`: {e}"),
                ))
            }
        };
        let Some(bytes) = bytes else { return Ok(None) };
        let text = String::from_utf8(bytes).map_err(|_| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("partial `{path}` is not valid UTF-8"),
            )
        })?;
        if let Some((offset, what)) = too_nested(&text, syntax) {
            let (line, _) = line_col(&text, offset);
            return Err(minijinja::Error::new(
                ErrorKind::SyntaxError,
                format!("{what} (line {line} of `{path}`)"),
            ));
        }
        Ok(Some(text))
    });
    env
}

impl Templates {
    /// Compiles every template of the prompt. Errors are positioned in the prompt file.
    pub(crate) fn compile(
        ctx: &FileContext<'_>,
        source: Arc<dyn Source>,
    ) -> Result<Templates, Vec<Diagnostic>> {
        let mut env = environment(ctx.prompt.syntax, source.clone(), false);
        let mut parts = Vec::new();
        let mut errors = Vec::new();
        let marks = crate::render::roles::Marks::new();
        let verbatim = ctx.prompt.syntax == Syntax::Verbatim;
        if ctx.prompt.syntax == Syntax::Handlebars {
            let body = ctx
                .prompt
                .templates()
                .first()
                .map_or(String::new(), |(_, t)| t.to_string());
            let found = crate::render::handlebars::compile(ctx, &body, &source, &marks)?;
            return Ok(Templates {
                env,
                source,
                syntax: ctx.prompt.syntax,
                parts: vec![crate::render::handlebars::BODY.to_string()],
                free: found.free,
                partials: found
                    .partials
                    .into_iter()
                    .chain(ctx.prompt.reads.iter().cloned())
                    .collect(),
                marks,
                handlebars: Some(found.compiled),
                linear: std::sync::OnceLock::new(),
            });
        }
        let strict_chat = matches!(
            ctx.prompt.body,
            crate::format::prompt::Body::Chat { strict: true, .. }
        );
        for (path, text) in ctx.prompt.templates() {
            let name = format!("#{path}");
            if verbatim {
                parts.push(name);
                continue;
            }
            let marked;
            let text = if strict_chat {
                marked = marks.mark(text);
                marked.as_str()
            } else {
                text
            };
            if let Some((offset, what)) = too_nested(text, ctx.prompt.syntax) {
                let (line, col) = line_col(text, offset);
                errors.push(
                    Diagnostic::new(Code::TemplateSyntax, ctx.file, what)
                        .at(file_position(ctx, &path, line, col))
                        .with_hint("split the expression with `set`, or replace a long `elif` chain with a lookup in a mapping"),
                );
                parts.push(name);
                continue;
            }
            if env
                .add_template_owned(name.clone(), text.to_string())
                .is_err()
            {
                // Compile it again in debug mode for the error's exact position.
                let mut debug = environment(ctx.prompt.syntax, source.clone(), true);
                if let Err(err) = debug.add_template_owned(name.clone(), text.to_string()) {
                    errors.push(template_diagnostic(ctx, &err, Code::TemplateSyntax));
                }
            }
            parts.push(name);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut templates = Templates {
            env,
            source,
            syntax: ctx.prompt.syntax,
            parts,
            free: BTreeSet::new(),
            partials: BTreeSet::new(),
            marks,
            handlebars: None,
            linear: std::sync::OnceLock::new(),
        };
        if !verbatim {
            templates.analyze(ctx, &mut errors);
        }
        templates.partials.extend(ctx.prompt.reads.iter().cloned());
        if errors.is_empty() {
            Ok(templates)
        } else {
            Err(errors)
        }
    }

    /// Finds the free variables of every part and of every partial named by a string literal,
    /// loading (and so checking) each partial once.
    fn analyze(&mut self, ctx: &FileContext<'_>, errors: &mut Vec<Diagnostic>) {
        let globals: BTreeSet<String> = self
            .env
            .globals()
            .map(|(name, _)| name.to_string())
            .collect();
        let mut queue: Vec<(String, Option<String>, bool)> = self
            .parts
            .iter()
            .map(|p| (p.clone(), None, false))
            .collect();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        while let Some((name, from, optional)) = queue.pop() {
            if !seen.insert(name.clone()) || seen.len() > 1000 {
                continue;
            }
            let template = match self.env.get_template(&name) {
                Ok(t) => t,
                // `ignore missing`: minijinja renders nothing for it, so nothing is wrong.
                Err(err) if optional && err.kind() == ErrorKind::TemplateNotFound => continue,
                Err(err) => {
                    errors.push(include_diagnostic(ctx, &err, &name, from.as_deref()));
                    continue;
                }
            };
            self.free.extend(
                template
                    .undeclared_variables(false)
                    .into_iter()
                    .filter(|v| !globals.contains(v)),
            );
            for (partial, optional) in names_in(template.source(), self.syntax) {
                let key = normalize(&partial).unwrap_or_else(|_| partial.clone());
                self.partials.insert(key);
                queue.push((partial, Some(name.clone()), optional));
            }
        }
    }

    /// Renders `part` again in a debug environment, to get the failure with its exact
    /// position. `None` when the debug render does not fail the same way.
    pub(crate) fn debug_error(
        &self,
        part: &str,
        ctx: &minijinja::Value,
    ) -> Option<minijinja::Error> {
        let mut env = environment(self.syntax, self.source.clone(), true);
        for (name, template) in self.env.templates() {
            if name.starts_with('#') {
                env.add_template_owned(name.to_string(), template.source().to_string())
                    .ok()?;
            }
        }
        env.get_template(part).and_then(|t| t.render(ctx)).err()
    }

    /// Whether a render costs time linear in the values it is given (see [`linear_reads`]) and
    /// the templates are at most [`LINEAR_TEXT`] long: the number of places they read values,
    /// or `None`. A Handlebars body is never linear (it has no fuel either); a verbatim one
    /// reads nothing.
    #[cfg_attr(not(feature = "serve"), allow(dead_code))]
    pub(crate) fn linear_reads(&self) -> Option<usize> {
        *self.linear.get_or_init(|| {
            if self.handlebars.is_some() {
                return None;
            }
            if self.syntax == Syntax::Verbatim {
                return Some(0);
            }
            let (mut reads, mut text) = (0usize, 0usize);
            for part in &self.parts {
                let template = self.env.get_template(part).ok()?;
                reads = reads.checked_add(linear_reads(template.source(), self.syntax)?)?;
                text = text.saturating_add(template.source().len());
            }
            // What a render builds (and counts tokens over) is the templates' own text too.
            (text <= LINEAR_TEXT).then_some(reads)
        })
    }

    /// Every variable the prompt's templates read, partials included.
    pub(crate) fn free_variables(&self) -> &BTreeSet<String> {
        &self.free
    }

    /// Every partial the templates name (root-relative paths).
    pub fn partials(&self) -> &BTreeSet<String> {
        &self.partials
    }
}

/// The templates `source` names in `include`, `import`, `from` and `extends` (constants only),
/// each with whether a missing one is ignored, as minijinja's parser reads them: nothing inside
/// a comment, a `{% raw %}` block or a string literal. Empty when the text does not compile.
#[cfg(any(feature = "watch", feature = "unstable"))]
pub fn referenced_templates(source: &str, syntax: Syntax) -> Vec<(String, bool)> {
    names_in(source, syntax)
}

/// The templates `source` names (the walk behind [`referenced_templates`], over minijinja's own
/// AST, its `unstable_machinery` feature pinned to one version in `Cargo.toml`), or `None` when
/// the text does not parse.
pub(crate) fn parsed_names(source: &str, syntax: Syntax) -> Option<Vec<(String, bool)>> {
    use minijinja::machinery::{ast, parse};

    fn names(expr: &ast::Expr<'_>, ignore_missing: bool, out: &mut Vec<(String, bool)>) {
        match expr {
            ast::Expr::Const(c) => {
                if let Some(name) = c.value.as_str() {
                    out.push((name.to_string(), ignore_missing));
                } else if let Ok(items) = c.value.try_iter() {
                    out.extend(
                        items.filter_map(|v| v.as_str().map(|s| (s.to_string(), ignore_missing))),
                    );
                }
            }
            // A list tries each name in turn: a missing one is never an error by itself.
            ast::Expr::List(l) => l.items.iter().for_each(|x| names(x, true, out)),
            _ => {}
        }
    }
    fn walk(node: &ast::Stmt<'_>, out: &mut Vec<(String, bool)>) {
        let all = |body: &[ast::Stmt<'_>], out: &mut Vec<(String, bool)>| {
            body.iter().for_each(|x| walk(x, out))
        };
        match node {
            ast::Stmt::Template(t) => all(&t.children, out),
            ast::Stmt::ForLoop(s) => {
                all(&s.body, out);
                all(&s.else_body, out);
            }
            ast::Stmt::IfCond(s) => {
                all(&s.true_body, out);
                all(&s.false_body, out);
            }
            ast::Stmt::WithBlock(s) => all(&s.body, out),
            ast::Stmt::SetBlock(s) => all(&s.body, out),
            ast::Stmt::AutoEscape(s) => all(&s.body, out),
            ast::Stmt::FilterBlock(s) => all(&s.body, out),
            ast::Stmt::Block(s) => all(&s.body, out),
            ast::Stmt::Include(s) => names(&s.name, s.ignore_missing, out),
            ast::Stmt::Import(s) => names(&s.expr, false, out),
            ast::Stmt::FromImport(s) => names(&s.expr, false, out),
            ast::Stmt::Extends(s) => names(&s.name, false, out),
            ast::Stmt::Macro(s) => all(&s.body, out),
            ast::Stmt::CallBlock(s) => all(&s.macro_decl.body, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let ast = parse(source, "<template>", syntax_config(syntax)).ok()?;
    walk(&ast, &mut out);
    Some(out)
}

/// The longest templates (all of a prompt's, together) whose render counts as cheap.
#[cfg_attr(not(feature = "serve"), allow(dead_code))]
pub(crate) const LINEAR_TEXT: usize = 16 << 10;

/// The filters whose output is at most a few times the size of their input, whatever it is.
#[cfg_attr(not(feature = "serve"), allow(dead_code))]
const LINEAR_FILTERS: &[&str] = &[
    "abs",
    "bool",
    "capitalize",
    "count",
    "d",
    "default",
    "e",
    "escape",
    "first",
    "float",
    "int",
    "last",
    "length",
    "lower",
    "round",
    "safe",
    "string",
    "striptags",
    "title",
    "tojson",
    "trim",
    "truncate",
    "upper",
    "urlencode",
];

/// Whether a render of `source` is linear: it costs at most a few times the size of the values
/// it reads, whatever they are. No loop, macro, call, include, assignment (a chain of `set`
/// doubles a value at each step), `*` or `**`, and only [`LINEAR_FILTERS`] with constant
/// arguments. Then the number of places it reads a variable bounds what it builds: that number,
/// or `None` when the render is not linear (or the text does not parse).
#[cfg_attr(not(feature = "serve"), allow(dead_code))]
pub(crate) fn linear_reads(source: &str, syntax: Syntax) -> Option<usize> {
    use minijinja::machinery::{ast, parse};

    fn arg(arg: &ast::CallArg<'_>, constant: bool, reads: &mut usize) -> bool {
        match arg {
            ast::CallArg::Pos(e) | ast::CallArg::Kwarg(_, e) => {
                (!constant || matches!(e, ast::Expr::Const(_))) && expr(e, reads)
            }
            _ => false,
        }
    }
    fn opt(e: &Option<ast::Expr<'_>>, reads: &mut usize) -> bool {
        e.as_ref().is_none_or(|e| expr(e, reads))
    }
    fn expr(e: &ast::Expr<'_>, reads: &mut usize) -> bool {
        match e {
            ast::Expr::Var(_) => {
                *reads += 1;
                true
            }
            ast::Expr::Const(_) => true,
            ast::Expr::Slice(s) => {
                expr(&s.expr, reads)
                    && opt(&s.start, reads)
                    && opt(&s.stop, reads)
                    && opt(&s.step, reads)
            }
            ast::Expr::UnaryOp(u) => expr(&u.expr, reads),
            ast::Expr::BinOp(b) => {
                !matches!(b.op, ast::BinOpKind::Mul | ast::BinOpKind::Pow)
                    && expr(&b.left, reads)
                    && expr(&b.right, reads)
            }
            ast::Expr::Compare(c) => {
                expr(&c.expr, reads) && c.ops.iter().all(|o| expr(&o.expr, reads))
            }
            ast::Expr::IfExpr(i) => {
                expr(&i.test_expr, reads) && expr(&i.true_expr, reads) && opt(&i.false_expr, reads)
            }
            // `tojson` indents by the depth of a value: with an indent, not linear.
            ast::Expr::Filter(f) => {
                LINEAR_FILTERS.contains(&f.name)
                    && (f.name != "tojson" || f.args.is_empty())
                    && opt(&f.expr, reads)
                    && f.args.iter().all(|a| arg(a, true, reads))
            }
            ast::Expr::Test(t) => {
                expr(&t.expr, reads) && t.args.iter().all(|a| arg(a, false, reads))
            }
            ast::Expr::GetAttr(g) => expr(&g.expr, reads),
            ast::Expr::GetItem(g) => expr(&g.expr, reads) && expr(&g.subscript_expr, reads),
            ast::Expr::List(l) => l.items.iter().all(|x| expr(x, reads)),
            ast::Expr::Tuple(t) => t.items.iter().all(|x| expr(x, reads)),
            ast::Expr::Map(m) => {
                m.keys.iter().all(|x| expr(x, reads)) && m.values.iter().all(|x| expr(x, reads))
            }
            ast::Expr::Call(_) => false,
        }
    }
    fn body(stmts: &[ast::Stmt<'_>], reads: &mut usize) -> bool {
        stmts.iter().all(|s| stmt(s, reads))
    }
    fn stmt(s: &ast::Stmt<'_>, reads: &mut usize) -> bool {
        match s {
            ast::Stmt::Template(t) => body(&t.children, reads),
            ast::Stmt::EmitExpr(e) => expr(&e.expr, reads),
            ast::Stmt::EmitRaw(_) => true,
            ast::Stmt::IfCond(i) => {
                expr(&i.expr, reads) && body(&i.true_body, reads) && body(&i.false_body, reads)
            }
            ast::Stmt::AutoEscape(a) => expr(&a.enabled, reads) && body(&a.body, reads),
            ast::Stmt::FilterBlock(f) => expr(&f.filter, reads) && body(&f.body, reads),
            ast::Stmt::Block(b) => body(&b.body, reads),
            _ => false,
        }
    }
    let ast = parse(source, "<template>", syntax_config(syntax)).ok()?;
    let mut reads = 0;
    stmt(&ast, &mut reads).then_some(reads)
}

/// The templates `source` names, as minijinja's parser reads them (see [`parsed_names`]);
/// empty when the text does not compile.
pub(crate) fn names_in(source: &str, syntax: Syntax) -> Vec<(String, bool)> {
    parsed_names(source, syntax).unwrap_or_default()
}

/// Where `text` first goes past [`MAX_NESTING`], as a byte offset and a message: a tag with
/// more operators, or an `elif` beyond that many in one template. Counting is rough on purpose
/// (punctuation inside a string literal counts too); the limit is far above real templates.
fn too_nested(text: &str, syntax: Syntax) -> Option<(usize, String)> {
    // Each opening delimiter with its closing one; the comment comes last.
    let pairs = match syntax {
        Syntax::Jinja => [("{{", "}}"), ("{%", "%}"), ("{#", "#}")],
        Syntax::Verbatim | Syntax::Handlebars => return None,
        Syntax::Brackets => [("[[", "]]"), ("[%", "%]"), ("[#", "#]")],
    };
    let mut elifs = 0;
    let mut at = 0;
    // The next place of each opening delimiter at or after `at`, each searched forward only.
    let mut next: Vec<Option<usize>> = pairs.iter().map(|(open, _)| text.find(open)).collect();
    loop {
        for (place, (open, _)) in next.iter_mut().zip(pairs) {
            if place.is_some_and(|p| p < at) {
                *place = text[at..].find(open).map(|i| at + i);
            }
        }
        let Some((start, kind)) = next
            .iter()
            .enumerate()
            .filter_map(|(kind, place)| place.map(|p| (p, kind)))
            .min()
        else {
            break;
        };
        let (open, close) = pairs[kind];
        let body_start = start + open.len();
        let body_end = text[body_start..]
            .find(close)
            .map_or(text.len(), |i| body_start + i);
        at = (body_end + close.len()).min(text.len());
        if kind == 2 {
            continue;
        }
        let body = &text[body_start..body_end];
        let words = body
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| matches!(*w, "not" | "and" | "or" | "in" | "is" | "if" | "else"))
            .count();
        let symbols = body
            .chars()
            .filter(|c| "+-*/%~|<>=!([{.,:".contains(*c))
            .count();
        if words + symbols > MAX_NESTING {
            return Some((
                start,
                format!(
                    "this tag has more than {MAX_NESTING} operators, too many to compile safely"
                ),
            ));
        }
        if body
            .trim_start_matches(['-', '+'])
            .trim_start()
            .starts_with("elif")
        {
            elifs += 1;
            if elifs > MAX_NESTING {
                return Some((
                    start,
                    format!("more than {MAX_NESTING} `elif` branches in one template, too many to compile safely"),
                ));
            }
        }
    }
    None
}

/// Why the loader refused a partial, kept as the source of its minijinja error so that the
/// finding gets its code and hint.
#[derive(Debug)]
struct Refused(Refusal);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.hint())
    }
}

impl std::error::Error for Refused {}

fn refusal_error(file: &str, why: &Refusal) -> minijinja::Error {
    minijinja::Error::new(ErrorKind::InvalidOperation, why.message(file))
        .with_source(Refused(why.clone()))
}

/// The refusal behind a minijinja error, if the loader refused a partial.
fn refusal(err: &minijinja::Error) -> Option<&Refusal> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(inner) = cause {
        if let Some(Refused(why)) = inner.downcast_ref::<Refused>() {
            return Some(why);
        }
        cause = inner.source();
    }
    None
}

/// The code of a refused partial.
fn refusal_code(why: &Refusal) -> Code {
    match why {
        Refusal::OutsideRoot | Refusal::Hidden => Code::IncludeOutsideRoot,
        Refusal::NotRegular(_) | Refusal::TooLarge { .. } => Code::Unreadable,
    }
}

/// The 1-based line and column of a byte offset in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let pos = Pos::of_offset(text, offset);
    (pos.line, pos.column)
}

/// The message of a minijinja error, without its debug dump.
pub(crate) fn error_message(err: &minijinja::Error) -> String {
    let mut message = match err.detail() {
        _ if err.kind() == ErrorKind::OutOfFuel => crate::render::budget::over_budget_message(),
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    let mut cause = std::error::Error::source(err);
    while let Some(inner) = cause {
        if let Some(inner) = inner.downcast_ref::<minijinja::Error>() {
            let text = match inner.detail() {
                _ if inner.kind() == ErrorKind::OutOfFuel => {
                    crate::render::budget::over_budget_message()
                }
                Some(detail) => format!("{}: {detail}", inner.kind()),
                None => inner.kind().to_string(),
            };
            let place = match (inner.name(), inner.line()) {
                (Some(name), Some(line)) if !name.starts_with('#') => format!(" ({name}:{line})"),
                _ => String::new(),
            };
            let line = format!("\ncaused by: {text}{place}");
            if !message.ends_with(&line) {
                message.push_str(&line);
            }
        }
        cause = inner.source();
    }
    message
}

/// Positions a minijinja error in the file it happened in: the prompt file for the prompt's own
/// templates, the partial's own file otherwise.
pub(crate) fn template_diagnostic(
    ctx: &FileContext<'_>,
    err: &minijinja::Error,
    code: Code,
) -> Diagnostic {
    let refused = refusal(err);
    let code = match err.kind() {
        _ if refused.is_some() => refused.map_or(code, refusal_code),
        ErrorKind::TemplateNotFound => Code::IncludeMissing,
        ErrorKind::OutOfFuel => Code::RenderLimit,
        _ => code,
    };
    let (line, col) = match (err.template_source(), err.range()) {
        (Some(src), Some(range)) => line_col(src, range.start),
        _ => (err.line().unwrap_or(1), 1),
    };
    let message = error_message(err);
    let d = match err.name() {
        Some(name) if name.starts_with('#') => {
            let pos = file_position(ctx, &name[1..], line, col);
            Diagnostic::new(code, ctx.file, message).at(pos)
        }
        Some(name) => Diagnostic::new(code, name, message).at(Pos::new(line, col)),
        None => Diagnostic::new(code, ctx.file, message),
    };
    match refused {
        Some(why) => d.with_hint(why.hint()),
        None => d,
    }
}

/// A finding for a partial that could not be loaded, placed at the template that names it.
fn include_diagnostic(
    ctx: &FileContext<'_>,
    err: &minijinja::Error,
    name: &str,
    from: Option<&str>,
) -> Diagnostic {
    let outside = matches!(normalize(name), Err(PathError::OutsideRoot(_)));
    let (code, message, hint) = if outside {
        (
            Code::IncludeOutsideRoot,
            format!("`{name}` is outside the registry root"),
            "partials must live under the registry root; paths are relative to it",
        )
    } else if let Some(why) = refusal(err) {
        (refusal_code(why), why.message(name), why.hint())
    } else if err.kind() == ErrorKind::TemplateNotFound {
        (
            Code::IncludeMissing,
            format!("included file `{name}` does not exist"),
            "paths are relative to the registry root, e.g. `partials/tone.md`",
        )
    } else {
        let mut d = template_diagnostic(ctx, err, Code::TemplateSyntax);
        d.message = format!("in partial `{name}`: {}", d.message);
        return d;
    };
    let pos = from.and_then(|f| f.strip_prefix('#')).map(|path| {
        let text = ctx
            .prompt
            .templates()
            .into_iter()
            .find(|(p, _)| p == path)
            .map(|(_, t)| t.to_string())
            .unwrap_or_default();
        let offset = text.find(name).unwrap_or(0);
        let (line, col) = line_col(&text, offset);
        file_position(ctx, path, line, col)
    });
    match (pos, from) {
        (Some(pos), _) => Diagnostic::new(code, ctx.file, message)
            .at(pos)
            .with_hint(hint),
        (None, Some(partial)) => Diagnostic::new(code, partial, message).with_hint(hint),
        (None, None) => Diagnostic::new(code, ctx.file, message).with_hint(hint),
    }
}

#[cfg(test)]
mod tests {
    use crate::render::template::*;

    #[test]
    fn finds_referenced_templates() {
        let src = "{% include 'a.md' %} {%- import \"m.j2\" as m %}{% from 'f' import x %}{% if x %}{% endif %}";
        let plain = |n: &str| (n.to_string(), false);
        assert_eq!(
            referenced_templates(src, Syntax::Jinja),
            vec![plain("a.md"), plain("m.j2"), plain("f")]
        );
        assert_eq!(
            referenced_templates("[% extends 'base' %]", Syntax::Brackets),
            vec![plain("base")]
        );
        // As minijinja reads them: optional includes and lists, nothing in raw blocks,
        // comments or string literals, tags without spaces.
        let src = "{% include 'o.md' ignore missing %}{% raw %}{% include 'r.md' %}{% endraw %}\
                   {# {% include 'c.md' %} #}{{ \"{% include 's.md' %}\" }}{%include\"after.md\"%}\
                   {% if x %}{% include ['l1.md', 'l2.md'] %}{% endif %}";
        assert_eq!(
            referenced_templates(src, Syntax::Jinja),
            vec![
                ("o.md".to_string(), true),
                plain("after.md"),
                ("l1.md".to_string(), true),
                ("l2.md".to_string(), true)
            ]
        );
    }

    #[test]
    fn refuses_templates_nested_past_the_limit() {
        let ops = |n: usize| format!("a\n{{{{ x{} }}}}", " + 1".repeat(n));
        assert_eq!(too_nested(&ops(MAX_NESTING), Syntax::Jinja), None);
        let (at, what) = too_nested(&ops(MAX_NESTING + 1), Syntax::Jinja).unwrap();
        assert_eq!(at, 2);
        assert!(what.contains("operators"), "{what}");
        // The same text is only a tag in its own syntax; comments do not count.
        assert_eq!(too_nested(&ops(MAX_NESTING + 1), Syntax::Brackets), None);
        let brackets = format!("[[ {} x ]]", "not ".repeat(MAX_NESTING + 1));
        assert!(too_nested(&brackets, Syntax::Brackets).is_some());
        let comment = format!("{{# {} #}}", "+".repeat(MAX_NESTING * 2));
        assert_eq!(too_nested(&comment, Syntax::Jinja), None);
        let unclosed = format!("{{{{ x {}", "| upper ".repeat(MAX_NESTING + 1));
        assert!(too_nested(&unclosed, Syntax::Jinja).is_some());
        let elifs = |n: usize| format!("{{% if x %}}{}{{% endif %}}", "{%- elif x -%}".repeat(n));
        assert_eq!(too_nested(&elifs(MAX_NESTING), Syntax::Jinja), None);
        let (_, what) = too_nested(&elifs(MAX_NESTING + 1), Syntax::Jinja).unwrap();
        assert!(what.contains("elif"), "{what}");
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncé{{", 6), (2, 3));
    }

    #[test]
    fn linear_renders_are_told_apart_from_the_rest() {
        let reads = |text: &str| linear_reads(text, Syntax::Jinja);
        assert_eq!(reads("plain text"), Some(0));
        assert_eq!(
            reads("Hi {{ name | title }}. {% if topic %}About {{ topic }}.{% else %}{{ 'none' }}{% endif %}"),
            Some(3)
        );
        assert_eq!(
            reads("{{ a ~ b }} {{ x.y[0] }} {{ d | default('n/a') }}"),
            Some(4)
        );
        assert_eq!(
            reads("{{ data | tojson }}{{ n is divisibleby(3) }}"),
            Some(2)
        );
        assert_eq!(reads("[[ x ]]"), Some(0));
        assert_eq!(linear_reads("[[ x ]]", Syntax::Brackets), Some(1));
        // What can build more than its values: loops, calls, assignments, repetition,
        // filters that multiply, arguments from values, includes, macros.
        for text in [
            "{% for x in xs %}{{ x }}{% endfor %}",
            "{{ range(10) }}",
            "{{ x.upper() }}",
            "{% set y = x ~ x %}{{ y }}",
            "{% with y = x %}{{ y }}{% endwith %}",
            "{{ x * 1000 }}",
            "{{ x ** 9 }}",
            "{{ x | replace('a', 'bbbb') }}",
            "{{ x | indent(40) }}",
            "{{ xs | join(x) }}",
            "{{ x | truncate(n) }}",
            "{{ x | tojson(indent=2) }}",
            "{% include 'p.txt' %}",
            "{% macro m() %}{% endmacro %}{{ m() }}",
            "{% filter replace('a', 'bb') %}{{ x }}{% endfilter %}",
            "{{ unclosed",
        ] {
            assert_eq!(reads(text), None, "{text}");
        }
    }
}

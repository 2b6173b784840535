//! The review as Markdown for a pull-request comment: a summary table first, then one section
//! per prompt with long diffs folded into `<details>`, so it stays readable at fifty prompts.

use std::fmt::Write;

use crate::check::review::{ChangeKind, PromptChange, Review};
use crate::diagnostic::Diagnostic;

/// A marker on the first line, so a CI job can find and update its earlier comment.
pub(crate) const MARKER: &str = "<!-- promptreg-review -->";

/// Diffs longer than this many lines are folded.
const FOLD_LINES: usize = 15;

fn version(v: Option<u32>) -> String {
    v.map_or("-".to_string(), |n| format!("v{n}"))
}

fn arrow(before: Option<u32>, after: Option<u32>) -> String {
    if before == after {
        version(after)
    } else {
        format!("{} -> {}", version(before), version(after))
    }
}

fn fence(diff: &str) -> String {
    // A fence longer than any backtick run inside the diff.
    let longest = diff.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let ticks = "`".repeat(longest.max(2) + 1);
    format!("{ticks}diff\n{diff}{ticks}\n")
}

/// `text` as an inline code span, whatever it holds: the fence is longer than any run of
/// backticks inside, and a space keeps a leading or trailing backtick apart from it.
pub fn code(text: &str) -> String {
    let text = text.replace(['\n', '\r'], " ");
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let ticks = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

/// [`code`] for a table cell: GitHub splits rows on `|` even inside code spans, unless it is
/// escaped.
pub(crate) fn code_cell(text: &str) -> String {
    code(text).replace('|', "\\|")
}

/// Text for inside an HTML element (`<summary>`), where Markdown is not read.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn block(out: &mut String, summary: &str, diff: &str) {
    let lines = diff.lines().count();
    if lines > FOLD_LINES {
        let _ = write!(
            out,
            "<details><summary>{} ({lines} lines)</summary>\n\n{}\n</details>\n\n",
            html(summary),
            fence(diff)
        );
    } else {
        let _ = write!(out, "{summary}:\n\n{}\n", fence(diff));
    }
}

/// GitHub refuses comments longer than 65,536 characters; the report stays under this.
pub const MAX_LENGTH: usize = 60_000;

/// Renders the review as Markdown: the summary, warnings, manifest moves, partials and the
/// validation first, then one section per prompt while they fit in [`MAX_LENGTH`].
pub fn review(review: &Review) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{MARKER}\n## promptreg review\n");
    let short = |c: &str| c.get(..7).unwrap_or(c).to_string();
    let _ = writeln!(
        out,
        "Comparing `{}` ({}) with `{}` ({}){}.\n",
        review.base.rev,
        short(&review.base.commit),
        review.head.rev,
        short(&review.head.commit),
        review
            .merge_base
            .as_ref()
            .map_or(", which share no history".to_string(), |m| format!(
                ", from their merge base {}",
                short(m)
            ))
    );
    summary(&mut out, review);
    for w in &review.warnings {
        let _ = writeln!(out, "> **Warning:** {w}\n");
    }
    manifest_section(&mut out, review);
    validation_section(&mut out, review);
    partials_section(&mut out, review);
    let mut omitted = Vec::new();
    for (i, change) in review.prompts.iter().enumerate() {
        let mut section = String::new();
        prompt_section(&mut section, i, change);
        if omitted.is_empty() && out.len() + section.len() + 2_000 <= MAX_LENGTH {
            out.push_str(&section);
        } else {
            omitted.push(code(&change.id));
        }
    }
    if !omitted.is_empty() {
        let _ = writeln!(
            out,
            "**{} more prompt{} not shown** to keep this comment under GitHub's size limit: {}. Run `promptreg review --base {}` (or `--format json`) for the whole report.",
            omitted.len(),
            if omitted.len() == 1 { "" } else { "s" },
            omitted.join(", "),
            review.base.rev
        );
    }
    out
}

fn summary(out: &mut String, review: &Review) {
    if review.prompts.is_empty() {
        let _ = writeln!(out, "No prompt changes.\n");
        return;
    }
    let count = |k: ChangeKind| review.prompts.iter().filter(|p| p.kind == k).count();
    let parts: Vec<String> = [
        ChangeKind::Added,
        ChangeKind::Changed,
        ChangeKind::Renamed,
        ChangeKind::OutputChanged,
        ChangeKind::Removed,
    ]
    .into_iter()
    .filter(|k| count(*k) > 0)
    .map(|k| format!("{} {}", count(k), k.as_str()))
    .collect();
    let _ = writeln!(
        out,
        "**{} prompt{}:** {}\n",
        review.prompts.len(),
        if review.prompts.len() == 1 { "" } else { "s" },
        parts.join(", ")
    );
    let _ = writeln!(out, "| prompt | change | version | default | test cases |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for (i, p) in review.prompts.iter().enumerate() {
        let change = match &p.renamed_from {
            Some(from) => format!("renamed from {}", code_cell(from)),
            None => p.kind.as_str().to_string(),
        };
        let differing = p.cases.iter().filter(|c| !c.same).count();
        let cases = if p.cases.is_empty() {
            "none".to_string()
        } else {
            format!("{differing} of {} differ", p.cases.len())
        };
        let _ = writeln!(
            out,
            "| [{}](#{}) | {change} | {} | {} | {cases} |",
            code_cell(&p.id),
            anchor(i, &p.id),
            arrow(p.version_before, p.version_after),
            arrow(p.default_before, p.default_after)
        );
    }
    out.push('\n');
}

fn anchor(i: usize, id: &str) -> String {
    let slug: String = id
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("promptreg-{i}-{slug}")
}

fn prompt_section(out: &mut String, i: usize, p: &PromptChange) {
    let _ = writeln!(
        out,
        "<a id=\"{}\"></a>\n\n### {}: {} ({})\n",
        anchor(i, &p.id),
        code(&p.id),
        p.kind.as_str(),
        arrow(p.version_before, p.version_after)
    );
    if let Some(from) = &p.renamed_from {
        let same = if p.source_diff.is_empty() {
            " The content is unchanged."
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "Renamed from {}: a rename starts a new id with its own versions.{same}\n",
            code(from)
        );
    }
    if !p.partials_changed.is_empty() {
        let names: Vec<String> = p.partials_changed.iter().map(|n| code(n)).collect();
        let _ = writeln!(
            out,
            "The prompt file did not change; its output changed through {}.\n",
            names.join(", ")
        );
    }
    if !p.source_diff.is_empty() {
        block(out, "Source diff", &p.source_diff);
    }
    for case in &p.cases {
        let tokens = match (case.tokens_before, case.tokens_after) {
            (Some(b), Some(a)) if b != a => format!(", {b} -> {a} tokens"),
            (Some(b), Some(_)) => format!(", {b} tokens"),
            (None, Some(a)) => format!(", {a} tokens"),
            (Some(b), None) => format!(", {b} tokens before"),
            (None, None) => String::new(),
        };
        if let Some(err) = &case.error_after {
            let _ = writeln!(
                out,
                "Test case {} does not render after the change: {err}\n",
                case.test
            );
        } else if case.same {
            let _ = writeln!(out, "Test case {} renders the same{tokens}.\n", case.test);
        } else {
            block(
                out,
                &format!("Test case {} rendered{tokens}", case.test),
                &case.diff,
            );
        }
    }
    if p.cases.is_empty() && p.kind != ChangeKind::Removed {
        let _ = writeln!(
            out,
            "No test data: add `testData` to see how the rendered output changes.\n"
        );
    }
}

fn manifest_section(out: &mut String, review: &Review) {
    if review.manifest.is_empty() {
        return;
    }
    let _ = writeln!(out, "### Manifest (`defaults.yaml`)\n");
    for m in &review.manifest {
        let what = m
            .label
            .as_ref()
            .map_or("default".to_string(), |l| format!("label {}", code(l)));
        let _ = writeln!(
            out,
            "- {} {what}: {}",
            code(&m.id),
            arrow(m.before, m.after)
        );
    }
    out.push('\n');
    for m in review.manifest.iter().filter(|m| !m.diff.is_empty()) {
        let what = m
            .label
            .as_ref()
            .map_or("default".to_string(), |l| format!("label {}", code(l)));
        block(
            out,
            &format!(
                "{} {what}: {} -> {}",
                code(&m.id),
                version(m.before),
                version(m.after)
            ),
            &m.diff,
        );
    }
}

fn partials_section(out: &mut String, review: &Review) {
    if review.partials.is_empty() {
        return;
    }
    let _ = writeln!(out, "### Partials\n");
    for p in &review.partials {
        let users: Vec<String> = p.included_by.iter().map(|id| code(id)).collect();
        block(
            out,
            &format!("{}, included by {}", code(&p.file), users.join(", ")),
            &p.diff,
        );
    }
}

fn validation_section(out: &mut String, review: &Review) {
    let v = &review.validation;
    let _ = writeln!(out, "### Validation of head\n");
    if v.diagnostics.is_empty() {
        let _ = writeln!(out, "No errors, no warnings.\n");
        return;
    }
    let _ = writeln!(
        out,
        "{} error{}, {} warning{}:\n",
        v.errors,
        if v.errors == 1 { "" } else { "s" },
        v.warnings,
        if v.warnings == 1 { "" } else { "s" }
    );
    for d in &v.diagnostics {
        let _ = writeln!(out, "- {}", finding(d));
    }
    out.push('\n');
}

fn finding(d: &Diagnostic) -> String {
    let hint = d.hint.as_ref().map_or(String::new(), |h| format!(" ({h})"));
    format!(
        "**{}** `{}` {}: {}{hint}",
        d.severity,
        d.code,
        code(&format!("{}:{}:{}", d.file, d.line, d.column)),
        d.message.replace('\n', " ")
    )
}

//! The defaults manifest, `defaults.yaml` at the registry root: the version each prompt gets by
//! default, and further named pointers (labels) such as environments.
//!
//! Reading collects findings with positions. Writing ([`edit`]) changes only the one line it
//! must, keeps comments and order, and checks its own work by reading the result back.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::diagnostic::{Code, Diagnostic, Pos};
use crate::error::Error;
use crate::format::yaml::{self, join, Spans};

/// The manifest's file name, at the registry root.
pub const FILE: &str = "defaults.yaml";

/// The parsed manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Default version by prompt id.
    pub defaults: BTreeMap<String, u32>,
    /// Label name to (prompt id to version).
    pub labels: BTreeMap<String, BTreeMap<String, u32>>,
    spans: SpansEq,
}

#[derive(Debug, Clone, Default)]
struct SpansEq(Spans);

impl PartialEq for SpansEq {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for SpansEq {}

impl Manifest {
    /// Reads a manifest's text. Findings are about `defaults.yaml`.
    pub fn parse(bytes: &[u8]) -> (Manifest, Vec<Diagnostic>) {
        let (document, mut diagnostics) = yaml::parse(FILE, bytes);
        let mut manifest = Manifest::default();
        let Some(document) = document else {
            return (manifest, diagnostics);
        };
        let spans = document.spans;
        let mut found = Vec::new();
        let mut push = |path: &str, message: String| {
            found.push(Diagnostic::new(Code::WrongType, FILE, message).at(spans.value(path)));
        };
        let root = match document.value {
            Value::Object(map) => map,
            Value::Null => BTreeMap::new().into_iter().collect(),
            other => {
                push(
                    "",
                    format!(
                        "defaults.yaml must be a mapping with `defaults` and `labels`, found {}",
                        crate::format::prompt::type_name(&other)
                    ),
                );
                return (manifest, diagnostics);
            }
        };
        let mut push_unknown = Vec::new();
        let mut bad_labels = Vec::new();
        for (key, value) in root {
            match key.as_str() {
                "defaults" => manifest.defaults = pointers(&value, "/defaults", &mut push),
                "labels" => match value {
                    Value::Null => {}
                    Value::Object(labels) => {
                        for (label, entries) in labels {
                            let path = join("/labels", &label);
                            if let Some(why) = label_problem(&label) {
                                bad_labels.push(
                                    Diagnostic::new(
                                        Code::ManifestInvalidLabel,
                                        FILE,
                                        format!("label `{label}` can never be used: {why}"),
                                    )
                                    .at(spans.field(&path))
                                    .with_hint("rename the label: letters, digits, `-`, `_` and `.`, not a number, `latest` or `work`"),
                                );
                            }
                            let map = pointers(&entries, &path, &mut push);
                            manifest.labels.insert(label, map);
                        }
                    }
                    other => push(
                        "/labels",
                        format!(
                            "`labels` must be a mapping of label names, found {}",
                            crate::format::prompt::type_name(&other)
                        ),
                    ),
                },
                other => {
                    let d = Diagnostic::new(
                        Code::UnknownField,
                        FILE,
                        format!("unknown field `{other}` in defaults.yaml"),
                    )
                    .at(spans.field(&join("", other)))
                    .with_hint("defaults.yaml holds `defaults` and `labels`");
                    push_unknown.push(d);
                }
            }
        }
        diagnostics.extend(found);
        diagnostics.extend(bad_labels);
        diagnostics.extend(push_unknown);
        manifest.spans = SpansEq(spans);
        (manifest, diagnostics)
    }

    /// Reads a manifest that must load: any error (a syntax error, a duplicate key, merge
    /// conflict markers, a version that is not a number from 1, a label no reference can
    /// reach) is an [`Error::Invalid`] naming `defaults.yaml` and the line, never a manifest
    /// with the bad entries left out. Whatever resolves a default reads it through this.
    pub fn load(bytes: &[u8]) -> Result<Manifest, Error> {
        let (manifest, diagnostics) = Manifest::parse(bytes);
        if diagnostics.iter().any(Diagnostic::is_error) {
            return Err(Error::Invalid {
                file: FILE.to_string(),
                text: Some(String::from_utf8_lossy(bytes).into_owned()),
                diagnostics,
            });
        }
        Ok(manifest)
    }

    /// Every pointer: (label, id, version), the defaults (under no label) first.
    pub fn pointers(&self) -> impl Iterator<Item = (Option<&str>, &String, u32)> {
        let defaults = self.defaults.iter().map(|(id, v)| (None, id, *v));
        let labels = self
            .labels
            .iter()
            .flat_map(|(l, m)| m.iter().map(move |(id, v)| (Some(l.as_str()), id, *v)));
        defaults.chain(labels)
    }

    /// Where the entry for `id` (under `label`, or under `defaults`) is written.
    pub fn position(&self, label: Option<&str>, id: &str) -> Pos {
        let path = match label {
            None => join("/defaults", id),
            Some(label) => join(&join("/labels", label), id),
        };
        self.spans.0.field(&path)
    }

    /// The version a pointer gives `id`: the default when `label` is `None`.
    pub fn get(&self, label: Option<&str>, id: &str) -> Option<u32> {
        match label {
            None => self.defaults.get(id).copied(),
            Some(label) => self.labels.get(label)?.get(id).copied(),
        }
    }

    /// The labels that point at `id`, with the version each gives.
    pub(crate) fn labels_of(&self, id: &str) -> Vec<(&str, u32)> {
        self.labels
            .iter()
            .filter_map(|(label, map)| map.get(id).map(|v| (label.as_str(), *v)))
            .collect()
    }
}

fn pointers(
    value: &Value,
    path: &str,
    push: &mut impl FnMut(&str, String),
) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    match value {
        Value::Null => {}
        Value::Object(map) => {
            for (id, version) in map {
                match version
                    .as_u64()
                    .filter(|v| *v >= 1 && *v <= u64::from(u32::MAX))
                {
                    Some(v) => {
                        out.insert(id.clone(), v as u32);
                    }
                    None => {
                        let quoted = version
                            .as_str()
                            .is_some_and(|v| v.parse::<u32>().is_ok_and(|n| n >= 1));
                        let hint = if quoted {
                            " (write it without quotes)"
                        } else {
                            ""
                        };
                        push(
                            &join(path, id),
                            format!("the version of `{id}` must be a number from 1, found {version}{hint}"),
                        )
                    }
                }
            }
        }
        other => push(
            path,
            format!(
                "`{}` must be a mapping of prompt ids to versions, found {}",
                path.trim_start_matches('/'),
                crate::format::prompt::type_name(other)
            ),
        ),
    }
    out
}

/// The text of a manifest with one pointer set: `defaults.<id>` when `label` is `None`, else
/// `labels.<label>.<id>`. Only that line changes (or one line is added); comments, order and
/// every other line stay as they were.
///
/// ```
/// let text = "# pinned versions\ndefaults:\n  greeting: 7   # reviewed\n  other: 2\n";
/// let edited = promptreg::format::manifest::edit(text, None, "greeting", 8).unwrap();
/// assert_eq!(edited, "# pinned versions\ndefaults:\n  greeting: 8   # reviewed\n  other: 2\n");
/// ```
pub fn edit(text: &str, label: Option<&str>, id: &str, version: u32) -> Result<String, String> {
    if let Some(why) = label.and_then(label_problem) {
        return Err(format!(
            "`{}` cannot be a label: {why}; pick a name such as `production` or `staging`",
            label.unwrap_or_default()
        ));
    }
    // A byte order mark stays where it is, outside the lines being edited.
    if let Some(rest) = text.strip_prefix('\u{feff}') {
        return edit(rest, label, id, version).map(|edited| format!("\u{feff}{edited}"));
    }
    let (before, diagnostics) = Manifest::parse(text.as_bytes());
    if let Some(d) = diagnostics.iter().find(|d| d.is_error()) {
        return Err(format!("defaults.yaml is not valid: {d}"));
    }
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    if lines.last().is_some_and(|l| !l.ends_with('\n')) {
        if let Some(last) = lines.last_mut() {
            last.push('\n');
        }
    }
    let mut path: Vec<&str> = match label {
        None => vec!["defaults"],
        Some(label) => vec!["labels", label],
    };
    path.push(id);
    set_path(&mut lines, &path, version)?;
    let edited = lines.concat();
    let (after, diagnostics) = Manifest::parse(edited.as_bytes());
    let mut expected = before;
    match label {
        None => {
            expected.defaults.insert(id.to_string(), version);
        }
        Some(label) => {
            expected
                .labels
                .entry(label.to_string())
                .or_default()
                .insert(id.to_string(), version);
        }
    }
    if diagnostics.iter().any(Diagnostic::is_error) || after != expected {
        return Err("defaults.yaml is written in a form promptreg cannot edit line by line (flow mappings or anchors); edit it by hand".into());
    }
    Ok(edited)
}

/// `text` without the default of `id` (or its entry under `label`): the one line goes, and a
/// label left with no entries goes too; comments and order stay. `Ok(None)` when there is no
/// such entry.
///
/// ```
/// use promptreg::format::manifest::remove;
/// let text = "defaults:\n  a: 1  # pinned\n  b: 2\nlabels:\n  staging:\n    a: 2\n";
/// assert_eq!(remove(text, None, "a").unwrap().unwrap(), "defaults:\n  b: 2\nlabels:\n  staging:\n    a: 2\n");
/// assert_eq!(remove(text, Some("staging"), "a").unwrap().unwrap(), "defaults:\n  a: 1  # pinned\n  b: 2\nlabels:\n");
/// assert_eq!(remove(text, None, "c").unwrap(), None);
/// ```
pub fn remove(text: &str, label: Option<&str>, id: &str) -> Result<Option<String>, String> {
    if let Some(rest) = text.strip_prefix('\u{feff}') {
        return remove(rest, label, id).map(|r| r.map(|edited| format!("\u{feff}{edited}")));
    }
    let (before, diagnostics) = Manifest::parse(text.as_bytes());
    if let Some(d) = diagnostics.iter().find(|d| d.is_error()) {
        return Err(format!("defaults.yaml is not valid: {d}"));
    }
    if before.get(label, id).is_none() {
        return Ok(None);
    }
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let mut path: Vec<&str> = match label {
        None => vec!["defaults"],
        Some(label) => vec!["labels", label],
    };
    path.push(id);
    // The line of each key of the path, and the block each opens.
    let (mut start, mut end, mut indent) = (0, lines.len(), 0usize);
    let mut found_lines = Vec::new();
    for key in &path {
        let Some(i) = (start..end).find(
            |&i| matches!(key_of(&lines[i]), Some((ind, ref k, _)) if ind == indent && k == key),
        ) else {
            return Err("defaults.yaml is written in a form promptreg cannot edit line by line (flow mappings or anchors); edit it by hand".into());
        };
        found_lines.push(i);
        (start, end, indent) = block(&lines, i, end, indent);
    }
    let leaf = found_lines[found_lines.len() - 1];
    lines.remove(leaf);
    // A label with no entries left goes with its last one.
    if let (Some(_), Some(&label_line)) = (label, found_lines.get(1)) {
        let mut j = label_line + 1;
        while j < lines.len() && is_blank(&lines[j]) {
            j += 1;
        }
        let empty = match lines.get(j) {
            None => true,
            Some(line) => {
                let ind = line.len() - line.trim_start_matches(' ').len();
                let label_indent =
                    lines[label_line].len() - lines[label_line].trim_start_matches(' ').len();
                ind <= label_indent
            }
        };
        if empty {
            lines.remove(label_line);
        }
    }
    let edited = lines.concat();
    let (after, diagnostics) = Manifest::parse(edited.as_bytes());
    let mut expected = before;
    match label {
        None => {
            expected.defaults.remove(id);
        }
        Some(label) => {
            if let Some(map) = expected.labels.get_mut(label) {
                map.remove(id);
                if map.is_empty() {
                    expected.labels.remove(label);
                }
            }
        }
    }
    if diagnostics.iter().any(Diagnostic::is_error) || after != expected {
        return Err("defaults.yaml is written in a form promptreg cannot edit line by line (flow mappings or anchors); edit it by hand".into());
    }
    Ok(Some(edited))
}

/// The block the `key:` line `i` opens (the following lines indented deeper than `indent`, or
/// blank, up to `end`): its first and past-the-end lines, and its children's indentation.
fn block(lines: &[String], i: usize, end: usize, indent: usize) -> (usize, usize, usize) {
    let start = i + 1;
    let mut stop = start;
    while stop < end {
        let line = &lines[stop];
        if !is_blank(line) && indent_of(line) <= indent {
            break;
        }
        stop += 1;
    }
    let child = (start..stop)
        .find(|&j| !is_blank(&lines[j]))
        .map_or(indent + 2, |j| indent_of(&lines[j]));
    (start, stop, child)
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// A line's indentation, key and the column after `key:`, if it is a `key:` line.
fn key_of(line: &str) -> Option<(usize, String, usize)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let rest = &line[indent..];
    if rest.starts_with('#') || rest.trim().is_empty() || rest.starts_with('-') {
        return None;
    }
    let (key, after) = if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
        quoted_key(rest, q)?
    } else {
        let colon = rest
            .find(": ")
            .or_else(|| rest.trim_end().strip_suffix(':').map(|s| s.len()))?;
        (rest[..colon].trim_end().to_string(), colon)
    };
    let tail = &rest[after..];
    let tail_trim = tail.trim_start();
    if !tail_trim.starts_with(':') {
        return None;
    }
    let value_col = indent + after + (tail.len() - tail_trim.len()) + 1;
    Some((indent, key, value_col))
}

/// A quoted key at the start of `rest` (which starts with the quote `q`): its value, and the
/// byte offset just after the closing quote. Escapes are undone as YAML does for the forms
/// [`yaml_key`] writes (`\"`, `\\`, `\uXXXX`) and for `''` in single quotes.
fn quoted_key(rest: &str, q: char) -> Option<(String, usize)> {
    let mut key = String::new();
    let mut chars = rest.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' if q == '\'' => {
                if rest[i + 1..].starts_with('\'') {
                    key.push('\'');
                    chars.next();
                } else {
                    return Some((key, i + 1));
                }
            }
            '"' if q == '"' => return Some((key, i + 1)),
            '\\' if q == '"' => match chars.next()?.1 {
                'u' => {
                    let hex: String = (0..4)
                        .filter_map(|_| chars.next().map(|(_, c)| c))
                        .collect();
                    key.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                'n' => key.push('\n'),
                't' => key.push('\t'),
                other => key.push(other),
            },
            c => key.push(c),
        }
    }
    None
}

fn is_blank(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// Why `name` cannot be a label, if it cannot: `ID@name` would be read as something else
/// (`latest`, `work`, a version number), or could not be written on a command line at all.
///
/// ```
/// use promptreg::format::manifest::label_problem;
/// assert!(label_problem("production").is_none());
/// assert!(label_problem("latest").is_some());
/// assert!(label_problem("3").is_some());
/// assert!(label_problem("").is_some());
/// ```
pub fn label_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("the name is empty");
    }
    if matches!(name, "latest" | "work") {
        return Some("`ID@latest` and `ID@work` are built-in references");
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Some("`ID@N` is version N");
    }
    if name.contains('@') {
        return Some("a reference holds one `@`");
    }
    if name.starts_with('-') {
        return Some("a name starting with `-` reads as an option");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("the name holds spaces or control characters");
    }
    None
}

/// `key` as a YAML mapping key that every YAML reader (1.1 and 1.2) reads back as the same
/// string: plain when it is unambiguous, else double-quoted.
fn yaml_key(key: &str) -> String {
    if plain_is_string(key) {
        key.to_string()
    } else {
        let mut out = String::with_capacity(key.len() + 2);
        out.push('"');
        for c in key.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

/// Whether `key`, written plain, is a string for YAML 1.1 and 1.2 alike: ASCII letters,
/// digits, `/`, `-`, `_`, `.`, starting with a letter, `_` or `/`, and not one of the words
/// YAML 1.1 reads as a boolean or null. Anything that starts with a digit or a sign (`123`,
/// `1.0`, `0x10`, `1_000`, `-1`) is quoted, since one reader or the other takes it for a number.
fn plain_is_string(key: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "yes", "n", "no", "true", "false", "on", "off", "null", "nan", "inf",
    ];
    let Some(first) = key.chars().next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_' || first == '/')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
        && !WORDS.contains(&key.to_ascii_lowercase().as_str())
}

/// Sets `path` (keys, nested) to `version` within the block `lines[start..end]` at `indent`.
fn set_path(lines: &mut Vec<String>, path: &[&str], version: u32) -> Result<(), String> {
    let mut start = 0;
    let mut end = lines.len();
    let mut indent = 0usize;
    for (depth, key) in path.iter().enumerate() {
        let last = depth + 1 == path.len();
        let found = (start..end).find(
            |&i| matches!(key_of(&lines[i]), Some((ind, ref k, _)) if ind == indent && k == key),
        );
        match found {
            Some(i) => {
                let (_, _, value_col) = key_of(&lines[i]).ok_or("internal: key vanished")?;
                let value = lines[i][value_col..].trim_end_matches('\n');
                if last {
                    let lead = value.len() - value.trim_start().len();
                    let token = value[lead..]
                        .find(char::is_whitespace)
                        .unwrap_or(value.len() - lead);
                    let space = if lead == 0 { " " } else { &value[..lead] };
                    let tail = &value[lead + token..];
                    lines[i] = format!("{}{space}{version}{tail}\n", &lines[i][..value_col]);
                    return Ok(());
                }
                let trimmed = value.trim();
                if !(trimmed.is_empty() || trimmed.starts_with('#') || trimmed == "{}") {
                    return Err(format!("`{key}` in defaults.yaml is written inline; write it as a block mapping to let promptreg edit it"));
                }
                if trimmed == "{}" {
                    lines[i] = format!("{}\n", &lines[i][..value_col].trim_end());
                }
                (start, end, indent) = block(lines, i, end, indent);
            }
            None => {
                // Insert after the block's last non-blank line.
                let at = (start..end)
                    .rev()
                    .find(|&j| !is_blank(&lines[j]))
                    .map_or(start, |j| j + 1);
                let mut new_lines = Vec::new();
                for (d, k) in path[depth..].iter().enumerate() {
                    let pad = " ".repeat(indent + 2 * d);
                    if depth + d + 1 == path.len() {
                        new_lines.push(format!("{pad}{}: {version}\n", yaml_key(k)));
                    } else {
                        new_lines.push(format!("{pad}{}:\n", yaml_key(k)));
                    }
                }
                let at = if depth == 0 { lines.len() } else { at };
                lines.splice(at..at, new_lines);
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::format::manifest::*;

    #[test]
    fn reads_defaults_and_labels() {
        let (m, d) = Manifest::parse(b"defaults:\n  a: 3\nlabels:\n  staging:\n    a: 4\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(m.get(None, "a"), Some(3));
        assert_eq!(m.get(Some("staging"), "a"), Some(4));
        assert_eq!(m.position(Some("staging"), "a"), Pos::new(5, 5));
    }

    #[test]
    fn refuses_versions_that_are_not_numbers() {
        let (_, d) = Manifest::parse(b"defaults:\n  a: latest\n  b: 0\n");
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].line, 2);
    }

    #[test]
    fn edits_only_the_line_it_must() {
        let text = "# top\ndefaults:\n  # the triage prompt\n  support/triage: 3 # pinned\n  greeting: 7\n\nlabels:\n  staging:\n    greeting: 8\n";
        assert_eq!(
            edit(text, None, "greeting", 9).unwrap(),
            text.replace("greeting: 7", "greeting: 9")
        );
        assert_eq!(
            edit(text, None, "support/triage", 4).unwrap(),
            text.replace("triage: 3 # pinned", "triage: 4 # pinned")
        );
        assert_eq!(
            edit(text, Some("staging"), "greeting", 9).unwrap(),
            text.replace("greeting: 8", "greeting: 9")
        );
    }

    #[test]
    fn adds_missing_entries_and_sections() {
        let text = "defaults:\n  a: 1\n\nlabels:\n  staging:\n    a: 1\n";
        assert_eq!(
            edit(text, None, "b", 2).unwrap(),
            "defaults:\n  a: 1\n  b: 2\n\nlabels:\n  staging:\n    a: 1\n"
        );
        assert_eq!(
            edit(text, Some("prod"), "a", 2).unwrap(),
            "defaults:\n  a: 1\n\nlabels:\n  staging:\n    a: 1\n  prod:\n    a: 2\n"
        );
        assert_eq!(
            edit("# only a comment\n", None, "a", 1).unwrap(),
            "# only a comment\ndefaults:\n  a: 1\n"
        );
        assert_eq!(
            edit("", Some("s"), "a", 1).unwrap(),
            "labels:\n  s:\n    a: 1\n"
        );
        assert_eq!(
            edit("defaults: {}\n", None, "a", 1).unwrap(),
            "defaults:\n  a: 1\n"
        );
    }

    #[test]
    fn refuses_flow_style() {
        assert!(edit("defaults: {a: 1}\n", None, "a", 2).is_err());
    }
}

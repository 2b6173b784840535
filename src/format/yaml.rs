//! Reading YAML into plain values, with the position of every node kept aside.
//!
//! serde_yaml gives the values and the syntax errors (with their location). It reads duplicate
//! keys silently and keeps no positions, so a second, event-level pass with yaml-rust2 records
//! where each node starts and reports duplicate keys. The second pass never expands aliases, so
//! it is linear in the size of the file.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::diagnostic::{Code, Diagnostic, Pos};

/// Files larger than this are refused rather than parsed.
pub(crate) const MAX_FILE_SIZE: usize = 4 * 1024 * 1024;

/// A parsed YAML document: its value and where each of its nodes is.
#[derive(Debug, Clone, Default)]
pub struct Document {
    /// The document as a JSON-compatible value (mapping keys are strings).
    pub value: Value,
    /// Where each node starts, by path.
    pub spans: Spans,
}

/// How a scalar was written, which decides how lines inside it map to lines of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScalarStyle {
    /// A plain, unquoted scalar.
    #[default]
    Plain,
    /// `'...'` or `"..."`: the text starts one column after the mark.
    Quoted,
    /// `|` or `>`: the mark is where the text starts, on the line after the indicator.
    Block,
    /// A mapping or a sequence.
    Collection,
    /// The body of a file with front matter: its lines are the file's lines from the mark on.
    Body,
}

/// Where a node is: the key that introduces it (in a mapping) and the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeSpan {
    /// The position of the key, for values in a mapping.
    pub key: Option<Pos>,
    /// The position where the value starts.
    pub value: Pos,
    /// How the value was written.
    pub style: ScalarStyle,
}

impl NodeSpan {
    /// The position of the key if there is one, else of the value: where a finding about the
    /// field as a whole should point.
    pub fn field(&self) -> Pos {
        self.key.unwrap_or(self.value)
    }
}

/// Node positions keyed by path: `""` is the root, `/messages/0/content` a nested value.
#[derive(Debug, Clone, Default)]
pub struct Spans {
    nodes: HashMap<String, NodeSpan>,
}

impl Spans {
    /// Records where the node at `path` is (the body of a front-matter file).
    pub(crate) fn insert(&mut self, path: &str, span: NodeSpan) {
        self.nodes.insert(path.to_string(), span);
    }

    /// The span of the node at `path`, if the file has one there.
    pub fn get(&self, path: &str) -> Option<&NodeSpan> {
        self.nodes.get(path)
    }

    /// The position of the field at `path`, or of its nearest ancestor that has one.
    pub fn field(&self, path: &str) -> Pos {
        let mut path = path;
        loop {
            if path.is_empty() {
                return Pos::START;
            }
            if let Some(span) = self.nodes.get(path) {
                return span.field();
            }
            match path.rfind('/') {
                Some(i) => path = &path[..i],
                None => return Pos::START,
            }
        }
    }

    /// The position of the value at `path` (falling back like [`Spans::field`]).
    pub fn value(&self, path: &str) -> Pos {
        match self.nodes.get(path) {
            Some(span) => span.value,
            None => self.field(path),
        }
    }
}

/// Joins a path and a key (or index) the way [`Spans`] keys them.
pub fn join(path: &str, key: impl std::fmt::Display) -> String {
    format!("{path}/{key}")
}

/// Parses `text` (the contents of `file`) as one YAML document.
///
/// Returns the document when it parses, and every finding: a syntax error (then no document),
/// duplicate keys and keys that are not strings.
pub fn parse(file: &str, bytes: &[u8]) -> (Option<Document>, Vec<Diagnostic>) {
    let text = match decode(file, bytes) {
        Ok(text) => text,
        Err(diagnostic) => return (None, vec![*diagnostic]),
    };
    if let Some(line) = conflict_marker(text) {
        let d = Diagnostic::new(
            Code::YamlSyntax,
            file,
            "merge conflict markers (`<<<<<<<`, `=======`, `>>>>>>>`) are still in the file",
        )
        .at(Pos::new(line, 1))
        .with_hint("resolve the conflict: keep one side's lines and delete the markers");
        return (None, vec![d]);
    }
    if let Some(pos) = too_deep(text) {
        let d = Diagnostic::new(
            Code::YamlSyntax,
            file,
            format!("brackets nest more than {MAX_FLOW_DEPTH} levels deep"),
        )
        .at(pos)
        .with_hint("no prompt needs this; check for unbalanced `[` or `{`");
        return (None, vec![d]);
    }
    let raw: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(raw) => raw,
        Err(err) => {
            let err_text = text;
            // serde_yaml refuses duplicate keys but points at the mapping; the position pass
            // points at the duplicate itself. When that pass reads the whole text, serde_yaml's
            // complaint was about the content, and the pass's findings say what it was.
            let mut diagnostics = Vec::new();
            let (_, parsed) = parse_positions(text, file, &mut diagnostics);
            if !parsed || diagnostics.is_empty() {
                diagnostics.clear();
                diagnostics.push(syntax_error(file, err_text, &err));
            }
            return (None, diagnostics);
        }
    };
    let mut diagnostics = Vec::new();
    let value = to_json(raw);
    let spans = positions(text, file, &mut diagnostics);
    (Some(Document { value, spans }), diagnostics)
}

/// The deepest nesting of `[` and `{` a file may have. The YAML scanner slows down sharply with
/// depth (100,000 levels took over a minute), and no real prompt comes near this.
pub const MAX_FLOW_DEPTH: usize = 1000;

/// Where brackets first nest deeper than [`MAX_FLOW_DEPTH`], counting every `[`/`{` against
/// every `]`/`}` (quotes ignored: an overestimate that only real abuse reaches).
fn too_deep(text: &str) -> Option<Pos> {
    let mut depth = 0usize;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Some(Pos::of_offset(text, i));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Checks size and encoding, and returns the text.
pub fn decode<'a>(file: &str, bytes: &'a [u8]) -> Result<&'a str, Box<Diagnostic>> {
    if bytes.len() > MAX_FILE_SIZE {
        return Err(Box::new(
            Diagnostic::new(
                Code::Unreadable,
                file,
                format!(
                    "file is too large ({} bytes; the limit is {} bytes)",
                    bytes.len(),
                    MAX_FILE_SIZE
                ),
            )
            .with_hint("prompt files are text a person edits; split this one into smaller prompts or partials"),
        ));
    }
    // A UTF-8 byte order mark (Windows editors write one) is not part of the text.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|err| {
        let valid = std::str::from_utf8(&bytes[..err.valid_up_to()]).unwrap_or_default();
        Box::new(
            Diagnostic::new(Code::YamlSyntax, file, "file is not valid UTF-8")
                .at(Pos::of_offset(valid, valid.len()))
                .with_hint("save the file as UTF-8"),
        )
    })
}

/// The line (from 1) of the first merge conflict marker, if the text has one: a line that
/// starts with `<<<<<<<` or `>>>>>>>` followed by a space or the end of the line. In YAML such
/// a line at column 1 can only be a marker (block scalars are indented).
fn conflict_marker(text: &str) -> Option<usize> {
    if !text.contains("<<<<<<<") && !text.contains(">>>>>>>") {
        return None;
    }
    text.lines()
        .position(|line| {
            ["<<<<<<<", ">>>>>>>"].iter().any(|marker| {
                line.strip_prefix(marker)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
            })
        })
        .map(|i| i + 1)
}

fn syntax_error(file: &str, text: &str, err: &serde_yaml::Error) -> Diagnostic {
    let mut message = err.to_string();
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
    let mut pos = err
        .location()
        .map_or(Pos::START, |loc| Pos::new(loc.line(), loc.column()));
    // An error at the end of the stream (an unterminated quote or bracket) points past the
    // last line: point at the end of the last line that has text instead.
    let lines: Vec<&str> = text.lines().collect();
    if pos.line > lines.len() {
        if let Some((i, line)) = lines
            .iter()
            .enumerate()
            .rev()
            .find(|(_, l)| !l.trim().is_empty())
        {
            pos = Pos::new(i + 1, line.chars().count().max(1));
        }
    }
    Diagnostic::new(Code::YamlSyntax, file, format!("invalid YAML: {message}"))
        .at(pos)
        .with_hint("fix the YAML syntax; quote values that start with `{{`, `[` or `*`")
}

fn to_json(raw: serde_yaml::Value) -> Value {
    match raw {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Value::Number(u.into())
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                Number::from_f64(f).map_or_else(|| Value::String(n.to_string()), Value::Number)
            }
        }
        serde_yaml::Value::String(s) => Value::String(s),
        serde_yaml::Value::Sequence(items) => {
            Value::Array(items.into_iter().map(to_json).collect())
        }
        serde_yaml::Value::Mapping(mapping) => {
            let mut map = Map::with_capacity(mapping.len());
            for (key, value) in mapping {
                let key = match key {
                    serde_yaml::Value::String(s) => s,
                    serde_yaml::Value::Number(n) => n.to_string(),
                    serde_yaml::Value::Bool(b) => b.to_string(),
                    serde_yaml::Value::Null => "null".to_string(),
                    // A collection as a key (`{{ x }}` unquoted reads as one): keep a text form;
                    // the field's type check then says what is wrong, where.
                    other => serde_json::to_string(&to_json(other)).unwrap_or_default(),
                };
                map.insert(key, to_json(value));
            }
            Value::Object(map)
        }
        serde_yaml::Value::Tagged(tagged) => to_json(tagged.value),
    }
}

fn positions(text: &str, file: &str, diagnostics: &mut Vec<Diagnostic>) -> Spans {
    parse_positions(text, file, diagnostics).0
}

/// The positions of every node, and whether the position parser read the whole text.
fn parse_positions(text: &str, file: &str, diagnostics: &mut Vec<Diagnostic>) -> (Spans, bool) {
    let mut recorder = Recorder {
        file,
        stack: Vec::new(),
        spans: Spans::default(),
        diagnostics,
        documents: 0,
    };
    let mut parser = Parser::new_from_str(text);
    // serde_yaml accepted the text, so an error here is a difference between the two parsers;
    // the positions recorded so far are still right, and the rest fall back to the start.
    let parsed = parser.load(&mut recorder, false).is_ok();
    (recorder.spans, parsed)
}

enum Frame {
    Map {
        path: String,
        key: Option<(String, Pos)>,
        expect_key: bool,
        seen: HashMap<String, Pos>,
    },
    Seq {
        path: String,
        index: usize,
    },
}

struct Recorder<'a> {
    file: &'a str,
    stack: Vec<Frame>,
    spans: Spans,
    diagnostics: &'a mut Vec<Diagnostic>,
    documents: usize,
}

fn pos(mark: &Marker) -> Pos {
    Pos::new(mark.line(), mark.col() + 1)
}

impl Recorder<'_> {
    /// Records a node starting at `mark`; returns its path when it is a value (not a key).
    fn node(
        &mut self,
        mark: &Marker,
        style: ScalarStyle,
        key_text: Option<&str>,
    ) -> Option<String> {
        let at = pos(mark);
        match self.stack.last_mut() {
            None => {
                self.documents += 1;
                let span = NodeSpan {
                    key: None,
                    value: at,
                    style,
                };
                self.spans.nodes.insert(String::new(), span);
                Some(String::new())
            }
            Some(Frame::Seq { path, index }) => {
                let child = join(path, *index);
                *index += 1;
                let span = NodeSpan {
                    key: None,
                    value: at,
                    style,
                };
                self.spans.nodes.insert(child.clone(), span);
                Some(child)
            }
            Some(Frame::Map {
                path,
                key,
                expect_key,
                seen,
            }) => {
                if *expect_key {
                    *expect_key = false;
                    let text = key_text.unwrap_or("?").to_string();
                    if let Some(first) = seen.get(&text) {
                        self.diagnostics.push(
                            Diagnostic::new(
                                Code::DuplicateKey,
                                self.file,
                                format!(
                                    "duplicate key `{text}` (first defined at line {})",
                                    first.line
                                ),
                            )
                            .at(at)
                            .with_hint("remove one of the two; YAML keeps only the last"),
                        );
                    } else if key_text.is_some() {
                        seen.insert(text.clone(), at);
                    }
                    *key = Some((text, at));
                    None
                } else {
                    *expect_key = true;
                    let (name, key_pos) = key.take().unwrap_or_else(|| ("?".into(), at));
                    let child = join(path, name);
                    let span = NodeSpan {
                        key: Some(key_pos),
                        value: at,
                        style,
                    };
                    self.spans.nodes.insert(child.clone(), span);
                    Some(child)
                }
            }
        }
    }
}

impl MarkedEventReceiver for Recorder<'_> {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.documents > 1 {
            return;
        }
        match event {
            Event::Scalar(text, style, ..) => {
                let style = match style {
                    TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => ScalarStyle::Quoted,
                    TScalarStyle::Literal | TScalarStyle::Folded => ScalarStyle::Block,
                    _ => ScalarStyle::Plain,
                };
                self.node(&mark, style, Some(&text));
            }
            Event::Alias(_) => {
                self.node(&mark, ScalarStyle::Plain, None);
            }
            Event::MappingStart(..) => {
                let path = self.node(&mark, ScalarStyle::Collection, None);
                self.stack.push(Frame::Map {
                    path: path.unwrap_or_else(|| "/?".into()),
                    key: None,
                    expect_key: true,
                    seen: HashMap::new(),
                });
            }
            Event::SequenceStart(..) => {
                let path = self.node(&mark, ScalarStyle::Collection, None);
                self.stack.push(Frame::Seq {
                    path: path.unwrap_or_else(|| "/?".into()),
                    index: 0,
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::format::yaml::*;

    #[test]
    fn records_positions_of_keys_and_values() {
        let text = "name: x\nmessages:\n  - role: user\n    content: |\n      hi\n";
        let (doc, diags) = parse("p.prompt.yaml", text.as_bytes());
        assert!(diags.is_empty(), "{diags:?}");
        let spans = doc.expect("parses").spans;
        assert_eq!(spans.field("/name"), Pos::new(1, 1));
        assert_eq!(spans.field("/messages/0/role"), Pos::new(3, 5));
        let content = spans.get("/messages/0/content").expect("content span");
        // yaml-rust2 marks a block scalar where its text starts, not at the `|`.
        assert_eq!(content.value, Pos::new(5, 7));
        assert_eq!(content.style, ScalarStyle::Block);
    }

    #[test]
    fn reports_duplicate_keys_with_both_lines() {
        let text = "name: a\nmodel: m\nname: b\n";
        let (doc, diags) = parse("p.prompt.yaml", text.as_bytes());
        assert!(doc.is_none());
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].code, Code::DuplicateKey);
        assert_eq!((diags[0].line, diags[0].column), (3, 1));
        assert!(diags[0].message.contains("line 1"));
    }

    #[test]
    fn syntax_errors_carry_their_line() {
        let (doc, diags) = parse("p.prompt.yaml", b"name: a\nmessages: [\n  - x: : :\n");
        assert!(doc.is_none());
        assert_eq!(diags[0].code, Code::YamlSyntax);
        assert!(diags[0].line >= 2, "{diags:?}");
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        let (_, diags) = parse("p.prompt.yaml", b"name: a\nmodel: \xff\n");
        assert_eq!(diags[0].code, Code::YamlSyntax);
        assert_eq!((diags[0].line, diags[0].column), (2, 8));
    }

    #[test]
    fn invalid_utf8_column_counts_characters() {
        // `é` is two bytes and one column.
        let (_, diags) = parse("p.prompt.yaml", b"name: a\nmodel: \xc3\xa9 \xff\n");
        assert_eq!((diags[0].line, diags[0].column), (2, 10));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            text.push_str(&format!(
                "{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n",
                n = (b'a' + i) as char,
                p = (b'a' + i - 1) as char
            ));
        }
        let (doc, diags) = parse("bomb.prompt.yaml", text.as_bytes());
        assert!(doc.is_none());
        assert_eq!(diags[0].code, Code::YamlSyntax);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let (doc, diags) = parse("deep.prompt.yaml", text.as_bytes());
        assert!(doc.is_none());
        assert_eq!(diags[0].code, Code::YamlSyntax);
    }
}

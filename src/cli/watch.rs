//! `promptreg watch`: re-check and re-render prompts as you save them, one line per prompt
//! and event. The library's [`Watcher`] does the work and sends typed events; this module owns
//! the terminal: it prints them, and exits 0 on Ctrl-C or when stdout is closed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anstyle::{AnsiColor, Style};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use super::output::{eprint, print, stdout_closed, stdout_color};
use super::render::read_values;
use super::{Context, Failure};
use crate::diagnostic::Diagnostic;
use crate::watch::{Cause, Event, Inputs, ManifestStatus, Options, State, Status, Watcher};

/// Watch the registry: re-validate and re-render the prompts each save affects.
///
/// At start every prompt (or each named one) is checked and gets one status line; then every
/// save re-checks the prompts it affects: the saved prompt, every prompt that includes a saved
/// partial, and the prompts whose entries change in defaults.yaml. A line gives the time, the
/// id, and `ok` with the prompt tokens of test case 0, or the first error with its file, line
/// and column. Runs until Ctrl-C, then exits 0.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Prompt ids to watch (all when none are given).
    pub ids: Vec<String>,
    /// Also print the rendered output of each checked prompt (every test case, or the one
    /// `--test` picks, or the values of `--vars`).
    #[arg(long)]
    pub render: bool,
    /// Render test case N (0-based) of each prompt, and count its tokens.
    #[arg(long, value_name = "N", conflicts_with = "vars_file")]
    pub test: Option<usize>,
    /// Render every prompt with the values of a YAML or JSON file (`-` reads standard input).
    #[arg(long = "vars", value_name = "FILE")]
    pub vars_file: Option<PathBuf>,
    /// Output format: one line per event for people, or one JSON object per line for tools.
    #[arg(long, value_enum, default_value_t)]
    pub format: WatchFormat,
}

/// Formats of `watch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum WatchFormat {
    /// One line per prompt and event, coloured on a terminal.
    #[default]
    Human,
    /// One JSON object per line (for editor plugins and other tools).
    Json,
}

/// The watch request once arguments are read: ids, the values file loaded.
#[derive(Debug)]
pub struct WatchRequest {
    /// Prompt ids to watch (all when empty).
    pub ids: Vec<String>,
    /// What the watcher renders.
    pub options: Options,
    /// Output format.
    pub format: WatchFormat,
}

impl WatchRequest {
    /// Reads the arguments: loads the `--vars` file the way `render` does.
    pub fn from_args(args: WatchArgs) -> Result<WatchRequest, Failure> {
        let inputs = match args.vars_file {
            Some(path) => Inputs::Values(read_values(&path)?),
            None => Inputs::TestData(args.test),
        };
        Ok(WatchRequest {
            ids: args.ids,
            options: Options {
                render: args.render,
                inputs,
                ..Options::default()
            },
            format: args.format,
        })
    }
}

/// Runs `watch` until Ctrl-C (or a closed stdout): exit 0.
pub fn run(ctx: &Context, args: WatchArgs) -> Result<u8, Failure> {
    let request = WatchRequest::from_args(args)?;
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .map_err(|e| Failure::Message(format!("cannot handle Ctrl-C: {e}")))?;
    let (watcher, events) = Watcher::start(&ctx.root, request.ids, request.options)?;
    let mut printer = Printer {
        format: request.format,
        color: stdout_color(),
        width: 0,
    };
    let result = loop {
        if interrupted.load(Ordering::SeqCst) {
            break Ok(0);
        }
        match events.recv_timeout(Duration::from_millis(50)) {
            Ok(event) => {
                if let Err(failure) = printer.print(&event) {
                    break Err(failure);
                }
                if stdout_closed() {
                    break Ok(0);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                break Err(Failure::Message("the file watcher stopped".to_string()));
            }
        }
    };
    watcher.stop();
    result
}

/// Turns events into lines.
struct Printer {
    format: WatchFormat,
    color: bool,
    /// The widest id so far, to align the columns.
    width: usize,
}

impl Printer {
    fn print(&mut self, event: &Event) -> Result<(), Failure> {
        match self.format {
            WatchFormat::Json => print(&format!("{}\n", json_line(event))),
            WatchFormat::Human => match event {
                Event::Error { time, message } => {
                    eprint(&format!("{}  error: {message}\n", clock(*time)));
                    Ok(())
                }
                _ => print(&self.human(event)),
            },
        }
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }

    fn human(&mut self, event: &Event) -> String {
        let name = match event {
            Event::Status(s) => s.id.as_str(),
            Event::Removed { id, .. } => id.as_str(),
            Event::Manifest(m) => m.file.as_str(),
            Event::Error { .. } => "",
        };
        self.width = self.width.max(name.chars().count()).min(40);
        let dim = Style::new().dimmed();
        let mut line = format!(
            "{}  {}  ",
            self.paint(dim, &clock(event.time())),
            pad(name, self.width)
        );
        match event {
            Event::Status(status) => {
                line.push_str(&self.verdict(&status.state, status.tokens));
                line.push('\n');
                for case in &status.rendered {
                    let header = match case.case {
                        Some(n) => format!("test case {n}"),
                        None => "values".to_string(),
                    };
                    line.push_str(&self.paint(dim, &format!("    == {header} ==")));
                    line.push('\n');
                    for text in case.rendered.to_string().lines() {
                        line.push_str(&format!("    {text}\n"));
                    }
                }
            }
            Event::Removed { .. } => {
                line.push_str(&self.paint(AnsiColor::Cyan.on_default(), "removed"));
                line.push('\n');
            }
            Event::Manifest(manifest) => {
                line.push_str(&self.manifest(manifest));
                line.push('\n');
            }
            Event::Error { message, .. } => line.push_str(&format!("error: {message}\n")),
        }
        line
    }

    /// `ok       412 tokens`, `warning  412 tokens  file:line:column: message`, `error    ...`.
    fn verdict(&self, state: &State, tokens: Option<usize>) -> String {
        let (word, color, finding) = match state {
            State::Ok => ("ok", AnsiColor::Green, None),
            State::Warning(d) => ("warning", AnsiColor::Yellow, Some(d)),
            State::Error(d) => ("error", AnsiColor::Red, Some(d)),
        };
        let mut rest = Vec::new();
        if let (Some(n), true) = (tokens, state.is_ok()) {
            rest.push(format!("{n} token{}", if n == 1 { "" } else { "s" }));
        }
        rest.extend(finding.map(one_line));
        let word = self.paint(color.on_default().bold(), word);
        if rest.is_empty() {
            return word;
        }
        let gap = " ".repeat(9 - state_width(state));
        format!("{word}{gap}{}", rest.join("  "))
    }

    fn manifest(&self, manifest: &ManifestStatus) -> String {
        let mut text = if manifest.present {
            self.verdict(&manifest.state, None)
        } else {
            self.paint(AnsiColor::Cyan.on_default(), "removed")
        };
        if !manifest.changed.is_empty() {
            text.push_str(&format!("  changed: {}", manifest.changed.join(", ")));
        }
        text
    }
}

fn state_width(state: &State) -> usize {
    match state {
        State::Ok => 2,
        State::Warning(_) => 7,
        State::Error(_) => 5,
    }
}

fn pad(text: &str, width: usize) -> String {
    format!("{text:<width$}")
}

/// A finding on one line: `file:line:column: message`, later lines joined.
fn one_line(d: &Diagnostic) -> String {
    let message: Vec<&str> = d.message.lines().map(str::trim).collect();
    format!("{}:{}:{}: {}", d.file, d.line, d.column, message.join("; "))
}

/// `2024-05-01T12:03:04.512Z`.
fn timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    let seconds = crate::git::time::rfc3339(secs, 0);
    let base = seconds.strip_suffix('Z').unwrap_or(&seconds);
    format!("{base}.{:03}Z", since.subsec_millis())
}

/// `12:03:04.512` (UTC).
fn clock(time: SystemTime) -> String {
    let stamp = timestamp(time);
    stamp.get(11..23).unwrap_or(&stamp).to_string()
}

fn cause_name(cause: &Cause) -> &'static str {
    match cause {
        Cause::Start => "start",
        Cause::File => "file",
        Cause::Partial(_) => "partial",
        Cause::Manifest => "manifest",
        Cause::Rescan => "rescan",
    }
}

/// One event as one JSON object.
fn json_line(event: &Event) -> Value {
    let time = timestamp(event.time());
    match event {
        Event::Status(status) => status_json(&time, status),
        Event::Removed { id, file, .. } => {
            json!({"time": time, "event": "removed", "id": id, "file": file})
        }
        Event::Manifest(m) => {
            let mut value = json!({
                "time": time,
                "event": "manifest",
                "file": m.file,
                "present": m.present,
                "ok": m.state.is_ok(),
                "changed": m.changed,
            });
            add_state(&mut value, &m.state, &m.diagnostics);
            value
        }
        Event::Error { message, .. } => {
            json!({"time": time, "event": "error", "message": message})
        }
    }
}

fn status_json(time: &str, status: &Status) -> Value {
    let mut value = json!({
        "time": time,
        "event": "status",
        "id": status.id,
        "file": status.file,
        "cause": cause_name(&status.cause),
        "ok": status.state.is_ok(),
        "tokens": status.tokens,
    });
    if let Cause::Partial(partial) = &status.cause {
        value["partial"] = json!(partial);
    }
    add_state(&mut value, &status.state, &status.diagnostics);
    if !status.rendered.is_empty() {
        let rendered: Vec<Value> = status
            .rendered
            .iter()
            .map(|case| {
                let mut value = serde_json::to_value(&case.rendered).unwrap_or_default();
                if let Value::Object(map) = &mut value {
                    map.insert("case".to_string(), json!(case.case));
                }
                value
            })
            .collect();
        value["rendered"] = json!(rendered);
    }
    value
}

/// Adds `error` or `warning` (the first finding), the counts and every finding.
fn add_state(value: &mut Value, state: &State, diagnostics: &[Diagnostic]) {
    match state {
        State::Ok => {}
        State::Warning(d) => value["warning"] = json!(d),
        State::Error(d) => value["error"] = json!(d),
    }
    let (errors, warnings) = crate::diagnostic::count(diagnostics);
    value["errors"] = json!(errors);
    value["warnings"] = json!(warnings);
    value["diagnostics"] = json!(diagnostics);
}

#[cfg(test)]
mod tests {
    use crate::cli::watch::*;

    #[test]
    fn timestamps_have_milliseconds() {
        let time = UNIX_EPOCH + Duration::from_millis(1_700_000_000_512);
        assert_eq!(timestamp(time), "2023-11-14T22:13:20.512Z");
        assert_eq!(clock(time), "22:13:20.512");
    }

    #[test]
    fn findings_fit_on_one_line() {
        let d = Diagnostic::new(
            crate::diagnostic::Code::TestRender,
            "a.prompt.yaml",
            "undefined value\ncaused by: `x` is undefined",
        );
        assert_eq!(
            one_line(&d),
            "a.prompt.yaml:1:1: undefined value; caused by: `x` is undefined"
        );
    }
}

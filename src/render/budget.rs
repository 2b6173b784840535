//! What one render may build: a byte budget, and the filters that charge it.
//!
//! Fuel bounds how many instructions a render runs, not how much memory they take: one `~` can
//! double a string, so sixty of them in a loop ask for an exabyte. promptreg's copy of
//! minijinja (`vendor/minijinja`, see its `PROMPTREG-PATCH.md`) counts every byte a render
//! builds against a budget ([`MAX_BUILT`]): strings made by `~`, `+` and `*`, everything
//! written to the output, captures and macro calls, objects turned into text. The builtin
//! filters that can make a value much larger than their input in one call (`replace`, `join`,
//! `indent`, `format`, `list`, `tojson`, `pprint`) are registered here again under their own
//! names: each works out the size of its result and charges it *before* building it, then
//! calls the builtin. A render over the budget fails with a normal render error.

use std::fmt::Write as _;

use minijinja::value::Rest;
use minijinja::{Environment, Error, ErrorKind, State, Value};

/// Bytes one render of one template (a message, or the `template` body) may build in total.
pub const MAX_BUILT: u64 = 64 * 1024 * 1024;

/// The message of a render that went over [`MAX_BUILT`].
pub(crate) fn over_budget_message() -> String {
    format!(
        "the values this template builds exceed {} MiB in total (text joined with `~` or `+`, repeated, replaced, padded or printed); look for a loop or a recursive macro that doubles a string",
        MAX_BUILT / (1024 * 1024)
    )
}

/// Sets the budget on `env` and registers the charging filters over the builtin ones.
pub fn install(env: &mut Environment<'static>) {
    env.set_byte_budget(Some(MAX_BUILT));
    type Size = fn(&[Value]) -> Result<u64, Error>;
    let charging: [(&'static str, Value, Size); 6] = [
        (
            "replace",
            Value::from_function(minijinja::filters::replace),
            replace_size,
        ),
        (
            "join",
            Value::from_function(minijinja::filters::join),
            join_size,
        ),
        (
            "indent",
            Value::from_function(minijinja::filters::indent),
            indent_size,
        ),
        (
            "format",
            Value::from_function(minijinja::filters::format),
            format_size,
        ),
        (
            "list",
            Value::from_function(minijinja::filters::list),
            list_size,
        ),
        (
            "tojson",
            Value::from_function(minijinja::filters::tojson),
            json_size,
        ),
    ];
    for (name, builtin, size) in charging {
        charged(env, name, builtin, size);
    }
    env.add_filter("pprint", pprint);
    env.add_function("debug", debug);
}

/// Registers `builtin` under `name`, charging `size(args)` bytes before each call.
fn charged(
    env: &mut Environment<'static>,
    name: &'static str,
    builtin: Value,
    size: fn(&[Value]) -> Result<u64, Error>,
) {
    env.add_filter(
        name,
        move |state: &mut State<'_, '_>, args: Rest<Value>| -> Result<Value, Error> {
            charge(size(&args)?)?;
            builtin.call(state, &args)
        },
    );
}

fn charge(bytes: u64) -> Result<(), Error> {
    minijinja::charge_bytes(usize::try_from(bytes).unwrap_or(usize::MAX))
}

/// A keyword argument from the trailing kwargs of a call, if given.
fn kwarg(args: &[Value], name: &str) -> Option<Value> {
    args.last()
        .filter(|v| v.is_kwargs())
        .and_then(|kw| kw.get_attr(name).ok())
        .filter(|v| !v.is_undefined())
}

/// A positional argument (the filtered value is 0), not the kwargs.
fn positional(args: &[Value], i: usize) -> Option<&Value> {
    args.get(i).filter(|v| !v.is_kwargs())
}

/// The length of a string argument; other values charge their own text when displayed.
fn text_len(value: Option<&Value>) -> u64 {
    value.and_then(Value::as_str).map_or(0, |s| s.len() as u64)
}

fn replace_size(args: &[Value]) -> Result<u64, Error> {
    let (Some(text), Some(from), Some(to)) = (
        positional(args, 0).and_then(Value::as_str),
        positional(args, 1).and_then(Value::as_str),
        positional(args, 2).and_then(Value::as_str),
    ) else {
        return Ok(0);
    };
    let count = if from.is_empty() {
        text.chars().count() as u64 + 1
    } else {
        text.matches(from).count() as u64
    };
    Ok((text.len() as u64)
        .saturating_sub(count.saturating_mul(from.len() as u64))
        .saturating_add(count.saturating_mul(to.len() as u64)))
}

fn join_size(args: &[Value]) -> Result<u64, Error> {
    let Some(value) = positional(args, 0) else {
        return Ok(0);
    };
    if value.as_str().is_some() {
        // A string joins its characters.
        let joiner = text_len(positional(args, 1).or(kwarg(args, "d").as_ref()));
        let chars = value.as_str().map_or(0, |s| s.chars().count() as u64);
        return Ok(text_len(Some(value)).saturating_add(chars.saturating_mul(joiner)));
    }
    let joiner = positional(args, 1)
        .cloned()
        .or_else(|| kwarg(args, "d"))
        .map_or(0, |j| text_len(Some(&j)));
    let attribute = positional(args, 2)
        .cloned()
        .or_else(|| kwarg(args, "attribute"));
    let attribute = attribute.as_ref().and_then(Value::as_str);
    let Ok(items) = value.try_iter() else {
        return Ok(0);
    };
    let mut total: u64 = 0;
    for (i, item) in items.enumerate() {
        let item = match attribute {
            Some(path) => path
                .split('.')
                .try_fold(item, |v, key| v.get_attr(key).ok())
                .unwrap_or_default(),
            None => item,
        };
        total = total
            .saturating_add(text_len(Some(&item)))
            .saturating_add(if i > 0 { joiner } else { 0 });
        if total > MAX_BUILT {
            break;
        }
    }
    Ok(total)
}

fn indent_size(args: &[Value]) -> Result<u64, Error> {
    let lines = positional(args, 0)
        .and_then(Value::as_str)
        .map_or(1, |s| s.matches('\n').count() as u64 + 1);
    let width = positional(args, 1)
        .cloned()
        .or_else(|| kwarg(args, "width"))
        .and_then(|w| u64::try_from(w).ok())
        .unwrap_or(4);
    Ok(text_len(positional(args, 0)).saturating_add(lines.saturating_mul(width)))
}

/// The format string and every argument's text, plus each number written in the format
/// string (a width or a precision can be as large as it says).
fn format_size(args: &[Value]) -> Result<u64, Error> {
    let format = positional(args, 0).and_then(Value::as_str).unwrap_or("");
    let mut total = format.len() as u64;
    for arg in args.iter().skip(1) {
        total = total.saturating_add(text_len(Some(arg)));
    }
    for number in format.split(|c: char| !c.is_ascii_digit()) {
        if !number.is_empty() {
            total = total.saturating_add(number.parse::<u64>().unwrap_or(u64::MAX));
        }
    }
    Ok(total)
}

/// A list holds one value per item.
fn list_size(args: &[Value]) -> Result<u64, Error> {
    let Some(value) = positional(args, 0) else {
        return Ok(0);
    };
    let items = match value.as_str() {
        Some(s) => s.chars().count() as u64,
        None => value.len().map_or(0, |n| n as u64),
    };
    Ok(items.saturating_mul(std::mem::size_of::<Value>() as u64))
}

/// The size of the JSON text, counted by writing it nowhere (and stopping at the budget),
/// times two for the spaces after `,` and `:` and for indentation and HTML-safe escapes.
fn json_size(args: &[Value]) -> Result<u64, Error> {
    let Some(value) = positional(args, 0) else {
        return Ok(0);
    };
    let limit = minijinja::remaining_bytes().unwrap_or(MAX_BUILT);
    let mut sink = Counter { count: 0, limit };
    let indent = positional(args, 1)
        .cloned()
        .or_else(|| kwarg(args, "indent"))
        .and_then(|i| u64::try_from(i).ok())
        .unwrap_or(2);
    if serde_json::to_writer_pretty(&mut sink, value).is_err() && sink.count <= limit {
        // Not serializable: the builtin says so itself.
        return Ok(0);
    }
    Ok(sink.count.saturating_mul(2).saturating_add(indent))
}

/// Counts bytes written, and refuses them past a limit.
struct Counter {
    count: u64,
    limit: u64,
}

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.count = self.count.saturating_add(buf.len() as u64);
        if self.count > self.limit {
            return Err(std::io::Error::other("over the byte budget"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `pprint`, written through the budget: the debug text of a value can be far longer than
/// the value's memory (a list holding the same long string many times).
fn pprint(value: &Value) -> Result<String, Error> {
    debug_text(value)
}

/// `debug()`, written through the budget like [`pprint`].
fn debug(state: &State, args: Rest<Value>) -> Result<String, Error> {
    match args.as_slice() {
        [] => debug_text(state),
        [one] => debug_text(one),
        all => debug_text(&all),
    }
}

/// The `{:#?}` text of `value`, each piece charged before it is kept.
fn debug_text(value: &dyn std::fmt::Debug) -> Result<String, Error> {
    struct Charged(String);
    impl std::fmt::Write for Charged {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            minijinja::charge_bytes(s.len()).map_err(|_| std::fmt::Error)?;
            self.0.push_str(s);
            Ok(())
        }
    }
    let mut out = Charged(String::new());
    match write!(out, "{value:#?}") {
        Ok(()) => Ok(out.0),
        Err(_) => Err(Error::new(
            ErrorKind::OutOfBudget,
            "debug text is over the byte budget",
        )),
    }
}

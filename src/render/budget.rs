//! What one render may do and build: minijinja's fuel, and the filters that charge it ahead.
//!
//! minijinja (3.1 and later, feature `fuel`) charges one unit of fuel for each instruction a
//! render runs and one for every 64 bytes of data it builds: the output, captures
//! (`{% set x %}...`) and macro calls, strings made by `~`, `+` and `*`, and what filters and
//! functions return; where the size of a value is known before it is built (`'x' * n`,
//! `replace`, `indent`, `format`), it is built only if the fuel left can pay for it. Since fuel
//! only goes down, one budget bounds both the time of a render and the memory it takes: a
//! template that doubles a string in a loop, repeats or replaces its way to gigabytes, or
//! recurses through macros stops with `OutOfFuel` within milliseconds, having built at most
//! about [`MAX_BUILT`] bytes.
//!
//! Printing a list or a mapping with `{{ }}` is measured the same way first
//! ([`check_display`], from the environment's formatter). Four builtins are charged by minijinja only for what they return, after building it, while
//! what they build can be far larger than what their input holds in memory: a list that holds
//! the same long string (or the same list) many times joins, prints or serializes to terabytes.
//! They are registered here again under their own names (`join`, `string`, `tojson`, `pprint`,
//! and the `debug` function): each measures its result by writing it nowhere, stopping at the
//! fuel left, and charges it *before* building it.
//!
//! Not covered, because minijinja 3.1 gives no hook for it: `~` with a list or a mapping on one
//! side formats the object outside the fuel (see docs/reliability.md).

use std::fmt::Write as _;

use minijinja::value::Rest;
use minijinja::{Environment, Error, ErrorKind, State, Value};

/// Bytes of data one render of one template (a message, or the `template` body) may build in
/// total, about.
pub const MAX_BUILT: u64 = 64 * 1024 * 1024;

/// Largest rendered text of one template (or one Dotprompt body), in bytes.
pub(crate) const MAX_OUTPUT: usize = 16 * 1024 * 1024;

/// The data minijinja charges one unit of fuel for.
const BYTES_PER_FUEL: u64 = 64;

/// The fuel of one render: [`MAX_BUILT`] in data, or as many instructions (about a million,
/// hundreds of times what the largest real prompt runs).
pub(crate) const FUEL: u64 = MAX_BUILT / BYTES_PER_FUEL;

/// The message of a render that ran out of fuel.
pub(crate) fn over_budget_message() -> String {
    format!(
        "the values this template builds exceed {} MiB in total, or it runs more than {FUEL} instructions; look for a loop that runs too long, or text doubled, repeated, replaced or padded in a loop or a recursive macro",
        MAX_BUILT / (1024 * 1024)
    )
}

/// Sets the fuel of `env` and registers the charging builtins over minijinja's.
pub(crate) fn install(env: &mut Environment<'static>) {
    env.set_fuel(Some(FUEL));
    let join = Value::from_function(minijinja::filters::join);
    env.add_filter(
        "join",
        move |state: &mut State<'_, '_>, args: Rest<Value>| -> Result<Value, Error> {
            charge(state, join_size(state, &args))?;
            join.call(state, &args)
        },
    );
    env.add_filter(
        "string",
        |state: &State, value: Value| -> Result<Value, Error> {
            if value.as_str().is_some() {
                return Ok(value);
            }
            charge(state, display_size(state, &value))?;
            Ok(Value::from(value.to_string()))
        },
    );
    let tojson = Value::from_function(minijinja::filters::tojson);
    env.add_filter(
        "tojson",
        move |state: &mut State<'_, '_>, args: Rest<Value>| -> Result<Value, Error> {
            charge(state, json_size(state, &args))?;
            tojson.call(state, &args)
        },
    );
    env.add_filter("pprint", |state: &State, value: Value| {
        debug_text(state, &value)
    });
    env.add_function("debug", |state: &State, args: Rest<Value>| {
        match args.as_slice() {
            [] => debug_text(state, state),
            [one] => debug_text(state, one),
            all => debug_text(state, &all),
        }
    });
}

/// Refuses to print a list or a mapping whose text is larger than the render may still build.
/// minijinja charges printed text after it is written, and one object that holds the same long
/// string many times prints to terabytes.
pub(crate) fn check_display(state: &State, value: &Value) -> Result<(), Error> {
    if value.as_object().is_some() && display_size(state, value) > remaining(state) {
        return Err(Error::new(
            ErrorKind::OutOfFuel,
            "the value's text is larger than the render may still build",
        ));
    }
    Ok(())
}

/// Bytes the render may still build.
fn remaining(state: &State) -> u64 {
    state
        .fuel_levels()
        .map_or(MAX_BUILT, |(_, fuel)| fuel.saturating_mul(BYTES_PER_FUEL))
}

/// Charges `bytes` of data before it is built.
fn charge(state: &State, bytes: u64) -> Result<(), Error> {
    if bytes > remaining(state) {
        return Err(Error::new(
            ErrorKind::OutOfFuel,
            "the value is larger than the render may still build",
        ));
    }
    state.consume_fuel(bytes / BYTES_PER_FUEL)
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

/// The length of the text of `value`, counted up to the bytes left (then one more).
fn display_size(state: &State, value: &Value) -> u64 {
    if let Some(s) = value.as_str() {
        return s.len() as u64;
    }
    let mut sink = Counter::new(remaining(state));
    let _ = write!(sink, "{value}");
    sink.count
}

/// The size of `join`'s result: every item's text and the joiners between them.
fn join_size(state: &State, args: &[Value]) -> u64 {
    let Some(value) = positional(args, 0) else {
        return 0;
    };
    let joiner = positional(args, 1)
        .cloned()
        .or_else(|| kwarg(args, "d"))
        .map_or(0, |j| display_size(state, &j));
    if let Some(s) = value.as_str() {
        // A string joins its characters.
        return (s.len() as u64).saturating_add((s.chars().count() as u64).saturating_mul(joiner));
    }
    let attribute = positional(args, 2)
        .cloned()
        .or_else(|| kwarg(args, "attribute"));
    let attribute = attribute.as_ref().and_then(Value::as_str);
    let Ok(items) = value.try_iter() else {
        return 0;
    };
    let limit = remaining(state);
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
            .saturating_add(display_size(state, &item))
            .saturating_add(if i > 0 { joiner } else { 0 });
        if total > limit {
            break;
        }
    }
    total
}

/// The size of the JSON text, counted by writing it nowhere (and stopping at the bytes left),
/// times two for indentation and HTML-safe escapes.
fn json_size(state: &State, args: &[Value]) -> u64 {
    let Some(value) = positional(args, 0) else {
        return 0;
    };
    let limit = remaining(state);
    let mut sink = Counter::new(limit);
    if serde_json::to_writer_pretty(&mut sink, value).is_err() && sink.count <= limit {
        // Not serializable: the builtin says so itself.
        return 0;
    }
    sink.count.saturating_mul(2)
}

/// Counts bytes written, and refuses them past a limit.
struct Counter {
    count: u64,
    limit: u64,
}

impl Counter {
    fn new(limit: u64) -> Counter {
        Counter { count: 0, limit }
    }

    fn add(&mut self, n: usize) -> bool {
        self.count = self.count.saturating_add(n as u64);
        self.count <= self.limit
    }
}

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.add(buf.len()) {
            Ok(buf.len())
        } else {
            Err(std::io::Error::other("over the byte budget"))
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.add(s.len()) {
            Ok(())
        } else {
            Err(std::fmt::Error)
        }
    }
}

/// The `{:#?}` text of `value` (`pprint`, `debug()`), measured and charged before it is built:
/// the debug text of a value can be far longer than its memory.
fn debug_text(state: &State, value: &dyn std::fmt::Debug) -> Result<String, Error> {
    let mut sink = Counter::new(remaining(state));
    let _ = write!(sink, "{value:#?}");
    charge(state, sink.count)?;
    Ok(format!("{value:#?}"))
}

//! A per-render byte budget (promptreg patch, see `PROMPTREG-PATCH.md`).
//!
//! Fuel bounds how many instructions a render runs, but one instruction can build a string
//! twice as long as the one before (`{% set s = s ~ s %}`), so a few hundred instructions can
//! allocate gigabytes. With a budget set ([`Environment::set_byte_budget`]), every byte a
//! render builds is counted against it: strings made by `~`, `+` and `*`, everything written
//! to the output (captures and macro calls included), objects turned into text, and whatever
//! filters and functions charge with [`charge_bytes`]. Going over fails the render with
//! [`ErrorKind::OutOfBudget`] instead of exhausting memory.
//!
//! The budget lives in a thread local for the duration of the outermost render on a thread, so
//! that nested renders, includes and macros share it and no signature has to change.
//!
//! [`Environment::set_byte_budget`]: crate::Environment::set_byte_budget
use std::cell::Cell;
use std::fmt;

use crate::error::{Error, ErrorKind};

/// No budget is active on this thread.
const UNLIMITED: u64 = u64::MAX;

thread_local! {
    static REMAINING: Cell<u64> = const { Cell::new(UNLIMITED) };
    static LIMIT: Cell<u64> = const { Cell::new(UNLIMITED) };
    static EXCEEDED: Cell<bool> = const { Cell::new(false) };
    static IN_DISPLAY: Cell<bool> = const { Cell::new(false) };
}

/// Makes a budget active for as long as it lives, unless one is active already (a nested
/// render shares the outer one).
pub(crate) struct BudgetGuard {
    installed: bool,
}

impl BudgetGuard {
    pub(crate) fn enter(limit: Option<u64>) -> BudgetGuard {
        let installed = match limit {
            Some(limit) if LIMIT.with(Cell::get) == UNLIMITED => {
                let limit = limit.min(UNLIMITED - 1);
                LIMIT.with(|l| l.set(limit));
                REMAINING.with(|r| r.set(limit));
                EXCEEDED.with(|e| e.set(false));
                true
            }
            _ => false,
        };
        BudgetGuard { installed }
    }
}

impl Drop for BudgetGuard {
    fn drop(&mut self) {
        if self.installed {
            LIMIT.with(|l| l.set(UNLIMITED));
            REMAINING.with(|r| r.set(UNLIMITED));
            EXCEEDED.with(|e| e.set(false));
        }
    }
}

/// The error of a render that went over its byte budget.
pub(crate) fn out_of_budget() -> Error {
    let limit = LIMIT.with(Cell::get);
    Error::new(
        ErrorKind::OutOfBudget,
        format!("the template built more than {limit} bytes"),
    )
}

/// Whether the active budget has been exceeded (a write failed because of it).
pub(crate) fn exceeded() -> bool {
    EXCEEDED.with(Cell::get)
}

/// Counts `bytes` that are about to be built against the render's byte budget.
///
/// Filters and functions that can make values much larger than their inputs call this with
/// the size of the result before building it. Outside of a render with a budget this does
/// nothing.
///
/// ```
/// # use minijinja::{Environment, ErrorKind};
/// let mut env = Environment::new();
/// env.set_byte_budget(Some(1000));
/// env.add_filter("pad", |s: String, n: usize| {
///     minijinja::charge_bytes(s.len().saturating_add(n))?;
///     Ok::<_, minijinja::Error>(format!("{s}{}", " ".repeat(n)))
/// });
/// let err = env.render_str("{{ 'x'|pad(5000) }}", ()).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::OutOfBudget);
/// ```
pub fn charge_bytes(bytes: usize) -> Result<(), Error> {
    if charge(bytes) {
        Ok(())
    } else {
        Err(out_of_budget())
    }
}

/// Returns the bytes left in the active budget, or `None` outside of a render with one.
pub fn remaining_bytes() -> Option<u64> {
    let remaining = REMAINING.with(Cell::get);
    (remaining != UNLIMITED).then_some(remaining)
}

/// Charges `bytes`; `false` (and the budget marked exceeded) when they do not fit.
#[inline]
pub(crate) fn charge(bytes: usize) -> bool {
    REMAINING.with(|r| {
        let remaining = r.get();
        if remaining == UNLIMITED {
            return true;
        }
        match remaining.checked_sub(bytes as u64) {
            Some(left) => {
                r.set(left);
                true
            }
            None => {
                r.set(0);
                EXCEEDED.with(|e| e.set(true));
                false
            }
        }
    })
}

/// Charges a write of `bytes`, as a formatting result.
#[inline]
pub(crate) fn charge_write(bytes: usize) -> fmt::Result {
    if charge(bytes) {
        Ok(())
    } else {
        Err(fmt::Error)
    }
}

/// A writer that charges every byte written through it.
struct Charged<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for Charged<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        charge_write(s.len())?;
        self.0.write_str(s)
    }
}

/// Writes an object's text form, charging it to the budget: the text of a sequence holding
/// the same long string many times is far longer than the memory the sequence takes. Only
/// the outermost object is charged, so nested objects are not counted twice.
pub(crate) fn display_object<T: fmt::Display + ?Sized>(
    f: &mut fmt::Formatter<'_>,
    object: &T,
) -> fmt::Result {
    if REMAINING.with(Cell::get) == UNLIMITED || IN_DISPLAY.with(Cell::get) {
        return write!(f, "{object}");
    }
    IN_DISPLAY.with(|d| d.set(true));
    let result = fmt::write(&mut Charged(f), format_args!("{object}"));
    IN_DISPLAY.with(|d| d.set(false));
    match result {
        // `to_string` panics on an error its `String` did not cause: stop short instead. The
        // budget is marked exceeded, and the VM fails the instruction that did this.
        Err(_) if exceeded() => Ok(()),
        other => other,
    }
}

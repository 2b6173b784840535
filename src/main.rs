//! The `promptreg` command: parse the arguments, run, exit with the documented code.

use std::process::ExitCode;

fn main() -> ExitCode {
    // The binary owns the process, so it alone may choose libgit2's global options
    // (`cli::main` does, first).
    promptreg::cli::main()
}

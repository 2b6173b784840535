//! The `promptreg` command: parse the arguments, run, exit with the documented code.

use std::process::ExitCode;

fn main() -> ExitCode {
    promptreg::cli::main()
}

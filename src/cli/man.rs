//! `promptreg man`: the manual page, generated from the clap definitions.

use clap::{Args, CommandFactory};

use super::output::print;
use super::{Cli, Context, Failure};

/// Print the manual page (roff) on stdout.
///
/// Install it with `promptreg man > ~/.local/share/man/man1/promptreg.1`, or read it at once
/// with `promptreg man | man -l -`.
#[derive(Debug, Args)]
pub struct ManArgs {}

/// The manual page: the command, its options and its subcommands, as clap_mangen writes it.
pub fn page() -> Result<String, std::io::Error> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Runs `man`.
pub fn run(_ctx: &Context, _args: ManArgs) -> Result<u8, Failure> {
    let page =
        page().map_err(|e| Failure::Message(format!("cannot write the manual page: {e}")))?;
    print(&page)?;
    Ok(0)
}

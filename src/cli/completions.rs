//! `promptreg completions SHELL`: the shell completion script, generated from the clap
//! definitions.

use clap::{Args, CommandFactory};

use super::output::print;
use super::{Cli, Context, Failure};

/// Print the completion script for SHELL on stdout.
///
/// Install it where the shell looks, for example:
/// `promptreg completions bash > ~/.local/share/bash-completion/completions/promptreg`,
/// `promptreg completions zsh > ~/.zfunc/_promptreg`,
/// `promptreg completions fish > ~/.config/fish/completions/promptreg.fish`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The completion script for `shell`.
pub fn script(shell: clap_complete::Shell) -> String {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "promptreg", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs `completions`.
pub fn run(_ctx: &Context, args: CompletionsArgs) -> Result<u8, Failure> {
    print(&script(args.shell))?;
    Ok(0)
}

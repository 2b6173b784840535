//! The command-line interface: a thin layer that turns arguments into library calls and
//! results into text and exit codes. Exit codes: 0 ok, 1 problems found, 2 usage or failure.

mod analyze;
mod commit;
mod completions;
mod delete;
mod diff;
mod eval;
#[cfg(feature = "serve")]
mod export;
mod get_default;
mod improve;
mod list;
mod man;
mod model;
mod new;
mod output;
mod render;
mod restore;
mod review;
mod run;
mod schema;
#[cfg(feature = "serve")]
mod serve;
mod set_default;
mod show;
mod validate;
mod versions;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::Error;
use crate::registry::Registry;

pub use output::Failure;

/// A file-based prompt registry with a GitOps workflow.
///
/// Prompts are YAML files (`*.prompt.yaml`) in a git repository; every commit that changes a
/// prompt's file is a new numbered version of it.
#[derive(Debug, Parser)]
#[command(name = "promptreg", version, max_term_width = 100)]
pub struct Cli {
    /// Use DIR as the registry root instead of the current directory.
    #[arg(short = 'C', long = "registry", value_name = "DIR", global = true)]
    pub registry: Option<PathBuf>,

    /// Read versions from the first-parent history of REV instead of HEAD.
    #[arg(long, value_name = "REV", global = true)]
    pub rev: Option<String>,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every prompt of the registry.
    List(list::ListArgs),
    /// List the versions of a prompt, newest first.
    Versions(versions::VersionsArgs),
    /// Print a prompt's file at a version.
    Show(show::ShowArgs),
    /// Render a prompt with values.
    Render(render::RenderArgs),
    /// Render a prompt and send it to a model; stream the reply.
    Run(run::RunArgs),
    /// Run every test case on the model and apply the file's evaluators (as `gh models eval`).
    Eval(eval::EvalArgs),
    /// Analyse a prompt version with a judge model: score, risk, balance or heatmap.
    Analyze(analyze::AnalyzeArgs),
    /// Ask a model for an improved version of a prompt; write it to the working copy.
    Improve(improve::ImproveArgs),
    /// Print the default version of a prompt (or of a label).
    GetDefault(get_default::GetDefaultArgs),
    /// Point a prompt's default (or a label) at a version in defaults.yaml.
    SetDefault(set_default::SetDefaultArgs),
    /// Validate a prompt and commit its file alone as the next version.
    Commit(commit::CommitArgs),
    /// Delete a prompt and its lines of defaults.yaml, in one commit.
    Delete(delete::DeleteArgs),
    /// Write a version's content back to the working copy.
    Restore(restore::RestoreArgs),
    /// Check every prompt and the manifest (what CI runs).
    Validate(validate::ValidateArgs),
    /// Show the source (and rendered) diff between two references.
    Diff(diff::DiffArgs),
    /// Print the pull-request review of a branch: what changed, versions, rendered diffs.
    Review(review::ReviewArgs),
    /// Create a new prompt file with a valid skeleton.
    New(new::NewArgs),
    /// Print the JSON Schema of the prompt file (for yaml-language-server and other editors).
    Schema(schema::SchemaArgs),
    /// Re-validate and re-render prompts as you save them.
    Watch(watch::WatchArgs),
    /// Serve the prompts over HTTP, from commits.
    #[cfg(feature = "serve")]
    Serve(serve::ServeArgs),
    /// Write the read API's answers at a commit as static files, plus one bundle.
    #[cfg(feature = "serve")]
    Export(export::ExportArgs),
    /// Print the shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(completions::CompletionsArgs),
    /// Print the manual page (roff).
    Man(man::ManArgs),
}

/// Output formats for commands that print data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DataFormat {
    /// Text for people.
    #[default]
    Text,
    /// JSON for programs.
    Json,
}

/// Everything a command needs from the global options.
pub struct Context {
    /// The registry root.
    pub root: PathBuf,
    /// The revision versions are read from.
    pub rev: Option<String>,
}

impl Context {
    /// Opens the registry, for a command that reads or writes the working copy: a bare
    /// repository, which has none, is refused.
    pub fn registry(&self) -> Result<Registry, Failure> {
        let registry = self.commits()?;
        if registry.repo().is_some_and(|repo| repo.is_bare()) {
            return Err(Failure::from(crate::error::Error::Unsupported(format!(
                "{} is a bare repository: it has commits but no working copy; `promptreg serve` and `promptreg export` read its commits, and the other commands need a clone",
                self.root.display()
            ))));
        }
        Ok(registry)
    }

    /// Opens the registry for a command that reads commits only (`serve`, `export`): a bare
    /// repository is fine.
    pub fn commits(&self) -> Result<Registry, Failure> {
        Registry::open(&self.root)
            .map(|r| r.with_rev(self.rev.clone()))
            .map_err(Failure::from)
    }
}

/// Parses the process arguments, runs the command and returns its exit code.
///
/// Only the binary calls this: it relaxes libgit2's process-wide options for a short-lived
/// process first, which a library user must not have done to its process.
pub fn main() -> ExitCode {
    crate::git::tune_for_short_process();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    ExitCode::from(run(cli))
}

/// Runs a parsed command line; returns the exit code.
pub fn run(cli: Cli) -> u8 {
    let json = wants_json(&cli.command);
    // These work on the working copy and HEAD only; a `--rev` they would silently ignore is a
    // mistake worth saying.
    let only_work = match &cli.command {
        Command::New(_) => Some("new"),
        Command::Schema(_) => Some("schema"),
        Command::Commit(_) => Some("commit"),
        Command::Delete(_) => Some("delete"),
        Command::Watch(_) => Some("watch"),
        _ => None,
    };
    if let (Some(command), Some(rev)) = (only_work, &cli.rev) {
        let failure = Failure::Message(format!(
            "`--rev {rev}` does not apply to `{command}`, which works on the working copy (and commits on HEAD); drop `--rev`"
        ));
        return if json {
            failure.report_json()
        } else {
            failure.report()
        };
    }
    let ctx = Context {
        root: cli.registry.unwrap_or_else(|| PathBuf::from(".")),
        rev: cli.rev,
    };
    let result = match cli.command {
        Command::List(args) => list::run(&ctx, args),
        Command::Versions(args) => versions::run(&ctx, args),
        Command::Show(args) => show::run(&ctx, args),
        Command::GetDefault(args) => get_default::run(&ctx, args),
        Command::SetDefault(args) => set_default::run(&ctx, args),
        Command::Commit(args) => commit::run(&ctx, args),
        Command::Delete(args) => delete::run(&ctx, args),
        Command::Restore(args) => restore::run(&ctx, args),
        Command::Validate(args) => validate::run(&ctx, args),
        Command::Diff(args) => diff::run(&ctx, args),
        Command::Review(args) => review::run(&ctx, args),
        Command::Render(args) => render::run(&ctx, args),
        Command::Run(args) => run::run(&ctx, args),
        Command::Eval(args) => eval::run(&ctx, args),
        Command::Analyze(args) => analyze::run(&ctx, args),
        Command::Improve(args) => improve::run(&ctx, args),
        Command::New(args) => new::run(&ctx, args),
        Command::Schema(args) => schema::run(&ctx, args),
        Command::Watch(args) => watch::run(&ctx, args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::run(&ctx, args),
        #[cfg(feature = "serve")]
        Command::Export(args) => export::run(&ctx, args),
        Command::Completions(args) => completions::run(&ctx, args),
        Command::Man(args) => man::run(&ctx, args),
    };
    match result {
        Ok(code) => code,
        Err(failure) if json => failure.report_json(),
        Err(failure) => failure.report(),
    }
}

/// Whether the command was asked for JSON, so that its errors are JSON too.
fn wants_json(command: &Command) -> bool {
    match command {
        Command::List(a) => a.format == DataFormat::Json,
        Command::Versions(a) => a.format == DataFormat::Json,
        Command::Show(a) => a.format == show::ShowFormat::Json,
        Command::Render(a) => a.format == DataFormat::Json,
        Command::Run(a) => a.render.format == DataFormat::Json,
        Command::Eval(a) => a.format == eval::EvalFormat::Json,
        Command::Analyze(a) => a.format == DataFormat::Json,
        Command::Improve(a) => a.format == DataFormat::Json,
        Command::GetDefault(a) => a.format == DataFormat::Json,
        Command::Validate(a) => a.format == validate::ValidateFormat::Json,
        Command::Diff(a) => a.format == DataFormat::Json,
        Command::Review(a) => a.format == review::ReviewFormat::Json,
        Command::Watch(a) => a.format == watch::WatchFormat::Json,
        Command::SetDefault(_)
        | Command::Commit(_)
        | Command::Delete(_)
        | Command::Restore(_)
        | Command::New(_)
        | Command::Schema(_)
        | Command::Completions(_)
        | Command::Man(_) => false,
        #[cfg(feature = "serve")]
        Command::Serve(_) | Command::Export(_) => false,
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        Failure::Error(Box::new(err), None)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}

//! `promptreg serve`: the registry's HTTP API. The server itself is `crate::serve`; this file
//! reads the flags, sets up the log and says where it listens.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::output::eprint;
use super::{Context, Failure};
use crate::serve::auth::Tokens;

/// Serve the registry's prompts over HTTP, from commits (never the working copy).
///
/// The API is under /v1 (see GET /openapi.json); /healthz, /readyz and /metrics are for
/// operations. A new commit is picked up within a fraction of a second, without a restart.
/// SIGTERM or Ctrl-C lets the requests in flight finish, then exits 0.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen: ADDRESS:PORT (port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Bearer tokens and what each may do (YAML; see the README); every route but /healthz
    /// then needs one.
    #[arg(long, value_name = "FILE")]
    pub auth: Option<PathBuf>,
    /// Take writes (new versions, moved defaults and labels, deletes) as commits on the branch
    /// HEAD names, from tokens of --auth that may write.
    #[arg(long, requires = "auth")]
    pub allow_writes: bool,
    /// The access log's format on stderr: one line per request.
    #[arg(long, value_enum, default_value_t)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// `key=value` text.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Runs `serve`.
pub fn run(ctx: &Context, args: ServeArgs) -> Result<u8, Failure> {
    let tokens = args.auth.as_deref().map(Tokens::load).transpose()?;
    let registry = ctx.registry()?;
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false);
    // A second subscriber (in a program that already set one) is not an error.
    let _ = match args.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    let open = tokens.is_none();
    if args.allow_writes {
        // A write needs a committer; say so now rather than at the first write.
        if let Some(repo) = registry.repo() {
            repo.check_identity()?;
        }
    }
    let options = crate::serve::Options {
        listen: args.listen,
        tokens,
        allow_writes: args.allow_writes,
    };
    let root = registry.root().display().to_string();
    crate::serve::run(registry, options, |addr: SocketAddr| {
        eprint(&format!("listening on http://{addr}\n"));
        if !addr.ip().is_loopback() {
            let access = if open {
                "to anyone who can reach this address: there is no --auth"
            } else {
                "to the holders of the tokens in --auth"
            };
            eprint(&format!(
                "warning: serving {root} on {addr}, beyond this machine: every committed prompt, its history (authors, emails, commit messages) and renders are readable {access}\n"
            ));
        }
    })?;
    Ok(0)
}

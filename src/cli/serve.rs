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
    /// Bearer tokens and what each may do (YAML; see docs/http-api.md); every route but /healthz
    /// then needs one.
    #[arg(long, value_name = "FILE")]
    pub auth: Option<PathBuf>,
    /// Take writes (new versions, moved defaults and labels, deletes) as commits on the branch
    /// HEAD names, from tokens of --auth that may write.
    #[arg(long, requires = "auth")]
    pub allow_writes: bool,
    /// Follow a branch of a remote instead of serving HEAD: a remote of the repository (`origin`),
    /// or a URL, cloned into the registry directory (-C) when that is empty. Fetched with the
    /// `git` command every --interval and at once on a push webhook.
    #[arg(long, value_name = "REMOTE|URL")]
    pub follow: Option<String>,
    /// The branch --follow follows.
    #[arg(long, value_name = "NAME", default_value = "main", requires = "follow")]
    pub branch: String,
    /// Seconds between fetches when no webhook says to.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30,
        requires = "follow"
    )]
    pub interval: u64,
    /// The push webhooks' secret, read from FILE (else from PROMPTREG_HOOK_SECRET); without
    /// one, webhooks are refused.
    #[arg(long, value_name = "FILE", requires = "follow")]
    pub hook_secret_file: Option<PathBuf>,
    /// Answer POST /v1/analyze/{score,risk,balance,heatmap}/ID with the judge model of
    /// --endpoint/--model (or PROMPTREG_ENDPOINT, `model` in promptreg.yaml, ...); every
    /// analysis is a model call, cached by content under the git dir.
    #[arg(long)]
    pub analyses: bool,
    /// The judge model of --analyses.
    #[command(flatten)]
    pub model: super::model::ModelArgs,
    /// How many event streams (GET /v1/events) may be open at once; one more is 503 with
    /// `Retry-After`.
    #[arg(long, value_name = "N", default_value_t = crate::serve::events::MAX_STREAMS)]
    pub max_event_streams: usize,
    /// Serve no web UI at `/`: only the API.
    #[arg(long)]
    pub no_ui: bool,
    /// The access log's format on stderr: one line per request.
    #[arg(long, value_enum, default_value_t)]
    pub log_format: LogFormat,
}

/// The remote to follow: a remote of the repository at the root, or a URL cloned into it.
fn follow_of(
    ctx: &Context,
    args: &ServeArgs,
    spec: &str,
) -> Result<crate::serve::follow::Follow, Failure> {
    let hook_secret = match &args.hook_secret_file {
        Some(path) => {
            let bytes = crate::snapshot::work::read_input(path, &path.display().to_string(), 4096)?
                .ok_or_else(|| {
                    Failure::Message(format!(
                        "hook secret file {} does not exist",
                        path.display()
                    ))
                })?;
            Some(String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec())
        }
        None => std::env::var("PROMPTREG_HOOK_SECRET")
            .ok()
            .filter(|s| !s.is_empty())
            .map(String::into_bytes),
    };
    if hook_secret.as_ref().is_some_and(|s| s.len() < 16) {
        return Err(Failure::Message(
            "the hook secret is shorter than 16 characters; use a long random one (`openssl rand -hex 32`)".into(),
        ));
    }
    let known_remote = crate::registry::Registry::open(&ctx.root)
        .ok()
        .and_then(|r| r.repo().map(|repo| repo.has_remote(spec)))
        .unwrap_or(false);
    let (workdir, remote) = if known_remote {
        let registry = crate::registry::Registry::open(&ctx.root)?;
        let workdir = registry
            .repo()
            .map(|repo| repo.workdir().to_path_buf())
            .unwrap_or_else(|| ctx.root.clone());
        (workdir, spec.to_string())
    } else {
        crate::serve::follow::prepare_mirror(&ctx.root, spec, &args.branch)?;
        (ctx.root.clone(), "origin".to_string())
    };
    let follow = crate::serve::follow::Follow {
        workdir,
        remote,
        branch: args.branch.clone(),
        interval: std::time::Duration::from_secs(args.interval.max(1)),
        hook_secret,
    };
    // A first fetch now: a replica starts from the remote's tip, not from what it had.
    let status = std::process::Command::new("git")
        .args([
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            &follow.remote,
        ])
        .arg(format!(
            "+refs/heads/{}:{}",
            follow.branch,
            follow.tracking_ref()
        ))
        .current_dir(&follow.workdir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .status()
        .map_err(|e| Failure::Message(format!("cannot run git: {e}")))?;
    if !status.success() {
        return Err(Failure::Message(format!(
            "cannot fetch {} of {}: git fetch failed (see above)",
            follow.branch, follow.remote
        )));
    }
    Ok(follow)
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
    if args.follow.is_some() && ctx.rev.is_some() {
        return Err(Failure::Message(
            "--follow serves the followed branch; drop --rev".into(),
        ));
    }
    let follow = match &args.follow {
        None => None,
        Some(spec) => Some(follow_of(ctx, &args, spec)?),
    };
    let registry = match &follow {
        Some(follow) => {
            crate::registry::Registry::open(&ctx.root)?.with_rev(Some(follow.tracking_ref()))
        }
        None => ctx.commits()?,
    };
    // Log lines go through a buffer that a thread of its own writes to stderr: a request never
    // waits for the terminal or the pipe (a line is dropped rather than a request stalled).
    // That thread writes the lines it finds waiting in one write, and flushes whenever it has
    // written every line sent (not one write per line under load).
    let (writer, _flush_on_exit) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .finish(std::io::BufWriter::with_capacity(
            64 << 10,
            std::io::stderr(),
        ));
    let builder = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false);
    // Access lines are written by `serve::log::Lines`, as tracing's own formats write them.
    use crate::serve::log::Lines;
    use tracing_subscriber::fmt::format;
    // A second subscriber (in a program that already set one) is not an error.
    let _ = match args.log_format {
        LogFormat::Json => builder
            .json()
            .event_format(Lines::new(format().json(), true))
            .try_init(),
        LogFormat::Text => builder.event_format(Lines::new(format(), false)).try_init(),
    };
    let open = tokens.is_none();
    if args.allow_writes {
        // A write needs a committer; say so now rather than at the first write.
        if let Some(repo) = registry.repo() {
            repo.check_identity()?;
        }
    }
    let analyses = if args.analyses {
        let config = super::model::config(&args.model.settings(), &registry)?;
        Some(std::sync::Arc::new(super::model::cached(
            config, &registry, false,
        )))
    } else {
        let flags = [
            ("--endpoint", args.model.endpoint.is_some()),
            ("--model", args.model.model.is_some()),
            ("--timeout", args.model.timeout.is_some()),
            ("--retries", args.model.retries.is_some()),
        ];
        if let Some((flag, _)) = flags.iter().find(|(_, given)| *given) {
            return Err(Failure::Message(format!(
                "{flag} is the judge model of --analyses: add --analyses, or drop {flag}"
            )));
        }
        None
    };
    let options = crate::serve::Options {
        listen: args.listen,
        tokens,
        allow_writes: args.allow_writes,
        follow,
        analyses,
        max_event_streams: args.max_event_streams,
        ui: !args.no_ui,
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

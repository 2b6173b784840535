//! Following a git remote: a local mirror fetched every `--interval` and at once on a signed
//! push webhook, with the `git` command (so https credential helpers and ssh agents work as
//! they do for the user). Every new tip becomes a new snapshot; a fetch or a tip that fails
//! keeps the last good snapshot, marks the server degraded, and is retried with back-off.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// How long one fetch may take before it is stopped.
const FETCH_TIMEOUT: Duration = Duration::from_secs(120);

/// The largest webhook body read (GitHub sends up to 25 MB; pushes are far smaller).
pub(crate) const MAX_HOOK_BODY: usize = 8 << 20;

/// What to follow.
#[derive(Debug, Clone)]
pub struct Follow {
    /// The repository's work tree, where `git fetch` runs.
    pub workdir: PathBuf,
    /// The remote's name in that repository.
    pub remote: String,
    /// The branch followed.
    pub branch: String,
    /// How often to fetch when no webhook says to.
    pub interval: Duration,
    /// The webhook secret; without one, webhooks are refused.
    pub hook_secret: Option<Vec<u8>>,
}

impl Follow {
    /// The ref the fetched branch is kept in, which the server serves.
    pub fn tracking_ref(&self) -> String {
        format!("refs/remotes/{}/{}", self.remote, self.branch)
    }
}

/// Makes `dir` a mirror of `url`'s `branch` when it is not one yet: a clone without a checkout
/// (nothing is ever served from files on disk). A directory that already holds a clone whose
/// `origin` is `url` is used as it is.
pub fn prepare_mirror(dir: &Path, url: &str, branch: &str) -> Result<()> {
    let empty = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(Error::io(dir, e)),
    };
    if !empty {
        let origin = git(dir, &["config", "--get", "remote.origin.url"])?;
        if origin.trim() != url {
            return Err(Error::Usage(format!(
                "{} is not empty and is not a clone of {url} (its origin is `{}`): give an empty directory, or the clone of {url}",
                dir.display(),
                origin.trim()
            )));
        }
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let parent = dir.parent().unwrap_or(Path::new("."));
    let dir_text = dir.to_string_lossy();
    git(
        parent,
        &[
            "clone",
            "--quiet",
            "--no-checkout",
            "--single-branch",
            "--branch",
            branch,
            url,
            &dir_text,
        ],
    )?;
    Ok(())
}

/// Runs `git` in `dir`, with no prompt for credentials; its stdout, or its stderr as the error.
/// Its output is read by threads of their own while it runs (a git that writes more than a
/// pipe holds never blocks), and the wait looks often at first, then every 20 ms: a local
/// fetch takes a few milliseconds, and a hook should not wait longer than the fetch.
fn git(dir: &Path, args: &[&str]) -> Result<String> {
    use std::io::Read;
    let mut child = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("the git command", e))?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                // What a pipe that broke held so far is all there is.
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > FETCH_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                // The readers end when the last holder of the pipes does; they are not waited
                // for (a helper git started may hold them a while longer).
                return Err(Error::Git(crate::error::GitError::new(format!(
                    "git {} took longer than {}s and was stopped",
                    args.first().copied().unwrap_or(""),
                    FETCH_TIMEOUT.as_secs()
                ))));
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(Error::io("the git command", e)),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if status.success() {
        return Ok(String::from_utf8_lossy(&stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&stderr);
    Err(Error::Git(crate::error::GitError::new(format!(
        "git {} failed: {}",
        args.first().copied().unwrap_or(""),
        stderr.trim()
    ))))
}

/// Fetches the followed branch into its tracking ref (a rewritten history included).
pub(crate) fn fetch(follow: &Follow) -> Result<()> {
    let refspec = format!("+refs/heads/{}:{}", follow.branch, follow.tracking_ref());
    git(
        &follow.workdir,
        &[
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            &follow.remote,
            &refspec,
        ],
    )
    .map(|_| ())
}

/// Pushes `commit` to the followed branch, which must still be at `base` there (no force).
/// `Ok(false)` when the remote moved meanwhile; on success the tracking ref moves too.
pub(crate) fn push(follow: &Follow, base: &str, commit: &str) -> Result<bool> {
    let target = format!("{commit}:refs/heads/{}", follow.branch);
    match git(
        &follow.workdir,
        &["push", "--quiet", "--porcelain", &follow.remote, &target],
    ) {
        Ok(_) => {
            // git may have moved the tracking ref already; it ends at the pushed commit.
            git(
                &follow.workdir,
                &[
                    "update-ref",
                    "-m",
                    "promptreg serve: pushed",
                    &follow.tracking_ref(),
                    commit,
                ],
            )?;
            Ok(true)
        }
        Err(err) => {
            // Whether the branch moved there, or the push failed for another reason.
            fetch(follow)?;
            let now = git(
                &follow.workdir,
                &["rev-parse", "--verify", "--quiet", &follow.tracking_ref()],
            )
            .unwrap_or_default();
            if now.trim() != base {
                return Ok(false);
            }
            Err(err)
        }
    }
}

/// Why the server is degraded, if it is: the last fetch or the last tip that failed.
#[derive(Debug, Default)]
pub(crate) struct Health {
    pub fetch_error: Option<String>,
    pub last_fetch: Option<SystemTime>,
    pub fetches: u64,
}

/// The follower's part of the state.
pub(crate) struct Following {
    pub follow: Follow,
    pub wake: tokio::sync::Notify,
    pub health: Mutex<Health>,
}

impl Following {
    pub(crate) fn new(follow: Follow) -> Following {
        Following {
            follow,
            wake: tokio::sync::Notify::new(),
            health: Mutex::new(Health::default()),
        }
    }

    pub(crate) fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How a push webhook proves it comes from the git host: a header alone (GitLab's token), or
/// an HMAC-SHA256 of the body (GitHub, Gitea), computed as the body arrives.
pub(crate) enum Signature {
    /// Checked from the headers: nothing of the body is needed.
    Token(bool),
    /// The MAC being computed, and the one the host sent.
    Hmac(Box<Hmac<Sha256>>, Vec<u8>),
}

impl Signature {
    /// What the headers say; `None` when no signature header is there (or it is malformed).
    pub(crate) fn from_headers(headers: &HeaderMap, secret: &[u8]) -> Option<Signature> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let hmac = |hex: &str| {
            let given = decode_hex(hex.trim())?;
            let mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
            Some(Signature::Hmac(Box::new(mac), given))
        };
        if let Some(signature) = header("x-hub-signature-256") {
            return signature.strip_prefix("sha256=").and_then(hmac);
        }
        if let Some(signature) = header("x-gitea-signature") {
            return hmac(signature);
        }
        header("x-gitlab-token")
            .map(|token| Signature::Token(bool::from(token.as_bytes().ct_eq(secret))))
    }

    /// Takes the next piece of the body.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        if let Signature::Hmac(mac, _) = self {
            mac.update(bytes);
        }
    }

    /// Whether the body, now whole, is the host's.
    pub(crate) fn verify(self) -> bool {
        match self {
            Signature::Token(ok) => ok,
            Signature::Hmac(mac, given) => mac.verify_slice(&given).is_ok(),
        }
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::serve::follow::*;

    /// The body fed in two pieces, as it streams.
    fn signed(headers: &HeaderMap, body: &[u8], secret: &[u8]) -> bool {
        let Some(mut signature) = Signature::from_headers(headers, secret) else {
            return false;
        };
        let (a, b) = body.split_at(body.len() / 2);
        signature.update(a);
        signature.update(b);
        signature.verify()
    }

    #[test]
    fn signatures_of_each_host() {
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        // GitHub's documented example.
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
                .parse()
                .expect("header"),
        );
        assert!(signed(&headers, body, secret));
        assert!(!signed(&headers, b"Hello, World?", secret));
        assert!(!signed(&headers, body, b"other"));
        let mut gitlab = HeaderMap::new();
        gitlab.insert(
            "x-gitlab-token",
            "It's a Secret to Everybody".parse().expect("header"),
        );
        assert!(signed(&gitlab, body, secret));
        gitlab.insert("x-gitlab-token", "wrong".parse().expect("header"));
        assert!(!signed(&gitlab, body, secret));
        assert!(!signed(&HeaderMap::new(), body, secret));
    }

    #[test]
    fn git_output_larger_than_a_pipe_is_read_while_git_runs() {
        let dir = tempfile::tempdir().expect("dir");
        let config = dir.path().join("big.config");
        let mut text = String::from("[big]\n");
        for i in 0..4000 {
            text.push_str(&format!("\tkey{i} = {}\n", "v".repeat(40)));
        }
        std::fs::write(&config, text).expect("config");
        let path = config.to_string_lossy().into_owned();
        // About 250 KB on stdout: past a pipe's 64 KiB, git blocks until it is read.
        let out = git(dir.path(), &["config", "--file", &path, "--list"]).expect("git config");
        assert_eq!(out.lines().count(), 4000);
        let err = git(
            dir.path(),
            &["config", "--file", &path, "--get", "big.nothing"],
        )
        .expect_err("no such key");
        assert!(err.to_string().contains("git config failed"), "{err}");
    }
}

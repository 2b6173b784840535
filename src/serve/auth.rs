//! Bearer tokens and what each may do, from the file `--auth FILE` names:
//!
//! ```yaml
//! tokens:
//!   - name: checkout-service        # shown in logs instead of the token
//!     sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//!     scopes: [read]
//!   - name: local-dev
//!     token: dev-only-token         # the token itself, for local use
//!     email: dev@example.com        # a token that may write authors commits: it needs one
//!     scopes: [read, write]
//!   - name: prompt-review
//!     token: review-token
//!     scopes: [read, analyze]       # the analyses: each is a paid model call
//! protected: [release]              # branches no token may write to
//! ```
//!
//! A presented token is hashed with SHA-256 and compared with every entry's hash in constant
//! time, so neither its length nor its content leaks through timing, and the file need not hold
//! the tokens themselves. Tokens never reach the logs.

use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::diagnostic::{Code, Diagnostic};
use crate::error::{Error, Result};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every GET and `POST .../render`.
    Read,
    /// Writes (commits, moving defaults and labels, deletes).
    Write,
    /// The analyses (`POST /v1/analyze/...`): each is a model call that someone pays for.
    Analyze,
}

/// One token's entry.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    email: Option<String>,
    hash: [u8; 32],
    scopes: Vec<Scope>,
}

/// The tokens of an auth file.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    entries: Vec<Entry>,
    protected: Vec<String>,
}

impl Tokens {
    /// Reads and checks an auth file: every entry needs a name, one of `sha256` and `token`,
    /// and known scopes.
    pub fn load(path: &Path) -> Result<Tokens> {
        let display = path.display().to_string();
        let bytes = crate::snapshot::work::read_input(path, &display, 1 << 20)?
            .ok_or_else(|| Error::NotFound(format!("auth file `{display}` does not exist")))?;
        let (document, mut diagnostics) = crate::format::yaml::parse(&display, &bytes);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let invalid = |diagnostics: Vec<Diagnostic>| Error::Invalid {
            file: display.clone(),
            text: Some(text.clone()),
            diagnostics,
        };
        if diagnostics.iter().any(Diagnostic::is_error) {
            return Err(invalid(diagnostics));
        }
        let Some(document) = document else {
            return Err(invalid(diagnostics));
        };
        let at = |path: &str| document.spans.value(path);
        let mut problem = |path: &str, message: String, hint: &str| {
            diagnostics.push(
                Diagnostic::new(Code::WrongType, &display, message)
                    .at(at(path))
                    .with_hint(hint),
            );
        };
        let mut entries: Vec<Entry> = Vec::new();
        match document.value.get("tokens").and_then(|t| t.as_array()) {
            None => problem(
                "",
                "the auth file has no `tokens:` list".into(),
                "write `tokens:` with entries of `name`, `sha256` (or `token`) and `scopes`",
            ),
            Some(list) => {
                for (i, item) in list.iter().enumerate() {
                    let path = format!("/tokens/{i}");
                    let name = item.get("name").and_then(|v| v.as_str());
                    let hash = match (
                        item.get("sha256").and_then(|v| v.as_str()),
                        item.get("token").and_then(|v| v.as_str()),
                    ) {
                        (Some(hex), None) => parse_hex(hex),
                        (None, Some(token)) if !token.is_empty() => Some(digest(token)),
                        _ => None,
                    };
                    let scopes: Option<Vec<Scope>> = item
                        .get("scopes")
                        .and_then(|v| v.as_array())
                        .map(|list| {
                            list.iter()
                                .map(|s| match s.as_str() {
                                    Some("read") => Some(Scope::Read),
                                    Some("write") => Some(Scope::Write),
                                    Some("analyze") => Some(Scope::Analyze),
                                    _ => None,
                                })
                                .collect::<Option<Vec<_>>>()
                        })
                        .unwrap_or(Some(vec![Scope::Read]));
                    let email = item
                        .get("email")
                        .and_then(|v| v.as_str())
                        .map(str::to_string);
                    match (name, hash, scopes) {
                        (Some(_), Some(_), Some(scopes))
                            if scopes.contains(&Scope::Write) && email.is_none() =>
                        {
                            problem(&path, format!("token {i} may write but has no `email`"), "commits are authored by the token: give it `email: NAME@EXAMPLE.COM`")
                        }
                        (Some(name), _, _) if !plain_name(name) => problem(&format!("{path}/name"), format!("token {i}'s name `{}` holds a control or bidirectional character, or is longer than 64 bytes", name.escape_debug()), "a name shows in logs and as a commit's author: use letters, digits, `-`, `_`, `.` and spaces"),
                        (Some(name), _, _) if entries.iter().any(|e| e.name == name) => problem(&format!("{path}/name"), format!("token {i} has the name `{name}`, which another token has"), "give every token its own name: writes are authored, and logs name, by it"),
                        (Some(_), Some(hash), _) if entries.iter().any(|e| e.hash == hash) => problem(&path, format!("token {i} has the same token as another"), "give every token its own secret"),
                        (Some(_), Some(_), Some(_)) if email.as_deref().is_some_and(|e| !plain_email(e)) => problem(&format!("{path}/email"), format!("token {i}'s email `{}` is not an address", email.as_deref().unwrap_or_default().escape_debug()), "write `email: NAME@EXAMPLE.COM`"),
                        (Some(name), Some(hash), Some(scopes)) => entries.push(Entry {
                            name: name.to_string(),
                            email,
                            hash,
                            scopes,
                        }),
                        (None, _, _) => problem(&path, format!("token {i} has no `name`"), "give every token a name; logs show it instead of the token"),
                        (_, None, _) if item.get("sha256").is_some() => problem(&format!("{path}/sha256"), format!("token {i} needs one of `sha256` (64 hex digits) and `token`"), "write `sha256: $(printf %s TOKEN | sha256sum)` to keep the token itself out of the file"),
                        (_, None, _) => problem(&path, format!("token {i} needs one of `sha256` (64 hex digits) and `token`"), "write `sha256: $(printf %s TOKEN | sha256sum)` to keep the token itself out of the file"),
                        (_, _, None) => problem(&path, format!("token {i} has a scope other than `read`, `write` and `analyze`"), "scopes are `read`, `write` and `analyze`"),
                    }
                }
            }
        }
        let protected: Vec<String> = match document.value.get("protected") {
            None => Vec::new(),
            Some(list) => match list.as_array().and_then(|l| {
                l.iter()
                    .map(|b| b.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
            }) {
                Some(list) => list,
                None => {
                    problem(
                        "/protected",
                        "`protected` must be a list of branch names".into(),
                        "write `protected: [main]`",
                    );
                    Vec::new()
                }
            },
        };
        if diagnostics.iter().any(Diagnostic::is_error) {
            return Err(invalid(diagnostics));
        }
        Ok(Tokens { entries, protected })
    }

    /// The name of the token in an `Authorization` header value, when it is known and may do
    /// `scope`; `Err(true)` when it is known but may not.
    pub fn check(&self, authorization: Option<&str>, scope: Scope) -> Result<&str, bool> {
        // The scheme is case-insensitive (RFC 9110 11.1): `bearer X` is `Bearer X`.
        let token = authorization.and_then(|v| {
            let (scheme, rest) = v.trim_start().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(rest)
        });
        let Some(token) = token else {
            return Err(false);
        };
        let presented = digest(token.trim());
        let mut found: Option<&Entry> = None;
        for entry in &self.entries {
            // Every entry is compared, so the time does not say which one matched.
            if bool::from(entry.hash.ct_eq(&presented)) {
                found = Some(entry);
            }
        }
        match found {
            Some(entry) if entry.scopes.contains(&scope) => Ok(&entry.name),
            Some(_) => Err(true),
            None => Err(false),
        }
    }
}

impl Tokens {
    /// The author of a write-token's commits.
    pub fn identity(&self, name: &str) -> Option<crate::git::Identity> {
        let entry = self.entries.iter().find(|e| e.name == name)?;
        Some(crate::git::Identity {
            name: entry.name.clone(),
            email: entry.email.clone()?,
        })
    }

    /// Whether no token may write to `branch` (a short name, `main`).
    pub fn is_protected(&self, branch: &str) -> bool {
        self.protected.iter().any(|b| b == branch)
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn parse_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Whether a token name can show in a log line and a commit: at most 64 bytes, no control or
/// bidirectional characters (a name with a newline could forge a log line).
fn plain_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.len() <= 64
        && !name.chars().any(crate::write::rules::forbidden_char)
}

/// Whether `email` can author a commit: one `@` with something on each side, no spaces,
/// angle brackets or control characters.
fn plain_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && email.len() <= 254
        && !email
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>'))
}

#[cfg(test)]
mod tests {
    use crate::serve::auth::*;

    fn tokens(yaml: &str) -> Result<Tokens> {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("auth.yaml");
        std::fs::write(&path, yaml).expect("write");
        Tokens::load(&path)
    }

    #[test]
    fn tokens_by_hash_or_by_value_with_scopes() {
        let hash = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"; // "secret"
        let t = tokens(&format!(
            "tokens:\n  - {{ name: app, sha256: {hash}, scopes: [read] }}\n  - {{ name: dev, token: w, email: d@e.x, scopes: [read, write] }}\n  - {{ name: judge, token: j, scopes: [read, analyze] }}\nprotected: [release]\n"
        ))
        .expect("loads");
        assert_eq!(t.check(Some("Bearer j"), Scope::Analyze), Ok("judge"));
        assert_eq!(t.check(Some("Bearer w"), Scope::Analyze), Err(true));
        assert_eq!(t.check(Some("Bearer secret"), Scope::Read), Ok("app"));
        assert_eq!(t.check(Some("Bearer secret"), Scope::Write), Err(true));
        assert_eq!(t.check(Some("Bearer secret"), Scope::Analyze), Err(true));
        assert_eq!(t.check(Some("Bearer w"), Scope::Write), Ok("dev"));
        assert_eq!(t.check(Some("Bearer nope"), Scope::Read), Err(false));
        assert_eq!(t.check(Some("bearer secret"), Scope::Read), Ok("app"));
        assert_eq!(t.check(Some("BEARER secret"), Scope::Read), Ok("app"));
        assert_eq!(t.check(Some("Basic secret"), Scope::Read), Err(false));
        assert_eq!(t.check(Some("Bearersecret"), Scope::Read), Err(false));
        assert_eq!(t.check(None, Scope::Read), Err(false));
        assert_eq!(
            t.identity("dev").map(|i| i.email),
            Some("d@e.x".to_string())
        );
        assert!(t.is_protected("release") && !t.is_protected("main"));
        assert!(tokens("tokens:\n  - { name: a, token: t, scopes: [write] }\n").is_err());
    }

    #[test]
    fn bad_files_name_the_entry() {
        let err = tokens("tokens:\n  - { name: a, sha256: abc }\n").expect_err("short hash");
        assert!(matches!(err, Error::Invalid { .. }), "{err}");
        let Error::Invalid { diagnostics, .. } = err else {
            return;
        };
        assert_eq!(diagnostics[0].line, 2, "{diagnostics:?}");
        assert!(tokens("tokens:\n  - { name: a, token: t, scopes: [admin] }\n").is_err());
        assert!(tokens("nope: 1\n").is_err());
    }

    #[test]
    fn duplicate_names_or_tokens_bad_names_and_emails_are_refused() {
        for (yaml, says) in [
            (
                "tokens:\n  - { name: a, token: x }\n  - { name: a, token: y }\n",
                "token 1 has the name `a`, which another token has",
            ),
            (
                "tokens:\n  - { name: a, token: x }\n  - { name: b, token: x }\n",
                "token 1 has the same token as another",
            ),
            (
                "tokens:\n  - { name: \"a\\nINFO forged\", token: x }\n",
                "holds a control or bidirectional character",
            ),
            (
                "tokens:\n  - { name: w, token: x, email: \"not an address\", scopes: [write] }\n",
                "is not an address",
            ),
        ] {
            let err = tokens(yaml).expect_err(yaml).to_string();
            let Err(crate::error::Error::Invalid { diagnostics, .. }) = tokens(yaml) else {
                panic!("{yaml}: {err}");
            };
            assert!(
                diagnostics
                    .iter()
                    .any(|d| d.message.contains(says) && d.line >= 2),
                "{yaml}: {diagnostics:?}"
            );
        }
    }
}

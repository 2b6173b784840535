//! Git's line-ending rules (`core.autocrlf`, `.gitattributes`), applied as `git add` and
//! `git checkout` apply them.

use std::path::Path;

use crate::git::oid::ObjectId;
use crate::git::repo::{from_oid, Repo};

impl Repo {
    /// How git's line-ending rules apply to a repository path: from `.gitattributes` (`text`,
    /// `eol`, `crlf`) and `core.autocrlf`, as `git add` and checkout apply them.
    pub(super) fn eol_rule(&self, full: &str) -> EolRule {
        use git2::{AttrCheckFlags, AttrValue};
        let path = Path::new(full);
        let attr = |name: &str| {
            self.repo
                .get_attr_bytes(path, name, AttrCheckFlags::FILE_THEN_INDEX)
                .ok()
                .flatten()
                .map(<[u8]>::to_vec)
        };
        let text = attr("text");
        let eol = attr("eol");
        let crlf_attr = attr("crlf");
        let config = self.repo.config().ok();
        let setting = |key: &str| {
            config
                .as_ref()
                .and_then(|c| c.get_string(key).ok())
                .map(|v| v.to_ascii_lowercase())
        };
        let autocrlf = setting("core.autocrlf");
        let checkout_crlf = match eol.as_deref().map(|e| AttrValue::from_bytes(Some(e))) {
            Some(AttrValue::String("crlf")) => true,
            Some(AttrValue::String("lf")) => false,
            _ => {
                autocrlf.as_deref() == Some("true")
                    || setting("core.eol").as_deref() == Some("crlf")
            }
        };
        let text = text.or(crlf_attr);
        let mode = match text.as_deref().map(|t| AttrValue::from_bytes(Some(t))) {
            Some(AttrValue::False) => TextMode::Binary,
            Some(AttrValue::True) => TextMode::Text,
            Some(AttrValue::String("auto")) => TextMode::Auto,
            _ if eol.is_some() => TextMode::Text,
            _ => match autocrlf.as_deref() {
                Some("true") | Some("input") => TextMode::Auto,
                _ => TextMode::Binary,
            },
        };
        EolRule {
            mode,
            checkout_crlf: checkout_crlf && autocrlf.as_deref() != Some("input"),
        }
    }

    /// A working file's bytes as `git add` would store them (CRLF to LF where git's rules say).
    pub(super) fn to_odb<'b>(&self, full: &str, bytes: &'b [u8]) -> std::borrow::Cow<'b, [u8]> {
        let rule = self.eol_rule(full);
        let convert = match rule.mode {
            TextMode::Binary => false,
            TextMode::Text => true,
            TextMode::Auto => looks_like_text(bytes),
        };
        if convert && memchr::memmem::find(bytes, b"\r\n").is_some() {
            std::borrow::Cow::Owned(crlf_to_lf(bytes))
        } else {
            std::borrow::Cow::Borrowed(bytes)
        }
    }

    pub(super) fn odb_hash(&self, full: &str, bytes: &[u8]) -> git2::Oid {
        git2::Oid::hash_object(git2::ObjectType::Blob, &self.to_odb(full, bytes))
            .unwrap_or(git2::Oid::ZERO_SHA1)
    }

    /// The blob id a working file of the registry (root-relative `path`) has for git, after
    /// git's line-ending rules: what `git status` compares with the committed blob.
    pub fn work_blob_id(&self, path: &str, bytes: &[u8]) -> ObjectId {
        if !bytes.contains(&b'\r') {
            return Repo::hash_blob(bytes);
        }
        from_oid(self.odb_hash(&format!("{}{}", self.prefix, path), bytes))
    }

    /// A committed blob's bytes as checkout writes them to the work tree (LF to CRLF where
    /// git's rules say), for a root-relative `path`.
    pub fn to_worktree<'b>(&self, path: &str, bytes: &'b [u8]) -> std::borrow::Cow<'b, [u8]> {
        let rule = self.eol_rule(&format!("{}{}", self.prefix, path));
        let convert = rule.checkout_crlf
            && match rule.mode {
                TextMode::Binary => false,
                TextMode::Text => true,
                TextMode::Auto => looks_like_text(bytes),
            };
        if convert && bytes.contains(&b'\n') && !bytes.contains(&b'\r') {
            let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16);
            for &b in bytes {
                if b == b'\n' {
                    out.push(b'\r');
                }
                out.push(b);
            }
            std::borrow::Cow::Owned(out)
        } else {
            std::borrow::Cow::Borrowed(bytes)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TextMode {
    Binary,
    Text,
    Auto,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct EolRule {
    mode: TextMode,
    checkout_crlf: bool,
}

/// git's test for `text=auto`: no NUL byte and no lone carriage return.
pub(super) fn looks_like_text(bytes: &[u8]) -> bool {
    if bytes.contains(&0) {
        return false;
    }
    bytes
        .iter()
        .enumerate()
        .all(|(i, &b)| b != b'\r' || bytes.get(i + 1) == Some(&b'\n'))
}

pub(super) fn crlf_to_lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

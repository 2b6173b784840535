//! The rules every writer shares: which ids a write may name, which messages git can store,
//! and how moves are named.

use crate::error::{Error, Result};
use crate::format::manifest::{self};
use crate::snapshot::work::{is_hidden, normalize};

/// The files a write may never create, replace or pass through as a folder, whatever the id
/// says: the manifest and the registry's config.
pub(crate) const RESERVED: [&str; 2] = [manifest::FILE, crate::format::config::FILE];

/// Whether `c` is a character no id may hold: a control character (NUL included) or one that
/// reorders text (bidirectional overrides, isolates and marks), which would make an id read as
/// another in a review, a log line or a terminal.
pub(crate) fn forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// Checks that `id` can name a prompt that a write creates: a plain root-relative path
/// (no `.`, `..` or empty parts, no leading or trailing `/`), no hidden part, no `@` (which
/// starts a reference), no backslash, no control or bidirectional-override character, and no
/// part that is `defaults.yaml` or `promptreg.yaml`.
pub fn check_id(id: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::Usage(format!(
            "`{}` cannot be a prompt id: {why}",
            id.escape_debug()
        )))
    };
    if id.is_empty() {
        return bad("it is empty");
    }
    if id.len() > 1024 {
        return bad("it is longer than 1024 bytes");
    }
    if id.chars().any(forbidden_char) {
        return bad("it holds a control or bidirectional-override character");
    }
    if id.contains('@') || id.contains('\\') {
        return bad("`@` and `\\` have other meanings; ids are plain paths");
    }
    if normalize(id).ok().as_deref() != Some(id) {
        return bad(
            "ids are plain paths inside the registry (no `.`, `..`, empty parts or leading `/`)",
        );
    }
    if is_hidden(id) {
        return bad("a part that starts with `.` is hidden, and hidden files are never prompts");
    }
    if let Some(reserved) = id.split('/').find(|part| RESERVED.contains(part)) {
        return bad(&format!(
            "`{reserved}` is the registry's own file, and a prompt's path never passes through it"
        ));
    }
    Ok(())
}

/// Checks that `message` can be a commit message: not empty, no NUL.
pub fn check_message(message: &str) -> Result<()> {
    if message.trim().is_empty() {
        return Err(Error::Usage(
            "the commit message is empty; say what changed".into(),
        ));
    }
    if message.contains('\0') {
        return Err(Error::Usage(
            "the commit message holds a NUL byte, which git cannot store".into(),
        ));
    }
    Ok(())
}

pub(crate) fn label_error(label: &str, why: &str) -> Error {
    Error::Usage(format!(
        "`{label}` cannot be a label: {why}; pick a name such as `production` or `staging`"
    ))
}

/// The message of a default or label move: `Set default of greet to v2 (was v1)`.
pub(crate) fn point_message(
    label: Option<&str>,
    id: &str,
    before: Option<u32>,
    version: u32,
) -> String {
    format!(
        "Set {} to v{version} (was {})",
        what(label, id),
        before.map_or_else(|| "unset".to_string(), |b| format!("v{b}"))
    )
}

/// The message of a default or label removal: `Remove default of greet (was v2)`.
pub(crate) fn unpoint_message(label: Option<&str>, id: &str, before: Option<u32>) -> String {
    format!(
        "Remove {} (was {})",
        what(label, id),
        before.map_or_else(|| "unset".to_string(), |b| format!("v{b}"))
    )
}

fn what(label: Option<&str>, id: &str) -> String {
    match label {
        Some(label) => format!("label {label} of {id}"),
        None => format!("default of {id}"),
    }
}

#[cfg(test)]
mod tests {
    use crate::write::rules::{check_id, check_message, point_message, unpoint_message};

    #[test]
    fn ids_that_are_not_plain_paths_are_refused() {
        for id in [
            "",
            "a/../b",
            "./a",
            "/a",
            "a/",
            "a//b",
            ".git/x",
            "a/.hidden",
            "a@2",
            "a\\b",
            "a\0b",
            "a\nb",
            "a\u{202e}b",
            "a\u{2066}b",
            "defaults.yaml/x",
            "promptreg.yaml/x",
            "x/defaults.yaml",
        ] {
            assert!(check_id(id).is_err(), "{id:?}");
        }
        for id in ["greet", "support/triage", "a.b/c-d_e", "日本/プロンプト"] {
            assert!(check_id(id).is_ok(), "{id:?}");
        }
        assert!(check_id(&"a".repeat(1025)).is_err());
    }

    #[test]
    fn messages_hold_no_nul_and_say_something() {
        assert!(check_message("fix typo").is_ok());
        assert!(check_message("  \n").is_err());
        assert!(check_message("a\0b").is_err());
    }

    #[test]
    fn moves_are_named_one_way() {
        assert_eq!(
            point_message(None, "greet", Some(1), 2),
            "Set default of greet to v2 (was v1)"
        );
        assert_eq!(
            point_message(Some("prod"), "greet", None, 3),
            "Set label prod of greet to v3 (was unset)"
        );
        assert_eq!(
            unpoint_message(None, "greet", Some(2)),
            "Remove default of greet (was v2)"
        );
    }
}

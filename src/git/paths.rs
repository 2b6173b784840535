//! What a commit may touch: the one rule for every writer's paths and messages.

use crate::error::{Error, Result};

pub(super) fn submodule_refusal(submodule: &str) -> Error {
    Error::Refused(format!(
        "`{submodule}` is a submodule, a repository of its own: run promptreg inside it (`promptreg -C {submodule}`) to commit its prompts"
    ))
}

/// Refuses a change at repository path `full` that git would store as something other than the
/// one file it names: a path that is not a plain relative path (empty, `.` or `..` parts, a
/// `.git` folder, a NUL or a backslash), one that passes through an existing file (writing
/// `a/b` where `a` is a file would turn that file into a folder, and removing it would remove
/// the file), one that would replace a folder, a symlink or a submodule. `kind_at` gives the
/// mode of an entry of the base tree (`None`: absent). The same rule for every writer.
pub(super) fn check_change_path(
    full: &str,
    removing: bool,
    kind_at: impl Fn(&str) -> Option<u32>,
) -> Result<()> {
    let bad = |why: &str| Err(Error::Refused(format!("`{full}` cannot be written: {why}")));
    if full.is_empty() {
        return bad("the path is empty");
    }
    if full.contains('\0') || full.contains('\\') {
        return bad("a path holds no NUL or backslash");
    }
    let parts: Vec<&str> = full.split('/').collect();
    for part in &parts {
        if part.is_empty() || *part == "." || *part == ".." {
            return bad("it is not a plain relative path");
        }
        if part.eq_ignore_ascii_case(".git") {
            return bad("nothing is written inside a `.git` folder");
        }
    }
    let mut end = 0;
    for (i, part) in parts.iter().enumerate() {
        end += part.len();
        let prefix = &full[..end];
        let last = i + 1 == parts.len();
        match kind_at(prefix) {
            None => {}
            Some(0o160000) => return Err(submodule_refusal(prefix)),
            Some(0o040000) if last => {
                return bad("it is a folder, which a write never replaces");
            }
            Some(0o040000) => {}
            Some(0o120000) if last && !removing => {
                return bad("it is a symlink; change the file it points to instead");
            }
            Some(_) if !last => {
                return Err(Error::Refused(format!(
                    "`{full}` cannot be written: `{prefix}` is a file, and a write never turns a file into a folder"
                )));
            }
            Some(_) => {}
        }
        end += 1;
    }
    Ok(())
}

/// A commit message git can store: no NUL byte.
pub(super) fn check_message(message: &str) -> Result<()> {
    if message.contains('\0') {
        return Err(Error::Usage(
            "a commit message cannot contain a NUL byte".into(),
        ));
    }
    Ok(())
}

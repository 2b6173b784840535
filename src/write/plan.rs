//! Planning an edit against the registry at one commit: checked, validated, named.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::manifest::{self};
use crate::git::Change;
use crate::registry::{LoadedPrompt, Snapshot};
use crate::snapshot::overlay::Overlay;
use crate::snapshot::work::{Empty, Source};
use crate::write::edit::{edit_manifest, Edit, Plan};
use crate::write::rules::{
    check_id, check_message, label_error, point_message, unpoint_message, RESERVED,
};

/// Plans `edit` against the registry at `snapshot`'s commit. `message` is the commit message
/// (a new version needs one; moves and deletes name themselves when it is `None`).
pub fn plan(snapshot: &Snapshot, edit: Edit, message: Option<&str>) -> Result<Plan> {
    let source: Arc<dyn Source> = snapshot.registry().commit_source(snapshot.commit())?;
    plan_on(Some(snapshot), source, edit, message)
}

/// Plans `edit` in a repository whose `HEAD` has no commit yet: only a new prompt can be
/// committed there (every other edit needs a version).
pub fn plan_unborn(edit: Edit, message: Option<&str>) -> Result<Plan> {
    plan_on(
        None,
        Arc::new(Empty("a repository with no commit")),
        edit,
        message,
    )
}

fn plan_on(
    snapshot: Option<&Snapshot>,
    base: Arc<dyn Source>,
    edit: Edit,
    message: Option<&str>,
) -> Result<Plan> {
    let id = edit.id().to_string();
    check_id(&id)?;
    if let Some(message) = message {
        check_message(message)?;
    }
    let at = snapshot.map_or_else(|| "no commit".to_string(), |s| s.commit().short());
    let manifest_text = || -> Result<String> {
        let bytes = base.read(manifest::FILE)?.unwrap_or_default();
        String::from_utf8(bytes).map_err(|_| {
            Error::Refused(format!(
                "{} is not valid UTF-8 at commit {at}; save it as UTF-8 first",
                manifest::FILE,
            ))
        })
    };
    let discovered = |id: &str| snapshot.and_then(|s| s.discovery().prompts.get(id).cloned());
    let no_versions = || {
        Error::NoHistory(format!(
            "the repository has no commits yet, so `{id}` has no versions; commit it first"
        ))
    };
    let (changes, default_message, file) = match &edit {
        Edit::Commit {
            source,
            file: named,
            ..
        } => {
            let message = message.ok_or_else(|| {
                Error::Usage("a new version needs a commit message; say what changed".into())
            })?;
            let file = match (discovered(&id), named) {
                (Some(file), _) => file,
                (None, named) => {
                    let file = named.clone().unwrap_or_else(|| {
                        format!("{id}{}", crate::snapshot::matcher::PROMPT_SUFFIXES[0])
                    });
                    let matcher = base.matcher()?;
                    if !matcher.is_prompt(&file) {
                        return Err(Error::Usage(format!(
                            "{file} would not be a prompt: the registry's {} does not select it",
                            crate::format::config::FILE
                        )));
                    }
                    if matcher.prompt_id(&file) != Some(id.as_str()) {
                        return Err(Error::Usage(format!(
                            "{file} is not the file of prompt `{id}`"
                        )));
                    }
                    file
                }
            };
            let bytes = source.clone().into_bytes();
            let same = base.read(&file)?.as_deref() == Some(bytes.as_slice());
            let overlay: Arc<dyn Source> =
                Arc::new(Overlay::new(base.clone(), &file, Some(bytes.clone())));
            let loaded = LoadedPrompt::read(overlay, &id, &file)?;
            let errors: Vec<_> = crate::check::validate::check_loaded(loaded)
                .into_iter()
                .filter(|d| d.is_error())
                .collect();
            if !errors.is_empty() {
                return Err(Error::Invalid {
                    file,
                    text: Some(source.clone()),
                    diagnostics: errors,
                });
            }
            let changes = if same {
                Vec::new()
            } else {
                vec![Change::Write {
                    path: file.clone(),
                    bytes,
                }]
            };
            (changes, message.to_string(), Some(file))
        }
        Edit::Delete { .. } => {
            let snapshot = snapshot.ok_or_else(no_versions)?;
            let file = snapshot
                .discovery()
                .file(&id, &snapshot.commit().to_string())?
                .to_string();
            let mut changes = vec![Change::Remove { path: file.clone() }];
            if let Some(edited) = edit_manifest(&edit, &manifest_text()?)? {
                changes.push(Change::Write {
                    path: manifest::FILE.into(),
                    bytes: edited.into_bytes(),
                });
            }
            (changes, format!("Delete {id}"), Some(file))
        }
        Edit::Point { label, .. } | Edit::Unpoint { label, .. } => {
            if let Some(label) = label {
                if let Some(why) = manifest::label_problem(label) {
                    return Err(label_error(label, why));
                }
            }
            let snapshot = snapshot.ok_or_else(no_versions)?;
            let count = count_versions(snapshot, &id)?;
            let label = label.as_deref();
            let before = snapshot.manifest().get(label, &id);
            let default_message = match &edit {
                Edit::Point { version, .. } => {
                    if *version == 0 || *version > count {
                        return Err(Error::BadReference {
                            reference: format!("{id}@{version}"),
                            reason: format!("`{id}` has no version {version}"),
                            available: format!("it has versions 1 to {count}"),
                        });
                    }
                    point_message(label, &id, before, *version)
                }
                _ => unpoint_message(label, &id, before),
            };
            let changes = match edit_manifest(&edit, &manifest_text()?)? {
                Some(edited) => vec![Change::Write {
                    path: manifest::FILE.into(),
                    bytes: edited.into_bytes(),
                }],
                None => Vec::new(),
            };
            (changes, default_message, None)
        }
    };
    let plan = Plan {
        base: snapshot.map(Snapshot::commit),
        given_message: message.map(str::to_string),
        message: message.map_or(default_message, str::to_string),
        edit,
        changes,
        file,
    };
    guard(&plan)?;
    Ok(plan)
}

/// The versions a prompt has, refusing one that has none (a default or label needs one).
fn count_versions(snapshot: &Snapshot, id: &str) -> Result<u32> {
    let index = snapshot.index()?;
    let count = index
        .file_of(id)
        .map_or(0, |f| index.versions(&f).len() as u32);
    if count == 0 {
        snapshot
            .discovery()
            .file(id, &snapshot.commit().to_string())?;
        return Err(Error::BadReference {
            reference: id.to_string(),
            reason: format!("`{id}` has no committed versions"),
            available: String::new(),
        });
    }
    Ok(count)
}

/// The last line of defence: a plan touches only its prompt's own file and `defaults.yaml`,
/// and the prompt's file is never one of the registry's own files.
fn guard(plan: &Plan) -> Result<()> {
    for path in plan.paths() {
        let own = plan.file.as_deref() == Some(path);
        let manifest = path == manifest::FILE && !matches!(plan.edit, Edit::Commit { .. });
        if !(own || manifest) || (own && RESERVED.contains(&path)) {
            return Err(Error::Refused(format!(
                "a write of `{}` would change {path}, which it does not name; nothing was written",
                plan.edit.id()
            )));
        }
    }
    Ok(())
}

/// Every finding `validate` would report for `source` as the file of prompt `id` at
/// `snapshot`'s commit (errors and warnings, at their lines), without writing anything: what
/// an editor shows before a commit. A prompt the registry does not have yet is checked as
/// `ID.prompt.yaml`.
pub fn findings(
    snapshot: &Snapshot,
    id: &str,
    source: &str,
) -> Result<Vec<crate::diagnostic::Diagnostic>> {
    check_id(id)?;
    let base: Arc<dyn Source> = snapshot.registry().commit_source(snapshot.commit())?;
    let file = match snapshot.discovery().prompts.get(id) {
        Some(file) => file.clone(),
        None => format!("{id}{}", crate::snapshot::matcher::PROMPT_SUFFIXES[0]),
    };
    let overlay: Arc<dyn Source> =
        Arc::new(Overlay::new(base, &file, Some(source.as_bytes().to_vec())));
    Ok(crate::check::validate::check_file(overlay, id, &file))
}

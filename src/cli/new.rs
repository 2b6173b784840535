//! `promptreg new`: scaffold a valid prompt file.

use clap::Args;

use super::output::print;
use super::{Context, Failure};
use crate::error::Error;
use crate::snapshot::work::PROMPT_SUFFIXES;

/// Create `ID.prompt.yaml` with a valid skeleton: a system and a user message, one declared
/// variable and a test case. Refuses to overwrite an existing prompt.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The new prompt's id, e.g. `support/escalation` (creates `support/escalation.prompt.yaml`),
    /// or its file name, e.g. `support/escalation.prompt.yml` (creates that file).
    pub id: String,
    /// Have the model write the file from this description (what the prompt is for) instead
    /// of the skeleton. The file is written only when it validates without errors.
    #[arg(long, value_name = "TEXT")]
    pub generate: Option<String>,
    /// Where the model is (with --generate).
    #[command(flatten)]
    pub model: super::model::ModelArgs,
}

pub use crate::write::skeleton;

/// The file the model writes from `description`, refused (and not written) when it has errors.
fn generated(
    registry: &crate::registry::Registry,
    args: &NewArgs,
    id: &str,
    suffix: &str,
    description: &str,
) -> Result<String, Failure> {
    if description.trim().is_empty() {
        return Err(Error::Usage(
            "--generate needs a description of what the prompt is for".into(),
        )
        .into());
    }
    let config = super::model::config(&args.model.settings(), registry)?;
    let client = super::model::client(config);
    let text = crate::model::generate::generate(&client, id, description)?;
    // Checked as the working copy would hold it: its partials and config, committed or not.
    let file = format!("{id}{suffix}");
    let overlay = crate::snapshot::overlay::Overlay::new(
        registry.work(),
        &file,
        Some(text.clone().into_bytes()),
    );
    let errors: Vec<_> =
        crate::check::validate::check_file(std::sync::Arc::new(overlay), id, &file)
            .into_iter()
            .filter(|d| d.is_error())
            .collect();
    if !errors.is_empty() {
        return Err(Error::Invalid {
            file: format!("{id} (as the model wrote it)"),
            text: Some(text),
            diagnostics: errors,
        }
        .into());
    }
    Ok(text)
}

/// The id and file suffix of what `new` was given: `a.prompt.yml` is id `a` in `a.prompt.yml`,
/// `a` is id `a` in `a.prompt.yaml`.
fn split_suffix(given: &str) -> (&str, &'static str) {
    PROMPT_SUFFIXES
        .iter()
        .find_map(|suffix| {
            let id = given.strip_suffix(suffix)?;
            (!id.is_empty() && !id.ends_with('/')).then_some((id, *suffix))
        })
        .unwrap_or((given, PROMPT_SUFFIXES[0]))
}

/// Runs `new`.
pub fn run(ctx: &Context, args: NewArgs) -> Result<u8, Failure> {
    let registry = ctx.registry()?;
    // The rule every writer shares: a plain path, no `@`, hidden part, control character or
    // part named like the registry's own files.
    crate::write::check_id(&args.id)?;
    let id = args.id.clone();
    // A file name given instead of an id keeps its suffix: `new a.prompt.yml` creates
    // `a.prompt.yml`, never `a.prompt.yml.prompt.yaml`.
    let (id, suffix) = split_suffix(&id);
    for suffix in PROMPT_SUFFIXES {
        let existing = registry.root().join(format!("{id}{suffix}"));
        if existing.exists() {
            return Err(Error::Refused(format!(
                "{} already exists; not overwriting it",
                existing.display()
            ))
            .into());
        }
    }
    let text = match &args.generate {
        None => skeleton(id),
        Some(description) => generated(&registry, &args, id, suffix, description)?,
    };
    let path = registry.root().join(format!("{id}{suffix}"));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| {
            Failure::from(Error::Io {
                path: parent.to_path_buf(),
                source: e,
            })
        })?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| {
            Failure::from(Error::Io {
                path: path.clone(),
                source: e,
            })
        })?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| {
        Failure::from(Error::Io {
            path: path.clone(),
            source: e,
        })
    })?;
    print(&format!("created {}\n", path.display()))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use crate::cli::new::*;

    #[test]
    fn a_file_name_keeps_its_suffix() {
        assert_eq!(split_suffix("a/b.prompt.yml"), ("a/b", ".prompt.yml"));
        assert_eq!(split_suffix("a/b.prompt.yaml"), ("a/b", ".prompt.yaml"));
        assert_eq!(split_suffix("a/b"), ("a/b", ".prompt.yaml"));
        assert_eq!(
            split_suffix("a/.prompt.yaml"),
            ("a/.prompt.yaml", ".prompt.yaml")
        );
    }
}

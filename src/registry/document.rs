//! A prompt at one version as data: the document `GET /v1/prompts/ID` answers, the Python
//! package's `Prompt`, and what `export` writes. One shape, built here once.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::format::prompt::Body;
use crate::history::VersionIndex;
use crate::registry::{Resolved, Snapshot};
use crate::render::CompiledPrompt;

/// A declared variable.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "serve", derive(utoipa::ToSchema))]
pub struct VariableDoc {
    name: String,
    #[serde(rename = "type")]
    ty: &'static str,
    required: bool,
    /// The default value, of the variable's type.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "serve", schema(value_type = Option<serde_json::Value>))]
    default: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

/// A message before rendering.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "serve", derive(utoipa::ToSchema))]
pub struct MessageDoc {
    role: String,
    content: String,
    /// Prompt tokens of the template text (o200k_base).
    tokens: usize,
}

/// One version of a prompt.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "serve", derive(utoipa::ToSchema))]
pub struct VersionDoc {
    version: u32,
    commit: String,
    blob: String,
    author: String,
    email: String,
    /// RFC 3339, in the commit's own offset.
    time: String,
    /// The commit message: the change note.
    message: String,
    /// Whether applications get this version by default.
    default: bool,
    /// Labels that point at it.
    labels: Vec<String>,
}

impl VersionDoc {
    /// The version number.
    pub fn version(&self) -> u32 {
        self.version
    }
}

/// A prompt at one version: the parsed file as data, and its source.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "serve", derive(utoipa::ToSchema))]
pub struct PromptDoc {
    id: String,
    file: String,
    /// The version number (absent in a shallow clone, where versions have no numbers).
    version: Option<u32>,
    commit: String,
    blob: String,
    author: Option<String>,
    email: Option<String>,
    time: Option<String>,
    message: Option<String>,
    name: Option<String>,
    description: Option<String>,
    model: Option<String>,
    #[serde(rename = "modelParameters")]
    #[cfg_attr(feature = "serve", schema(value_type = Object))]
    model_parameters: Map<String, Value>,
    variables: Vec<VariableDoc>,
    /// The chat form (absent for a single template).
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<MessageDoc>>,
    /// The single-template form.
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<String>,
    #[serde(rename = "testData")]
    #[cfg_attr(feature = "serve", schema(value_type = Vec<Object>))]
    test_data: Vec<Map<String, Value>>,
    tags: Vec<String>,
    /// `text`, `json_object` or `json_schema` (as the file says it).
    #[serde(rename = "responseFormat", skip_serializing_if = "Option::is_none")]
    response_format: Option<String>,
    /// The JSON schema of a `json_schema` response, as an object (a file may hold it as JSON
    /// text, as GitHub Models' files do; it is parsed).
    #[serde(rename = "jsonSchema", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "serve", schema(value_type = Option<Object>))]
    json_schema: Option<Map<String, Value>>,
    /// Prompt tokens of every template, before rendering.
    tokens: usize,
    /// The file's text.
    source: String,
    /// Whether applications get this version by default (the manifest's default, else the
    /// latest).
    default: bool,
    /// The labels of `defaults.yaml` that point at this version.
    labels: Vec<String>,
    /// With `expand=versions`: every version, newest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    versions: Option<Vec<VersionDoc>>,
}

/// Where a resolved version comes from: its number, commit and blob, and its commit's facts.
#[derive(Debug)]
pub struct Facts<'a> {
    /// The version number (none in a shallow clone).
    pub number: Option<u32>,
    /// The version's commit.
    pub commit: String,
    /// The file's blob at it.
    pub blob: String,
    info: Option<&'a crate::git::CommitInfo>,
}

/// The snapshot's version index, `None` in a shallow clone (where versions have no numbers).
pub fn index_of(snapshot: &Snapshot) -> Result<Option<&VersionIndex>> {
    match snapshot.index() {
        Ok(index) => Ok(Some(index)),
        Err(err) if err.kind() == ErrorKind::NoHistory => Ok(None),
        Err(err) => Err(err),
    }
}

/// The facts of `compiled` as `resolved` names it in `snapshot`.
pub fn facts<'a>(
    snapshot: &'a Snapshot,
    index: Option<&'a VersionIndex>,
    compiled: &CompiledPrompt,
    resolved: &Resolved,
) -> Result<Facts<'a>> {
    match (resolved, index) {
        (Resolved::Version { number, commit }, Some(index)) => {
            let file = compiled.file().to_string();
            let version = (*number as usize)
                .checked_sub(1)
                .and_then(|i| index.versions(&file).get(i));
            Ok(Facts {
                number: Some(*number),
                commit: commit.to_string(),
                blob: version.map_or_else(String::new, |v| v.blob.to_string()),
                info: version.map(|v| index.commit(v)),
            })
        }
        (Resolved::Version { commit, .. } | Resolved::Tip { commit }, _) => {
            let source = snapshot.registry().commit_source(*commit)?;
            let blob = source.blob_id(compiled.file())?;
            Ok(Facts {
                number: None,
                commit: commit.to_string(),
                blob: blob.map_or_else(String::new, |b| b.to_string()),
                info: None,
            })
        }
        (Resolved::Work, _) => Err(Error::Usage(
            "the working copy has no version to describe".into(),
        )),
    }
}

/// Whether version `number` of `id` is its default at `snapshot`, and which labels point at
/// it: the rule of [`marked_versions`](crate::registry::marked_versions), for one version.
pub fn marks(
    snapshot: &Snapshot,
    index: Option<&VersionIndex>,
    id: &str,
    number: Option<u32>,
) -> (bool, Vec<String>) {
    let Some(number) = number else {
        return (false, Vec::new());
    };
    // A deleted prompt has no default and no labels (its versions stay readable by number).
    if !snapshot.discovery().prompts.contains_key(id) {
        return (false, Vec::new());
    }
    let latest = index.and_then(|index| {
        index
            .file_of(id)
            .map(|file| index.versions(&file).len() as u32)
    });
    let manifest = snapshot.manifest();
    let default = manifest.get(None, id).or(latest) == Some(number);
    let labels = manifest
        .labels_of(id)
        .into_iter()
        .filter(|(_, v)| *v == number)
        .map(|(label, _)| label.to_string())
        .collect();
    (default, labels)
}

/// Every version of `id` at `snapshot`, newest first, with its marks.
pub fn versions_of(snapshot: &Snapshot, index: &VersionIndex, id: &str) -> Vec<VersionDoc> {
    let Some(file) = index.file_of(id) else {
        return Vec::new();
    };
    let versions = index.versions(&file);
    crate::registry::marked_versions(index, versions, snapshot.manifest(), id)
        .into_iter()
        .map(|m| VersionDoc {
            version: m.version.number,
            commit: m.commit.id.to_string(),
            blob: m.version.blob.to_string(),
            author: m.commit.author.clone(),
            email: m.commit.email.clone(),
            time: crate::git::time::rfc3339(m.commit.time, m.commit.offset_minutes),
            message: m.commit.message.clone(),
            default: m.default,
            labels: m.labels,
        })
        .collect()
}

/// The document of `compiled` with its facts, marks and (optionally) every version.
pub fn prompt_doc(
    compiled: &CompiledPrompt,
    facts: &Facts<'_>,
    marks: (bool, Vec<String>),
    versions: Option<Vec<VersionDoc>>,
) -> PromptDoc {
    let prompt = compiled.prompt();
    let count = crate::render::tokens::count;
    let (messages, template, tokens) = match &prompt.body {
        Body::Messages(messages) => {
            let docs: Vec<MessageDoc> = messages
                .iter()
                .map(|m| MessageDoc {
                    role: m.role.to_string(),
                    content: m.content.clone(),
                    tokens: count(&m.content),
                })
                .collect();
            let total = docs.iter().map(|m| m.tokens).sum();
            (Some(docs), None, total)
        }
        Body::Template(text) | Body::Chat { template: text, .. } => {
            (None, Some(text.clone()), count(text))
        }
    };
    PromptDoc {
        id: compiled.id().to_string(),
        file: compiled.file().to_string(),
        version: facts.number,
        commit: facts.commit.clone(),
        blob: facts.blob.clone(),
        author: facts.info.map(|i| i.author.clone()),
        email: facts.info.map(|i| i.email.clone()),
        time: facts
            .info
            .map(|i| crate::git::time::rfc3339(i.time, i.offset_minutes)),
        message: facts.info.map(|i| i.message.clone()),
        name: prompt.name.clone(),
        description: prompt.description.clone(),
        model: prompt.model.clone(),
        model_parameters: prompt.model_parameters.clone(),
        variables: prompt
            .variables
            .iter()
            .flatten()
            .map(|(name, v)| VariableDoc {
                name: name.clone(),
                ty: v.ty.as_str(),
                required: v.required,
                default: v.default.clone(),
                description: v.description.clone(),
            })
            .collect(),
        messages,
        template,
        test_data: prompt.test_data.clone(),
        tags: prompt.tags.clone(),
        response_format: prompt.response_format.as_ref().map(|format| match format {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        }),
        json_schema: prompt.json_schema.as_ref().and_then(|schema| match schema {
            Value::Object(object) => Some(object.clone()),
            Value::String(text) => serde_json::from_str(text).ok(),
            _ => None,
        }),
        tokens,
        source: compiled.source_text().to_string(),
        default: marks.0,
        labels: marks.1,
        versions,
    }
}

impl Snapshot {
    /// The document of the version `reference` names (the default, `ID@N`, `ID@LABEL`,
    /// `ID@COMMIT`, `ID@latest`), with every version of the prompt when `with_versions`.
    ///
    /// ```no_run
    /// use promptreg::{Reference, Registry};
    ///
    /// let snapshot = Registry::open("prompts")?.snapshot()?;
    /// let doc = snapshot.document(&Reference::parse("support/triage@2")?, false)?;
    /// println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    /// # Ok::<(), promptreg::Error>(())
    /// ```
    pub fn document(
        &self,
        reference: &crate::registry::reference::Reference,
        with_versions: bool,
    ) -> Result<PromptDoc> {
        let resolved = self.resolve(reference)?;
        let compiled = self
            .registry()
            .load_resolved(reference.id(), &resolved)?
            .compile()?;
        let index = index_of(self)?;
        let facts = facts(self, index, &compiled, &resolved)?;
        let marks = marks(self, index, reference.id(), facts.number);
        let versions = match (with_versions, index) {
            (true, Some(index)) => Some(versions_of(self, index, reference.id())),
            (true, None) => Some(Vec::new()),
            (false, _) => None,
        };
        Ok(prompt_doc(&compiled, &facts, marks, versions))
    }
}

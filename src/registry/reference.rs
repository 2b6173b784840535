//! References to a prompt version: `ID`, `ID@N`, `ID@latest`, `ID@LABEL`, `ID@COMMIT`,
//! `ID@work`.

use std::fmt;

use crate::error::{Error, Result};

/// Which version of a prompt a reference asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Selector {
    /// `ID`: the default version (the manifest's, else the latest).
    Default,
    /// `ID@N`: version N (1-based).
    Version(u32),
    /// `ID@latest`: the newest committed version.
    Latest,
    /// `ID@work`: the working copy.
    Work,
    /// `ID@NAME`: a manifest label, or else a commit (hex prefix of 7+ characters).
    Name(String),
}

/// A parsed reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The prompt id.
    pub(crate) id: String,
    /// The version asked for.
    pub(crate) selector: Selector,
}

impl Reference {
    /// A reference to `selector` of prompt `id`, checked as [`Reference::parse`] checks text:
    /// a non-empty id without `@`, versions numbered from 1.
    pub fn new(id: impl Into<String>, selector: Selector) -> Result<Reference> {
        let reference = Reference {
            id: id.into(),
            selector,
        };
        Reference::parse(&reference.to_string())
            .ok()
            .filter(|parsed| *parsed == reference)
            .ok_or_else(|| Error::BadReference {
                reference: reference.to_string(),
                reason: "not a valid reference".into(),
                available: "ids are non-empty paths without `@`; versions are numbered from 1; labels are names without `@`".into(),
            })
    }

    /// The prompt id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The version asked for.
    pub fn selector(&self) -> &Selector {
        &self.selector
    }

    /// Parses `ID[@SELECTOR]`.
    ///
    /// ```
    /// use promptreg::registry::reference::{Reference, Selector};
    /// let r = Reference::parse("support/triage@3").unwrap();
    /// assert_eq!(r.id(), "support/triage");
    /// assert_eq!(r.selector(), &Selector::Version(3));
    /// assert_eq!(Reference::parse("greeting").unwrap().selector(), &Selector::Default);
    /// assert!(Reference::parse("greeting@").is_err());
    /// assert!(Reference::new("greeting", Selector::Version(0)).is_err());
    /// assert!(Reference::new("greeting", Selector::Version(2)).is_ok());
    /// ```
    pub fn parse(text: &str) -> Result<Reference> {
        let bad = |reason: &str| Error::BadReference {
            reference: text.to_string(),
            reason: reason.to_string(),
            available: "references are ID, ID@N, ID@latest, ID@LABEL, ID@COMMIT or ID@work".into(),
        };
        let (id, selector) = match text.split_once('@') {
            None => (text, Selector::Default),
            Some((id, rest)) => {
                let selector = match rest {
                    "" => return Err(bad("nothing after `@`")),
                    "latest" => Selector::Latest,
                    "work" => Selector::Work,
                    n if n.bytes().all(|b| b.is_ascii_digit()) && n.len() < 7 => {
                        match n.parse::<u32>() {
                            Ok(0) | Err(_) => return Err(bad("versions are numbered from 1")),
                            Ok(v) => Selector::Version(v),
                        }
                    }
                    name if name.contains('@') => {
                        return Err(bad("a reference holds at most one `@`"))
                    }
                    name => Selector::Name(name.to_string()),
                };
                (id, selector)
            }
        };
        let id = id.trim_end_matches('/');
        if id.is_empty() {
            return Err(bad("the prompt id is empty"));
        }
        Ok(Reference {
            id: id.to_string(),
            selector,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.selector {
            Selector::Default => write!(f, "{}", self.id),
            Selector::Version(n) => write!(f, "{}@{n}", self.id),
            Selector::Latest => write!(f, "{}@latest", self.id),
            Selector::Work => write!(f, "{}@work", self.id),
            Selector::Name(name) => write!(f, "{}@{name}", self.id),
        }
    }
}

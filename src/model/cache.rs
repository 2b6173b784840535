//! Completions cached by content under the git dir (`.git/promptreg/models/`), so that a
//! second `eval`, a `review --eval` or an analysis of an unchanged version costs no model
//! calls. The key is the SHA-256 of the endpoint URL and the exact request body (rendered
//! messages, model, parameters, response format); the key is never part of it.
//!
//! A file that does not parse is a miss, and failing to write one is not an error: the
//! cache only ever saves calls.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::model::client::{Client, Completion};

/// A folder of cached completions.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache of the repository whose git dir is `git_dir`.
    pub fn in_git_dir(git_dir: &Path) -> Cache {
        Cache {
            dir: git_dir.join("promptreg").join("models"),
        }
    }

    /// The key of a request to `url` with `body`.
    pub fn key(url: &str, body: &Value) -> String {
        let mut hasher = Sha256::new();
        hasher.update(url.as_bytes());
        hasher.update([0]);
        hasher.update(body.to_string().as_bytes());
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(format!("{}.json", &key[2..]))
    }

    /// The cached completion for `key`.
    pub fn get(&self, key: &str) -> Option<Completion> {
        let text = crate::git::file::read_regular(&self.path(key))?;
        let value: Value = serde_json::from_slice(&text).ok()?;
        Some(Completion {
            content: value.get("content")?.as_str()?.to_string(),
            response: value.get("response")?.clone(),
        })
    }

    /// Keeps `completion` under `key` (atomically: a temporary file renamed into place).
    pub fn put(&self, key: &str, completion: &Completion) {
        let path = self.path(key);
        let Some(parent) = path.parent() else { return };
        if std::fs::create_dir_all(parent).is_err() {
            return;
        }
        let value = serde_json::json!({
            "content": completion.content,
            "response": completion.response,
        });
        let Ok(mut file) = tempfile::NamedTempFile::new_in(parent) else {
            return;
        };
        if std::io::Write::write_all(&mut file, value.to_string().as_bytes()).is_ok() {
            let _ = file.persist(&path);
        }
    }
}

/// A client with an optional cache in front, counting the calls it made.
#[derive(Debug)]
pub struct CachedClient {
    client: Client,
    cache: Option<Cache>,
    calls: AtomicUsize,
    hits: AtomicUsize,
}

impl CachedClient {
    /// `client`, with `cache` when there is one.
    pub fn new(client: Client, cache: Option<Cache>) -> CachedClient {
        CachedClient {
            client,
            cache,
            calls: AtomicUsize::new(0),
            hits: AtomicUsize::new(0),
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The completion of `body`, from the cache when it holds one.
    pub fn complete(&self, body: &Value) -> Result<Completion> {
        let key = Cache::key(&self.client.config().url, body);
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.get(&key)) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(hit);
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let done = self.client.complete(body, &mut |_| {})?;
        if let Some(cache) = &self.cache {
            cache.put(&key, &done);
        }
        Ok(done)
    }

    /// Model calls made (cache misses).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Answers taken from the cache.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().expect("dir");
        let cache = Cache::in_git_dir(dir.path());
        let key = Cache::key(
            "http://x/chat/completions",
            &serde_json::json!({ "model": "m" }),
        );
        assert_eq!(key.len(), 64);
        assert_ne!(
            key,
            Cache::key(
                "http://y/chat/completions",
                &serde_json::json!({ "model": "m" })
            )
        );
        assert!(cache.get(&key).is_none());
        let done = Completion {
            content: "hi".into(),
            response: serde_json::json!({ "usage": null }),
        };
        cache.put(&key, &done);
        assert_eq!(cache.get(&key), Some(done));
        std::fs::write(cache.path(&key), "{not json").expect("corrupt");
        assert!(cache.get(&key).is_none());
    }
}

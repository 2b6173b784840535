//! The version index on disk, under the repository's git dir, keyed by the tip it was built for.
//!
//! The file is a small binary format with a magic number, a format version and a checksum of
//! its contents, so a truncated, corrupt or foreign file is detected and the index rebuilt,
//! never trusted. Writes go to a temporary file that is renamed into place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::git::{CommitInfo, ObjectId};
use crate::history::{Version, VersionIndex};

const MAGIC: &[u8; 8] = b"PRIDX\x00\x00\x02";

/// Where the index of the registry with root `prefix` is cached.
pub fn path(git_dir: &Path, prefix: &str) -> PathBuf {
    git_dir
        .join("promptreg")
        .join(format!("index-{:016x}.bin", fnv1a(prefix.as_bytes())))
}

/// Reads a cached index; `None` when there is none or it cannot be trusted.
pub fn load(path: &Path) -> Option<VersionIndex> {
    let data = std::fs::read(path).ok()?;
    decode(&data)
}

/// Writes the index atomically. Failure to write a cache is not an error: the next call
/// rebuilds it.
pub fn store(path: &Path, index: &VersionIndex) -> bool {
    let Some(dir) = path.parent() else {
        return false;
    };
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) else {
        return false;
    };
    let data = encode(index);
    std::io::Write::write_all(&mut tmp, &data).is_ok() && tmp.persist(path).is_ok()
}

/// FNV-1a, 64 bits: the checksum of the cache and the hash in its file name.
pub fn fnv1a(data: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Serializes an index.
pub fn encode(index: &VersionIndex) -> Vec<u8> {
    let mut body = Vec::with_capacity(64 + index.commits.len() * 96 + index.files.len() * 64);
    body.extend_from_slice(&index.tip.0);
    match index.tip_root {
        Some(root) => {
            body.push(1);
            body.extend_from_slice(&root.0);
        }
        None => body.push(0),
    }
    body.extend_from_slice(&index.chain_len.to_le_bytes());
    put_str(&mut body, &index.prefix);
    body.extend_from_slice(&(index.commits.len() as u32).to_le_bytes());
    for c in &index.commits {
        body.extend_from_slice(&c.id.0);
        body.extend_from_slice(&c.time.to_le_bytes());
        body.extend_from_slice(&c.offset_minutes.to_le_bytes());
        put_str(&mut body, &c.author);
        put_str(&mut body, &c.email);
        put_str(&mut body, &c.message);
    }
    body.extend_from_slice(&(index.files.len() as u32).to_le_bytes());
    for (path, versions) in &index.files {
        put_str(&mut body, path);
        body.extend_from_slice(&(versions.len() as u32).to_le_bytes());
        for v in versions {
            body.extend_from_slice(&v.seq.to_le_bytes());
            body.extend_from_slice(&v.commit.to_le_bytes());
            body.extend_from_slice(&v.blob.0);
        }
    }
    let mut out = Vec::with_capacity(body.len() + 16);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&fnv1a(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.data.len() < n {
            return None;
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4)?.try_into().ok().map(i32::from_le_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8)?.try_into().ok().map(i64::from_le_bytes)
    }
    fn id(&mut self) -> Option<ObjectId> {
        self.take(20)?.try_into().ok().map(ObjectId)
    }
    fn str(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
    /// A count of items at least `min_size` bytes each, refused if the data cannot hold them.
    fn count(&mut self, min_size: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n.checked_mul(min_size)? <= self.data.len()).then_some(n)
    }
}

/// Deserializes an index; `None` for anything that is not a whole, intact cache file.
pub fn decode(data: &[u8]) -> Option<VersionIndex> {
    let rest = data.strip_prefix(MAGIC)?;
    let checksum = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    let body = &rest[8..];
    if fnv1a(body) != checksum {
        return None;
    }
    let mut r = Reader { data: body };
    let tip = r.id()?;
    let tip_root = match r.u8()? {
        0 => None,
        1 => Some(r.id()?),
        _ => return None,
    };
    let chain_len = r.u32()?;
    let prefix = r.str()?;
    let n_commits = r.count(20 + 8 + 4 + 12)?;
    let mut commits = Vec::with_capacity(n_commits);
    for _ in 0..n_commits {
        commits.push(CommitInfo {
            id: r.id()?,
            time: r.i64()?,
            offset_minutes: r.i32()?,
            author: r.str()?,
            email: r.str()?,
            message: r.str()?,
        });
    }
    let n_files = r.count(8)?;
    let mut files = BTreeMap::new();
    for _ in 0..n_files {
        let path = r.str()?;
        let n = r.count(28)?;
        let mut versions = Vec::with_capacity(n);
        for number in 1..=n {
            let seq = r.u32()?;
            let commit = r.u32()?;
            if commit as usize >= commits.len() || seq >= chain_len {
                return None;
            }
            versions.push(Version {
                number: number as u32,
                seq,
                commit,
                blob: r.id()?,
            });
        }
        files.insert(path, versions);
    }
    if !r.data.is_empty() {
        return None;
    }
    Some(VersionIndex {
        tip,
        tip_root,
        chain_len,
        prefix,
        commits,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> VersionIndex {
        let commit = CommitInfo {
            id: ObjectId([1; 20]),
            author: "Ada".into(),
            email: "ada@example.com".into(),
            time: 1_700_000_000,
            offset_minutes: 60,
            message: "Add greeting\n".into(),
        };
        let mut files = BTreeMap::new();
        files.insert(
            "greeting.prompt.yaml".to_string(),
            vec![Version {
                number: 1,
                seq: 0,
                commit: 0,
                blob: ObjectId([2; 20]),
            }],
        );
        VersionIndex {
            tip: ObjectId([1; 20]),
            tip_root: Some(ObjectId([3; 20])),
            chain_len: 1,
            prefix: String::new(),
            commits: vec![commit],
            files,
        }
    }

    #[test]
    fn round_trips() {
        let index = sample();
        assert_eq!(decode(&encode(&index)), Some(index));
    }

    #[test]
    fn refuses_corrupt_and_truncated_files() {
        let data = encode(&sample());
        for cut in [0, 5, 16, data.len() - 1] {
            assert_eq!(decode(&data[..cut]), None, "cut at {cut}");
        }
        let mut flipped = data.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(decode(&flipped), None);
        assert_eq!(decode(b"garbage"), None);
    }
}

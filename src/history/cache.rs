//! The version index kept under the repository's git dir (`.git/promptreg/index-*.bin`), keyed
//! by the tip it was built for (the tip's root tree is kept by `snapshot::kept_tree`).
//!
//! It is a small binary format with a magic number, a format version and checksums, so a
//! truncated, corrupt or foreign file is detected and rebuilt, never trusted. Writes go to a
//! temporary file that is renamed into place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[cfg(feature = "unstable")]
pub use crate::git::store::fnv1a;
use crate::git::store::{checksum, file_for, write_atomic, Reader};
use crate::git::{CommitInfo, ObjectId};
use crate::history::{Version, VersionIndex};
#[cfg(feature = "unstable")]
pub use crate::snapshot::kept_tree::{load_tree, store_tree, tree_path, KeptTree};

const MAGIC: &[u8; 8] = b"PRIDX\x00\x00\x06";

/// Where the index of the registry with root `prefix` is cached.
pub fn path(git_dir: &Path, prefix: &str) -> PathBuf {
    file_for(git_dir, "index", prefix)
}

/// Reads a cached index; `None` when there is none or it cannot be trusted.
pub fn load(path: &Path) -> Option<VersionIndex> {
    let data = crate::git::file::read_regular(path)?;
    decode(&data)
}

/// Writes the index atomically. Failure to write a cache is not an error: the next call
/// rebuilds it.
pub fn store(path: &Path, index: &VersionIndex) -> bool {
    write_atomic(path, &[&encode(index)])
}

/// Serializes an index: a header, a small summary section (the tip, the registry root's
/// prefix, and how many versions each file has: all that `list` reads) and the body (the whole index), each with its
/// own checksum, so `list` reads a few hundred kilobytes of a long history's cache, not all of
/// its commit messages.
pub fn encode(index: &VersionIndex) -> Vec<u8> {
    let mut summary = Vec::with_capacity(64 + index.files.len() * 48);
    summary.extend_from_slice(&index.tip.0);
    put_str(&mut summary, &index.prefix);
    summary.extend_from_slice(&(index.files.len() as u32).to_le_bytes());
    for (path, versions) in &index.files {
        put_str(&mut summary, path);
        summary.extend_from_slice(&(versions.len() as u32).to_le_bytes());
    }
    // One buffer: the header first with its checksums filled in at the end, so a 21 MB index
    // is not built and then copied behind its header (both copies counted in the peak memory).
    let mut out = Vec::with_capacity(
        HEADER + summary.len() + 64 + index.commits.len() * 96 + index.files.len() * 64,
    );
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(summary.len() as u64).to_le_bytes());
    out.extend_from_slice(&checksum(&summary).to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&summary);
    let body_start = out.len();
    out.extend_from_slice(&index.tip.0);
    match index.tip_root {
        Some(root) => {
            out.push(1);
            out.extend_from_slice(&root.0);
        }
        None => out.push(0),
    }
    out.extend_from_slice(&index.chain_len.to_le_bytes());
    put_str(&mut out, &index.prefix);
    put_str(&mut out, &index.patterns);
    out.extend_from_slice(&(index.commits.len() as u32).to_le_bytes());
    for c in index.commits.iter() {
        out.extend_from_slice(&c.id.0);
        out.extend_from_slice(&c.time.to_le_bytes());
        out.extend_from_slice(&c.offset_minutes.to_le_bytes());
        put_str(&mut out, &c.author);
        put_str(&mut out, &c.email);
        put_str(&mut out, &c.message);
    }
    let id_of: BTreeMap<&str, &str> = index
        .ids
        .iter()
        .flat_map(|(id, files)| files.iter().map(move |f| (f.as_str(), id.as_str())))
        .collect();
    out.extend_from_slice(&(index.files.len() as u32).to_le_bytes());
    for (path, versions) in &index.files {
        put_str(&mut out, path);
        put_str(&mut out, id_of.get(path.as_str()).copied().unwrap_or(""));
        out.extend_from_slice(&(versions.len() as u32).to_le_bytes());
        for v in versions.iter() {
            out.extend_from_slice(&v.seq.to_le_bytes());
            out.extend_from_slice(&v.commit.to_le_bytes());
            out.extend_from_slice(&v.blob.0);
        }
    }
    match &index.reading {
        None => out.push(0),
        Some(reading) => {
            out.push(1);
            out.extend_from_slice(&(reading.len() as u32).to_le_bytes());
            for path in reading {
                put_str(&mut out, path);
            }
        }
    }
    let sum = checksum(&out[body_start..]);
    out[24..32].copy_from_slice(&sum.to_le_bytes());
    out
}

/// Magic, summary length, summary checksum, body checksum.
const HEADER: usize = 32;

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// How many versions each file has, from the cached index's summary, if it was built for
/// `tip` and `prefix`; the rest of the file (every version commit's author and message, most
/// of a long history's cache) is not read.
pub fn load_counts(path: &Path, tip: ObjectId, prefix: &str) -> Option<BTreeMap<String, u32>> {
    use std::io::Read;
    let mut file = crate::git::file::regular(path)?;
    let mut header = [0u8; HEADER];
    file.read_exact(&mut header).ok()?;
    let mut r = Reader { data: &header };
    if r.take(8)? != MAGIC {
        return None;
    }
    let len = usize::try_from(r.i64()?).ok()?;
    let expected = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let mut summary = Vec::new();
    file.take(len as u64).read_to_end(&mut summary).ok()?;
    if summary.len() != len || checksum(&summary) != expected {
        return None;
    }
    let mut r = Reader { data: &summary };
    if r.id()? != tip || r.str()? != prefix {
        return None;
    }
    let n = r.count(8)?;
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let path = r.str()?;
        counts.insert(path, r.u32()?);
    }
    r.data.is_empty().then_some(counts)
}

/// Deserializes an index; `None` for anything that is not a whole, intact cache file.
pub fn decode(data: &[u8]) -> Option<VersionIndex> {
    let mut r = Reader { data };
    if r.take(8)? != MAGIC {
        return None;
    }
    let summary_len = usize::try_from(r.i64()?).ok()?;
    let summary_sum = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let expected = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    if checksum(r.take(summary_len)?) != summary_sum || checksum(r.data) != expected {
        return None;
    }
    let mut r = Reader { data: r.data };
    let tip = r.id()?;
    let tip_root = match r.u8()? {
        0 => None,
        1 => Some(r.id()?),
        _ => return None,
    };
    let chain_len = r.u32()?;
    let prefix = r.str()?;
    let patterns = r.str()?;
    let n_commits = r.count(20 + 8 + 4 + 12)?;
    let mut commits = crate::history::chunked::Chunked::default();
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
    let n_files = r.count(12)?;
    let mut files = BTreeMap::new();
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for _ in 0..n_files {
        let path = r.str()?;
        let id = r.str()?;
        if !id.is_empty() {
            ids.entry(id).or_default().push(path.clone());
        }
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
        files.insert(path, std::sync::Arc::new(versions));
    }
    let reading = match r.u8()? {
        0 => None,
        1 => {
            let n = r.count(4)?;
            let mut set = std::collections::BTreeSet::new();
            for _ in 0..n {
                set.insert(r.str()?);
            }
            Some(set)
        }
        _ => return None,
    };
    if !r.data.is_empty() {
        return None;
    }
    Some(VersionIndex {
        tip,
        tip_root,
        chain_len,
        prefix,
        patterns,
        commits,
        files,
        ids,
        reading,
    })
}

#[cfg(test)]
mod tests {
    use crate::history::cache::*;

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
            std::sync::Arc::new(vec![Version {
                number: 1,
                seq: 0,
                commit: 0,
                blob: ObjectId([2; 20]),
            }]),
        );
        VersionIndex {
            tip: ObjectId([1; 20]),
            tip_root: Some(ObjectId([3; 20])),
            chain_len: 1,
            prefix: String::new(),
            patterns: "examples/*.yml".into(),
            commits: std::iter::once(commit).collect(),
            files,
            ids: [(
                "greeting".to_string(),
                vec!["greeting.prompt.yaml".to_string()],
            )]
            .into(),
            reading: Some(["greeting.prompt.yaml".to_string()].into()),
        }
    }

    #[test]
    fn round_trips() {
        let index = sample();
        assert_eq!(decode(&encode(&index)), Some(index));
    }

    #[test]
    fn counts_come_from_a_current_cache_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.bin");
        let index = sample();
        assert_eq!(load_counts(&path, index.tip, ""), None, "no file");
        assert!(store(&path, &index));
        let counts = BTreeMap::from([("greeting.prompt.yaml".to_string(), 1)]);
        assert_eq!(load_counts(&path, index.tip, ""), Some(counts));
        assert_eq!(
            load_counts(&path, ObjectId([9; 20]), ""),
            None,
            "another tip"
        );
        assert_eq!(load_counts(&path, index.tip, "sub/"), None, "another root");
        let bytes = std::fs::read(&path).unwrap();
        for at in [0, 9, 17, 33, HEADER + 30] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 1;
            std::fs::write(&path, &flipped).unwrap();
            assert_eq!(load_counts(&path, index.tip, ""), None, "flipped at {at}");
        }
        std::fs::write(&path, &bytes[..40]).unwrap();
        assert_eq!(load_counts(&path, index.tip, ""), None, "cut");
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

    #[test]
    fn checksum_sees_every_word_and_the_length() {
        let data: Vec<u8> = (0..100u8).collect();
        let base = checksum(&data);
        for i in 0..data.len() {
            let mut changed = data.clone();
            changed[i] ^= 0x40;
            assert_ne!(checksum(&changed), base, "byte {i}");
        }
        assert_ne!(checksum(&data[..99]), base);
        let mut longer = data.clone();
        longer.push(0);
        assert_ne!(checksum(&longer), base);
        assert_ne!(checksum(&[0; 32]), checksum(&[0; 64]));
    }
}

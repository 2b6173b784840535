//! What promptreg keeps under the repository's git dir (`.git/promptreg/`): the version index,
//! keyed by the tip it was built for, and the registry root's tree at the tip, uncompressed.
//!
//! Both are small binary formats with a magic number, a format version and checksums, so a
//! truncated, corrupt or foreign file is detected and rebuilt, never trusted. Writes go to a
//! temporary file that is renamed into place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::git::{CommitInfo, ObjectId};
use crate::history::{Version, VersionIndex};
use crate::tree::RawTree;

const MAGIC: &[u8; 8] = b"PRIDX\x00\x00\x04";
const TREE_MAGIC: &[u8; 8] = b"PRTREE\x00\x01";

/// Where the index of the registry with root `prefix` is cached.
pub fn path(git_dir: &Path, prefix: &str) -> PathBuf {
    file_for(git_dir, "index", prefix)
}

/// `.git/promptreg/KIND-HASH.bin`, one file of each kind per registry root.
fn file_for(git_dir: &Path, kind: &str, prefix: &str) -> PathBuf {
    git_dir
        .join("promptreg")
        .join(format!("{kind}-{:016x}.bin", fnv1a(prefix.as_bytes())))
}

/// Reads a cached index; `None` when there is none or it cannot be trusted.
pub fn load(path: &Path) -> Option<VersionIndex> {
    let data = std::fs::read(path).ok()?;
    decode(&data)
}

/// Writes the index atomically. Failure to write a cache is not an error: the next call
/// rebuilds it.
pub fn store(path: &Path, index: &VersionIndex) -> bool {
    write_atomic(path, &[&encode(index)])
}

/// Where the registry root's tree at the tip is kept uncompressed.
///
/// In a large registry that one tree is the most expensive object to read: its folder holds
/// every prompt (5000 entries are 293 KB), and git stores it as a long chain of deltas, each
/// applied on a fresh copy. Rendering the latest version of one prompt needs one entry of it.
/// The file records the commit it was read at and the tree's id, so it is never stale: a
/// reader uses it only for that commit or that tree.
pub fn tree_path(git_dir: &Path, prefix: &str) -> PathBuf {
    file_for(git_dir, "tree", prefix)
}

/// A tree kept by [`store_tree`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptTree {
    /// The commit whose registry root it is.
    pub commit: ObjectId,
    /// The tree's id.
    pub tree: ObjectId,
    /// The tree, with its entries' offsets.
    pub raw: RawTree,
}

/// The kept tree, if `wanted(commit, tree)` says it is the one needed and the file is intact.
pub fn load_tree(path: &Path, wanted: impl FnOnce(ObjectId, ObjectId) -> bool) -> Option<KeptTree> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut header = [0u8; 64];
    file.read_exact(&mut header).ok()?;
    let mut r = Reader { data: &header };
    if r.take(8)? != TREE_MAGIC {
        return None;
    }
    let (commit, tree) = (r.id()?, r.id()?);
    if !wanted(commit, tree) {
        return None;
    }
    let data_len = usize::try_from(r.i64()?).ok()?;
    let expected = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    // Sized once from the file's length: no doubling and copying while reading.
    let size = file.metadata().map_or(0, |m| m.len() as usize);
    let mut body = Vec::with_capacity(size.saturating_sub(header.len()));
    file.read_to_end(&mut body).ok()?;
    if tree_checksum(&header[8..56], &body) != expected
        || data_len > body.len()
        || (body.len() - data_len) % 4 != 0
    {
        return None;
    }
    let starts = body[data_len..]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    body.truncate(data_len);
    Some(KeptTree {
        commit,
        tree,
        raw: RawTree::from_parts(body, starts)?,
    })
}

/// Keeps `raw`, the registry root's tree `tree` at `commit`, replacing whatever was kept. A
/// tree out of git's order is not kept.
pub fn store_tree(path: &Path, commit: ObjectId, tree: ObjectId, raw: &RawTree) -> bool {
    let Some((data, starts)) = raw.parts() else {
        return false;
    };
    let mut body = Vec::with_capacity(data.len() + starts.len() * 4);
    body.extend_from_slice(data);
    for start in starts {
        body.extend_from_slice(&start.to_le_bytes());
    }
    let mut header = Vec::with_capacity(64);
    header.extend_from_slice(TREE_MAGIC);
    header.extend_from_slice(&commit.0);
    header.extend_from_slice(&tree.0);
    header.extend_from_slice(&(data.len() as i64).to_le_bytes());
    let sum = tree_checksum(&header[8..56], &body);
    header.extend_from_slice(&sum.to_le_bytes());
    write_atomic(path, &[&header, &body])
}

/// The checksum of a kept tree: its header's ids and length as well as its body.
fn tree_checksum(fields: &[u8], body: &[u8]) -> u64 {
    let mut both = fields.to_vec();
    both.extend_from_slice(&checksum(body).to_le_bytes());
    checksum(&both)
}

/// Writes `parts` to a temporary file next to `path` and renames it into place, so a reader
/// sees the old file or the new one, never a torn one.
fn write_atomic(path: &Path, parts: &[&[u8]]) -> bool {
    let Some(dir) = path.parent() else {
        return false;
    };
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) else {
        return false;
    };
    parts
        .iter()
        .all(|part| std::io::Write::write_all(&mut tmp, part).is_ok())
        && tmp.persist(path).is_ok()
}

/// FNV-1a, 64 bits: the hash in a cache file's name.
pub fn fnv1a(data: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The checksum of a cache file's body: four independent multiply-rotate lanes over 8-byte
/// words (a few GB/s, where byte-wise FNV-1a took 20 ms for the 21 MB index of a 100,000-commit
/// history), with the length mixed in. Every step is a bijection of a lane's state, so a change
/// in any one word always changes the result; it guards against torn and damaged files, not
/// against tampering.
pub fn checksum(data: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut lanes = [
        0xcbf2_9ce4_8422_2325u64,
        0x8422_2325_cbf2_9ce4,
        0x2545_f491_4f6c_dd1d,
        0x4f6c_dd1d_2545_f491,
    ];
    let word = |bytes: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(bytes);
        u64::from_le_bytes(w)
    };
    let mut blocks = data.chunks_exact(32);
    for block in &mut blocks {
        for (lane, bytes) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            *lane = (*lane ^ word(bytes)).wrapping_mul(K).rotate_left(29);
        }
    }
    let mut hash = data.len() as u64;
    for lane in lanes {
        hash = (hash ^ lane).wrapping_mul(K).rotate_left(31);
    }
    for &b in blocks.remainder() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
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
    out.extend_from_slice(&(index.commits.len() as u32).to_le_bytes());
    for c in &index.commits {
        out.extend_from_slice(&c.id.0);
        out.extend_from_slice(&c.time.to_le_bytes());
        out.extend_from_slice(&c.offset_minutes.to_le_bytes());
        put_str(&mut out, &c.author);
        put_str(&mut out, &c.email);
        put_str(&mut out, &c.message);
    }
    out.extend_from_slice(&(index.files.len() as u32).to_le_bytes());
    for (path, versions) in &index.files {
        put_str(&mut out, path);
        out.extend_from_slice(&(versions.len() as u32).to_le_bytes());
        for v in versions {
            out.extend_from_slice(&v.seq.to_le_bytes());
            out.extend_from_slice(&v.commit.to_le_bytes());
            out.extend_from_slice(&v.blob.0);
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

/// How many versions each file has, from the cached index's summary, if it was built for
/// `tip` and `prefix`; the rest of the file (every version commit's author and message, most
/// of a long history's cache) is not read.
pub fn load_counts(path: &Path, tip: ObjectId, prefix: &str) -> Option<BTreeMap<String, u32>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
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

    #[test]
    fn tree_file_holds_one_tree_for_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = tree_path(dir.path(), "prompts/");
        let raw = |name: &str| {
            let mut data = b"100644 ".to_vec();
            data.extend_from_slice(name.as_bytes());
            data.push(0);
            data.extend_from_slice(&[9; 20]);
            RawTree::new(data)
        };
        let (c1, t1, c2, t2) = (
            ObjectId([1; 20]),
            ObjectId([2; 20]),
            ObjectId([3; 20]),
            ObjectId([4; 20]),
        );
        assert_eq!(load_tree(&path, |_, _| true), None, "no file yet");
        assert!(store_tree(&path, c1, t1, &raw("a")));
        let kept = load_tree(&path, |c, _| c == c1).unwrap();
        assert_eq!((kept.commit, kept.tree, kept.raw), (c1, t1, raw("a")));
        assert_eq!(load_tree(&path, |c, _| c == c2), None, "another commit");
        assert!(load_tree(&path, |_, t| t == t1).is_some(), "by tree id");
        assert!(store_tree(&path, c2, t2, &raw("b")));
        assert_eq!(load_tree(&path, |c, _| c == c1), None, "replaced");
        assert_eq!(load_tree(&path, |_, _| true).unwrap().raw, raw("b"));
        // A damaged body, a cut file, wrong offsets: refused.
        let bytes = std::fs::read(&path).unwrap();
        for cut in [20, 64, 70, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            assert_eq!(load_tree(&path, |_, _| true), None, "cut at {cut}");
        }
        for at in [8, 30, 50, 60, 66] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 1;
            std::fs::write(&path, &flipped).unwrap();
            assert_eq!(load_tree(&path, |_, _| true), None, "flipped at {at}");
        }
    }
}

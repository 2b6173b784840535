//! The registry root's tree at the tip, kept uncompressed under the git dir
//! (`.git/promptreg/tree-*.bin`), for the reads of the latest versions.

use std::path::{Path, PathBuf};

use crate::git::oid::ObjectId;
use crate::git::store::{checksum, file_for, write_atomic, Reader};
use crate::git::tree::RawTree;

const TREE_MAGIC: &[u8; 8] = b"PRTREE\x00\x01";

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
    let mut file = crate::git::file::regular(path)?;
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

#[cfg(test)]
mod tests {
    use crate::snapshot::kept_tree::*;

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

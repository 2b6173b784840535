//! Raw git tree objects: parsing their entries, git's order of them, and looking a name up
//! without parsing the whole tree each time. No git2 here: trees are read as bytes by
//! [`crate::git`] and parsed by hand, because the history walk reads hundreds of thousands of
//! them.

use std::cmp::Ordering;

use crate::git::oid::ObjectId;

/// One entry of a tree, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeEntry<'a> {
    /// The entry's name.
    pub name: &'a [u8],
    /// The object id.
    pub id: ObjectId,
    /// Whether it is a tree (folder).
    pub is_tree: bool,
    /// Whether it is a regular or executable file (not a symlink or submodule).
    pub is_file: bool,
}

/// The entry that starts at `pos` of a raw tree, and where the next one starts; `None` at the
/// end or when the bytes there are not an entry.
pub(crate) fn entry_at(data: &[u8], pos: usize) -> Option<(TreeEntry<'_>, usize)> {
    let rest = data.get(pos..)?;
    // The mode is five or six octal digits; the name ends at the first NUL.
    let space = rest.iter().take(8).position(|&b| b == b' ')?;
    let mode = &rest[..space];
    let nul = space + memchr::memchr(0, &rest[space..])?;
    let name = &rest[space + 1..nul];
    let id_bytes = rest.get(nul + 1..nul + 21)?;
    let mut id = [0u8; 20];
    id.copy_from_slice(id_bytes);
    let entry = TreeEntry {
        name,
        id: ObjectId(id),
        is_tree: mode == b"40000",
        is_file: mode == b"100644" || mode == b"100755" || mode == b"100664",
    };
    Some((entry, pos + nul + 21))
}

/// Parses a raw tree object into entries.
pub fn tree_entries(data: &[u8]) -> impl Iterator<Item = TreeEntry<'_>> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let (entry, next) = entry_at(data, pos)?;
        pos = next;
        Some(entry)
    })
}

/// Orders tree entries as git does: a folder sorts as if its name ended in `/`.
pub fn git_order(a: &TreeEntry<'_>, b: &TreeEntry<'_>) -> Ordering {
    cmp_key(a.name, a.is_tree, b.name, b.is_tree)
}

/// Compares the sort keys `a` (plus `/` if `a_tree`) and `b` (plus `/` if `b_tree`).
fn cmp_key(a: &[u8], a_tree: bool, b: &[u8], b_tree: bool) -> Ordering {
    let common = a.len().min(b.len());
    match a[..common].cmp(&b[..common]) {
        Ordering::Equal => {}
        other => return other,
    }
    let next = |name: &[u8], tree: bool| -> Option<u8> {
        name.get(common).copied().or(tree.then_some(b'/'))
    };
    next(a, a_tree).cmp(&next(b, b_tree))
}

/// A raw tree and where each of its entries starts, so that a name is found by binary search:
/// the registry folder of a large registry is one tree of thousands of entries, and a render
/// looks up two or three names in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTree {
    data: Vec<u8>,
    starts: Vec<u32>,
    /// Whether the entries are in git's order, as git writes them; a tree written out of order
    /// by some other tool is searched entry by entry.
    sorted: bool,
}

impl RawTree {
    /// Indexes a raw tree object.
    pub fn new(data: Vec<u8>) -> RawTree {
        let mut starts = Vec::new();
        let mut sorted = u32::try_from(data.len()).is_ok();
        let mut pos = 0;
        let mut previous: Option<TreeEntry<'_>> = None;
        while let Some((entry, next)) = entry_at(&data, pos) {
            if previous.is_some_and(|p| git_order(&p, &entry) != Ordering::Less) {
                sorted = false;
            }
            starts.push(pos as u32);
            previous = Some(entry);
            pos = next;
        }
        // Bytes after the last entry that are not one: searched like an unsorted tree.
        if pos != data.len() {
            sorted = false;
        }
        if !sorted {
            starts.clear();
        }
        RawTree {
            data,
            starts,
            sorted,
        }
    }

    /// A tree kept by [`RawTree::parts`]. Checking that every offset starts an entry would
    /// parse the whole tree, which is what keeping the offsets saves; the file's checksum
    /// guards them, and here they are only checked to rise and stay inside `data` (a lookup
    /// through an offset that is not an entry start finds nothing rather than failing).
    pub fn from_parts(data: Vec<u8>, starts: Vec<u32>) -> Option<RawTree> {
        let rising = starts.windows(2).all(|w| w[0] < w[1]);
        let inside = starts
            .last()
            .is_none_or(|&last| (last as usize) < data.len());
        let begins = starts.first().is_none_or(|&first| first == 0);
        (rising && inside && begins && starts.is_empty() == data.is_empty()).then_some(RawTree {
            data,
            starts,
            sorted: true,
        })
    }

    /// The bytes and entry starts to keep on disk; `None` for a tree out of git's order.
    pub fn parts(&self) -> Option<(&[u8], &[u32])> {
        self.sorted.then_some((&self.data, &self.starts))
    }

    /// The raw bytes.
    #[cfg(feature = "unstable")]
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The raw bytes, owned.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// Every entry, in stored order.
    pub fn entries(&self) -> impl Iterator<Item = TreeEntry<'_>> {
        tree_entries(&self.data)
    }

    /// The entry called `name`.
    pub fn get(&self, name: &[u8]) -> Option<TreeEntry<'_>> {
        if !self.sorted {
            return self.entries().find(|e| e.name == name);
        }
        // A file sorts under its name, a folder under its name and `/`: try both keys.
        [false, true].into_iter().find_map(|as_tree| {
            let i = self
                .starts
                .binary_search_by(|&start| match entry_at(&self.data, start as usize) {
                    Some((e, _)) => cmp_key(e.name, e.is_tree, name, as_tree),
                    None => Ordering::Greater,
                })
                .ok()?;
            let (entry, _) = entry_at(&self.data, self.starts[i] as usize)?;
            (entry.name == name).then_some(entry)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::git::tree::*;

    fn raw(entries: &[(&str, bool)]) -> Vec<u8> {
        let mut data = Vec::new();
        for (i, (name, is_tree)) in entries.iter().enumerate() {
            data.extend_from_slice(if *is_tree { b"40000 " } else { b"100644 " });
            data.extend_from_slice(name.as_bytes());
            data.push(0);
            data.extend_from_slice(&[i as u8 + 1; 20]);
        }
        data
    }

    #[test]
    fn finds_every_entry_and_nothing_else() {
        // Git's order: `foo.bar` before the folder `foo` (sorted as `foo/`), `foo0` after it.
        let entries = [
            ("a b.prompt.yaml", false),
            ("foo.bar", false),
            ("foo", true),
            ("foo0", false),
            ("x.prompt.yaml", false),
            ("x.prompt.yml", false),
        ];
        let tree = RawTree::new(raw(&entries));
        assert!(tree.parts().is_some(), "sorted");
        for (i, (name, is_tree)) in entries.iter().enumerate() {
            let e = tree.get(name.as_bytes()).expect(name);
            assert_eq!(e.is_tree, *is_tree);
            assert_eq!(e.id, ObjectId([i as u8 + 1; 20]));
        }
        for missing in [
            "",
            "b.prompt.yaml",
            "fo",
            "foo/",
            "foo.ba",
            "zzz",
            "x.prompt",
        ] {
            assert_eq!(tree.get(missing.as_bytes()), None, "{missing}");
        }
        assert_eq!(RawTree::new(Vec::new()).get(b"a"), None);
    }

    #[test]
    fn an_unsorted_tree_is_searched_in_full() {
        let tree = RawTree::new(raw(&[("b", false), ("a", false)]));
        assert!(tree.parts().is_none());
        assert_eq!(tree.get(b"a").map(|e| e.id), Some(ObjectId([2; 20])));
        assert_eq!(tree.get(b"b").map(|e| e.id), Some(ObjectId([1; 20])));
    }

    #[test]
    fn kept_parts_are_checked() {
        let data = raw(&[("a", false), ("b", true)]);
        let tree = RawTree::new(data.clone());
        let (bytes, starts) = tree.parts().unwrap();
        assert_eq!(
            RawTree::from_parts(bytes.to_vec(), starts.to_vec()),
            Some(tree.clone())
        );
        assert_eq!(RawTree::from_parts(data.clone(), vec![]), None, "none");
        assert_eq!(
            RawTree::from_parts(data.clone(), vec![1, 3]),
            None,
            "not at 0"
        );
        assert_eq!(
            RawTree::from_parts(data.clone(), vec![0, 0]),
            None,
            "not rising"
        );
        assert_eq!(
            RawTree::from_parts(data.clone(), vec![0, 99]),
            None,
            "outside"
        );
        // Offsets that pass those checks but are not entry starts find nothing, and never
        // fail.
        let odd = RawTree::from_parts(data.clone(), vec![0, 3, 5]).unwrap();
        assert_eq!(odd.get(b"a").map(|e| e.name), Some(&b"a"[..]));
        assert_eq!(odd.get(b"b"), None);
    }

    #[test]
    fn garbage_is_not_an_entry() {
        assert_eq!(tree_entries(b"no space here at all").count(), 0);
        assert_eq!(tree_entries(b"100644 name-without-nul").count(), 0);
        assert_eq!(tree_entries(b"100644 short\0id").count(), 0);
        let tree = RawTree::new(b"100644 a\0too short".to_vec());
        assert_eq!(tree.get(b"a"), None);
    }
}

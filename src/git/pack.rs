//! Objects read straight from a repository's pack files, for a walk that reads every commit and
//! tree of a long history in a row.
//!
//! libgit2 reads a packed object with a fresh zlib stream, copies it out of its delta-base cache,
//! and empties that cache whole when it fills; a walk of 20,000 commits then applied about two
//! deltas per tree and spent a fifth of its time copying trees. Here the objects a delta chain
//! builds (its base, every step, the result) are kept by pack offset in a cache bounded in bytes
//! that forgets the least recently used, and handed out shared, not copied: the next commit's
//! tree is then one delta from a tree already held, whichever way the pack's chains run.
//!
//! Only what it reads plainly: packs with a version 2 index, entries whose sizes, offsets and
//! deltas check out, objects up to [`MAX_OBJECT`]. Anything else (a loose object, an
//! alternate's, a pack made after it opened, a damaged entry) is `None`, and the caller asks
//! libgit2, which reads it or says why not. It does not re-hash objects: it is only used where
//! libgit2's own hash checks are off (see [`crate::git::tune_for_short_process`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::rc::Rc;

use crate::git::oid::ObjectId;

/// Objects larger than this are left to libgit2.
const MAX_OBJECT: usize = 64 << 20;
/// The longest delta chain followed (git writes at most 50; a cycle of ref-deltas stops here).
const MAX_CHAIN: usize = 10_000;
/// How much of a pack one read brings in.
const WINDOW: usize = 256 << 10;
/// How many windows are kept, least recently used dropped first.
const WINDOWS: usize = 16;
/// The bytes of objects kept for delta chains (libgit2 keeps 16 MiB too).
const CACHE_BYTES: usize = 16 << 20;
/// Objects larger than this are not kept.
const CACHE_OBJECT: usize = 1 << 20;
/// The most index bytes read into memory (they are read whole): 128 MiB is about 4.6 million
/// objects (large, 493,000 objects, has 14 MB). A bigger repository is read through libgit2,
/// which maps its indexes.
const MAX_INDEXES: u64 = 128 << 20;

/// The pack files of a repository's object folder, as they were when opened.
pub(super) struct Packs {
    packs: Vec<Pack>,
    state: RefCell<State>,
}

/// One pack and its index.
struct Pack {
    file: File,
    len: u64,
    /// The whole `.idx` file (version 2), checked to hold `count` entries.
    idx: Vec<u8>,
    count: usize,
}

/// Object types, as pack entries number them.
const COMMIT: u8 = 1;
const TAG: u8 = 4;
const OFS_DELTA: u8 = 6;
const REF_DELTA: u8 = 7;

/// Where an object's bytes are: a pack and the offset of its entry.
type At = (u32, u64);

struct Window {
    at: At,
    data: Vec<u8>,
    used: u64,
}

struct Kept {
    data: Rc<Vec<u8>>,
    used: u64,
}

struct State {
    windows: Vec<Window>,
    kept: HashMap<At, Kept>,
    kept_bytes: usize,
    clock: u64,
    inflate: flate2::Decompress,
    /// A delta's bytes, inflated before it is applied.
    scratch: Vec<u8>,
}

/// A pack entry's header.
struct Entry {
    kind: u8,
    size: usize,
    /// Where its compressed data starts.
    data: u64,
    /// For a delta: where its base is.
    base: Option<At>,
}

impl Packs {
    /// The packs under `objects/pack`; `None` when there are none that read plainly, or when
    /// their indexes hold more than [`MAX_INDEXES`] bytes.
    pub(super) fn open(objects: &Path) -> Option<Packs> {
        Packs::open_within(objects, MAX_INDEXES)
    }

    fn open_within(objects: &Path, max_indexes: u64) -> Option<Packs> {
        let mut indexes = Vec::new();
        let mut total = 0u64;
        for entry in std::fs::read_dir(objects.join("pack")).ok()?.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "idx") {
                total = total.saturating_add(entry.metadata().map_or(0, |m| m.len()));
                indexes.push(path);
            }
        }
        if total > max_indexes {
            return None;
        }
        let packs: Vec<Pack> = indexes.iter().filter_map(|path| Pack::open(path)).collect();
        if packs.is_empty() || packs.len() > u32::MAX as usize {
            return None;
        }
        Some(Packs {
            packs,
            state: RefCell::new(State {
                windows: Vec::new(),
                kept: HashMap::new(),
                kept_bytes: 0,
                clock: 0,
                inflate: flate2::Decompress::new(true),
                scratch: Vec::new(),
            }),
        })
    }

    /// The bytes of object `id`, or `None` when it is not read here (see the module).
    pub(super) fn read(&self, id: ObjectId) -> Option<Rc<Vec<u8>>> {
        let at = find_in(&self.packs, &id)?;
        let mut state = self.state.try_borrow_mut().ok()?;
        state.object(&self.packs, at)
    }
}

fn find_in(packs: &[Pack], id: &ObjectId) -> Option<At> {
    packs.iter().enumerate().find_map(|(i, pack)| {
        let offset = pack.find(id)?;
        Some((u32::try_from(i).ok()?, offset))
    })
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

impl Pack {
    fn open(idx_path: &Path) -> Option<Pack> {
        let idx = crate::git::file::read_regular(idx_path)?;
        if idx.get(..8)? != b"\xfftOc\x00\x00\x00\x02" {
            return None;
        }
        let count = be32(&idx, 8 + 255 * 4)? as usize;
        let mut previous = 0;
        for i in 0..256 {
            let n = be32(&idx, 8 + i * 4)?;
            if n < previous {
                return None;
            }
            previous = n;
        }
        // Names, CRCs, offsets; then large offsets (at least none), and two checksums.
        if idx.len() < 1032 + count.checked_mul(28)? + 40 {
            return None;
        }
        let file = crate::git::file::regular(&idx_path.with_extension("pack"))?;
        let len = file.metadata().ok()?.len();
        Some(Pack {
            file,
            len,
            idx,
            count,
        })
    }

    /// The offset of `id`'s entry.
    fn find(&self, id: &ObjectId) -> Option<u64> {
        let first = usize::from(id.0[0]);
        let lo = if first == 0 {
            0
        } else {
            be32(&self.idx, 8 + (first - 1) * 4)? as usize
        };
        let hi = (be32(&self.idx, 8 + first * 4)? as usize).min(self.count);
        let names = self.idx.get(1032..1032 + self.count * 20)?;
        let (mut lo, mut hi) = (lo, hi);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match names.get(mid * 20..mid * 20 + 20)?.cmp(&id.0[..]) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return self.offset(mid),
            }
        }
        None
    }

    /// The offset of the `n`th entry (in name order).
    fn offset(&self, n: usize) -> Option<u64> {
        let offsets = 1032 + self.count * 24;
        let small = be32(&self.idx, offsets + n * 4)?;
        let offset = if small & 0x8000_0000 == 0 {
            u64::from(small)
        } else {
            let large = offsets + self.count * 4 + (small & 0x7fff_ffff) as usize * 8;
            let b = self.idx.get(large..large + 8)?;
            u64::from_be_bytes(b.try_into().ok()?)
        };
        // After the 12-byte header, before the 20-byte trailer.
        (offset >= 12 && offset < self.len.saturating_sub(20)).then_some(offset)
    }
}

impl State {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The window that holds at least `want` bytes of pack `at.0` from offset `at.1` (fewer only
    /// at the pack's end), read when none does, and where in it the offset is.
    fn window(&mut self, packs: &[Pack], at: At, want: usize) -> Option<(usize, usize)> {
        let now = self.tick();
        let pack = packs.get(at.0 as usize)?;
        let found = self.windows.iter().position(|w| {
            let end = w.at.1 + w.data.len() as u64;
            w.at.0 == at.0
                && w.at.1 <= at.1
                && at.1 < end
                && (at.1 + want as u64 <= end || end == pack.len)
        });
        let i = match found {
            Some(i) => i,
            None => {
                // Aligned, so that a walk that goes backwards through the pack (as a walk
                // from the tip does through commits) finds its next object in it too.
                let start = at.1 - at.1 % WINDOW as u64;
                let size = (want + (at.1 - start) as usize).max(WINDOW);
                let size = size.min(usize::try_from(pack.len.checked_sub(start)?).ok()?);
                // The least recently used window's buffer is read into again.
                let i = if self.windows.len() < WINDOWS {
                    self.windows.push(Window {
                        at: (at.0, start),
                        data: Vec::new(),
                        used: now,
                    });
                    self.windows.len() - 1
                } else {
                    (0..self.windows.len()).min_by_key(|&i| self.windows[i].used)?
                };
                let window = &mut self.windows[i];
                window.at = (at.0, start);
                window.data.resize(size, 0);
                if read_at(&pack.file, &mut window.data, start).is_none() {
                    window.data.clear();
                    return None;
                }
                i
            }
        };
        let window = &mut self.windows[i];
        window.used = now;
        Some((i, (at.1 - window.at.1) as usize))
    }

    /// The header of the entry at `at`.
    fn entry(&mut self, packs: &[Pack], at: At) -> Option<Entry> {
        let (w, off) = self.window(packs, at, 64)?;
        let bytes = self.windows[w].data.get(off..)?;
        let mut pos = 0;
        let mut byte = *bytes.first()?;
        let kind = (byte >> 4) & 7;
        let mut size = usize::from(byte & 15);
        let mut shift = 4;
        while byte & 0x80 != 0 {
            pos += 1;
            byte = *bytes.get(pos)?;
            if shift > 60 {
                return None;
            }
            size |= usize::from(byte & 0x7f) << shift;
            shift += 7;
        }
        pos += 1;
        if size > MAX_OBJECT {
            return None;
        }
        let base = match kind {
            OFS_DELTA => {
                let mut byte = *bytes.get(pos)?;
                pos += 1;
                let mut back = u64::from(byte & 0x7f);
                while byte & 0x80 != 0 {
                    byte = *bytes.get(pos)?;
                    pos += 1;
                    back = back.checked_add(1)?.checked_mul(128)? | u64::from(byte & 0x7f);
                }
                let base = at.1.checked_sub(back).filter(|&b| b >= 12 && back > 0)?;
                Some((at.0, base))
            }
            REF_DELTA => {
                let id = ObjectId(bytes.get(pos..pos + 20)?.try_into().ok()?);
                pos += 20;
                Some(find_in(packs, &id)?)
            }
            COMMIT..=TAG => None,
            _ => return None,
        };
        Some(Entry {
            kind,
            size,
            data: at.1 + pos as u64,
            base,
        })
    }

    /// Inflates into `out` the `size` bytes of an entry whose compressed data starts at `at`.
    fn inflate(&mut self, packs: &[Pack], at: At, size: usize, out: &mut Vec<u8>) -> Option<()> {
        out.clear();
        // One byte over: a stream longer than its entry says is refused, not cut.
        out.reserve_exact(size + 1);
        self.inflate.reset(true);
        let mut pos = at.1;
        loop {
            // Any bytes will do: the stream goes on in the next window.
            let (w, off) = self.window(packs, (at.0, pos), 1)?;
            let State {
                windows, inflate, ..
            } = self;
            let input = windows[w].data.get(off..)?;
            let before = inflate.total_in();
            let status = inflate
                .decompress_vec(input, out, flate2::FlushDecompress::None)
                .ok()?;
            let read = inflate.total_in() - before;
            match status {
                flate2::Status::StreamEnd => break,
                _ if read == 0 || out.len() > size => return None,
                _ => pos += read,
            }
        }
        (out.len() == size).then_some(())
    }

    /// The object whose entry is at `at`, from what is kept or by following its delta chain.
    fn object(&mut self, packs: &[Pack], at: At) -> Option<Rc<Vec<u8>>> {
        let now = self.tick();
        if let Some(kept) = self.kept.get_mut(&at) {
            kept.used = now;
            return Some(kept.data.clone());
        }
        // Down the chain to a kept object or a whole one.
        let mut chain: Vec<(At, Entry)> = Vec::new();
        let mut next = at;
        let mut data = loop {
            if let Some(kept) = self.kept.get_mut(&next) {
                kept.used = now;
                break kept.data.clone();
            }
            let entry = self.entry(packs, next)?;
            match entry.base {
                Some(base) => {
                    if chain.len() >= MAX_CHAIN {
                        return None;
                    }
                    chain.push((next, entry));
                    next = base;
                }
                None => {
                    let mut bytes = Vec::new();
                    self.inflate(packs, (next.0, entry.data), entry.size, &mut bytes)?;
                    let data = Rc::new(bytes);
                    // A commit read on its own is not kept (a walk reads each once).
                    if !chain.is_empty() || entry.kind != COMMIT {
                        self.keep(next, &data);
                    }
                    break data;
                }
            }
        };
        // Back up the chain, each step kept for the next read that passes it.
        let mut delta = std::mem::take(&mut self.scratch);
        while let Some((step, entry)) = chain.pop() {
            let applied = self
                .inflate(packs, (step.0, entry.data), entry.size, &mut delta)
                .and_then(|()| apply_delta(&data, &delta));
            let Some(applied) = applied else {
                self.scratch = delta;
                return None;
            };
            data = Rc::new(applied);
            self.keep(step, &data);
        }
        self.scratch = delta;
        Some(data)
    }

    fn keep(&mut self, at: At, data: &Rc<Vec<u8>>) {
        if data.len() > CACHE_OBJECT {
            return;
        }
        let used = self.tick();
        let kept = Kept {
            data: data.clone(),
            used,
        };
        self.kept_bytes += data.len();
        if let Some(old) = self.kept.insert(at, kept) {
            self.kept_bytes -= old.data.len();
        }
        if self.kept_bytes > CACHE_BYTES {
            // Forget the least recently used until a quarter is free.
            let mut by_use: Vec<(u64, At)> = self.kept.iter().map(|(k, v)| (v.used, *k)).collect();
            by_use.sort_unstable();
            for (_, k) in by_use {
                if self.kept_bytes <= CACHE_BYTES / 4 * 3 {
                    break;
                }
                if let Some(gone) = self.kept.remove(&k) {
                    self.kept_bytes -= gone.data.len();
                }
            }
        }
    }
}

/// Reads exactly `buf.len()` bytes of `file` from `offset`.
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> Option<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.read_exact_at(buf, offset).ok()
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt;
        let mut done = 0;
        while done < buf.len() {
            let n = file
                .seek_read(&mut buf[done..], offset + done as u64)
                .ok()?;
            if n == 0 {
                return None;
            }
            done += n;
        }
        Some(())
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = (file, buf, offset);
        None
    }
}

/// A little-endian base-128 number of a delta's header, and where it ends.
fn delta_size(delta: &[u8], mut pos: usize) -> Option<(usize, usize)> {
    let mut size = 0usize;
    let mut shift = 0;
    loop {
        let byte = *delta.get(pos)?;
        pos += 1;
        if shift > 60 {
            return None;
        }
        size |= usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Some((size, pos));
        }
    }
}

/// `base` with git's delta applied: copies from the base and inserted bytes, checked against
/// both sizes the delta states.
pub(super) fn apply_delta(base: &[u8], delta: &[u8]) -> Option<Vec<u8>> {
    let (base_len, pos) = delta_size(delta, 0)?;
    let (out_len, mut pos) = delta_size(delta, pos)?;
    if base_len != base.len() || out_len > MAX_OBJECT {
        return None;
    }
    let mut out = Vec::with_capacity(out_len);
    while let Some(&cmd) = delta.get(pos) {
        pos += 1;
        if cmd & 0x80 != 0 {
            let mut offset = 0usize;
            let mut size = 0usize;
            for i in 0..4 {
                if cmd & (1 << i) != 0 {
                    offset |= usize::from(*delta.get(pos)?) << (8 * i);
                    pos += 1;
                }
            }
            for i in 0..3 {
                if cmd & (0x10 << i) != 0 {
                    size |= usize::from(*delta.get(pos)?) << (8 * i);
                    pos += 1;
                }
            }
            if size == 0 {
                size = 0x10000;
            }
            out.extend_from_slice(base.get(offset..offset.checked_add(size)?)?);
        } else if cmd != 0 {
            let n = usize::from(cmd);
            out.extend_from_slice(delta.get(pos..pos + n)?);
            pos += n;
        } else {
            return None;
        }
        if out.len() > out_len {
            return None;
        }
    }
    (out.len() == out_len).then_some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use crate::git::oid::ObjectId;
    use crate::git::pack::{apply_delta, find_in, Packs, OFS_DELTA, REF_DELTA};

    /// A delta: the two sizes, then its instructions.
    fn delta(base: usize, out: usize, ops: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for mut n in [base, out] {
            loop {
                let byte = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    bytes.push(byte);
                    break;
                }
                bytes.push(byte | 0x80);
            }
        }
        bytes.extend_from_slice(ops);
        bytes
    }

    #[test]
    fn deltas_copy_and_insert_within_their_stated_sizes() {
        let base = b"0123456789";
        // Copy 4 bytes from offset 2, insert "ab", copy 1 byte from offset 9.
        let ops = [0x91, 2, 4, 2, b'a', b'b', 0x91, 9, 1];
        assert_eq!(
            apply_delta(base, &delta(10, 7, &ops)).as_deref(),
            Some(&b"2345ab9"[..])
        );
        // A copy of size 0 copies 0x10000 bytes.
        let big = vec![7u8; 0x10000];
        assert_eq!(
            apply_delta(&big, &delta(0x10000, 0x10000, &[0x80])),
            Some(big.clone())
        );
        for bad in [
            delta(9, 7, &ops),              // the base is not the size it states
            delta(10, 8, &ops),             // the result is not the size it states
            delta(10, 6, &ops),             // nor shorter than what it builds
            delta(10, 4, &[0x91, 8, 4]),    // a copy past the base's end
            delta(10, 2, &[3, b'a', b'b']), // an insert past the delta's end
            delta(10, 1, &[0]),             // instruction 0 is reserved
            delta(10, 1, &[0x91, 0]),       // a copy whose size byte is missing
            vec![0x80],                     // a size that does not end
            Vec::new(),
        ] {
            assert_eq!(apply_delta(base, &bad), None, "{bad:?}");
        }
    }

    /// A repository of `commits` commits, each changing a few of `files` files in one folder
    /// (trees that deltify against each other, as prompt folders do), packed by libgit2.
    pub(crate) fn packed_repo(dir: &Path, files: usize, commits: usize) -> git2::Repository {
        let git = git2::Repository::init(dir).expect("init");
        let who = git2::Signature::new("A", "a@example.com", &git2::Time::new(1_700_000_000, 0))
            .expect("signature");
        let mut contents: Vec<String> = (0..files).map(|f| format!("file {f}\n")).collect();
        let mut parent: Option<git2::Oid> = None;
        for c in 0..commits {
            for k in 0..3 {
                let f = (c * 7 + k * 13) % files;
                contents[f].push_str(&format!("line {c} {k} {}\n", "x".repeat(c % 40)));
            }
            let mut folder = git.treebuilder(None).expect("tree");
            for (f, text) in contents.iter().enumerate() {
                let blob = git.blob(text.as_bytes()).expect("blob");
                folder
                    .insert(format!("prompt-{f:04}.prompt.yaml"), blob, 0o100644)
                    .expect("entry");
            }
            let folder = folder.write().expect("folder");
            let mut root = git.treebuilder(None).expect("root");
            root.insert("prompts", folder, 0o040000).expect("entry");
            let tree = git.find_tree(root.write().expect("root")).expect("tree");
            let parents: Vec<git2::Commit<'_>> = parent
                .map(|p| git.find_commit(p).expect("parent"))
                .into_iter()
                .collect();
            let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
            parent = Some(
                git.commit(
                    Some("HEAD"),
                    &who,
                    &who,
                    &format!("commit {c}"),
                    &tree,
                    &refs,
                )
                .expect("commit"),
            );
        }
        {
            let mut walk = git.revwalk().expect("walk");
            walk.push_head().expect("head");
            let mut builder = git.packbuilder().expect("packbuilder");
            builder.insert_walk(&mut walk).expect("insert");
            builder
                .write(&dir.join(".git/objects/pack"), 0o644)
                .expect("write pack");
        }
        git
    }

    fn all_objects(git: &git2::Repository) -> Vec<(ObjectId, Vec<u8>)> {
        let odb = git.odb().expect("odb");
        let mut ids = Vec::new();
        odb.foreach(|oid| {
            ids.push(*oid);
            true
        })
        .expect("foreach");
        ids.sort();
        ids.dedup();
        ids.into_iter()
            .map(|oid| {
                let data = odb.read(oid).expect("read").data().to_vec();
                (ObjectId(oid.as_bytes().try_into().expect("20 bytes")), data)
            })
            .collect()
    }

    /// Every object of a pack libgit2 wrote reads as libgit2 reads it, deltas included, in
    /// whatever order (oldest first, newest first, and again once kept).
    #[test]
    fn packed_objects_read_as_libgit2_reads_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let git = packed_repo(dir.path(), 120, 90);
        let objects = all_objects(&git);
        let packs = Packs::open(&dir.path().join(".git/objects")).expect("a pack");
        let mut deltas = 0;
        for (id, _) in &objects {
            let at = find_in(&packs.packs, id).expect("in the pack");
            let mut state = packs.state.borrow_mut();
            let entry = state.entry(&packs.packs, at).expect("entry");
            if matches!(entry.kind, OFS_DELTA | REF_DELTA) {
                deltas += 1;
            }
        }
        // Most of the 180 trees, at least.
        assert!(deltas > 100, "{deltas} deltas of {}", objects.len());
        for order in [false, true, false] {
            let mut list: Vec<&(ObjectId, Vec<u8>)> = objects.iter().collect();
            if order {
                list.reverse();
            }
            for (id, bytes) in list {
                let read = packs.read(*id).expect("read from the pack");
                assert_eq!(read.as_slice(), bytes.as_slice(), "{id}");
            }
        }
        // Not in the pack: left to libgit2.
        assert!(packs.read(ObjectId([0xab; 20])).is_none());
    }

    /// A damaged pack never panics the reader: entries before a cut still read as they were,
    /// and after it nothing does; a byte changed anywhere gives `None` or bytes, never a panic.
    #[test]
    fn damaged_packs_are_refused_or_read_without_panics() {
        let dir = tempfile::tempdir().expect("temp dir");
        let git = packed_repo(dir.path(), 40, 30);
        let objects = all_objects(&git);
        let pack_dir = dir.path().join(".git/objects/pack");
        let pack_path = std::fs::read_dir(&pack_dir)
            .expect("pack dir")
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "pack"))
            .expect("a pack");
        let idx_path = pack_path.with_extension("idx");
        let pack = std::fs::read(&pack_path).expect("pack");
        let idx = std::fs::read(&idx_path).expect("idx");
        let damaged = tempfile::tempdir().expect("temp dir");
        let objects_dir = damaged.path().join("objects");
        std::fs::create_dir_all(objects_dir.join("pack")).expect("dir");
        let write = |pack_bytes: &[u8], idx_bytes: &[u8]| {
            std::fs::write(objects_dir.join("pack/p.pack"), pack_bytes).expect("write");
            std::fs::write(objects_dir.join("pack/p.idx"), idx_bytes).expect("write");
            Packs::open(&objects_dir)
        };
        // Cut short: an object whose whole chain lies before the cut reads as before.
        for cut in [pack.len() - 21, pack.len() * 2 / 3, pack.len() / 3, 40, 11] {
            let Some(packs) = write(&pack[..cut], &idx) else {
                continue;
            };
            for (id, bytes) in &objects {
                if let Some(read) = packs.read(*id) {
                    assert_eq!(read.as_slice(), bytes.as_slice(), "cut at {cut}: {id}");
                }
            }
        }
        // One byte changed, in the pack or in its index.
        for in_pack in [true, false] {
            let original = if in_pack { &pack } else { &idx };
            for at in (0..original.len()).step_by((original.len() / 300).max(1)) {
                let mut bad = original.clone();
                bad[at] ^= 0x5a;
                let opened = if in_pack {
                    write(&bad, &idx)
                } else {
                    write(&pack, &bad)
                };
                if let Some(packs) = opened {
                    for (id, _) in &objects {
                        let _ = packs.read(*id);
                    }
                }
            }
        }
        // Indexes over the limit are not read at all.
        assert!(write(&pack, &idx).is_some());
        assert!(Packs::open_within(&objects_dir, idx.len() as u64).is_some());
        assert!(Packs::open_within(&objects_dir, idx.len() as u64 - 1).is_none());
        // A FIFO in place of the pack or of its index is not waited on (this would hang).
        #[cfg(unix)]
        for fifo in ["pack/p.pack", "pack/p.idx"] {
            write(&pack, &idx);
            std::fs::remove_file(objects_dir.join(fifo)).expect("remove");
            let made = std::process::Command::new("mkfifo")
                .arg(objects_dir.join(fifo))
                .status()
                .expect("mkfifo");
            assert!(made.success());
            assert!(Packs::open(&objects_dir).is_none(), "{fifo}");
            std::fs::remove_file(objects_dir.join(fifo)).expect("remove");
        }
        // Not an index at all, or an index of another version.
        assert!(write(&pack, b"not an index").is_none());
        let mut v1 = idx.clone();
        v1[7] = 1;
        assert!(write(&pack, &v1).is_none());
    }
}

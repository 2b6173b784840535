//! o200k_base's vocabulary (byte string -> rank), and byte-pair merging of a piece that is not
//! one token.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// Every token's bytes, end to end, and a table of where each lies with its rank: about 5 MB.
pub(super) struct Vocabulary {
    bytes: Vec<u8>,
    table: HashTable<Token>,
}

#[derive(Clone, Copy)]
struct Token {
    start: u32,
    end: u32,
    rank: u32,
}

/// How many ordinary tokens o200k_base has (rank 199,999 is `<|endoftext|>`).
const ORDINARY: u32 = 199_998;

/// Their bytes, end to end (a test checks it).
const BYTES: usize = 1_397_670;

impl Vocabulary {
    /// The one vocabulary, read from tiktoken-rs's o200k_base table on first use.
    pub(super) fn get() -> &'static Vocabulary {
        static VOCABULARY: OnceLock<Vocabulary> = OnceLock::new();
        VOCABULARY.get_or_init(Vocabulary::read)
    }

    /// tiktoken-rs's table, copied into ours (allocated at its full size first) and dropped:
    /// the steady state is about 17 MB less than keeping tiktoken-rs's (measured: `serve` after
    /// its first count, 59.6 against 76.9 MB), the peak while reading the same.
    fn read() -> Vocabulary {
        let mut vocabulary = Vocabulary {
            bytes: Vec::with_capacity(BYTES),
            table: HashTable::with_capacity(ORDINARY as usize),
        };
        let bpe = tiktoken_rs::o200k_base().expect("tiktoken-rs's o200k_base table loads");
        match all_at_once(&bpe) {
            Some((all, tokens)) => {
                vocabulary.extend(tokens.into_iter().map(|at| &all[at]).zip(0..))
            }
            None => vocabulary.extend(
                (0..ORDINARY).filter_map(|rank| Some((bpe.decode_bytes(&[rank]).ok()?, rank))),
            ),
        }
        // Freeing its 600,000 allocations takes a while: a thread of its own does it, so a
        // command that counts once and exits does not wait for it. (When no thread can be
        // made, the table is dropped here with the closure.)
        let _ = std::thread::Builder::new()
            .name("vocabulary".into())
            .spawn(move || drop(bpe));
        vocabulary
    }

    fn extend(&mut self, tokens: impl Iterator<Item = (impl AsRef<[u8]>, u32)>) {
        for (bytes, rank) in tokens {
            let bytes = bytes.as_ref();
            let start = self.bytes.len() as u32;
            self.bytes.extend_from_slice(bytes);
            let end = self.bytes.len() as u32;
            let all = &self.bytes;
            self.table
                .insert_unique(hash(bytes), Token { start, end, rank }, |t| {
                    hash(&all[t.start as usize..t.end as usize])
                });
        }
    }

    /// The rank of the token whose bytes are `piece`, if one is.
    pub(super) fn rank(&self, piece: &[u8]) -> Option<u32> {
        self.table
            .find(hash(piece), |t| {
                &self.bytes[t.start as usize..t.end as usize] == piece
            })
            .map(|t| t.rank)
    }

    /// How many tokens `piece` is: one when it is a token, else what byte-pair merging leaves,
    /// merging the adjacent pair of lowest rank (the leftmost of equals) until no pair is a
    /// token. A heap keeps this O(n log n) for long pieces (a megabyte of one punctuation mark).
    pub(super) fn count(&self, piece: &[u8]) -> usize {
        if piece.len() < 2 || self.rank(piece).is_some() {
            return usize::from(!piece.is_empty());
        }
        // Past 4 GiB the positions below would not fit in u32: no reader of promptreg's gets
        // near (bodies, files and renders stop at 1, 4 and 16 MiB); such a piece counts as
        // its bytes, the most it could be.
        let Some(n) = u32::try_from(piece.len()).ok().filter(|n| *n < u32::MAX) else {
            return piece.len();
        };
        // Parts as a linked list over their first bytes; `next[i]` is where the part after the
        // one at `i` starts (`n`: none). `stamp[i]` changes whenever the pair at `i` does, which
        // retires the heap's older entries for it. Positions are u32: 24 bytes a byte of the
        // piece in all, so a 16 MiB run of one mark stays near 400 MB while it is counted.
        const NONE: u32 = u32::MAX;
        let mut next: Vec<u32> = (1..=n).collect();
        let mut prev: Vec<u32> = (0..n).map(|i| i.checked_sub(1).unwrap_or(NONE)).collect();
        let mut stamp = vec![0_u32; n as usize];
        let mut heap = BinaryHeap::with_capacity(n as usize);
        let pair = |next: &[u32], at: u32| -> Option<u32> {
            let after = *next.get(at as usize)?;
            let end = *next.get(after as usize)?;
            self.rank(&piece[at as usize..end as usize])
        };
        for at in 0..n - 1 {
            if let Some(rank) = pair(&next, at) {
                heap.push(Reverse((rank, at, 0_u32)));
            }
        }
        let mut parts = piece.len();
        while let Some(Reverse((_, at, seen))) = heap.pop() {
            let i = at as usize;
            if stamp[i] != seen || next[i] >= n {
                continue;
            }
            // Join the part at `at` with the one after it.
            let gone = next[i] as usize;
            next[i] = next[gone];
            if next[i] < n {
                prev[next[i] as usize] = at;
            }
            stamp[gone] = u32::MAX;
            parts -= 1;
            stamp[i] += 1;
            if let Some(rank) = pair(&next, at) {
                heap.push(Reverse((rank, at, stamp[i])));
            }
            let before = prev[i];
            if before != NONE {
                let b = before as usize;
                stamp[b] += 1;
                if let Some(rank) = pair(&next, before) {
                    heap.push(Reverse((rank, before, stamp[b])));
                }
            }
        }
        parts
    }
}

/// Where every ordinary token's bytes lie, in rank order, in what one call that decodes them all with
/// `<|endoftext|>` after each returns (a token at a time is two allocations each: about a
/// third of the time of the first count). `None` when that does not split into exactly one piece per token (a
/// token holding the marker, a rank missing), for the slow way.
fn all_at_once(bpe: &tiktoken_rs::CoreBPE) -> Option<(Vec<u8>, Vec<std::ops::Range<usize>>)> {
    const END_OF_TEXT: u32 = 199_999;
    const MARKER: &[u8] = b"<|endoftext|>";
    let ranks: Vec<u32> = (0..ORDINARY).flat_map(|rank| [rank, END_OF_TEXT]).collect();
    let all = bpe.decode_bytes(&ranks).ok()?;
    let mut tokens = Vec::with_capacity(ORDINARY as usize);
    let mut start = 0;
    for at in memchr::memmem::find_iter(&all, MARKER) {
        tokens.push(start..at);
        start = at + MARKER.len();
    }
    (tokens.len() == ORDINARY as usize && start == all.len()).then_some((all, tokens))
}

fn hash(bytes: &[u8]) -> u64 {
    FxBuildHasher.hash_one(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ordinary_token_is_in_the_table_that_was_reserved_for_it() {
        let vocabulary = Vocabulary::get();
        assert_eq!(vocabulary.table.len(), ORDINARY as usize);
        assert_eq!(vocabulary.bytes.len(), BYTES);
        assert_eq!(vocabulary.rank(b"Hello"), Some(13225));
        assert_eq!(vocabulary.rank(b"<|endoftext|>"), None);
    }

    /// The one-call read splits into exactly one piece per token, each the token's own bytes.
    #[test]
    fn all_tokens_at_once_are_each_tokens_bytes() {
        let bpe = tiktoken_rs::o200k_base().expect("loads");
        let (all, tokens) = all_at_once(&bpe).expect("one piece per token");
        assert_eq!(tokens.len(), ORDINARY as usize);
        for rank in (0..ORDINARY).step_by(97).chain([ORDINARY - 1]) {
            let own = bpe.decode_bytes(&[rank]).expect("a token");
            assert_eq!(
                &all[tokens[rank as usize].clone()],
                own.as_slice(),
                "rank {rank}"
            );
        }
    }
}

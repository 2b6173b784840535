//! o200k_base's vocabulary (byte string -> rank), and byte-pair merging of a piece that is not
//! one token.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// Every token's bytes, end to end, and a table of where each lies with its rank: about 5 MB,
/// against about 60 MB for tiktoken-rs's encoder (its decoder, its sorted copy and 256 regexes).
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

/// The last ordinary rank of o200k_base (199,999 is `<|endoftext|>`).
const ORDINARY: u32 = 199_998;

impl Vocabulary {
    /// The one vocabulary, read from tiktoken-rs's o200k_base table on first use (about 0.2 s).
    pub(super) fn get() -> &'static Vocabulary {
        static VOCABULARY: OnceLock<Vocabulary> = OnceLock::new();
        VOCABULARY.get_or_init(|| {
            let bpe = tiktoken_rs::o200k_base().expect("tiktoken-rs's o200k_base table loads");
            Vocabulary::from_tokens(
                (0..ORDINARY).filter_map(|rank| Some((bpe.decode_bytes(&[rank]).ok()?, rank))),
            )
        })
    }

    fn from_tokens(tokens: impl Iterator<Item = (Vec<u8>, u32)>) -> Vocabulary {
        let mut vocabulary = Vocabulary {
            bytes: Vec::new(),
            table: HashTable::new(),
        };
        for (bytes, rank) in tokens {
            let start = vocabulary.bytes.len() as u32;
            vocabulary.bytes.extend_from_slice(&bytes);
            let token = Token {
                start,
                end: vocabulary.bytes.len() as u32,
                rank,
            };
            let all = &vocabulary.bytes;
            vocabulary.table.insert_unique(hash(&bytes), token, |t| {
                hash(&all[t.start as usize..t.end as usize])
            });
        }
        vocabulary
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
        // Parts as a linked list over their first bytes; `next[i]` is where the part after the
        // one at `i` starts. `stamp[i]` changes whenever the pair at `i` does, which retires the
        // heap's older entries for it.
        let n = piece.len();
        let mut next: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut stamp = vec![0_u32; n];
        let mut heap = BinaryHeap::with_capacity(n);
        let pair = |next: &[usize], at: usize| -> Option<u32> {
            let after = *next.get(at)?;
            let end = *next.get(after)?;
            self.rank(&piece[at..end])
        };
        for at in 0..n - 1 {
            if let Some(rank) = pair(&next, at) {
                heap.push(Reverse((rank, at, 0_u32)));
            }
        }
        let mut parts = n;
        while let Some(Reverse((_, at, seen))) = heap.pop() {
            if stamp[at] != seen || next[at] >= n {
                continue;
            }
            // Join the part at `at` with the one after it.
            let gone = next[at];
            next[at] = next[gone];
            if next[at] < n {
                prev[next[at]] = at;
            }
            stamp[gone] = u32::MAX;
            parts -= 1;
            stamp[at] += 1;
            if let Some(rank) = pair(&next, at) {
                heap.push(Reverse((rank, at, stamp[at])));
            }
            let before = prev[at];
            if before < n {
                stamp[before] += 1;
                if let Some(rank) = pair(&next, before) {
                    heap.push(Reverse((rank, before, stamp[before])));
                }
            }
        }
        parts
    }
}

fn hash(bytes: &[u8]) -> u64 {
    FxBuildHasher.hash_one(bytes)
}

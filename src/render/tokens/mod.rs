//! Counting prompt tokens with a real tokenizer (o200k_base, the GPT-4o family's), offline.
//!
//! The vocabulary is tiktoken-rs's o200k_base table; the counting is done here: the text is
//! split into pieces as o200k_base's pattern splits it (`pieces`), and each piece is one token or
//! what byte-pair merging makes of it (`vocabulary`). Counts equal tiktoken's `encode_ordinary`
//! (tests compare them on the prompt corpus and on random text), at a fraction of its cost: no
//! backtracking regex, and no regex cache shared between threads.
//!
//! Each thread also remembers the counts of the last texts it counted (`Recent`): the same
//! message text comes back often (a system message that reads no value, a client rendering
//! the same values again, the playground), and finding it there costs a hash of it.

mod pieces;
mod vocabulary;

use std::cell::RefCell;
use std::hash::BuildHasher;

use vocabulary::Vocabulary;

/// The number of tokens of `text` under o200k_base.
///
/// ```
/// assert_eq!(promptreg::render::tokens::count("Hello, world!"), 4);
/// ```
pub fn count(text: &str) -> usize {
    if text.len() > Recent::LONGEST {
        return count_pieces(text);
    }
    let hash = rustc_hash::FxBuildHasher.hash_one(text);
    if let Some(tokens) = RECENT.with_borrow(|recent| recent.find(hash, text)) {
        return tokens;
    }
    let tokens = count_pieces(text);
    RECENT.with_borrow_mut(|recent| recent.keep(hash, text, tokens));
    tokens
}

fn count_pieces(text: &str) -> usize {
    let vocabulary = Vocabulary::get();
    let mut tokens = 0;
    pieces::pieces(text, |piece| tokens += vocabulary.count(piece.as_bytes()));
    tokens
}

thread_local! {
    static RECENT: RefCell<Recent> = const { RefCell::new(Recent { kept: Vec::new(), next: 0 }) };
}

/// The counts of the last [`Recent::KEPT`] texts a thread counted, with the texts (so a hit is
/// exact, not a hash's guess): at most 64 x 16 KiB a thread.
struct Recent {
    kept: Vec<(u64, Box<str>, usize)>,
    /// Where the next text goes once all places are taken (the oldest).
    next: usize,
}

impl Recent {
    const KEPT: usize = 64;
    const LONGEST: usize = 16 << 10;

    fn find(&self, hash: u64, text: &str) -> Option<usize> {
        self.kept
            .iter()
            .find(|(h, kept, _)| *h == hash && **kept == *text)
            .map(|&(_, _, tokens)| tokens)
    }

    fn keep(&mut self, hash: u64, text: &str, tokens: usize) {
        let entry = (hash, Box::from(text), tokens);
        if self.kept.len() < Self::KEPT {
            self.kept.push(entry);
        } else {
            self.kept[self.next] = entry;
            self.next = (self.next + 1) % Self::KEPT;
        }
    }
}

/// The prompt tokens of a rendered prompt: every message's content (or the one text).
pub(crate) fn count_rendered(rendered: &crate::render::Rendered) -> usize {
    rendered
        .output
        .messages()
        .map(|(_, text)| count(text))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A text counted again is found among the recent ones, and gives the same count; the
    /// oldest make way after `KEPT` others.
    #[test]
    fn recent_counts_are_kept_and_the_oldest_make_way() {
        let first = "The first text, counted once.";
        let tokens = count(first);
        assert_eq!(tokens, tiktoken(first));
        let hash = rustc_hash::FxBuildHasher.hash_one(first);
        assert_eq!(RECENT.with_borrow(|r| r.find(hash, first)), Some(tokens));
        assert_eq!(count(first), tokens);
        // Same hash, other text: not a hit.
        assert_eq!(RECENT.with_borrow(|r| r.find(hash, "other")), None);
        for i in 0..Recent::KEPT {
            count(&format!("filler {i}"));
        }
        assert_eq!(RECENT.with_borrow(|r| r.find(hash, first)), None);
        assert_eq!(RECENT.with_borrow(|r| r.kept.len()), Recent::KEPT);
        // Texts past the longest kept are counted and not kept.
        let long = "word ".repeat(Recent::LONGEST);
        assert_eq!(count(&long), tiktoken(&long));
        let long_hash = rustc_hash::FxBuildHasher.hash_one(long.as_str());
        assert_eq!(RECENT.with_borrow(|r| r.find(long_hash, &long)), None);
    }

    fn tiktoken(text: &str) -> usize {
        tiktoken_rs::o200k_base_singleton()
            .encode_ordinary(text)
            .len()
    }

    #[test]
    fn counts_equal_tiktokens() {
        for text in [
            "Hello, world!",
            "You are a concise, reliable assistant embedded in the chat workflow.\n",
            "supercalifragilisticexpialidocious antidisestablishmentarianism",
            "\u{4e2d}\u{6587}\u{7684}\u{63d0}\u{793a}\u{8bcd} and \u{1f600} emoji",
            "    indented code\n\tfn main() { println!(\"{}\", 1 + 2); }",
            "",
        ] {
            assert_eq!(count(text), tiktoken(text), "{text:?}");
        }
    }

    /// Pieces far longer than any token merge pair by pair; the heap keeps that quick.
    #[test]
    fn long_pieces_count_as_tiktoken_counts_them() {
        for text in [
            " ".repeat(5000) + "x",
            "!?".repeat(3000),
            "\u{1f600}".repeat(700),
            "ab".repeat(4000),
            "\u{e9}".repeat(3000),
        ] {
            assert_eq!(count(&text), tiktoken(&text), "{} bytes", text.len());
        }
    }

    #[test]
    fn random_bytes_count_as_tiktoken_counts_them() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..500 {
            let len = (state % 300) as usize;
            let text: String = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    char::from_u32((state % 0x3000) as u32).unwrap_or(' ')
                })
                .collect();
            assert_eq!(count(&text), tiktoken(&text), "{text:?}");
        }
    }
}

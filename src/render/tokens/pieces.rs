//! Splitting text into the pieces o200k_base encodes one by one.
//!
//! The split is the one o200k_base's pattern defines (tiktoken's `O200K_BASE_PAT_STR`): words
//! with an optional leading non-letter and a trailing English contraction, runs of up to three
//! digits, runs of punctuation, line breaks, and runs of spaces, where a run of spaces followed
//! by a word leaves its last space to that word (`\s+(?!\S)`). That look-ahead is what made the
//! pattern need a backtracking engine; here it is a rule applied after a plain `\s+`, and text
//! that is all ASCII (nearly every prompt) is split by hand without a regex at all. Both ways
//! give the backtracking engine's pieces exactly (tests compare them on random and real text).

use std::sync::OnceLock;

/// The pieces of `text`, in order; together they are `text`.
pub(super) fn pieces<'t>(text: &'t str, mut each: impl FnMut(&'t str)) {
    if text.is_ascii() {
        let bytes = text.as_bytes();
        let mut start = 0;
        while start < bytes.len() {
            let end = ascii_piece(bytes, start);
            each(&text[start..end]);
            start = end;
        }
    } else {
        PATTERN.with(|pattern| {
            let mut start = 0;
            while let Some(found) = pattern.find_at(text, start) {
                let end = give_back_last_space(text, found.start(), found.end());
                each(&text[found.start()..end]);
                start = end;
            }
        });
    }
}

/// o200k_base's pattern with its two space branches (`\s+(?!\S)|\s+`) as one, `\s+`: a plain
/// regex, which leaves the look-ahead to `give_back_last_space`.
const PLAIN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"|\s*[\r\n]+",
    r"|\s+",
);

fn compiled() -> &'static regex::Regex {
    static COMPILED: OnceLock<regex::Regex> = OnceLock::new();
    COMPILED.get_or_init(|| regex::Regex::new(PLAIN).expect("the piece pattern compiles (tested)"))
}

thread_local! {
    /// A copy per thread: a clone has its own pool of search caches, owned by the thread that
    /// uses it first, so threads never queue for (or build and drop) a cache.
    static PATTERN: regex::Regex = compiled().clone();
}

/// `\s+(?!\S)`: a run of spaces (no line break, which the branch before takes) that a word
/// follows ends one character early, leaving that character to start the word's piece. A single
/// space stays whole (the look-ahead fails, and `\s+` takes it).
fn give_back_last_space(text: &str, start: usize, end: usize) -> usize {
    let run = &text[start..end];
    if end == text.len() || !run.chars().all(char::is_whitespace) || run.contains(['\r', '\n']) {
        return end;
    }
    let mut chars = run.char_indices();
    match (chars.next_back(), chars.next_back()) {
        (Some((last, _)), Some(_)) => start + last,
        _ => end,
    }
}

/// The end of the piece that starts at `start` in all-ASCII `text`: the pattern's branches in
/// its order, on ASCII's classes (letters are `A-Za-z`, numbers `0-9`, spaces `\t\n\x0b\x0c\r `,
/// everything else punctuation).
fn ascii_piece(text: &[u8], start: usize) -> usize {
    let first = text[start];
    let next = text.get(start + 1).copied();
    if first.is_ascii_alphabetic() {
        return contraction(text, word(text, start));
    }
    if first.is_ascii_digit() {
        let mut end = start + 1;
        while end < text.len() && end < start + 3 && text[end].is_ascii_digit() {
            end += 1;
        }
        return end;
    }
    // Punctuation or a space (not a line break) before a word belongs to the word.
    if !matches!(first, b'\r' | b'\n') && next.is_some_and(|c| c.is_ascii_alphabetic()) {
        return contraction(text, word(text, start + 1));
    }
    // Punctuation, with one space before it, and the line breaks and slashes after it.
    if !is_space(first) || (first == b' ' && next.is_some_and(is_punctuation)) {
        let mut end = if first == b' ' { start + 1 } else { start };
        while end < text.len() && is_punctuation(text[end]) {
            end += 1;
        }
        while end < text.len() && matches!(text[end], b'\r' | b'\n' | b'/') {
            end += 1;
        }
        return end;
    }
    // Spaces: up to the last line break among them; else all of them, less the last when a
    // word follows.
    let mut end = start;
    let mut last_break = None;
    while end < text.len() && is_space(text[end]) {
        if matches!(text[end], b'\r' | b'\n') {
            last_break = Some(end);
        }
        end += 1;
    }
    match last_break {
        Some(at) => at + 1,
        None if end == text.len() || end - start == 1 => end,
        None => end - 1,
    }
}

/// Upper-case letters then lower-case ones (at least one letter, at `start`).
fn word(text: &[u8], start: usize) -> usize {
    let mut end = start;
    while end < text.len() && text[end].is_ascii_uppercase() {
        end += 1;
    }
    while end < text.len() && text[end].is_ascii_lowercase() {
        end += 1;
    }
    end
}

/// `'s`, `'t`, `'re`, `'ve`, `'m`, `'ll` or `'d` (any case) after a word joins it.
fn contraction(text: &[u8], end: usize) -> usize {
    if text.get(end) != Some(&b'\'') {
        return end;
    }
    let lower = |at: usize| text.get(at).map(u8::to_ascii_lowercase);
    match (lower(end + 1), lower(end + 2)) {
        (Some(b's' | b't' | b'm' | b'd'), _) => end + 2,
        (Some(b'r' | b'v'), Some(b'e')) | (Some(b'l'), Some(b'l')) => end + 3,
        _ => end,
    }
}

/// Unicode's White_Space within ASCII (what `\s` matches).
fn is_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')
}

fn is_punctuation(c: u8) -> bool {
    !is_space(c) && !c.is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<&str> {
        let mut all = Vec::new();
        pieces(text, |piece| all.push(piece));
        all
    }

    /// The backtracking engine on tiktoken's own pattern: what the pieces must be.
    fn oracle(text: &str) -> Vec<&str> {
        static ORACLE: OnceLock<fancy_regex::Regex> = OnceLock::new();
        let pattern = ORACLE.get_or_init(|| {
            fancy_regex::Regex::new(tiktoken_rs::O200K_BASE_PAT_STR).expect("compiles")
        });
        pattern
            .find_iter(text)
            .map(|m| {
                m.expect("no backtracking limit on prompt-sized text")
                    .as_str()
            })
            .collect()
    }

    /// Both splitters: the text as it is, and with one non-ASCII character after it (which sends
    /// the whole text through the regex).
    fn assert_same(text: &str) {
        assert_eq!(split(text), oracle(text), "{text:?}");
        let wide = format!("{text}\u{e9}");
        assert_eq!(split(&wide), oracle(&wide), "{wide:?}");
    }

    #[test]
    fn the_pattern_is_tiktokens_with_its_look_ahead_as_a_rule() {
        let theirs = tiktoken_rs::O200K_BASE_PAT_STR.replace(r"|\s+(?!\S)|\s+", r"|\s+");
        assert_eq!(theirs, PLAIN);
    }

    #[test]
    fn known_splits() {
        for text in [
            "Hello, world!",
            "You are a helpful assistant.\nThe user's name is Ada.",
            "  two spaces before\t\ttabs  \n\n  indented\r\n",
            "camelCase HTTPServer don't WE'LL I'M they'Re 'twas",
            "12345 3.14159 1,000,000 x=42;",
            "path/to/file.txt // comment\n/* block */",
            "{{ user_name | title }} {% if x %}y{% endif %}",
            "   \n",
            "end with spaces   ",
            "\x0b\x0c\x1f\x00 control",
            "",
            " ",
            "a",
            "''s 's 'S ' s",
        ] {
            assert_same(text);
        }
    }

    #[test]
    fn non_ascii_text_splits_as_the_backtracking_engine_does() {
        for text in [
            "caf\u{e9} na\u{ef}ve \u{c9}COLE",
            "\u{3000}\u{3000}\u{4e2d}\u{6587}\u{3002}",
            "\u{a0}\u{a0}word \u{85}next",
            "e\u{301}\u{301} combining",
            "emoji \u{1f600}\u{1f600} text",
            "long \u{17f}s: it'\u{17f} and IT'\u{17f}",
            "\u{662}\u{663}\u{664}\u{665} arabic digits",
        ] {
            assert_same(text);
        }
    }

    /// Random text over an alphabet of every class the pattern tells apart.
    #[test]
    fn random_text_splits_as_the_backtracking_engine_does() {
        const ALPHABET: &[&str] = &[
            " ",
            " ",
            " ",
            "\t",
            "\n",
            "\r",
            "\x0b",
            "\x0c",
            "\x1f",
            "a",
            "z",
            "s",
            "t",
            "l",
            "e",
            "r",
            "v",
            "m",
            "d",
            "A",
            "S",
            "L",
            "Z",
            "0",
            "7",
            "'",
            "'",
            "/",
            ".",
            ",",
            "!",
            "-",
            "_",
            "\u{e9}",
            "\u{c9}",
            "\u{a0}",
            "\u{3000}",
            "\u{4e2d}",
            "\u{301}",
            "\u{1f600}",
            "\u{17f}",
            "\u{663}",
            "\u{2028}",
            "\u{85}",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            let len = (next() % 40) as usize;
            let text: String = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            // Half of them ASCII only, so the hand-written splitter sees them.
            let text = if next() % 2 == 0 {
                text.chars().filter(char::is_ascii).collect()
            } else {
                text
            };
            assert_same(&text);
        }
    }
}

//! Rendered messages written as JSON, fast: the server's render documents are mostly the
//! rendered text, and serde_json escapes a string a byte at a time (a fifth of a render's CPU
//! in `serve`). This writes the same bytes as serde_json, scanning eight bytes at a step for
//! the few that need escaping; the tests hold it to serde_json's output.

use crate::render::Output;

/// Writes `text` as a JSON string, byte for byte as `serde_json` writes it: `"` and `\`
/// escaped, `\b \f \n \r \t` as such, other control characters as `\u00XX`, all else as it is.
#[cfg_attr(not(feature = "serve"), allow(dead_code))]
pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Up to `start` is written; an escape is looked for from `start` on.
    let mut start = 0;
    while let Some(at) = next_escape(bytes, start) {
        out.extend_from_slice(&bytes[start..at]);
        write_escape(out, bytes[at]);
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends the rendered messages as the chat API's `messages`, `[{"role":..,"content":..}]`
/// (one text is one user message): the bytes `serde_json` writes for the chat module's
/// `Messages` (its tests compare the two).
#[cfg_attr(not(feature = "serve"), allow(dead_code))]
pub(crate) fn write_messages(out: &mut Vec<u8>, output: &Output) {
    out.push(b'[');
    for (i, (role, content)) in output.messages().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"role\":");
        write_str(out, role);
        out.extend_from_slice(b",\"content\":");
        write_str(out, content);
        out.push(b'}');
    }
    out.push(b']');
}

/// The index of the first byte at or after `from` that a JSON string must escape.
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let (words, tail) = rest.as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        let found = escapes(u64::from_le_bytes(*word));
        if found != 0 {
            // The lowest flag is exact: a false flag is only ever above a true one.
            return Some(from + i * 8 + (found.trailing_zeros() / 8) as usize);
        }
    }
    let done = from + words.len() * 8;
    tail.iter().position(|&b| needs_escape(b)).map(|p| done + p)
}

const ONES: u64 = u64::MAX / 255;
const HIGH: u64 = ONES << 7;

/// The high bit of each byte of `word` below 0x20, equal to `"` or equal to `\` (and, above
/// the first such byte, perhaps of others: the subtractions borrow upwards).
fn escapes(word: u64) -> u64 {
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * u64::from(b'"'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (control | quote | backslash) & HIGH
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

fn write_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        _ => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(text: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, text);
        String::from_utf8(out).expect("UTF-8")
    }

    fn serde(text: &str) -> String {
        serde_json::to_string(text).expect("a string serializes")
    }

    /// Every character up to U+00FF, alone and at each place in a word of eight, with
    /// neighbours that do and do not need escaping, is written as serde_json writes it.
    #[test]
    fn every_character_at_every_place_in_a_word_is_written_as_serde_json_writes_it() {
        for c in (0u32..=0xff).filter_map(char::from_u32) {
            for before in 0..17 {
                for fill in ["a", "\"", "\u{7f}", "é"] {
                    let text = format!("{}{c}{}", fill.repeat(before), fill.repeat(3));
                    assert_eq!(ours(&text), serde(&text), "{text:?}");
                }
            }
        }
    }

    /// Random strings from an alphabet rich in what must be escaped (control characters,
    /// quotes, backslashes) and in multi-byte characters, of every length up to 80.
    #[test]
    fn random_strings_are_written_as_serde_json_writes_them() {
        const ALPHABET: &[&str] = &[
            "a", "Z", " ", "\"", "\\", "\n", "\r", "\t", "\u{8}", "\u{c}", "\u{0}", "\u{1f}",
            "\u{7f}", "/", "é", "中", "😀", "\u{2028}", "{{", "}",
        ];
        // A fixed xorshift: the same strings on every run.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 81) as usize;
            let text: String = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            assert_eq!(ours(&text), serde(&text), "{text:?}");
        }
        // Long runs without escapes, and escapes at their ends.
        let long = "plain words ".repeat(200);
        for text in [
            long.clone(),
            format!("\"{long}"),
            format!("{long}\n"),
            String::new(),
        ] {
            assert_eq!(ours(&text), serde(&text));
        }
    }
}

//! Counting prompt tokens with a real tokenizer (o200k_base, the GPT-4o family's), offline.

/// The number of tokens of `text` under o200k_base.
///
/// ```
/// assert_eq!(promptreg::render::tokens::count("Hello, world!"), 4);
/// ```
pub fn count(text: &str) -> usize {
    tiktoken_rs::o200k_base_singleton()
        .encode_ordinary(text)
        .len()
}

/// The prompt tokens of a rendered prompt: every message's content (or the one text).
pub(crate) fn count_rendered(rendered: &crate::render::Rendered) -> usize {
    rendered.output.texts().iter().map(|t| count(t)).sum()
}

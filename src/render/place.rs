//! Where things are in a prompt file: the context that maps a line of one of its templates
//! to a line of the file, shared by the template engines.

use crate::diagnostic::Pos;
use crate::format::prompt::Prompt;
use crate::format::yaml::ScalarStyle;

/// Most operators (`+`, `|`, `(`, `not`, ...) one tag may hold, and most `elif` branches one
/// template may have. minijinja turns both into nested trees that it walks recursively, and a
/// few thousand of either overflow the stack, which aborts the process instead of failing the
/// render. No real prompt comes near these.
pub const MAX_NESTING: usize = 500;

/// What a compile needs to map errors to lines of the prompt file.
pub(crate) struct FileContext<'a> {
    pub file: &'a str,
    pub text: &'a str,
    pub prompt: &'a Prompt,
}

/// Maps a line and column inside the template at YAML `path` to a position in the prompt file.
pub(crate) fn file_position(ctx: &FileContext<'_>, path: &str, line: usize, col: usize) -> Pos {
    let Some(span) = ctx.prompt.spans.get(path) else {
        return ctx.prompt.spans.field(path);
    };
    match span.style {
        ScalarStyle::Block => {
            let file_line = span.value.line + line - 1;
            let indent = ctx
                .text
                .lines()
                .nth(file_line - 1)
                .map_or(0, |l| l.len() - l.trim_start_matches(' ').len());
            Pos::new(file_line, indent + col)
        }
        ScalarStyle::Quoted if line == 1 => Pos::new(span.value.line, span.value.column + col),
        ScalarStyle::Plain if line == 1 => Pos::new(span.value.line, span.value.column + col - 1),
        _ => Pos::new(span.value.line + line - 1, col),
    }
}

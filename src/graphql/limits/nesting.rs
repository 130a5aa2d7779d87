//! How deep a document's text nests (`{`, `[` and `(` outside strings and comments),
//! checked before the document is parsed. async-graphql's parser recurses once per level
//! of a list or object literal without a limit of its own: a few hundred `[` overflow a
//! 2 MiB thread stack and abort the whole process. No operation needs more than
//! [`MAX_NESTING`] levels (fields nest at most the depth limit, values a handful).

use async_graphql::{Pos, ServerError};

use crate::error::Code;

/// Most brackets a document may have open at once.
pub const MAX_NESTING: usize = 128;

/// The deepest nesting of `text`, counted until it passes `MAX_NESTING`.
pub fn depth(text: &str) -> usize {
    let bytes = text.as_bytes();
    let (mut depth, mut deepest, mut at) = (0usize, 0usize, 0usize);
    while at < bytes.len() && deepest <= MAX_NESTING {
        match bytes[at] {
            b'#' => {
                while at < bytes.len() && bytes[at] != b'\n' && bytes[at] != b'\r' {
                    at += 1;
                }
            }
            b'"' if bytes[at..].starts_with(b"\"\"\"") => {
                at += 3;
                while at < bytes.len() && !bytes[at..].starts_with(b"\"\"\"") {
                    at += if bytes[at..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                }
                at += 2;
            }
            b'"' => {
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' && bytes[at] != b'\n' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    deepest
}

/// `QUERY_TOO_COMPLEX` (`extensions.measure` `NESTING`) when `text` nests deeper than
/// [`MAX_NESTING`].
pub fn check(text: &str) -> Result<(), ServerError> {
    let deepest = depth(text);
    if deepest <= MAX_NESTING {
        return Ok(());
    }
    let message = format!(
        "the document nests brackets more than {MAX_NESTING} deep (the limit): send fewer nested \
         selections, lists or objects"
    );
    let mut error = ServerError::new(message, Some(Pos { line: 1, column: 1 }));
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("code", Code::QueryTooComplex.as_str());
    extensions.set("measure", "NESTING");
    extensions.set("limit", MAX_NESTING as u64);
    extensions.set("cost", deepest as u64);
    Err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_count_outside_strings_and_comments_only() {
        assert_eq!(depth("{ viewer { id } }"), 2);
        assert_eq!(depth("{ a(x: [[1], {b: [2]}]) }"), 5);
        assert_eq!(depth("{ a(x: \"[[[[\\\"[[\") # {{{{\n }"), 2);
        assert_eq!(depth("{ a(x: \"\"\" {{{{ \\\"\"\" [[[ \"\"\") }"), 2);
        assert_eq!(depth(&"[".repeat(10_000)), MAX_NESTING + 1);
        // `{` and `(` count: 126 lists inside them is the limit.
        let lists = |n: usize| format!("{{ a(x: {}1{}) }}", "[".repeat(n), "]".repeat(n));
        assert!(check(&lists(MAX_NESTING - 2)).is_ok());
        assert!(check(&lists(MAX_NESTING - 1)).is_err());
        assert!(check(&lists(400)).is_err());
    }

    #[test]
    fn a_document_at_the_limit_parses_on_a_two_megabyte_stack() {
        let text =
            format!("{{ a(x: {}1{}) }}", "[".repeat(MAX_NESTING - 2), "]".repeat(MAX_NESTING - 2));
        assert!(check(&text).is_ok());
        let parsed = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || async_graphql::parser::parse_query(&text).is_ok())
            .expect("a thread")
            .join()
            .expect("no overflow");
        assert!(parsed);
    }
}

//! Quoting for the places values end up in: SQL literals, libpq conninfo values,
//! PostgreSQL settings and URLs.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// A standard-conforming SQL string literal.
pub(super) fn sql_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A libpq conninfo value: single-quoted, with `\` and `'` escaped.
pub(super) fn conninfo_value(value: &OsStr) -> OsString {
    let mut out = Vec::with_capacity(value.len() + 2);
    out.push(b'\'');
    for &b in value.as_bytes() {
        if b == b'\\' || b == b'\'' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'\'');
    OsStr::from_bytes(&out).to_os_string()
}

/// Double every `"`, for a value inside a double-quoted PostgreSQL list setting.
pub(super) fn escape_double_quotes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out
}

/// Percent-encode everything but RFC 3986 unreserved characters (and `/` when `keep_slash`).
pub(super) fn percent_encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_conninfo_are_escaped() {
        assert_eq!(percent_encode(b"/tmp/a b,c@d", true), "/tmp/a%20b%2Cc%40d");
        assert_eq!(percent_encode(b"db/x", false), "db%2Fx");
        assert_eq!(conninfo_value(OsStr::new(r"it's\x")), OsString::from(r"'it\'s\\x'"));
        assert_eq!(sql_literal("o'neil"), "'o''neil'");
        assert_eq!(escape_double_quotes(br#"a"b"#), br#"a""b"#.to_vec());
    }
}

//! What the database can hold, for values a client sends: PostgreSQL's `text` and `jsonb`
//! refuse the NUL character (U+0000), and its times and dates end where chrono's do not
//! (it keeps 4713 BC to 294276 AD). The API speaks RFC 3339, whose years are 0000 to 9999:
//! a time or date outside them is refused before it reaches a statement (as a bound value
//! it would fail the statement, an `INTERNAL` error instead of the client's own).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::Value;

/// The years a time or date may have: RFC 3339's.
pub const YEARS: std::ops::RangeInclusive<i32> = 0..=9999;

/// Text the database can hold: no NUL character.
pub fn text(value: &str) -> bool {
    !value.contains('\0')
}

/// A time of RFC 3339's years.
pub fn time(value: &DateTime<Utc>) -> bool {
    YEARS.contains(&value.year())
}

/// A date of RFC 3339's years.
pub fn date(value: &NaiveDate) -> bool {
    YEARS.contains(&value.year())
}

/// JSON the database can hold: no NUL character in any string or key.
pub fn json(value: &Value) -> bool {
    match value {
        Value::String(s) => text(s),
        Value::Array(items) => items.iter().all(json),
        Value::Object(map) => map.iter().all(|(key, item)| text(key) && json(item)),
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
    }
}

/// Why a time is refused, for the message of a field's error.
pub const TIME_RULE: &str = "a time of the years 0000 to 9999 (RFC 3339)";
/// Why text is refused, for the message of a field's error.
pub const TEXT_RULE: &str = "text without the NUL character (U+0000)";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_characters_and_years_beyond_rfc_3339_are_not_storable() {
        assert!(text("plain <script> '; --"));
        assert!(!text("a\u{0}b"));
        let at = |s: &str| s.parse::<DateTime<Utc>>().expect("a time");
        assert!(time(&at("0000-01-01T00:00:00Z")));
        assert!(time(&at("9999-12-31T23:59:59Z")));
        assert!(!time(&at("-0001-12-31T00:00:00Z")));
        assert!(!time(&at("+10000-01-01T00:00:00Z")));
        assert!(!date(&NaiveDate::from_ymd_opt(-10_000, 1, 1).expect("a date")));
        assert!(json(&json!({ "a": ["b", 1, null, { "c": true }] })));
        assert!(!json(&json!({ "a": ["b\u{0}"] })));
        assert!(!json(&json!({ "\u{0}": 1 })));
    }
}

//! The one case-folding rule. Every comparison that ignores case (unique names, lookups,
//! filters, sort keys and keyset cursors) compares keys made here, in Rust, and stored
//! in a key column beside the value; SQL never folds (its `lower()` depends on the
//! server's locale: ASCII only under `C`).
//!
//! The key is Unicode's canonical caseless form: the text is decomposed (NFD), given
//! full default case folding (so `Σ`, `σ` and a word-final `ς` all become `σ`, `ß`
//! becomes `ss`), and recomposed (NFC, so a decomposed `A\u{308}` equals `Ä`). Two
//! values are equal ignoring case exactly when their keys are equal, and keys order
//! byte-wise (the key columns use the "C" collation).

use caseless::Caseless;
use unicode_normalization::UnicodeNormalization;

/// The key of `text`: its canonical caseless form (NFC of the full case folding of its
/// NFD). Does not trim; callers trim where their rule does.
pub fn fold(text: &str) -> String {
    text.chars().nfd().default_case_fold().nfc().collect()
}

/// The key of an optional value.
pub fn fold_opt(text: Option<&str>) -> Option<String> {
    text.map(fold)
}

/// The key kept by a row whose folded value collided with an older row's when existing
/// rows were re-keyed (see `models::rekey`): the fold, a U+0001 (which no stored value
/// contains) and the row's id, so the key stays unique, sorts right after the older
/// row's, and never equals a fold.
pub fn disambiguated(key: &str, id: uuid::Uuid) -> String {
    format!("{key}\u{1}{id}")
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn keys_are_equal_exactly_for_values_equal_ignoring_case() {
        assert_eq!(fold("Ärger"), fold("ärger"));
        assert_eq!(fold("ÅSA@example.com"), "åsa@example.com");
        assert_eq!(fold("ΣΑΣ"), fold("σας"));
        assert_eq!(fold("ΣΑΣ"), "σασ");
        assert_eq!(fold("Straße"), fold("STRASSE"));
        assert_eq!(fold("A\u{308}rger"), fold("Ärger"), "canonically equivalent forms");
        assert_eq!(fold("Ärger"), "\u{e4}rger", "keys are NFC");
        assert_ne!(fold("Ärger"), fold("Arger"));
        assert_eq!(fold("Mixed-Case 42"), "mixed-case 42");
    }
}

//! The rules a case's text follows: names, descriptions, and findings (basic HTML,
//! sanitized with an allow-list on write).

use std::collections::HashSet;
use std::sync::LazyLock;

use crate::error::AppError;

pub const NAME_MAX: usize = 50;
pub const DESCRIPTION_MAX: usize = 1_000;
pub const FINDINGS_MAX: usize = 30_000;

/// Punctuation a case name may contain besides letters, digits and spaces.
const NAME_PUNCTUATION: &str = ".,:;'!?()-_/";

/// The name as stored (trimmed), or `VALIDATION_FAILED` on `name`: 1–50 characters of
/// letters and digits of any script, spaces and `. , : ; ' ! ? ( ) - _ /`.
pub fn name(raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    let length = name.chars().count();
    if length == 0 {
        return Err(AppError::validation("name", "a case needs a name"));
    }
    if length > NAME_MAX {
        return Err(AppError::validation(
            "name",
            format!("a case name has at most {NAME_MAX} characters (this one has {length})"),
        ));
    }
    if let Some(bad) = name.chars().find(|&c| !name_char(c)) {
        return Err(AppError::validation(
            "name",
            format!(
                "a case name may contain letters, digits, spaces and {NAME_PUNCTUATION} only, not {bad:?}"
            ),
        ));
    }
    Ok(name.to_owned())
}

fn name_char(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || NAME_PUNCTUATION.contains(c)
}

/// A name made to follow the rules from arbitrary text (automatic cases): characters
/// not allowed become spaces, runs of spaces collapse, and it is cut to `max` characters.
pub fn name_from(text: &str, max: usize) -> String {
    let mapped: String = text.chars().map(|c| if name_char(c) { c } else { ' ' }).collect();
    let collapsed = mapped.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.chars().take(max).collect::<String>().trim().to_owned()
}

/// A description of at most 1,000 characters; blank text is no description.
pub fn description(raw: Option<&str>) -> Result<Option<String>, AppError> {
    let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else { return Ok(None) };
    let length = text.chars().count();
    if length > DESCRIPTION_MAX {
        return Err(AppError::validation(
            "description",
            format!(
                "a description has at most {DESCRIPTION_MAX} characters (this one has {length})"
            ),
        ));
    }
    Ok(Some(text.to_owned()))
}

static FINDINGS_CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let tags: HashSet<&str> = [
        "h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "b", "strong", "i", "em", "u", "ul", "ol",
        "li", "a",
    ]
    .into_iter()
    .collect();
    let schemes: HashSet<&str> = ["http", "https", "mailto"].into_iter().collect();
    let mut builder = ammonia::Builder::empty();
    builder
        .tags(tags)
        .add_tag_attributes("a", ["href"])
        .url_schemes(schemes)
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_relative(ammonia::UrlRelative::Deny)
        .strip_comments(true);
    builder
});

/// Findings as stored: basic HTML (headings, paragraphs, bold, italics, underline,
/// lists, links) with everything else removed; at most 30,000 characters before and after
/// sanitizing. Blank text is no findings.
pub fn findings(raw: Option<&str>) -> Result<Option<String>, AppError> {
    let Some(text) = raw.filter(|t| !t.trim().is_empty()) else { return Ok(None) };
    let too_long = |length: usize| {
        AppError::validation(
            "findings",
            format!("findings have at most {FINDINGS_MAX} characters (these have {length})"),
        )
    };
    let length = text.chars().count();
    if length > FINDINGS_MAX {
        return Err(too_long(length));
    }
    let clean = FINDINGS_CLEANER.clean(text).to_string();
    let clean_length = clean.chars().count();
    if clean_length > FINDINGS_MAX {
        return Err(too_long(clean_length));
    }
    Ok(Some(clean).filter(|c| !c.trim().is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_allow_any_script_and_the_listed_punctuation_only() {
        assert_eq!(
            name("  Überprüfung 東京 (2) - a/b_c.d,e:f;g'h!i?  ").ok().as_deref(),
            Some("Überprüfung 東京 (2) - a/b_c.d,e:f;g'h!i?")
        );
        for bad in
            ["", "   ", "<b>x</b>", "a{b}", "a\"b", "$x", "a\tb", "a\nb", "x#1", "a@b", "a&b"]
        {
            assert!(name(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(name(&"x".repeat(50)).is_ok());
        assert!(name(&"x".repeat(51)).is_err());
        assert!(name(&"é".repeat(50)).is_ok(), "counts characters, not bytes");
    }

    #[test]
    fn automatic_names_follow_the_rules() {
        let made =
            name_from("host-1.corp: Mimikatz <credential> dump {lsass} via \"rundll32\"", 50);
        assert!(name(&made).is_ok(), "{made}");
        assert!(made.chars().count() <= 50);
    }

    #[test]
    fn findings_keep_basic_html_and_lose_everything_active() {
        let input = r#"<h2>Summary</h2><p><b>x</b> <i>y</i> <u>z</u></p><ul><li>a</li></ul>
            <script>alert(1)</script><img src=x onerror=alert(1)><a href="javascript:alert(1)">j</a>
            <a href="https://example.test/r" onclick="x()">ok</a><iframe src="https://e.test"></iframe>"#;
        let clean = findings(Some(input)).ok().flatten().unwrap_or_default();
        for kept in [
            "<h2>Summary</h2>",
            "<b>x</b>",
            "<i>y</i>",
            "<u>z</u>",
            "<li>a</li>",
            "https://example.test/r",
        ] {
            assert!(clean.contains(kept), "{kept} missing from {clean}");
        }
        for gone in
            ["<script", "alert(1)</", "onerror", "javascript:", "onclick", "<iframe", "<img"]
        {
            assert!(!clean.contains(gone), "{gone} survived in {clean}");
        }
    }

    #[test]
    fn text_limits_are_counted_in_characters() {
        assert!(description(Some(&"é".repeat(1000))).is_ok());
        assert!(description(Some(&"é".repeat(1001))).is_err());
        assert!(findings(Some(&"a".repeat(30_000))).is_ok());
        assert!(findings(Some(&"a".repeat(30_001))).is_err());
        assert_eq!(description(Some("  ")).ok(), Some(None));
    }
}

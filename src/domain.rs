//! The domain's operations: each checks who may do it and every rule of DESIGN.md, then
//! changes the database in one transaction. GraphQL resolvers call these and convert.

pub mod access;
pub mod admin;
pub mod audit;
pub mod case_detections;
pub mod case_record;
pub mod cases;
pub mod evidence;
pub mod export;
pub mod ingest;
pub mod messages;
pub mod notifications;
pub mod record;
pub mod retention;
pub mod seed;
pub mod stats;
pub mod subjects;
pub mod webhooks;

use crate::error::AppError;
use crate::models::storable;

/// Maps a unique-index violation on `constraint` to `error`, anything else unchanged.
pub(crate) fn on_constraint(
    error: diesel::result::Error,
    constraint: &str,
    to: impl FnOnce() -> AppError,
) -> AppError {
    if violates(&error, constraint) { to() } else { AppError::Database(error) }
}

/// Whether `error` is a violation of the named constraint or unique index.
pub(crate) fn violates(error: &diesel::result::Error, constraint: &str) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(_, info) if info.constraint_name() == Some(constraint)
    )
}

/// Whether `value` is shaped like an e-mail address: one `@` with something on each side,
/// no spaces or control characters, 3–254 characters. (`admin@localhost` is one.)
pub fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else { return false };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && (3..=254).contains(&value.chars().count())
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Text that must be there: trimmed, 1–`max` characters, storable (no NUL), else
/// `VALIDATION_FAILED` on `field`.
pub(crate) fn required_text(value: &str, field: &str, max: usize) -> Result<String, AppError> {
    let value = value.trim();
    let length = value.chars().count();
    if length == 0 || length > max {
        return Err(AppError::validation(field, format!("`{field}` has 1 to {max} characters")));
    }
    if !storable::text(value) {
        return Err(AppError::validation(field, format!("`{field}` is {}", storable::TEXT_RULE)));
    }
    Ok(value.to_owned())
}

/// Text that may be left out: trimmed, blank is none, at most `max` characters.
pub(crate) fn optional_text(
    value: Option<&str>,
    field: &str,
    max: usize,
) -> Result<Option<String>, AppError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => required_text(v, field, max).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e_mail_addresses_need_one_at_with_text_around_it_and_no_spaces() {
        for good in ["ana@acme.test", "admin@localhost", "a.b+c@x.y"] {
            assert!(is_email(good), "{good}");
        }
        for bad in ["", "not-an-email", "alice@", "@example.test", "a b@x.test", "a@b@c"] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn text_checks_trim_and_count_characters() {
        assert_eq!(required_text("  é  ", "name", 1).ok().as_deref(), Some("é"));
        assert!(required_text("   ", "name", 10).is_err());
        assert!(required_text("abc", "name", 2).is_err());
        assert_eq!(optional_text(Some("  "), "notes", 5).ok(), Some(None));
        assert!(optional_text(Some("toolong"), "notes", 5).is_err());
        assert!(required_text("a\u{0}b", "name", 10).is_err());
    }
}

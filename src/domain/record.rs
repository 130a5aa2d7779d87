//! Recording changes: every domain operation ends its transaction with [`record`], which
//! appends its events to the tenant's change record (`models::events`). The helpers here
//! build the `changes` object the same way everywhere.

use diesel_async::AsyncPgConnection;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::AppResult;
use crate::graphql::ids::{self, Kind};
use crate::models::events::{self, Event, NewEvent, Origin};
use crate::models::ids::TenantId;

pub use crate::models::events::{ActorType, CaseEventKind};

/// Appends `events` to the tenant's record as the last statements of the caller's
/// transaction (see `models::events::append`); nothing for an empty list.
pub async fn record(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    origin: &Origin,
    events: Vec<NewEvent>,
) -> AppResult<Vec<Event>> {
    Ok(events::append(conn, tenant, origin, events).await?)
}

/// The global id of the object of `kind`, as the API shows it (for `target_id` and for
/// references inside `changes`).
pub fn global_id(kind: Kind, id: uuid::Uuid) -> String {
    ids::encode(kind, id).0
}

/// Long free text as the record keeps it: its SHA-256 (hex) and length in characters,
/// never the text; `null` for none.
pub fn digest(text: Option<&str>) -> Value {
    match text {
        Some(text) => json!({
            "sha256": format!("{:x}", Sha256::digest(text.as_bytes())),
            "length": text.chars().count(),
        }),
        None => Value::Null,
    }
}

/// Builds a `changes` object: `{"<GraphQL field>": {"before": …, "after": …}, …}`, plus
/// facts of the action (counts, ids) under their own names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes(Map<String, Value>);

impl Changes {
    pub fn new() -> Self {
        Self::default()
    }

    /// `field` went from `before` to `after` (recorded even when equal: call it for changes).
    pub fn field(mut self, field: &str, before: impl Serialize, after: impl Serialize) -> Self {
        let before = serde_json::to_value(before).unwrap_or(Value::Null);
        let after = serde_json::to_value(after).unwrap_or(Value::Null);
        self.0.insert(field.to_owned(), json!({ "before": before, "after": after }));
        self
    }

    /// `field` changed from `before` to `after` only when they differ.
    pub fn diff<T: Serialize + PartialEq>(self, field: &str, before: T, after: T) -> Self {
        if before == after { self } else { self.field(field, before, after) }
    }

    /// Long free text: each side as [`digest`].
    pub fn text(self, field: &str, before: Option<&str>, after: Option<&str>) -> Self {
        self.field(field, digest(before), digest(after))
    }

    /// A fact of the action that is not a before/after pair (a count, a list of ids).
    pub fn fact(mut self, name: &str, value: impl Serialize) -> Self {
        self.0.insert(name.to_owned(), serde_json::to_value(value).unwrap_or(Value::Null));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names of the fields recorded.
    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_kept_as_digest_and_length_only() {
        let changes = Changes::new().text("findings", None, Some("secret words")).into_value();
        let after = &changes["findings"]["after"];
        assert_eq!(after["length"], 12);
        assert_eq!(after["sha256"].as_str().map(str::len), Some(64));
        assert!(!changes.to_string().contains("secret"));
        assert_eq!(changes["findings"]["before"], Value::Null);
    }
}

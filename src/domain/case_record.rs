//! The change record's view of a case: which fields a case event lists, compared between
//! the case before and after the change, with the GraphQL field names.

use serde_json::Value;

use crate::domain::record::{Changes, global_id};
use crate::graphql::ids::Kind;
use crate::models::cases::Case;
use crate::models::enums::Severity;
use crate::models::events::{CaseEventKind, NewEvent};

/// A severity as the API names it.
pub fn severity_name(severity: Option<Severity>) -> Option<&'static str> {
    severity.map(|s| match s {
        Severity::Informational => "INFORMATIONAL",
        Severity::Low => "LOW",
        Severity::Medium => "MEDIUM",
        Severity::High => "HIGH",
        Severity::Critical => "CRITICAL",
    })
}

/// The fields of a case the record compares: short ones by value, long free text
/// (description, findings) as digests, references as global ids.
fn fields(case: &Case) -> Vec<(&'static str, Value, bool)> {
    let id = |kind, uuid: Option<uuid::Uuid>| {
        uuid.map_or(Value::Null, |u| Value::String(global_id(kind, u)))
    };
    vec![
        ("name", Value::String(case.name.clone()), false),
        ("kind", Value::String(case.kind.as_str().to_owned()), false),
        ("description", case.description.clone().map_or(Value::Null, Value::String), true),
        ("findings", case.findings.clone().map_or(Value::Null, Value::String), true),
        ("severity", severity_name(case.severity).map_or(Value::Null, |s| s.into()), false),
        ("status", Value::String(case.status.as_str().to_owned()), false),
        ("resolution", case.resolution.map_or(Value::Null, |r| r.as_str().into()), false),
        ("assignee", id(Kind::User, case.assignee_id.map(|u| u.0)), false),
        ("subject", id(Kind::Subject, case.subject_id.map(|s| s.0)), false),
        ("detectionCount", Value::from(case.detection_count), false),
    ]
}

/// The fields that differ between `before` (none: a new case) and `after`, each
/// `{"before", "after"}`; a new case lists only the fields it has.
pub fn diff(before: Option<&Case>, after: &Case) -> Changes {
    let old = before.map(fields);
    let mut changes = Changes::new();
    for (n, (name, value, long)) in fields(after).into_iter().enumerate() {
        let previous = old.as_ref().map_or(Value::Null, |o| o[n].1.clone());
        if previous == value || (before.is_none() && value == Value::Null) {
            continue;
        }
        changes = if long {
            changes.text(name, previous.as_str(), value.as_str())
        } else {
            changes.field(name, previous, value)
        };
    }
    changes
}

/// An event about `case` (after the change) of `kind`, with `changes`.
pub fn event(action: &'static str, kind: CaseEventKind, case: &Case, changes: Changes) -> NewEvent {
    NewEvent::new(action)
        .case(case.id, case.number, kind)
        .target(global_id(Kind::Case, case.id.0))
        .changes(changes.into_value())
}

/// `case.updated` or, when the status is among the changed fields, one STATUS_CHANGED
/// event listing all of them (`case.updated` still names the action).
pub fn updated(before: &Case, after: &Case) -> Option<NewEvent> {
    let changes = diff(Some(before), after);
    if changes.is_empty() {
        return None;
    }
    let kind = if before.status != after.status {
        CaseEventKind::StatusChanged
    } else {
        CaseEventKind::Updated
    };
    Some(event("case.updated", kind, after, changes))
}

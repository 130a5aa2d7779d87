//! Creating and changing subjects.

use chrono::NaiveDate;
use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::auth::Viewer;
use crate::domain::record::{Changes, global_id, record};
use crate::domain::{access, is_email, optional_text};
use crate::error::{AppError, AppResult};
use crate::graphql::ids::Kind;
use crate::models::events::NewEvent;
use crate::models::subjects::{self, Subject, SubjectChanges};
use serde_json::{Value, json};

/// What `upsertSubject` asks for: `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct SubjectDraft {
    pub username: String,
    pub display_name: Option<String>,
    pub department: Option<String>,
    pub title: Option<String>,
    pub location: Option<String>,
    pub manager_username: Option<String>,
    pub departure_date: Option<NaiveDate>,
    pub watchlists: Option<Vec<String>>,
    pub notes: Option<String>,
}

/// A profile field of an upsert: left alone when absent, cleared when blank.
fn field(value: Option<String>, name: &str, max: usize) -> AppResult<Option<Option<String>>> {
    value.map(|v| optional_text(Some(&v), name, max)).transpose()
}

/// Creates the subject with this username or changes the one that exists.
pub async fn upsert(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    draft: SubjectDraft,
) -> AppResult<Subject> {
    viewer.require(access::EDIT_SUBJECTS)?;
    let username = draft.username.trim().to_owned();
    if !is_email(&username) {
        return Err(AppError::validation("username", "a subject's username is an e-mail address"));
    }
    let manager = field(draft.manager_username, "managerUsername", 254)?;
    if let Some(Some(manager)) = &manager
        && !is_email(manager)
    {
        return Err(AppError::validation("managerUsername", "a username is an e-mail address"));
    }
    let watchlists = match draft.watchlists {
        Some(list) => {
            if list.len() > 50 {
                return Err(AppError::validation("watchlists", "at most 50 watchlists"));
            }
            let mut out: Vec<Option<String>> = Vec::new();
            for name in list {
                let name = name.trim().to_owned();
                if name.is_empty() || name.chars().count() > 100 {
                    return Err(AppError::validation(
                        "watchlists",
                        "a watchlist name has 1–100 characters",
                    ));
                }
                if !out.iter().flatten().any(|n| *n == name) {
                    out.push(Some(name));
                }
            }
            Some(out)
        }
        None => None,
    };
    let changes = SubjectChanges {
        display_name: field(draft.display_name, "displayName", 200)?,
        department: field(draft.department, "department", 200)?,
        title: field(draft.title, "title", 200)?,
        location: field(draft.location, "location", 200)?,
        manager_username: manager,
        departure_date: draft.departure_date.map(Some),
        watchlists,
        notes: field(draft.notes, "notes", 10_000)?,
    };
    let viewer = *viewer;
    conn.transaction(async |conn| {
        let before = subjects::lock_by_username(conn, viewer.tenant_id, &username).await?;
        let (subject, _) = subjects::upsert(conn, viewer.tenant_id, &username, &changes).await?;
        let diff = subject_diff(before.as_ref(), &subject);
        if !diff.is_empty() {
            let event = NewEvent::new("subject.upserted")
                .target(global_id(Kind::Subject, subject.id.0))
                .changes(diff.into_value());
            record(conn, viewer.tenant_id, &viewer.origin(), vec![event]).await?;
        }
        Ok(subject)
    })
    .await
}

/// The subject's changed fields (all of a new subject's); notes only as digests.
fn subject_diff(before: Option<&Subject>, after: &Subject) -> Changes {
    let fields = |s: &Subject| {
        let list: Vec<&str> = s.watchlists.iter().flatten().map(String::as_str).collect();
        [
            ("username", json!(s.username)),
            ("displayName", json!(s.display_name)),
            ("department", json!(s.department)),
            ("title", json!(s.title)),
            ("location", json!(s.location)),
            ("managerUsername", json!(s.manager_username)),
            ("departureDate", json!(s.departure_date)),
            ("watchlists", json!(list)),
        ]
    };
    let old = before.map(fields);
    let mut changes = Changes::new();
    for (n, (name, value)) in fields(after).into_iter().enumerate() {
        let previous = old.as_ref().map_or(Value::Null, |o| o[n].1.clone());
        let empty = value.is_null() || value.as_array().is_some_and(Vec::is_empty);
        if previous != value && !(before.is_none() && empty) {
            changes = changes.field(name, previous, value);
        }
    }
    let notes_before = before.and_then(|b| b.notes.as_deref());
    if notes_before != after.notes.as_deref() {
        changes = changes.text("notes", notes_before, after.notes.as_deref());
    }
    changes
}

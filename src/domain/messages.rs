//! Posting messages on cases: who may, on which cases, and the body's rules. A message is
//! immutable; archiving or deleting its case removes it.

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::auth::Viewer;
use crate::domain::access::{self, CaseAction};
use crate::domain::record::{Changes, global_id, record};
use crate::error::{AppError, AppResult};
use crate::graphql::ids::Kind;
use crate::models::events::{CaseEventKind, NewEvent};
use crate::models::ids::{CaseId, MessageId};
use crate::models::messages::{self, Message};

/// Most characters (Unicode scalar values) a message body may hold.
pub const MAX_BODY: usize = 10_000;

/// The body as sent, when it has 1–10,000 characters and is not only white space.
pub fn check_body(body: &str) -> AppResult<()> {
    let length = body.chars().count();
    if length == 0 || body.trim().is_empty() {
        return Err(AppError::validation("body", "a message needs some text"));
    }
    if length > MAX_BODY {
        return Err(AppError::validation(
            "body",
            format!("a message has at most {MAX_BODY} characters (got {length})"),
        ));
    }
    Ok(())
}

/// Posts a message on an open case. The body is stored exactly as sent; the change record
/// gets `message.posted` (MESSAGE_POSTED) with the body's SHA-256 and length only.
pub async fn post(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    case: CaseId,
    body: String,
) -> AppResult<Message> {
    access::precheck(viewer, CaseAction::PostMessage)?;
    check_body(&body)?;
    let viewer = *viewer;
    conn.transaction(async |conn| {
        // The case's lock orders the post against an archive that deletes its messages.
        let case = crate::domain::cases::lock(conn, &viewer, case).await?;
        access::check_role(&viewer, CaseAction::PostMessage, &case)?;
        access::check_open(&case)?;
        let message = Message {
            id: MessageId::new(),
            tenant_id: viewer.tenant_id,
            case_id: case.id,
            author_id: viewer.user_id,
            body,
            created_at: Utc::now(),
        };
        let message = messages::insert(conn, &message).await?;
        let event = NewEvent::new("message.posted")
            .case(case.id, case.number, CaseEventKind::MessagePosted)
            .target(global_id(Kind::Message, message.id.0))
            .changes(Changes::new().text("body", None, Some(&message.body)).into_value());
        record(conn, viewer.tenant_id, &viewer.origin(), vec![event]).await?;
        Ok(message)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_has_one_to_ten_thousand_characters_counted_as_characters() {
        assert!(check_body("").is_err());
        assert!(check_body(" \n ").is_err());
        assert!(check_body("ok").is_ok());
        assert!(check_body(&"é".repeat(MAX_BODY)).is_ok());
        assert!(check_body(&"x".repeat(MAX_BODY + 1)).is_err());
    }
}

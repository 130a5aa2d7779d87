//! The tenant's notification settings: who is mailed when a case is created, and who
//! when a case's assignee changes (`updateNotificationSettings`, admins only).

use std::collections::HashSet;

use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::auth::Viewer;
use crate::domain::access;
use crate::domain::is_email;
use crate::domain::record::{Changes, global_id, record};
use crate::error::{AppError, AppResult};
use crate::graphql::ids::Kind;
use crate::models::events::NewEvent;
use crate::models::fold::fold;
use crate::models::tenants::{self, AssignmentMail, NotificationChanges, Tenant};

/// Most addresses `caseCreatedRecipients` may hold.
pub const MAX_RECIPIENTS: usize = 50;

/// The input's field the recipients' errors name.
const RECIPIENTS_FIELD: &str = "caseCreatedRecipients";

/// What `updateNotificationSettings` asks for: `None` leaves a setting alone.
#[derive(Debug, Clone, Default)]
pub struct NotificationDraft {
    pub case_created_recipients: Option<Vec<String>>,
    pub assignment_mail: Option<AssignmentMail>,
}

/// The recipients as stored: each trimmed and checked as a mail address (the form an
/// SMTP envelope takes: `local@domain`, no display name), duplicates ignoring case
/// dropped (the first spelling stays), at most [`MAX_RECIPIENTS`].
pub fn check_recipients(given: &[String]) -> AppResult<Vec<String>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (n, raw) in given.iter().enumerate() {
        let address = raw.trim();
        if !is_email(address) || address.parse::<lettre::Address>().is_err() {
            return Err(AppError::validation(
                RECIPIENTS_FIELD,
                format!("entry {n} is not a mail address (expected name@example.com)"),
            ));
        }
        if seen.insert(fold(address)) {
            out.push(address.to_owned());
        }
    }
    if out.len() > MAX_RECIPIENTS {
        return Err(AppError::validation(
            RECIPIENTS_FIELD,
            format!("at most {MAX_RECIPIENTS} recipients (got {})", out.len()),
        ));
    }
    Ok(out)
}

/// Changes the tenant's notification settings; the change record gets
/// `tenant.notifications_updated` with what changed.
pub async fn update(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    draft: NotificationDraft,
) -> AppResult<Tenant> {
    viewer.require(access::ADMINISTER)?;
    let recipients = draft.case_created_recipients.as_deref().map(check_recipients).transpose()?;
    let changes = NotificationChanges {
        case_created_recipients: recipients,
        assignment_mail: draft.assignment_mail,
    };
    let viewer = *viewer;
    conn.transaction(async |conn| {
        let before =
            tenants::lock(conn, viewer.tenant_id).await?.ok_or(AppError::NotFound("tenant"))?;
        let after = tenants::update_notifications(conn, viewer.tenant_id, &changes).await?;
        let diff = Changes::new()
            .diff(RECIPIENTS_FIELD, &before.case_created_recipients, &after.case_created_recipients)
            .diff(
                "assignmentMail",
                before.assignment_mail.as_str(),
                after.assignment_mail.as_str(),
            );
        if !diff.is_empty() {
            let event = NewEvent::new("tenant.notifications_updated")
                .target(global_id(Kind::Tenant, after.id.0))
                .changes(diff.into_value());
            record(conn, viewer.tenant_id, &viewer.origin(), vec![event]).await?;
        }
        Ok(after)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn recipients_are_trimmed_and_deduplicated_ignoring_case() {
        let checked =
            check_recipients(&strings(&[" soc@example.com ", "SOC@Example.com", "b@example.org"]));
        assert_eq!(checked.ok(), Some(strings(&["soc@example.com", "b@example.org"])));
    }

    #[test]
    fn recipients_must_be_plain_addresses() {
        for bad in
            ["", "soc", "soc@", "Soc <soc@example.com>", "a@b@c", "soc@example.com\r\nBcc: x@y"]
        {
            let error = check_recipients(&strings(&["ok@example.com", bad]));
            assert!(
                matches!(&error, Err(AppError::Validation { field, .. }) if field == RECIPIENTS_FIELD),
                "{bad:?}: {error:?}"
            );
        }
    }

    #[test]
    fn at_most_fifty_distinct_recipients() {
        let many: Vec<String> = (0..=MAX_RECIPIENTS).map(|n| format!("r{n}@example.com")).collect();
        assert!(check_recipients(&many).is_err());
        assert_eq!(check_recipients(&many[..MAX_RECIPIENTS]).map(|r| r.len()).ok(), Some(50));
        let repeated: Vec<String> = (0..200).map(|_| "same@example.com".to_owned()).collect();
        assert_eq!(check_recipients(&repeated).map(|r| r.len()).ok(), Some(1));
    }
}

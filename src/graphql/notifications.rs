//! Notification settings: `Tenant.notificationSettings` and `updateNotificationSettings`.

use async_graphql::{Context, InputObject, Object};

use crate::domain::notifications::{self, NotificationDraft};
use crate::graphql::own_conn;
use crate::graphql::tenants::{Tenant, TenantPayload};
use crate::graphql::viewer_and_loaders;
use crate::models::tenants::{self, AssignmentMail};

/// Who casefile mails about the tenant's cases (when mail is configured on the server).
pub struct NotificationSettings<'a>(pub &'a tenants::Tenant);

/// Who casefile mails about the tenant's cases. Mail goes out only when the server has
/// an SMTP server configured (`CASEFILE_SMTP_URL`).
#[Object]
impl NotificationSettings<'_> {
    /// Mailed when a case is created (number, name, severity, detections, devices), and
    /// when the provider's team posts a message on an MDR or Managed Risk service request.
    async fn case_created_recipients(&self) -> &[String] {
        &self.0.case_created_recipients
    }

    /// Who is mailed when a case's assignee changes (`ALL` for a new tenant).
    async fn assignment_mail(&self) -> AssignmentMail {
        self.0.assignment_mail
    }
}

/// Absent fields are left alone.
#[derive(InputObject)]
pub struct UpdateNotificationSettingsInput {
    /// Any text the client chooses, returned unchanged in the payload (Relay).
    pub client_mutation_id: Option<String>,
    /// The full new list of recipients of case-created mail: plain addresses
    /// (`soc@example.com`), at most 50 once duplicates (ignoring case) are dropped; `[]`
    /// for none.
    pub case_created_recipients: Option<Vec<String>>,
    /// Who is mailed when a case's assignee changes.
    pub assignment_mail: Option<AssignmentMail>,
}

#[derive(Default)]
pub struct NotificationMutation;

#[Object]
impl NotificationMutation {
    /// Changes who is mailed about the tenant's cases (admins only); recorded in the change
    /// record. Errors: `FORBIDDEN`, `VALIDATION_FAILED` (field `caseCreatedRecipients`: an
    /// entry that is not a mail address, or more than 50).
    async fn update_notification_settings(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The settings to change.")] input: UpdateNotificationSettingsInput,
    ) -> async_graphql::Result<TenantPayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let draft = NotificationDraft {
            case_created_recipients: input.case_created_recipients,
            assignment_mail: input.assignment_mail,
        };
        let mut conn = own_conn(ctx).await?;
        let tenant = notifications::update(&mut conn, viewer, draft).await?;
        Ok(TenantPayload { client_mutation_id: input.client_mutation_id, tenant: Tenant(tenant) })
    }
}

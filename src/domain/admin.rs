//! Users, API tokens and the tenant's policies: the admin's work.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::auth::{self, Viewer};
use crate::domain::access;
use crate::domain::case_record::severity_name;
use crate::domain::record::{Changes, global_id, record};
use crate::domain::{is_email, on_constraint, required_text};
use crate::error::{AppError, AppResult, Code};
use crate::graphql::ids::Kind;
use crate::models::cases;
use crate::models::enums::Severity;
use crate::models::events::NewEvent;
use crate::models::ids::{TokenId, UserId};
use crate::models::tenants::{self, PolicyChanges, Tenant};
use crate::models::tokens;
use crate::models::users::{self, NewUser, Role, User, UserChanges};
use serde_json::Value;

/// Creates a user of the viewer's tenant.
pub async fn create_user(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    email: &str,
    display_name: &str,
    role: Role,
) -> AppResult<User> {
    viewer.require(access::ADMINISTER)?;
    let email = email.trim();
    if !is_email(email) {
        return Err(AppError::validation("email", "not an e-mail address"));
    }
    let display_name = required_text(display_name, "displayName", 200)?;
    let new = NewUser {
        id: UserId::new(),
        tenant_id: viewer.tenant_id,
        email,
        display_name: &display_name,
        role,
    };
    let viewer = *viewer;
    conn.transaction(async |conn| {
        let user = users::insert(conn, &new).await.map_err(|error| {
            on_constraint(error, users::EMAIL_UNIQUE, || {
                AppError::Rule(
                    Code::NameTaken,
                    format!("a user with the e-mail {email} exists already"),
                )
            })
        })?;
        record(conn, viewer.tenant_id, &viewer.origin(), vec![user_created(&user)]).await?;
        Ok(user)
    })
    .await
}

/// `user.created`: the new user's e-mail, display name, role and activity.
pub fn user_created(user: &User) -> NewEvent {
    NewEvent::new("user.created").target(global_id(Kind::User, user.id.0)).changes(
        Changes::new()
            .field("email", Value::Null, &user.email)
            .field("displayName", Value::Null, &user.display_name)
            .field("role", Value::Null, user.role.as_str())
            .field("active", Value::Null, user.active)
            .into_value(),
    )
}

/// `tenant.created`: the new tenant's name and licenses.
pub fn tenant_created(tenant: &Tenant) -> NewEvent {
    let licenses: Vec<&str> = tenant.licenses.iter().flatten().map(|l| l.as_str()).collect();
    NewEvent::new("tenant.created").target(global_id(Kind::Tenant, tenant.id.0)).changes(
        Changes::new()
            .field("name", Value::Null, &tenant.name)
            .field("licenses", Value::Null, licenses)
            .into_value(),
    )
}

/// `token.created`: the token's owner, name and expiry (never its secret).
pub fn token_created(
    id: TokenId,
    owner: &User,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> NewEvent {
    NewEvent::new("token.created").target(global_id(Kind::ApiToken, id.0)).changes(
        Changes::new()
            .field("user", Value::Null, global_id(Kind::User, owner.id.0))
            .field("name", Value::Null, name)
            .field("expiresAt", Value::Null, expires_at)
            .into_value(),
    )
}

/// What `updateUser` asks for: `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct UserDraft {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    pub active: Option<bool>,
}

/// Changes a user's display name, role or activity (admins only). A deactivated user's
/// tokens stop working at once; its open case assignments stay as they are (an admin
/// reassigns them), but it can no longer be made an assignee. A change that would leave
/// the tenant without an active admin fails with `VALIDATION_FAILED` on `active` or
/// `role` and changes nothing.
pub async fn update_user(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: UserId,
    draft: UserDraft,
) -> AppResult<User> {
    viewer.require(access::ADMINISTER)?;
    let display_name = match draft.display_name.as_deref() {
        Some(name) => Some(required_text(name, "displayName", 200)?),
        None => None,
    };
    let changes = UserChanges { display_name, role: draft.role, active: draft.active };
    let tenant = viewer.tenant_id;
    conn.transaction(async |conn| {
        // The tenant's lock first (as every domain operation takes it), so that two
        // changes cannot each remove one of the last two admins.
        tenants::lock(conn, tenant).await?.ok_or(AppError::NotFound("tenant"))?;
        let user = users::find(conn, tenant, id).await?.ok_or(AppError::NotFound("user"))?;
        if changes.is_empty() {
            return Ok(user);
        }
        let after = User {
            role: changes.role.unwrap_or(user.role),
            active: changes.active.unwrap_or(user.active),
            ..user.clone()
        };
        if user.is_active_admin()
            && !after.is_active_admin()
            && users::count_active_admins(conn, tenant).await? <= 1
        {
            let (field, message) = if after.active {
                ("role", "the tenant's last active ADMIN cannot lose the ADMIN role")
            } else {
                ("active", "the tenant's last active ADMIN cannot be deactivated")
            };
            return Err(AppError::validation(field, message));
        }
        let updated =
            users::update(conn, tenant, id, &changes).await?.ok_or(AppError::NotFound("user"))?;
        if let Some(display_name) = &changes.display_name {
            // The case list's ASSIGNEE order reads the name kept on each case row.
            cases::set_assignee_sort(conn, tenant, id, display_name).await?;
        }
        let diff = Changes::new()
            .diff("displayName", &user.display_name, &updated.display_name)
            .diff("role", user.role.as_str(), updated.role.as_str())
            .diff("active", user.active, updated.active);
        if !diff.is_empty() {
            let event = NewEvent::new("user.updated")
                .target(global_id(Kind::User, updated.id.0))
                .changes(diff.into_value());
            record(conn, tenant, &viewer.origin(), vec![event]).await?;
        }
        Ok(updated)
    })
    .await
    // The user's tokens answer with the new role (or not at all) here at once; on other
    // servers within the cache's lifetime.
    .inspect(|user| auth::cache::shared().forget_user(user.id))
}

/// Creates a token for a user of the tenant; returns its id and secret (shown once).
pub async fn create_token(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    user: UserId,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> AppResult<(TokenId, String)> {
    viewer.require(access::ADMINISTER)?;
    let name = required_text(name, "name", 100)?;
    if expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(AppError::validation("expiresAt", "an expiry lies in the future"));
    }
    let viewer = *viewer;
    conn.transaction(async |conn| {
        let owner =
            users::find(conn, viewer.tenant_id, user).await?.ok_or(AppError::NotFound("user"))?;
        let (id, secret) = tokens::create(conn, &owner, &name, expires_at).await?;
        let event = token_created(id, &owner, &name, expires_at);
        record(conn, viewer.tenant_id, &viewer.origin(), vec![event]).await?;
        Ok((id, secret))
    })
    .await
}

/// Revokes a token: an admin any of the tenant's, anyone else only their own.
pub async fn revoke_token(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: TokenId,
) -> AppResult<TokenId> {
    let viewer = *viewer;
    conn.transaction(async |conn| {
        let token = tokens::find(conn, viewer.tenant_id, id).await?;
        let own = token.as_ref().is_some_and(|t| t.user_id == viewer.user_id);
        if !own {
            viewer.require(access::ADMINISTER)?;
        }
        let token = token.ok_or(AppError::NotFound("token"))?;
        let revoked = tokens::revoke(conn, viewer.tenant_id, token.id).await?;
        if token.revoked_at.is_none()
            && let Some(revoked) = revoked
        {
            let event = NewEvent::new("token.revoked")
                .target(global_id(Kind::ApiToken, token.id.0))
                .changes(
                    Changes::new()
                        .field("user", Value::Null, global_id(Kind::User, token.user_id.0))
                        .field("revokedAt", Value::Null, revoked.revoked_at)
                        .into_value(),
                );
            record(conn, viewer.tenant_id, &viewer.origin(), vec![event]).await?;
        }
        Ok(token.id)
    })
    .await
    .inspect(|&token| auth::cache::shared().forget_token(token))
}

/// What `updateTenantPolicies` asks for: `None` leaves a policy alone;
/// `delete_resolved_after_days: Some(None)` keeps resolved cases for ever.
#[derive(Debug, Clone, Default)]
pub struct PolicyDraft {
    pub archive_after_days: Option<i32>,
    pub delete_resolved_after_days: Option<Option<i32>>,
    pub auto_case_enabled: Option<bool>,
    pub auto_case_min_severity: Option<Severity>,
}

/// Changes the tenant's retention and automatic-case policies.
pub async fn update_policies(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    draft: PolicyDraft,
) -> AppResult<Tenant> {
    viewer.require(access::ADMINISTER)?;
    if let Some(days) = draft.archive_after_days
        && !tenants::ARCHIVE_AFTER_DAYS.contains(&days)
    {
        return Err(AppError::validation(
            "archiveAfterDays",
            format!("cases are archived 90 to 365 days after creation (got {days})"),
        ));
    }
    if let Some(Some(days)) = draft.delete_resolved_after_days
        && !tenants::DELETE_RESOLVED_AFTER_DAYS.contains(&days)
    {
        return Err(AppError::validation(
            "deleteResolvedAfterDays",
            format!(
                "resolved cases are deleted 1 to 3650 days after resolution, or never (got {days})"
            ),
        ));
    }
    let changes = PolicyChanges {
        archive_after_days: draft.archive_after_days,
        delete_resolved_after_days: draft.delete_resolved_after_days,
        auto_case_enabled: draft.auto_case_enabled,
        auto_case_min_severity: draft.auto_case_min_severity,
    };
    let viewer = *viewer;
    conn.transaction(async |conn| {
        let before =
            tenants::lock(conn, viewer.tenant_id).await?.ok_or(AppError::NotFound("tenant"))?;
        let after = tenants::update_policies(conn, viewer.tenant_id, &changes).await?;
        let diff = Changes::new()
            .diff("archiveAfterDays", before.archive_after_days, after.archive_after_days)
            .diff(
                "deleteResolvedAfterDays",
                before.delete_resolved_after_days,
                after.delete_resolved_after_days,
            )
            .diff("autoCaseEnabled", before.auto_case_enabled, after.auto_case_enabled)
            .diff(
                "autoCaseMinSeverity",
                severity_name(Some(before.auto_case_min_severity)),
                severity_name(Some(after.auto_case_min_severity)),
            );
        if !diff.is_empty() {
            let event = NewEvent::new("tenant.policies_updated")
                .target(global_id(Kind::Tenant, after.id.0))
                .changes(diff.into_value());
            record(conn, viewer.tenant_id, &viewer.origin(), vec![event]).await?;
        }
        Ok(after)
    })
    .await
}

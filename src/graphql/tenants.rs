//! Tenants: the `Tenant` type, the `tenant` query and `updateTenantPolicies`.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};

use crate::domain::admin::{self, PolicyDraft};
use crate::error::AppError;
use crate::graphql::notifications::NotificationSettings;
use crate::graphql::own_conn;
use crate::graphql::{ids, viewer_and_loaders};
use crate::models::enums::Severity;
use crate::models::tenants::{self, License};

/// An organisation using casefile. Nothing of one tenant is visible to another.
pub struct Tenant(pub tenants::Tenant);

/// When cases are archived and deleted.
#[derive(SimpleObject)]
pub struct RetentionPolicy {
    /// Cases are archived this many days after creation (90–365).
    pub archive_after_days: i32,
    /// Resolved cases are deleted this many days after resolution; null: never.
    pub delete_resolved_after_days: Option<i32>,
}

/// Whether high-risk detections open automatic cases.
#[derive(SimpleObject)]
pub struct AutoCasePolicy {
    /// Whether ingested detections open automatic cases (on for a new tenant).
    pub enabled: bool,
    /// Detections at or above this severity open (or join) an automatic case.
    pub min_severity: Severity,
}

/// An organisation using casefile, with its licenses and policies. Nothing of one tenant
/// is visible to another. ADMIN users change its policies.
#[Object]
impl Tenant {
    /// Global id.
    pub async fn id(&self) -> ID {
        ids::encode(ids::Kind::Tenant, self.0.id.0)
    }

    /// The tenant's name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Product licenses; MDR and Managed Risk service requests need theirs.
    async fn licenses(&self) -> Vec<License> {
        self.0.licenses()
    }

    /// When the tenant's cases are archived and deleted.
    async fn retention(&self) -> RetentionPolicy {
        RetentionPolicy {
            archive_after_days: self.0.archive_after_days,
            delete_resolved_after_days: self.0.delete_resolved_after_days,
        }
    }

    /// Whether and from which severity ingested detections open automatic cases.
    async fn auto_case_policy(&self) -> AutoCasePolicy {
        AutoCasePolicy {
            enabled: self.0.auto_case_enabled,
            min_severity: self.0.auto_case_min_severity,
        }
    }

    /// Who casefile mails about the tenant's cases (readable like the rest of the tenant;
    /// ADMIN users change it with `updateNotificationSettings`).
    async fn notification_settings(&self) -> NotificationSettings<'_> {
        NotificationSettings(&self.0)
    }
}

#[derive(Default)]
pub struct TenantQuery;

#[Object]
impl TenantQuery {
    /// The viewer's tenant. Every role but INGEST (`FORBIDDEN`).
    async fn tenant(&self, ctx: &Context<'_>) -> async_graphql::Result<Tenant> {
        let (viewer, loaders) = viewer_and_loaders(ctx)?;
        viewer.require_read()?;
        let tenant = loaders
            .tenants
            .load_one(viewer.tenant_id)
            .await?
            .ok_or(AppError::NotFound("tenant"))?;
        Ok(Tenant(tenant))
    }
}

/// Absent fields are left alone; `deleteResolvedAfterDays: null` keeps resolved cases for ever.
#[derive(InputObject)]
pub struct UpdateTenantPoliciesInput {
    /// Any text the client chooses, returned unchanged in the payload (Relay).
    pub client_mutation_id: Option<String>,
    /// Cases created from now on are archived this many days after creation: 90–365.
    pub archive_after_days: Option<i32>,
    /// Resolved self-managed cases are deleted this many days after resolution: 1–3650,
    /// or null for never.
    pub delete_resolved_after_days: MaybeUndefined<i32>,
    /// Whether ingested detections open automatic cases.
    pub auto_case_enabled: Option<bool>,
    /// Detections at or above this severity open (or join) an automatic case.
    pub auto_case_min_severity: Option<Severity>,
}

/// The result of `updateTenantPolicies` and `updateNotificationSettings`.
#[derive(SimpleObject)]
pub struct TenantPayload {
    /// The input's `clientMutationId`, unchanged.
    pub client_mutation_id: Option<String>,
    /// The tenant as it is after the mutation.
    pub tenant: Tenant,
}

#[derive(Default)]
pub struct TenantMutation;

#[Object]
impl TenantMutation {
    /// Changes the tenant's retention and automatic-case policies (admins only). The
    /// archive date of existing cases stays as it was set at their creation. Errors:
    /// `FORBIDDEN`, `VALIDATION_FAILED` (a number of days out of range).
    async fn update_tenant_policies(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The policies to change.")] input: UpdateTenantPoliciesInput,
    ) -> async_graphql::Result<TenantPayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let draft = PolicyDraft {
            archive_after_days: input.archive_after_days,
            delete_resolved_after_days: match input.delete_resolved_after_days {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(days) => Some(Some(days)),
            },
            auto_case_enabled: input.auto_case_enabled,
            auto_case_min_severity: input.auto_case_min_severity,
        };
        let mut conn = own_conn(ctx).await?;
        let tenant = admin::update_policies(&mut conn, viewer, draft).await?;
        Ok(TenantPayload { client_mutation_id: input.client_mutation_id, tenant: Tenant(tenant) })
    }
}

//! Tenants: the `Tenant` type and the `tenant` query.

use async_graphql::{Context, ID, Object};

use crate::error::AppError;
use crate::graphql::{ids, viewer_and_loaders};
use crate::models::tenants::{self, License};

/// An organisation using casefile. Nothing of one tenant is visible to another.
pub struct Tenant(pub tenants::Tenant);

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
}

#[derive(Default)]
pub struct TenantQuery;

#[Object]
impl TenantQuery {
    /// The viewer's tenant.
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

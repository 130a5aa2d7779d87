//! One DataLoader per relation, built per request and scoped to the viewer's tenant, so
//! the number of SQL statements a request runs does not grow with the page size.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};

use crate::db::{DbPool, pool};
use crate::error::LoadError;
use crate::models::ids::{TenantId, UserId};
use crate::models::{tenants, users};

/// The loaders of one request.
pub struct Loaders {
    pub users: DataLoader<UserLoader>,
    pub tenants: DataLoader<TenantLoader>,
}

impl Loaders {
    pub fn new(db: DbPool, tenant: TenantId) -> Self {
        Self {
            users: DataLoader::new(UserLoader { db: db.clone(), tenant }, tokio::spawn),
            tenants: DataLoader::new(TenantLoader { db, tenant }, tokio::spawn),
        }
    }
}

/// Users of the viewer's tenant by id.
pub struct UserLoader {
    db: DbPool,
    tenant: TenantId,
}

impl Loader<UserId> for UserLoader {
    type Value = users::User;
    type Error = LoadError;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, Self::Value>, Self::Error> {
        let mut conn = pool::get(&self.db).await?;
        let rows = users::find_many(&mut conn, self.tenant, keys).await?;
        Ok(rows.into_iter().map(|u| (u.id, u)).collect())
    }
}

/// The viewer's own tenant; any other tenant id finds nothing.
pub struct TenantLoader {
    db: DbPool,
    tenant: TenantId,
}

impl Loader<TenantId> for TenantLoader {
    type Value = tenants::Tenant;
    type Error = LoadError;

    async fn load(&self, keys: &[TenantId]) -> Result<HashMap<TenantId, Self::Value>, Self::Error> {
        if !keys.contains(&self.tenant) {
            return Ok(HashMap::new());
        }
        let mut conn = pool::get(&self.db).await?;
        let tenant = tenants::find(&mut conn, self.tenant).await?;
        Ok(tenant.into_iter().map(|t| (t.id, t)).collect())
    }
}

//! Tenants: every row of casefile belongs to one.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::tenants;
use crate::models::ids::TenantId;

/// A product license a tenant holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum License {
    /// Extended detection and response: self-managed cases.
    Xdr,
    /// Managed detection and response: MDR service requests.
    Mdr,
    /// Managed Risk: Managed Risk service requests.
    ManagedRisk,
}

impl License {
    pub const fn as_str(self) -> &'static str {
        match self {
            License::Xdr => "XDR",
            License::Mdr => "MDR",
            License::ManagedRisk => "MANAGED_RISK",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "XDR" => Some(License::Xdr),
            "MDR" => Some(License::Mdr),
            "MANAGED_RISK" => Some(License::ManagedRisk),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = tenants, check_for_backend(diesel::pg::Pg))]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub licenses: Vec<Option<String>>,
    pub created_at: DateTime<Utc>,
}

impl Tenant {
    /// The licenses, in a stable order, ignoring any value this build does not know.
    pub fn licenses(&self) -> Vec<License> {
        let mut out: Vec<License> =
            self.licenses.iter().flatten().filter_map(|l| License::parse(l)).collect();
        out.sort_by_key(|l| *l as u8);
        out.dedup();
        out
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = tenants)]
pub struct NewTenant<'a> {
    pub id: TenantId,
    pub name: &'a str,
    pub licenses: Vec<Option<String>>,
}

impl<'a> NewTenant<'a> {
    /// A tenant with XDR and whichever extra licenses are given.
    pub fn new(name: &'a str, extra: &[License]) -> Self {
        let mut licenses = vec![License::Xdr];
        licenses.extend_from_slice(extra);
        licenses.sort_by_key(|l| *l as u8);
        licenses.dedup();
        Self {
            id: TenantId::new(),
            name,
            licenses: licenses.into_iter().map(|l| Some(l.as_str().to_owned())).collect(),
        }
    }
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewTenant<'_>) -> QueryResult<Tenant> {
    diesel::insert_into(tenants::table)
        .values(new)
        .returning(Tenant::as_returning())
        .get_result(conn)
        .await
}

pub async fn find(conn: &mut AsyncPgConnection, id: TenantId) -> QueryResult<Option<Tenant>> {
    tenants::table.find(id).select(Tenant::as_select()).first(conn).await.optional()
}

pub async fn count(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    tenants::table.count().get_result(conn).await
}

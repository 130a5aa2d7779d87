//! Tenants: every row of casefile belongs to one.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::tenants;
use crate::models::enums::{Severity, text_enum};
use crate::models::fold::fold;
use crate::models::ids::TenantId;

text_enum!(
    /// A product license a tenant holds.
    License {
        /// Extended detection and response: self-managed cases.
        Xdr = "XDR",
        /// Managed detection and response: MDR service requests.
        Mdr = "MDR",
        /// Managed Risk: Managed Risk service requests.
        ManagedRisk = "MANAGED_RISK",
    }
);

text_enum!(
    /// Who is mailed when a case's assignee changes.
    AssignmentMail {
        /// The assignees added and removed, and the one who made the change.
        All = "ALL",
        /// Only the one who made the change.
        ChangerOnly = "CHANGER_ONLY",
        /// Nobody.
        Never = "NEVER",
    }
);

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = tenants, check_for_backend(diesel::pg::Pg))]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub licenses: Vec<Option<License>>,
    pub created_at: DateTime<Utc>,
    /// Days after creation when a case is archived (90–365).
    pub archive_after_days: i32,
    /// Days after resolution when a case is deleted; `None`: never.
    pub delete_resolved_after_days: Option<i32>,
    /// Whether high-risk detections open automatic cases.
    pub auto_case_enabled: bool,
    /// The least severity that opens an automatic case.
    pub auto_case_min_severity: Severity,
    pub next_case_number: i32,
    /// Who gets a mail when a case is created (and a provider's messages on service
    /// requests): checked addresses, without duplicates ignoring case.
    pub case_created_recipients: Vec<String>,
    /// Who gets a mail when a case's assignee changes.
    pub assignment_mail: AssignmentMail,
}

/// Bounds of the tenant's policies.
pub const ARCHIVE_AFTER_DAYS: std::ops::RangeInclusive<i32> = 90..=365;
pub const DELETE_RESOLVED_AFTER_DAYS: std::ops::RangeInclusive<i32> = 1..=3650;

/// A change of the tenant's policies: `None` leaves a field alone.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = tenants)]
pub struct PolicyChanges {
    pub archive_after_days: Option<i32>,
    pub delete_resolved_after_days: Option<Option<i32>>,
    pub auto_case_enabled: Option<bool>,
    pub auto_case_min_severity: Option<Severity>,
}

impl Tenant {
    /// Whether the tenant holds `license`.
    pub fn has_license(&self, license: License) -> bool {
        self.licenses().contains(&license)
    }

    /// The licenses, in a stable order (an unknown stored license fails to load).
    pub fn licenses(&self) -> Vec<License> {
        let mut out: Vec<License> = self.licenses.iter().flatten().copied().collect();
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

/// Stores a tenant with its name's key (names are unique ignoring case).
pub async fn insert(conn: &mut AsyncPgConnection, new: &NewTenant<'_>) -> QueryResult<Tenant> {
    diesel::insert_into(tenants::table)
        .values((new, tenants::name_key.eq(fold(new.name))))
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

/// Changes the tenant's policies and returns the tenant.
pub async fn update_policies(
    conn: &mut AsyncPgConnection,
    id: TenantId,
    changes: &PolicyChanges,
) -> QueryResult<Tenant> {
    if changes.archive_after_days.is_none()
        && changes.delete_resolved_after_days.is_none()
        && changes.auto_case_enabled.is_none()
        && changes.auto_case_min_severity.is_none()
    {
        return tenants::table.find(id).select(Tenant::as_select()).first(conn).await;
    }
    diesel::update(tenants::table.find(id))
        .set(changes)
        .returning(Tenant::as_returning())
        .get_result(conn)
        .await
}

/// A change of the tenant's notification settings: `None` leaves a setting alone.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = tenants)]
pub struct NotificationChanges {
    pub case_created_recipients: Option<Vec<String>>,
    pub assignment_mail: Option<AssignmentMail>,
}

/// Changes the tenant's notification settings and returns the tenant.
pub async fn update_notifications(
    conn: &mut AsyncPgConnection,
    id: TenantId,
    changes: &NotificationChanges,
) -> QueryResult<Tenant> {
    if changes.case_created_recipients.is_none() && changes.assignment_mail.is_none() {
        return tenants::table.find(id).select(Tenant::as_select()).first(conn).await;
    }
    diesel::update(tenants::table.find(id))
        .set(changes)
        .returning(Tenant::as_returning())
        .get_result(conn)
        .await
}

/// Takes the tenant's next case number (the tenant row stays locked until the
/// transaction ends, so numbers are unique and never reused).
pub async fn take_case_number(conn: &mut AsyncPgConnection, id: TenantId) -> QueryResult<i32> {
    let next: i32 = diesel::update(tenants::table.find(id))
        .set(tenants::next_case_number.eq(tenants::next_case_number + 1))
        .returning(tenants::next_case_number)
        .get_result(conn)
        .await?;
    Ok(next - 1)
}

/// Locks the tenant's row for the rest of the transaction and returns it. Transactions
/// that lock the tenant and cases lock the tenant first, so they cannot deadlock.
///
/// The lock is `FOR NO KEY UPDATE`, the lock an `UPDATE` of the row takes: lockers (and
/// `take_case_number`) wait for each other, but rows inserted with a foreign key to the
/// tenant (which hold `FOR KEY SHARE` on it, as an ingestion's new detections do) do not
/// block it, so two ingestions cannot deadlock on the tenant.
pub async fn lock(conn: &mut AsyncPgConnection, id: TenantId) -> QueryResult<Option<Tenant>> {
    tenants::table
        .find(id)
        .select(Tenant::as_select())
        .for_no_key_update()
        .first(conn)
        .await
        .optional()
}

#[cfg(test)]
mod tests {
    use super::License;

    #[test]
    fn unknown_stored_licenses_fail_to_decode() {
        assert_eq!(License::from_stored("MANAGED_RISK").ok(), Some(License::ManagedRisk));
        assert!(License::from_stored("EDR").is_err());
    }
}

//! Cases: rows, inserts, changes and lookups. The list query is in `cases/list.rs`, the
//! rules a case's text must follow in `cases/rules.rs`.

pub mod list;
pub mod rules;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::cases;
use crate::models::enums::{CaseKind, CaseStatus, Resolution, Severity, SeverityRank};
use crate::models::fold::fold;
use crate::models::ids::{CaseId, SubjectId, TenantId, UserId};

/// Most detections one case may hold.
pub const MAX_DETECTIONS: i64 = 10_000;

/// The unique index on name keys that keeps case names unique per tenant, ignoring case.
pub const NAME_KEY: &str = "cases_tenant_name_key";

/// The columns of [`Case`], for statements written in SQL (the search vector stays behind).
pub const COLUMNS: &str = "id, tenant_id, number, kind, name, name_key, description, findings, \
    severity, status, resolution, auto_created, auto_rule_name, auto_device, assignee_id, \
    assignee_sort, subject_id, subject_sort, created_by_id, last_modified_by_id, created_at, \
    updated_at, resolved_at, archive_at, archived_at, delete_at, version, detection_count, \
    risk_critical, risk_high, risk_medium, risk_low, risk_informational, legal_hold_reason, \
    legal_hold_set_by_id, legal_hold_set_at";

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = cases, check_for_backend(diesel::pg::Pg))]
pub struct Case {
    pub id: CaseId,
    pub tenant_id: TenantId,
    pub number: i32,
    pub kind: CaseKind,
    pub name: String,
    pub name_key: String,
    pub description: Option<String>,
    pub findings: Option<String>,
    #[diesel(deserialize_as = SeverityRank)]
    pub severity: Option<Severity>,
    pub status: CaseStatus,
    pub resolution: Option<Resolution>,
    pub auto_created: bool,
    pub auto_rule_name: Option<String>,
    pub auto_device: Option<String>,
    pub assignee_id: Option<UserId>,
    pub assignee_sort: String,
    pub subject_id: Option<SubjectId>,
    pub subject_sort: String,
    pub created_by_id: Option<UserId>,
    pub last_modified_by_id: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub archive_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
    pub delete_at: Option<DateTime<Utc>>,
    pub version: i32,
    pub detection_count: i32,
    pub risk_critical: i32,
    pub risk_high: i32,
    pub risk_medium: i32,
    pub risk_low: i32,
    pub risk_informational: i32,
    /// While set, the case is never archived or deleted (by hand or by a job).
    pub legal_hold_reason: Option<String>,
    pub legal_hold_set_by_id: Option<UserId>,
    pub legal_hold_set_at: Option<DateTime<Utc>>,
}

impl Case {
    /// Whether the case is under legal hold.
    pub fn is_held(&self) -> bool {
        self.legal_hold_set_at.is_some()
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = cases)]
pub struct NewCase<'a> {
    pub id: CaseId,
    pub tenant_id: TenantId,
    pub number: i32,
    pub kind: CaseKind,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub severity: i16,
    pub status: CaseStatus,
    pub auto_created: bool,
    pub auto_rule_name: Option<&'a str>,
    pub auto_device: Option<&'a str>,
    pub assignee_id: Option<UserId>,
    pub assignee_sort: &'a str,
    pub subject_id: Option<SubjectId>,
    pub subject_sort: &'a str,
    pub created_by_id: Option<UserId>,
    pub last_modified_by_id: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archive_at: DateTime<Utc>,
}

/// A change to a case: `None` leaves a column alone, `Some(None)` clears it.
#[derive(Debug, Default, Clone, AsChangeset)]
#[diesel(table_name = cases)]
pub struct CaseChanges {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub findings: Option<Option<String>>,
    pub severity: Option<i16>,
    pub status: Option<CaseStatus>,
    pub resolution: Option<Option<Resolution>>,
    pub assignee_id: Option<Option<UserId>>,
    pub assignee_sort: Option<String>,
    pub subject_id: Option<Option<SubjectId>>,
    pub subject_sort: Option<String>,
    pub resolved_at: Option<Option<DateTime<Utc>>>,
    pub archived_at: Option<Option<DateTime<Utc>>>,
    pub delete_at: Option<Option<DateTime<Utc>>>,
    pub detection_count: Option<i32>,
    pub risk_critical: Option<i32>,
    pub risk_high: Option<i32>,
    pub risk_medium: Option<i32>,
    pub risk_low: Option<i32>,
    pub risk_informational: Option<i32>,
    pub legal_hold_reason: Option<Option<String>>,
    pub legal_hold_set_by_id: Option<Option<UserId>>,
    pub legal_hold_set_at: Option<Option<DateTime<Utc>>>,
}

impl CaseChanges {
    /// Sets every per-case aggregate from counts per severity rank (index 1–5).
    pub fn set_risk_counts(&mut self, by_rank: [i32; 6]) {
        self.detection_count = Some(by_rank.iter().sum());
        self.risk_informational = Some(by_rank[1]);
        self.risk_low = Some(by_rank[2]);
        self.risk_medium = Some(by_rank[3]);
        self.risk_high = Some(by_rank[4]);
        self.risk_critical = Some(by_rank[5]);
    }
}

/// Stores a case with its name's key (unique per tenant: [`NAME_KEY`]).
pub async fn insert(conn: &mut AsyncPgConnection, new: &NewCase<'_>) -> QueryResult<Case> {
    diesel::insert_into(cases::table)
        .values((new, cases::name_key.eq(fold(new.name))))
        .returning(Case::as_returning())
        .get_result(conn)
        .await
}

/// The new name's key, when `changes` renames the case.
fn name_key(changes: &CaseChanges) -> Option<diesel::dsl::Eq<cases::name_key, String>> {
    changes.name.as_deref().map(|name| cases::name_key.eq(fold(name)))
}

/// Applies `changes`, bumps the version and records who changed the case and when.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: CaseId,
    by: Option<UserId>,
    changes: &CaseChanges,
) -> QueryResult<Case> {
    diesel::update(cases::table.find(id))
        .set((
            changes,
            name_key(changes),
            cases::version.eq(cases::version + 1),
            cases::updated_at.eq(diesel::dsl::now),
            cases::last_modified_by_id.eq(by),
        ))
        .returning(Case::as_returning())
        .get_result(conn)
        .await
}

/// Applies changes the system makes (aggregates at creation) without a new version.
pub async fn apply(
    conn: &mut AsyncPgConnection,
    id: CaseId,
    changes: &CaseChanges,
) -> QueryResult<Case> {
    diesel::update(cases::table.find(id))
        .set((changes, name_key(changes)))
        .returning(Case::as_returning())
        .get_result(conn)
        .await
}

/// A case of the tenant, or `None` for an unknown id or another tenant's case.
pub async fn find(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: CaseId,
) -> QueryResult<Option<Case>> {
    cases::table
        .filter(cases::tenant_id.eq(tenant).and(cases::id.eq(id)))
        .select(Case::as_select())
        .first(conn)
        .await
        .optional()
}

/// The tenant's case with this number.
pub async fn find_by_number(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    number: i32,
) -> QueryResult<Option<Case>> {
    cases::table
        .filter(cases::tenant_id.eq(tenant).and(cases::number.eq(number)))
        .select(Case::as_select())
        .first(conn)
        .await
        .optional()
}

/// The tenant's cases among `ids`, in one statement (the DataLoader's query).
pub async fn find_many(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    ids: &[CaseId],
) -> QueryResult<Vec<Case>> {
    cases::table
        .filter(cases::tenant_id.eq(tenant).and(cases::id.eq_any(ids)))
        .select(Case::as_select())
        .load(conn)
        .await
}

/// Locks the tenant's case for the rest of the transaction and returns it.
pub async fn lock(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: CaseId,
) -> QueryResult<Option<Case>> {
    cases::table
        .filter(cases::tenant_id.eq(tenant).and(cases::id.eq(id)))
        .select(Case::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Locks the tenant's cases among `ids` (in id order, so concurrent callers cannot deadlock).
pub async fn lock_many(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    ids: &[CaseId],
) -> QueryResult<Vec<Case>> {
    cases::table
        .filter(cases::tenant_id.eq(tenant).and(cases::id.eq_any(ids)))
        .order(cases::id)
        .select(Case::as_select())
        .for_update()
        .load(conn)
        .await
}

/// Rewrites the assignee sort key of every case assigned to `user` (its display name
/// changed). The key is derived, so the cases' versions stay as they are.
pub async fn set_assignee_sort(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    user: UserId,
    display_name: &str,
) -> QueryResult<usize> {
    diesel::update(
        cases::table.filter(cases::tenant_id.eq(tenant)).filter(cases::assignee_id.eq(user)),
    )
    .set(cases::assignee_sort.eq(fold(display_name)))
    .execute(conn)
    .await
}

/// The open automatic case of this rule and device created on the UTC day of `day`.
pub async fn find_open_auto_case(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    rule_name: &str,
    device: &str,
    day: DateTime<Utc>,
) -> QueryResult<Option<Case>> {
    let start = day.date_naive().and_hms_opt(0, 0, 0).map(|d| d.and_utc()).unwrap_or(day);
    let end = start + chrono::Duration::days(1);
    cases::table
        .filter(cases::tenant_id.eq(tenant))
        .filter(cases::auto_created.eq(true))
        .filter(cases::auto_rule_name.eq(rule_name))
        .filter(cases::auto_device.eq(device))
        .filter(cases::created_at.ge(start).and(cases::created_at.lt(end)))
        .filter(cases::status.eq_any(CaseStatus::OPEN))
        .filter(cases::detection_count.lt(MAX_DETECTIONS as i32))
        .order(cases::created_at.desc())
        .select(Case::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Deletes these cases (their detection links go with them).
pub async fn delete_many(conn: &mut AsyncPgConnection, ids: &[CaseId]) -> QueryResult<usize> {
    diesel::delete(cases::table.filter(cases::id.eq_any(ids))).execute(conn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_column_list_is_the_rows_columns() {
        let select =
            diesel::debug_query::<diesel::pg::Pg, _>(&cases::table.select(Case::as_select()))
                .to_string();
        let listed: Vec<&str> = COLUMNS.split(',').map(str::trim).collect();
        for column in &listed {
            assert!(
                select.contains(&format!("\"cases\".\"{column}\"")),
                "{column} is not a column of Case"
            );
        }
        assert_eq!(select.matches("\"cases\".\"").count(), listed.len(), "{select}");
    }
}

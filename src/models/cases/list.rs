//! The case list: every filter and every order of `cases`, read with keyset pagination
//! (the sort key and the case number as tie-breaker; no OFFSET).

use chrono::{DateTime, Utc};
use diesel::{QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::models::enums::{CaseKind, CaseStatus, Resolution, Severity};
use crate::models::fold::fold;
use crate::models::ids::{CaseId, DetectionId, SubjectId, TenantId, UserId};
use crate::models::page::{self, Cursor, Direction, Key, KeyType, Page, PageRequest, Tie};
use crate::models::sql::{Bind, Count, Sql};

use super::Case;

/// A time range: `from` inclusive, `to` exclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TimeRange {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Which cases a list holds. Every field narrows the list; `None` does not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CaseFilter {
    pub statuses: Vec<CaseStatus>,
    pub kinds: Option<Vec<CaseKind>>,
    pub severities: Option<Vec<Severity>>,
    pub resolutions: Option<Vec<Resolution>>,
    pub assignee_ids: Option<Vec<UserId>>,
    pub unassigned: Option<bool>,
    pub subject_username: Option<String>,
    pub name_contains: Option<String>,
    pub search: Option<String>,
    pub created_at: TimeRange,
    pub updated_at: TimeRange,
    pub archive_at: TimeRange,
    pub has_detection: Option<DetectionId>,
    /// Only cases among these (a detection's cases).
    pub ids: Option<Vec<CaseId>>,
}

impl CaseFilter {
    /// Whether only the statuses narrow the list (the default list and its status tabs).
    /// Only such lists' statements are cached (`Sql::cache`): the statuses give two shapes
    /// (the open ones as a literal, or any set as a parameter), and with 10 orders × 2
    /// directions × with or without a cursor a list statement has 80 shapes, a count 2.
    /// Every other filter field doubles the shapes (the time ranges quadruple them).
    fn is_plain(&self) -> bool {
        *self == CaseFilter { statuses: self.statuses.clone(), ..CaseFilter::default() }
    }
}

/// The orders of the case list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum CaseOrderField {
    /// The case number.
    Number,
    /// The name, ignoring case.
    Name,
    /// The lifecycle: NEW, INVESTIGATING, ON_HOLD, ACTION_REQUIRED, RESOLVED, ARCHIVED.
    Status,
    /// None first, then INFORMATIONAL up to CRITICAL.
    Severity,
    /// The assignee's display name, ignoring case; unassigned first.
    Assignee,
    /// The subject's username; cases without a subject first.
    Subject,
    /// When the case was created.
    CreatedAt,
    /// When the case last changed.
    UpdatedAt,
    /// When the case is (or was) due to be archived.
    ArchiveAt,
    /// How many detections the case holds.
    DetectionCount,
}

impl CaseOrderField {
    /// The SQL expression of the sort key (each has an index led by the tenant id).
    const fn key_sql(self) -> &'static str {
        match self {
            CaseOrderField::Number => "number",
            CaseOrderField::Name => "name_key",
            CaseOrderField::Status => "status_rank",
            CaseOrderField::Severity => "severity",
            CaseOrderField::Assignee => "assignee_sort",
            CaseOrderField::Subject => "subject_sort",
            CaseOrderField::CreatedAt => "created_at",
            CaseOrderField::UpdatedAt => "updated_at",
            CaseOrderField::ArchiveAt => "archive_at",
            CaseOrderField::DetectionCount => "detection_count",
        }
    }

    const fn key_type(self) -> KeyType {
        match self {
            CaseOrderField::Name | CaseOrderField::Assignee | CaseOrderField::Subject => {
                KeyType::Text
            }
            CaseOrderField::CreatedAt | CaseOrderField::UpdatedAt | CaseOrderField::ArchiveAt => {
                KeyType::Time
            }
            _ => KeyType::Int,
        }
    }

    const fn tag(self) -> &'static str {
        match self {
            CaseOrderField::Number => "NUMBER",
            CaseOrderField::Name => "NAME",
            CaseOrderField::Status => "STATUS",
            CaseOrderField::Severity => "SEVERITY",
            CaseOrderField::Assignee => "ASSIGNEE",
            CaseOrderField::Subject => "SUBJECT",
            CaseOrderField::CreatedAt => "CREATED_AT",
            CaseOrderField::UpdatedAt => "UPDATED_AT",
            CaseOrderField::ArchiveAt => "ARCHIVE_AT",
            CaseOrderField::DetectionCount => "DETECTION_COUNT",
        }
    }

    /// The sort key of a case, as the database computes it.
    fn key_of(self, case: &Case) -> Key {
        match self {
            CaseOrderField::Number => Key::Int(case.number.into()),
            CaseOrderField::Name => Key::Text(case.name_key.clone()),
            CaseOrderField::Status => Key::Int(status_rank(case.status).into()),
            CaseOrderField::Severity => Key::Int(case.severity.map_or(0, Severity::rank).into()),
            CaseOrderField::Assignee => Key::Text(case.assignee_sort.clone()),
            CaseOrderField::Subject => Key::Text(case.subject_sort.clone()),
            CaseOrderField::CreatedAt => Key::Time(case.created_at),
            CaseOrderField::UpdatedAt => Key::Time(case.updated_at),
            CaseOrderField::ArchiveAt => Key::Time(case.archive_at),
            CaseOrderField::DetectionCount => Key::Int(case.detection_count.into()),
        }
    }
}

/// The lifecycle rank the `status_rank` column stores.
fn status_rank(status: CaseStatus) -> i16 {
    match status {
        CaseStatus::New => 0,
        CaseStatus::Investigating => 1,
        CaseStatus::OnHold => 2,
        CaseStatus::ActionRequired => 3,
        CaseStatus::Resolved => 4,
        CaseStatus::Archived => 5,
    }
}

/// An order of the case list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CaseOrder {
    pub field: CaseOrderField,
    pub direction: Direction,
}

impl Default for CaseOrder {
    fn default() -> Self {
        Self { field: CaseOrderField::UpdatedAt, direction: Direction::Desc }
    }
}

impl CaseOrder {
    /// The cursor of a case in this order.
    /// The cursor of `case` in this order (`Cursor::encode` gives its text).
    pub fn cursor(&self, case: &Case) -> Cursor {
        Cursor {
            order: self.tag(),
            key: self.field.key_of(case),
            tie: Tie::Number(case.number.into()),
        }
    }

    /// A cursor made by [`CaseOrder::cursor`] for this same order.
    pub fn decode_cursor(&self, text: &str) -> Option<Cursor> {
        Cursor::decode(text, &self.tag(), self.field.key_type(), true)
    }

    fn tag(&self) -> String {
        format!("case:{}:{}", self.field.tag(), self.direction.sql())
    }
}

/// Whether `statuses` are exactly the open ones (the list's default), in any order.
fn is_open_set(statuses: &[CaseStatus]) -> bool {
    CaseStatus::OPEN.iter().all(|s| statuses.contains(s)) && statuses.iter().all(|s| s.is_open())
}

/// Appends the filter's conditions to a statement over `cases`.
fn push_filter(sql: &mut Sql, tenant: TenantId, filter: &CaseFilter) {
    sql.push(" WHERE tenant_id = ").bind(Bind::Uuid(tenant.0));
    let texts =
        |values: &[&'static str]| Bind::Texts(values.iter().map(|s| (*s).to_owned()).collect());
    if is_open_set(&filter.statuses) {
        // Written as a literal: the planner then reads the partial indexes of the open
        // cases (`cases_open_*`, `WHERE status_rank < 4`), whatever the plan cache does.
        sql.push(" AND status_rank < 4");
    } else {
        let statuses: Vec<&'static str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        sql.push(" AND status = ANY(").bind(texts(&statuses)).push(")");
    }
    if let Some(kinds) = &filter.kinds {
        let kinds: Vec<&'static str> = kinds.iter().map(|k| k.as_str()).collect();
        sql.push(" AND kind = ANY(").bind(texts(&kinds)).push(")");
    }
    if let Some(severities) = &filter.severities {
        let ranks = severities.iter().map(|s| s.rank()).collect();
        sql.push(" AND severity = ANY(").bind(Bind::SmallInts(ranks)).push(")");
    }
    if let Some(resolutions) = &filter.resolutions {
        let values: Vec<&'static str> = resolutions.iter().map(|r| r.as_str()).collect();
        sql.push(" AND resolution = ANY(").bind(texts(&values)).push(")");
    }
    match (&filter.assignee_ids, filter.unassigned) {
        (Some(ids), Some(true)) => {
            let ids = ids.iter().map(|id| id.0).collect();
            sql.push(" AND (assignee_id = ANY(")
                .bind(Bind::Uuids(ids))
                .push(") OR assignee_id IS NULL)");
        }
        (Some(ids), unassigned) => {
            let ids = ids.iter().map(|id| id.0).collect();
            sql.push(" AND assignee_id = ANY(").bind(Bind::Uuids(ids)).push(")");
            if unassigned == Some(false) {
                sql.push(" AND assignee_id IS NOT NULL");
            }
        }
        (None, Some(true)) => {
            sql.push(" AND assignee_id IS NULL");
        }
        (None, Some(false)) => {
            sql.push(" AND assignee_id IS NOT NULL");
        }
        (None, None) => {}
    }
    if let Some(username) = &filter.subject_username {
        sql.push(" AND subject_sort = ").bind(Bind::Text(fold(username.trim())));
    }
    if let Some(text) = &filter.name_contains {
        sql.push(" AND strpos(name_key, ").bind(Bind::Text(fold(text))).push(") > 0");
    }
    if let Some(words) = filter.search.as_deref().map(str::trim).filter(|w| !w.is_empty()) {
        sql.push(" AND search @@ plainto_tsquery('simple', ")
            .bind(Bind::Text(words.to_owned()))
            .push(")");
    }
    push_range(sql, "created_at", filter.created_at);
    push_range(sql, "updated_at", filter.updated_at);
    push_range(sql, "archive_at", filter.archive_at);
    if let Some(detection) = filter.has_detection {
        sql.push(" AND EXISTS (SELECT 1 FROM case_detections cd WHERE cd.case_id = cases.id AND cd.detection_id = ")
            .bind(Bind::Uuid(detection.0))
            .push(")");
    }
    if let Some(ids) = &filter.ids {
        let ids = ids.iter().map(|id| id.0).collect();
        sql.push(" AND id = ANY(").bind(Bind::Uuids(ids)).push(")");
    }
}

/// Appends `column >= from AND column < to` for the bounds that are set.
pub(crate) fn push_range(sql: &mut Sql, column: &str, range: TimeRange) {
    if let Some(from) = range.from {
        sql.push(&format!(" AND {column} >= ")).bind(Bind::Time(from));
    }
    if let Some(to) = range.to {
        sql.push(&format!(" AND {column} < ")).bind(Bind::Time(to));
    }
}

/// One page of the tenant's cases matching `filter`, in `order`.
pub async fn page(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    filter: &CaseFilter,
    order: CaseOrder,
    request: &PageRequest,
) -> QueryResult<Page<Case>> {
    let mut sql = Sql::new(&format!("SELECT {} FROM cases", super::COLUMNS));
    push_filter(&mut sql, tenant, filter);
    page::push_keyset(&mut sql, order.field.key_sql(), "number", order.direction, request);
    sql.cache(filter.is_plain());
    let rows: Vec<Case> = sql.into_query().load(conn).await?;
    Ok(Page::from_scan(rows, request))
}

/// A case of a page with the number of cases the whole list holds.
#[derive(Debug, QueryableByName)]
struct Counted {
    #[diesel(embed)]
    case: Case,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    total_count: i64,
}

/// Like [`page`], with how many cases match `filter` (`totalCount`) from the same
/// statement (the count is a sub-query run once). An empty page has no row to carry it:
/// then it is counted by a second statement.
pub async fn page_and_count(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    filter: &CaseFilter,
    order: CaseOrder,
    request: &PageRequest,
) -> QueryResult<(Page<Case>, i64)> {
    let sql = page_and_count_sql(tenant, filter, order, request);
    let rows: Vec<Counted> = sql.into_query().load(conn).await?;
    let total = match <[Counted]>::first(&rows) {
        Some(row) => row.total_count,
        None => count(conn, tenant, filter).await?,
    };
    let rows = rows.into_iter().map(|r| r.case).collect();
    Ok((Page::from_scan(rows, request), total))
}

/// The statement of [`page_and_count`] (public for the plan tests): with the default
/// filter both the page and the count read a partial index of the open cases.
pub fn page_and_count_sql(
    tenant: TenantId,
    filter: &CaseFilter,
    order: CaseOrder,
    request: &PageRequest,
) -> Sql {
    let mut sql = Sql::new(&format!("SELECT {}, (SELECT count(*) FROM cases", super::COLUMNS));
    push_filter(&mut sql, tenant, filter);
    sql.push(") AS total_count FROM cases");
    push_filter(&mut sql, tenant, filter);
    page::push_keyset(&mut sql, order.field.key_sql(), "number", order.direction, request);
    sql.cache(filter.is_plain());
    sql
}

/// How many of the tenant's cases match `filter`.
pub async fn count(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    filter: &CaseFilter,
) -> QueryResult<i64> {
    let mut sql = Sql::new("SELECT count(*) AS count FROM cases");
    push_filter(&mut sql, tenant, filter);
    sql.cache(filter.is_plain());
    let row: Count = sql.into_query().get_result(conn).await?;
    Ok(row.count)
}

/// A row of a nested list: the case and its parent (the subject) as text.
#[derive(Debug, QueryableByName)]
struct Ranked {
    #[diesel(embed)]
    case: Case,
    #[diesel(sql_type = diesel::sql_types::Text)]
    parent_key: String,
}

/// One page per subject of its cases matching `filter`, in one statement. Keys of the
/// map: subject ids as text.
pub async fn pages_by_subject(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    subjects: &[SubjectId],
    filter: &CaseFilter,
    order: CaseOrder,
    request: &PageRequest,
) -> QueryResult<std::collections::HashMap<String, Page<Case>>> {
    let key = order.field.key_sql();
    let mut inner = Sql::new(" FROM cases");
    push_filter(&mut inner, tenant, filter);
    inner
        .push(" AND subject_id = ANY(")
        .bind(Bind::Uuids(subjects.iter().map(|s| s.0).collect()))
        .push(")");
    page::push_after(&mut inner, key, "number", order.direction, request);
    let mut sql =
        page::window(inner, super::COLUMNS, "subject_id", key, "number", order.direction, request);
    sql.cache(filter.is_plain());
    let rows: Vec<Ranked> = sql.into_query().load(conn).await?;
    let rows = rows.into_iter().map(|r| (r.parent_key, r.case)).collect();
    Ok(page::pages_by_parent(rows, request))
}

/// A count per subject.
#[derive(Debug, QueryableByName)]
struct SubjectCount {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    subject_id: SubjectId,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

/// How many cases match `filter` per subject, in one statement.
pub async fn counts_by_subject(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    subjects: &[SubjectId],
    filter: &CaseFilter,
) -> QueryResult<std::collections::HashMap<SubjectId, i64>> {
    let mut sql = Sql::new("SELECT subject_id, count(*) AS count FROM cases");
    push_filter(&mut sql, tenant, filter);
    sql.push(" AND subject_id = ANY(")
        .bind(Bind::Uuids(subjects.iter().map(|s| s.0).collect()))
        .push(") GROUP BY subject_id")
        .cache(filter.is_plain());
    let rows: Vec<SubjectCount> = sql.into_query().load(conn).await?;
    Ok(rows.into_iter().map(|r| (r.subject_id, r.count)).collect())
}

#[derive(Debug, QueryableByName)]
struct IdRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: crate::models::ids::CaseId,
}

/// The ids of (at most `limit` of) the tenant's cases matching `filter`, in one statement;
/// with `filter.ids` set, which of those match (a live list asks per event).
pub async fn matching_ids(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    filter: &CaseFilter,
    limit: i64,
) -> QueryResult<Vec<crate::models::ids::CaseId>> {
    let mut sql = Sql::new("SELECT id FROM cases");
    push_filter(&mut sql, tenant, filter);
    sql.push(" LIMIT ").bind(Bind::Int(limit));
    let rows: Vec<IdRow> = sql.into_query().load(conn).await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_statuses_are_exactly_the_ranks_below_four() {
        for status in CaseStatus::ALL {
            assert_eq!(status.is_open(), status_rank(*status) < 4, "{status:?}");
        }
        assert!(is_open_set(&CaseStatus::OPEN));
        let mut reversed = CaseStatus::OPEN.to_vec();
        reversed.reverse();
        reversed.push(CaseStatus::New);
        assert!(is_open_set(&reversed));
        assert!(!is_open_set(&CaseStatus::OPEN[..3]));
        assert!(!is_open_set(&[CaseStatus::OPEN.as_slice(), &[CaseStatus::Resolved]].concat()));
    }
}

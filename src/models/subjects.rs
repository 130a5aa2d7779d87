//! Subjects: the people under investigation, one per username (email) per tenant.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::subjects;
use crate::models::fold::{fold, fold_opt};
use crate::models::ids::{SubjectId, TenantId};
use crate::models::page::{self, Cursor, Direction, Key, KeyType, Page, PageRequest, Tie};
use crate::models::sql::{Bind, Count, Sql};

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = subjects, check_for_backend(diesel::pg::Pg))]
pub struct Subject {
    pub id: SubjectId,
    pub tenant_id: TenantId,
    pub username: String,
    pub display_name: Option<String>,
    pub department: Option<String>,
    pub title: Option<String>,
    pub location: Option<String>,
    pub manager_username: Option<String>,
    pub departure_date: Option<NaiveDate>,
    pub watchlists: Vec<Option<String>>,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The username's key (`models::fold`): unique per tenant, lookups and the list order;
    /// detections name the subject by the same key (`actor_key`).
    pub username_key: String,
    /// The department's key, for the department filter.
    pub department_key: Option<String>,
}

impl Subject {
    /// The sort and lookup key of the username.
    pub fn key(&self) -> String {
        self.username_key.clone()
    }
}

/// The profile fields of a subject: `None` leaves a field alone (on update) or unset
/// (on insert).
#[derive(Debug, Default, Clone, AsChangeset, Insertable)]
#[diesel(table_name = subjects)]
pub struct SubjectChanges {
    pub display_name: Option<Option<String>>,
    pub department: Option<Option<String>>,
    pub title: Option<Option<String>>,
    pub location: Option<Option<String>>,
    pub manager_username: Option<Option<String>>,
    pub departure_date: Option<Option<NaiveDate>>,
    pub watchlists: Option<Vec<Option<String>>>,
    pub notes: Option<Option<String>>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = subjects)]
struct NewSubject<'a> {
    id: SubjectId,
    tenant_id: TenantId,
    username: &'a str,
    username_key: String,
}

/// Creates the subject with this username, or changes the one that exists (ignoring the
/// username's case), in one statement: concurrent first upserts of one username meet on
/// the unique key and all get the same subject. Returns it and whether it was created.
pub async fn upsert(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    username: &str,
    changes: &SubjectChanges,
) -> QueryResult<(Subject, bool)> {
    let department_key = changes
        .department
        .as_ref()
        .map(|department| subjects::department_key.eq(fold_opt(department.as_deref())));
    let new = NewSubject {
        id: SubjectId::new(),
        tenant_id: tenant,
        username,
        username_key: fold(username),
    };
    diesel::insert_into(subjects::table)
        .values((new, changes, department_key.clone()))
        .on_conflict((subjects::tenant_id, subjects::username_key))
        .do_update()
        .set((changes, department_key, subjects::updated_at.eq(diesel::dsl::now)))
        // xmax is 0 on a row this statement inserted, and set on one it updated.
        .returning((
            Subject::as_returning(),
            diesel::dsl::sql::<diesel::sql_types::Bool>("xmax = 0"),
        ))
        .get_result(conn)
        .await
}

/// The tenant's subject with this username, ignoring case, locked until the transaction ends.
pub async fn lock_by_username(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    username: &str,
) -> QueryResult<Option<Subject>> {
    subjects::table
        .filter(subjects::tenant_id.eq(tenant))
        .filter(subjects::username_key.eq(fold(username.trim())))
        .select(Subject::as_select())
        .for_no_key_update()
        .first(conn)
        .await
        .optional()
}

/// The tenant's subject with this username, ignoring case.
pub async fn find_by_username(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    username: &str,
) -> QueryResult<Option<Subject>> {
    subjects::table
        .filter(subjects::tenant_id.eq(tenant))
        .filter(subjects::username_key.eq(fold(username.trim())))
        .select(Subject::as_select())
        .first(conn)
        .await
        .optional()
}

/// The tenant's subjects whose username keys are among `keys`, in one statement.
pub async fn find_by_usernames(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    keys: &[String],
) -> QueryResult<Vec<Subject>> {
    subjects::table
        .filter(subjects::tenant_id.eq(tenant))
        .filter(subjects::username_key.eq_any(keys))
        .select(Subject::as_select())
        .load(conn)
        .await
}

/// The tenant's subjects among `ids`, in one statement.
pub async fn find_many(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    ids: &[SubjectId],
) -> QueryResult<Vec<Subject>> {
    subjects::table
        .filter(subjects::tenant_id.eq(tenant).and(subjects::id.eq_any(ids)))
        .select(Subject::as_select())
        .load(conn)
        .await
}

/// Which subjects a list holds.
#[derive(Debug, Clone, Default)]
pub struct SubjectFilter {
    pub username_contains: Option<String>,
    pub department: Option<String>,
    pub watchlist: Option<String>,
}

fn push_filter(sql: &mut Sql, tenant: TenantId, filter: &SubjectFilter) {
    sql.push(" WHERE tenant_id = ").bind(Bind::Uuid(tenant.0));
    if let Some(text) = &filter.username_contains {
        sql.push(" AND strpos(username_key, ").bind(Bind::Text(fold(text))).push(") > 0");
    }
    if let Some(department) = &filter.department {
        sql.push(" AND department_key = ").bind(Bind::Text(fold(department.trim())));
    }
    if let Some(watchlist) = &filter.watchlist {
        sql.push(" AND watchlists @> ARRAY[")
            .bind(Bind::Text(watchlist.trim().to_owned()))
            .push("]");
    }
}

/// The cursor of a subject in the list (ordered by username).
pub fn cursor(subject: &Subject) -> String {
    Cursor { order: "subject".into(), key: Key::Text(subject.key()), tie: Tie::Id(subject.id.0) }
        .encode()
}

pub fn decode_cursor(text: &str) -> Option<Cursor> {
    Cursor::decode(text, "subject", KeyType::Text, false)
}

/// One page of the tenant's subjects, by username.
pub async fn page(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    filter: &SubjectFilter,
    request: &PageRequest,
) -> QueryResult<Page<Subject>> {
    let mut sql = Sql::new("SELECT * FROM subjects");
    push_filter(&mut sql, tenant, filter);
    page::push_keyset(&mut sql, "username_key", "id", Direction::Asc, request);
    // 8 filters (three optional fields) × with or without a cursor: 16 shapes.
    sql.cache(true);
    let rows: Vec<Subject> = sql.into_query().load(conn).await?;
    Ok(Page::from_scan(rows, request))
}

pub async fn count(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    filter: &SubjectFilter,
) -> QueryResult<i64> {
    let mut sql = Sql::new("SELECT count(*) AS count FROM subjects");
    push_filter(&mut sql, tenant, filter);
    // 8 shapes (three optional fields).
    sql.cache(true);
    let row: Count = sql.into_query().get_result(conn).await?;
    Ok(row.count)
}

//! Users of a tenant and their roles.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::users;
use crate::models::enums::text_enum;
use crate::models::fold::fold;
use crate::models::ids::{TenantId, UserId};
use crate::models::page::{self, Cursor, Direction, Key, KeyType, Page, PageRequest, Tie};
use crate::models::sql::{Bind, Count, Sql};

text_enum!(
    /// What a user may do in its tenant (DESIGN.md's role table). Only ADMIN and ANALYST
    /// users can be assigned cases.
    Role {
        /// Everything in its tenant: users, tokens, policies, every case action.
        Admin = "ADMIN",
        /// Creates, edits, resolves, archives and deletes cases; detections, subjects, messages.
        Analyst = "ANALYST",
        /// A partner or enterprise super admin: reads and edits, never resolves or deletes a case.
        SuperAdmin = "SUPER_ADMIN",
        /// Reads.
        ReadOnly = "READ_ONLY",
        /// A member of the MDR / Managed Risk team: reads, posts messages, sets the status of service requests.
        ProviderAnalyst = "PROVIDER_ANALYST",
        /// An integration: ingests detections and uploads file contents, nothing else.
        Ingest = "INGEST",
    }
);

impl Role {
    /// Only admins and analysts can be a case's assignee.
    pub const fn assignable(self) -> bool {
        matches!(self, Role::Admin | Role::Analyst)
    }

    /// Whether this role may read the tenant's data through the API.
    pub const fn can_read(self) -> bool {
        !matches!(self, Role::Ingest)
    }
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// The e-mail's key (`models::fold`): unique per tenant, the list's order.
    pub email_key: String,
    /// A deactivated user's tokens stop working and it cannot be assigned.
    pub active: bool,
}

impl User {
    /// Whether cases can be assigned to this user: an active admin or analyst.
    pub fn assignable(&self) -> bool {
        self.active && self.role.assignable()
    }

    /// Whether this user counts toward the tenant's active admins.
    pub fn is_active_admin(&self) -> bool {
        self.active && self.role == Role::Admin
    }
}

/// A change to a user: `None` leaves a column alone.
#[derive(Debug, Default, Clone, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    pub active: Option<bool>,
}

impl UserChanges {
    pub fn is_empty(&self) -> bool {
        self.display_name.is_none() && self.role.is_none() && self.active.is_none()
    }
}

/// Changes a user of the tenant; `None` when there is no such user.
pub async fn update(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: UserId,
    changes: &UserChanges,
) -> QueryResult<Option<User>> {
    diesel::update(users::table.filter(users::tenant_id.eq(tenant).and(users::id.eq(id))))
        .set(changes)
        .returning(User::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// How many active admins the tenant has. Callers that may remove one hold the tenant's
/// lock (`tenants::lock`), so two such changes cannot both see the other admin.
pub async fn count_active_admins(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
) -> QueryResult<i64> {
    users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::role.eq(Role::Admin))
        .filter(users::active.eq(true))
        .count()
        .get_result(conn)
        .await
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: &'a str,
    pub display_name: &'a str,
    pub role: Role,
}

/// Stores a user with its e-mail's key (unique per tenant: [`EMAIL_UNIQUE`]).
pub async fn insert(conn: &mut AsyncPgConnection, new: &NewUser<'_>) -> QueryResult<User> {
    diesel::insert_into(users::table)
        .values((new, users::email_key.eq(fold(new.email))))
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

/// A user of the tenant, or `None` for an unknown id or another tenant's user.
pub async fn find(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: UserId,
) -> QueryResult<Option<User>> {
    users::table
        .filter(users::tenant_id.eq(tenant).and(users::id.eq(id)))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

/// The tenant's users among `ids`, in one statement (the DataLoader's query).
pub async fn find_many(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    ids: &[UserId],
) -> QueryResult<Vec<User>> {
    users::table
        .filter(users::tenant_id.eq(tenant).and(users::id.eq_any(ids)))
        .select(User::as_select())
        .load(conn)
        .await
}

/// A user by id in any tenant: for the operator's CLI only, never for API requests.
pub async fn find_any(conn: &mut AsyncPgConnection, id: UserId) -> QueryResult<Option<User>> {
    users::table.find(id).select(User::as_select()).first(conn).await.optional()
}

/// The unique index on e-mail keys within a tenant (e-mails are unique ignoring case).
pub const EMAIL_UNIQUE: &str = "users_tenant_email_key";

/// The roles that can be assignees, as stored.
const ASSIGNABLE_ROLES: [&str; 2] = ["ADMIN", "ANALYST"];

fn push_filter(sql: &mut Sql, tenant: TenantId, assignable: Option<bool>) {
    sql.push(" WHERE tenant_id = ").bind(Bind::Uuid(tenant.0));
    let roles = Bind::Texts(ASSIGNABLE_ROLES.iter().map(|r| (*r).to_owned()).collect());
    match assignable {
        Some(true) => {
            sql.push(" AND active AND role = ANY(").bind(roles).push(")");
        }
        Some(false) => {
            sql.push(" AND NOT (active AND role = ANY(").bind(roles).push("))");
        }
        None => {}
    }
}

/// The cursor of a user in the list (ordered by email).
pub fn cursor(user: &User) -> String {
    Cursor { order: "user".into(), key: Key::Text(user.email_key.clone()), tie: Tie::Id(user.id.0) }
        .encode()
}

pub fn decode_cursor(text: &str) -> Option<Cursor> {
    Cursor::decode(text, "user", KeyType::Text, false)
}

/// One page of the tenant's users by email; `assignable` keeps only (or no) assignees.
pub async fn page(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    assignable: Option<bool>,
    request: &PageRequest,
) -> QueryResult<Page<User>> {
    let mut sql = Sql::new("SELECT * FROM users");
    push_filter(&mut sql, tenant, assignable);
    page::push_keyset(&mut sql, "email_key", "id", Direction::Asc, request);
    // 3 filters × with or without a cursor: 6 shapes.
    sql.cache(true);
    let rows: Vec<User> = sql.into_query().load(conn).await?;
    Ok(Page::from_scan(rows, request))
}

pub async fn count(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    assignable: Option<bool>,
) -> QueryResult<i64> {
    let mut sql = Sql::new("SELECT count(*) AS count FROM users");
    push_filter(&mut sql, tenant, assignable);
    // 3 shapes.
    sql.cache(true);
    let row: Count = sql.into_query().get_result(conn).await?;
    Ok(row.count)
}

#[cfg(test)]
mod tests {
    use super::Role;

    #[test]
    fn unknown_stored_roles_fail_to_decode() {
        for &role in Role::ALL {
            assert_eq!(Role::from_stored(role.as_str()).ok(), Some(role));
        }
        assert!(Role::from_stored("OWNER").is_err());
        assert!(Role::from_stored("admin").is_err());
    }
}

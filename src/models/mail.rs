//! What mail notifications read besides cases, users and messages: the devices a case's
//! detections were seen on, and a tenant's provider analysts. Every query is confined to
//! one tenant.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Uuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::users;
use crate::models::ids::{CaseId, TenantId};
use crate::models::users::{Role, User};

/// The devices of a case's detections: the first names (by name) and how many there are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Devices {
    pub names: Vec<String>,
    pub total: i64,
}

#[derive(QueryableByName)]
struct DeviceRow {
    #[diesel(sql_type = Text)]
    device: String,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// The distinct devices (hostname, else IP address, else device id) of the detections on
/// the case, the first `limit` by name, with their total count. One statement.
pub async fn case_devices(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    case: CaseId,
    limit: i64,
) -> QueryResult<Devices> {
    let rows: Vec<DeviceRow> = diesel::sql_query(
        "SELECT device, count(*) OVER () AS total FROM ( \
           SELECT DISTINCT coalesce(d.device_hostname, d.device_ip, d.device_id) AS device \
           FROM case_detections cd \
           JOIN detections d ON d.tenant_id = cd.tenant_id AND d.id = cd.detection_id \
           WHERE cd.tenant_id = $1 AND cd.case_id = $2) AS devices \
         WHERE device IS NOT NULL \
         ORDER BY device LIMIT $3",
    )
    .bind::<Uuid, _>(tenant.0)
    .bind::<Uuid, _>(case.0)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    let total = rows.as_slice().first().map_or(0, |r| r.total);
    Ok(Devices { names: rows.into_iter().map(|r| r.device).collect(), total })
}

/// The tenant's active PROVIDER_ANALYST users (the provider's side of service requests).
pub async fn provider_analysts(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
) -> QueryResult<Vec<User>> {
    users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::role.eq(Role::ProviderAnalyst))
        .filter(users::active.eq(true))
        .order(users::email_key.asc())
        .select(User::as_select())
        .load(conn)
        .await
}

/// The name of the mail channel's cursors (`delivery_cursors.channel`).
pub const CHANNEL: &str = "mail";

/// Opens the mail cursor of every tenant that has none: at the tenant's head for a tenant
/// created before `since` (mail was off, or not yet set up: nothing is owed), at the
/// start of its log for one created since (all of its events happened with mail on).
/// Returns how many it opened. One statement.
pub async fn open_cursors(
    conn: &mut AsyncPgConnection,
    since: chrono::DateTime<chrono::Utc>,
) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO delivery_cursors (tenant_id, channel, sequence) \
         SELECT h.tenant_id, $1, CASE WHEN t.created_at >= $2 THEN 0 ELSE h.last_sequence END \
         FROM audit_heads h JOIN tenants t ON t.id = h.tenant_id \
         WHERE NOT EXISTS (SELECT 1 FROM delivery_cursors c \
                           WHERE c.tenant_id = h.tenant_id AND c.channel = $1) \
         ON CONFLICT (tenant_id, channel) DO NOTHING",
    )
    .bind::<Text, _>(CHANNEL)
    .bind::<diesel::sql_types::Timestamptz, _>(since)
    .execute(conn)
    .await
}

/// Removes every tenant's mail cursor (mail is off: nothing is owed for that time).
pub async fn close_cursors(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    diesel::sql_query("DELETE FROM delivery_cursors WHERE channel = $1")
        .bind::<Text, _>(CHANNEL)
        .execute(conn)
        .await
}

/// The database's clock now.
pub async fn now(conn: &mut AsyncPgConnection) -> QueryResult<chrono::DateTime<chrono::Utc>> {
    diesel::select(diesel::dsl::now.into_sql::<diesel::sql_types::Timestamptz>())
        .get_result(conn)
        .await
}

//! Bulk writes for `casefile seed`: rows arrive column by column and go in with one
//! `INSERT ... SELECT FROM unnest(...)` per table and batch (a handful of array binds
//! instead of one bind per value), so a million rows take a few hundred statements.
//! The caller (`domain::seed`) computes every derived column (keys, sort keys, per-case
//! aggregates) exactly as the API does; nothing here derives anything.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, Bool, Int2, Int4, Int8, Jsonb, Nullable, Text, Timestamptz, Uuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// Tenants with their policies and their next case number.
#[derive(Debug, Default)]
pub struct TenantRows {
    pub id: Vec<uuid::Uuid>,
    pub name: Vec<String>,
    pub name_key: Vec<String>,
    pub created_at: Vec<DateTime<Utc>>,
    pub archive_after_days: Vec<i32>,
    pub delete_resolved_after_days: Vec<i32>,
    pub next_case_number: Vec<i32>,
}

pub async fn insert_tenants(conn: &mut AsyncPgConnection, rows: &TenantRows) -> QueryResult {
    diesel::sql_query(
        "INSERT INTO tenants (id, name, name_key, created_at, archive_after_days, \
         delete_resolved_after_days, next_case_number) \
         SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind::<Array<Uuid>, _>(&rows.id)
    .bind::<Array<Text>, _>(&rows.name)
    .bind::<Array<Text>, _>(&rows.name_key)
    .bind::<Array<Timestamptz>, _>(&rows.created_at)
    .bind::<Array<Int4>, _>(&rows.archive_after_days)
    .bind::<Array<Int4>, _>(&rows.delete_resolved_after_days)
    .bind::<Array<Int4>, _>(&rows.next_case_number)
    .execute(conn)
    .await
}

/// Users of one tenant.
#[derive(Debug, Default)]
pub struct UserRows {
    pub id: Vec<uuid::Uuid>,
    pub email: Vec<String>,
    pub email_key: Vec<String>,
    pub display_name: Vec<String>,
    pub role: Vec<String>,
    pub created_at: Vec<DateTime<Utc>>,
}

pub async fn insert_users(
    conn: &mut AsyncPgConnection,
    tenant: uuid::Uuid,
    rows: &UserRows,
) -> QueryResult {
    diesel::sql_query(
        "INSERT INTO users (tenant_id, id, email, email_key, display_name, role, created_at) \
         SELECT $1, * FROM unnest($2, $3, $4, $5, $6, $7)",
    )
    .bind::<Uuid, _>(tenant)
    .bind::<Array<Uuid>, _>(&rows.id)
    .bind::<Array<Text>, _>(&rows.email)
    .bind::<Array<Text>, _>(&rows.email_key)
    .bind::<Array<Text>, _>(&rows.display_name)
    .bind::<Array<Text>, _>(&rows.role)
    .bind::<Array<Timestamptz>, _>(&rows.created_at)
    .execute(conn)
    .await
}

/// Subjects of one tenant.
#[derive(Debug, Default)]
pub struct SubjectRows {
    pub id: Vec<uuid::Uuid>,
    pub username: Vec<String>,
    pub username_key: Vec<String>,
    pub display_name: Vec<Option<String>>,
    pub department: Vec<Option<String>>,
    pub department_key: Vec<Option<String>>,
    pub title: Vec<Option<String>>,
    pub location: Vec<Option<String>>,
    pub created_at: Vec<DateTime<Utc>>,
}

pub async fn insert_subjects(
    conn: &mut AsyncPgConnection,
    tenant: uuid::Uuid,
    rows: &SubjectRows,
) -> QueryResult {
    diesel::sql_query(
        "INSERT INTO subjects (tenant_id, id, username, username_key, display_name, department, \
         department_key, title, location, created_at, updated_at) \
         SELECT $1, u.*, u.created_at FROM unnest($2, $3, $4, $5, $6, $7, $8, $9, $10) \
         AS u(id, username, username_key, display_name, department, department_key, title, \
         location, created_at)",
    )
    .bind::<Uuid, _>(tenant)
    .bind::<Array<Uuid>, _>(&rows.id)
    .bind::<Array<Text>, _>(&rows.username)
    .bind::<Array<Text>, _>(&rows.username_key)
    .bind::<Array<Nullable<Text>>, _>(&rows.display_name)
    .bind::<Array<Nullable<Text>>, _>(&rows.department)
    .bind::<Array<Nullable<Text>>, _>(&rows.department_key)
    .bind::<Array<Nullable<Text>>, _>(&rows.title)
    .bind::<Array<Nullable<Text>>, _>(&rows.location)
    .bind::<Array<Timestamptz>, _>(&rows.created_at)
    .execute(conn)
    .await
}

/// Detections of one tenant (the severity is the database's generated column).
#[derive(Debug, Default)]
pub struct DetectionRows {
    pub id: Vec<uuid::Uuid>,
    pub external_id: Vec<String>,
    pub source: Vec<String>,
    pub rule_name: Vec<String>,
    pub rule_name_key: Vec<String>,
    pub description: Vec<Option<String>>,
    pub observed_at: Vec<DateTime<Utc>>,
    pub ingested_at: Vec<DateTime<Utc>>,
    pub risk_score: Vec<i32>,
    pub risk_indicators: Vec<serde_json::Value>,
    pub device_id: Vec<Option<String>>,
    pub device_hostname: Vec<Option<String>>,
    pub device_hostname_key: Vec<Option<String>>,
    pub device_type: Vec<Option<String>>,
    pub device_ip: Vec<Option<String>>,
    pub actor: Vec<Option<String>>,
    pub actor_key: Vec<Option<String>>,
    pub mitre: Vec<serde_json::Value>,
    pub file_name: Vec<Option<String>>,
    pub file_path: Vec<Option<String>>,
    pub file_size: Vec<Option<i64>>,
    pub file_sha256: Vec<Option<String>>,
    pub file_md5: Vec<Option<String>>,
    pub file_mime_type: Vec<Option<String>>,
    pub file_availability: Vec<Option<String>>,
}

impl DetectionRows {
    pub fn len(&self) -> usize {
        self.id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }
}

pub async fn insert_detections(
    conn: &mut AsyncPgConnection,
    tenant: uuid::Uuid,
    rows: &DetectionRows,
) -> QueryResult {
    diesel::sql_query(
        "INSERT INTO detections (tenant_id, id, external_id, source, rule_name, rule_name_key, \
         description, observed_at, ingested_at, risk_score, risk_indicators, device_id, \
         device_hostname, device_hostname_key, device_type, device_ip, actor, actor_key, mitre, \
         file_name, file_path, file_size, file_sha256, file_md5, file_mime_type, \
         file_availability) \
         SELECT $1, * FROM unnest($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
         $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)",
    )
    .bind::<Uuid, _>(tenant)
    .bind::<Array<Uuid>, _>(&rows.id)
    .bind::<Array<Text>, _>(&rows.external_id)
    .bind::<Array<Text>, _>(&rows.source)
    .bind::<Array<Text>, _>(&rows.rule_name)
    .bind::<Array<Text>, _>(&rows.rule_name_key)
    .bind::<Array<Nullable<Text>>, _>(&rows.description)
    .bind::<Array<Timestamptz>, _>(&rows.observed_at)
    .bind::<Array<Timestamptz>, _>(&rows.ingested_at)
    .bind::<Array<Int4>, _>(&rows.risk_score)
    .bind::<Array<Jsonb>, _>(&rows.risk_indicators)
    .bind::<Array<Nullable<Text>>, _>(&rows.device_id)
    .bind::<Array<Nullable<Text>>, _>(&rows.device_hostname)
    .bind::<Array<Nullable<Text>>, _>(&rows.device_hostname_key)
    .bind::<Array<Nullable<Text>>, _>(&rows.device_type)
    .bind::<Array<Nullable<Text>>, _>(&rows.device_ip)
    .bind::<Array<Nullable<Text>>, _>(&rows.actor)
    .bind::<Array<Nullable<Text>>, _>(&rows.actor_key)
    .bind::<Array<Jsonb>, _>(&rows.mitre)
    .bind::<Array<Nullable<Text>>, _>(&rows.file_name)
    .bind::<Array<Nullable<Text>>, _>(&rows.file_path)
    .bind::<Array<Nullable<Int8>>, _>(&rows.file_size)
    .bind::<Array<Nullable<Text>>, _>(&rows.file_sha256)
    .bind::<Array<Nullable<Text>>, _>(&rows.file_md5)
    .bind::<Array<Nullable<Text>>, _>(&rows.file_mime_type)
    .bind::<Array<Nullable<Text>>, _>(&rows.file_availability)
    .execute(conn)
    .await
}

/// Cases of one tenant, with every derived column already computed.
#[derive(Debug, Default)]
pub struct CaseRows {
    pub id: Vec<uuid::Uuid>,
    pub number: Vec<i32>,
    pub kind: Vec<String>,
    pub name: Vec<String>,
    pub name_key: Vec<String>,
    pub description: Vec<Option<String>>,
    pub findings: Vec<Option<String>>,
    pub severity: Vec<i16>,
    pub status: Vec<String>,
    pub resolution: Vec<Option<String>>,
    pub auto_created: Vec<bool>,
    pub auto_rule_name: Vec<Option<String>>,
    pub auto_device: Vec<Option<String>>,
    pub assignee_id: Vec<Option<uuid::Uuid>>,
    pub assignee_sort: Vec<String>,
    pub subject_id: Vec<Option<uuid::Uuid>>,
    pub subject_sort: Vec<String>,
    pub created_by_id: Vec<Option<uuid::Uuid>>,
    pub last_modified_by_id: Vec<Option<uuid::Uuid>>,
    pub created_at: Vec<DateTime<Utc>>,
    pub updated_at: Vec<DateTime<Utc>>,
    pub resolved_at: Vec<Option<DateTime<Utc>>>,
    pub archive_at: Vec<DateTime<Utc>>,
    pub archived_at: Vec<Option<DateTime<Utc>>>,
    pub delete_at: Vec<Option<DateTime<Utc>>>,
    pub version: Vec<i32>,
    pub detection_count: Vec<i32>,
    pub risk_critical: Vec<i32>,
    pub risk_high: Vec<i32>,
    pub risk_medium: Vec<i32>,
    pub risk_low: Vec<i32>,
    pub risk_informational: Vec<i32>,
}

impl CaseRows {
    pub fn len(&self) -> usize {
        self.id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }
}

pub async fn insert_cases(
    conn: &mut AsyncPgConnection,
    tenant: uuid::Uuid,
    rows: &CaseRows,
) -> QueryResult {
    diesel::sql_query(
        "INSERT INTO cases (tenant_id, id, number, kind, name, name_key, description, findings, \
         severity, status, resolution, auto_created, auto_rule_name, auto_device, assignee_id, \
         assignee_sort, subject_id, subject_sort, created_by_id, last_modified_by_id, \
         created_at, updated_at, resolved_at, archive_at, archived_at, delete_at, version, \
         detection_count, risk_critical, risk_high, risk_medium, risk_low, risk_informational) \
         SELECT $1, * FROM unnest($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
         $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, \
         $33)",
    )
    .bind::<Uuid, _>(tenant)
    .bind::<Array<Uuid>, _>(&rows.id)
    .bind::<Array<Int4>, _>(&rows.number)
    .bind::<Array<Text>, _>(&rows.kind)
    .bind::<Array<Text>, _>(&rows.name)
    .bind::<Array<Text>, _>(&rows.name_key)
    .bind::<Array<Nullable<Text>>, _>(&rows.description)
    .bind::<Array<Nullable<Text>>, _>(&rows.findings)
    .bind::<Array<Int2>, _>(&rows.severity)
    .bind::<Array<Text>, _>(&rows.status)
    .bind::<Array<Nullable<Text>>, _>(&rows.resolution)
    .bind::<Array<Bool>, _>(&rows.auto_created)
    .bind::<Array<Nullable<Text>>, _>(&rows.auto_rule_name)
    .bind::<Array<Nullable<Text>>, _>(&rows.auto_device)
    .bind::<Array<Nullable<Uuid>>, _>(&rows.assignee_id)
    .bind::<Array<Text>, _>(&rows.assignee_sort)
    .bind::<Array<Nullable<Uuid>>, _>(&rows.subject_id)
    .bind::<Array<Text>, _>(&rows.subject_sort)
    .bind::<Array<Nullable<Uuid>>, _>(&rows.created_by_id)
    .bind::<Array<Nullable<Uuid>>, _>(&rows.last_modified_by_id)
    .bind::<Array<Timestamptz>, _>(&rows.created_at)
    .bind::<Array<Timestamptz>, _>(&rows.updated_at)
    .bind::<Array<Nullable<Timestamptz>>, _>(&rows.resolved_at)
    .bind::<Array<Timestamptz>, _>(&rows.archive_at)
    .bind::<Array<Nullable<Timestamptz>>, _>(&rows.archived_at)
    .bind::<Array<Nullable<Timestamptz>>, _>(&rows.delete_at)
    .bind::<Array<Int4>, _>(&rows.version)
    .bind::<Array<Int4>, _>(&rows.detection_count)
    .bind::<Array<Int4>, _>(&rows.risk_critical)
    .bind::<Array<Int4>, _>(&rows.risk_high)
    .bind::<Array<Int4>, _>(&rows.risk_medium)
    .bind::<Array<Int4>, _>(&rows.risk_low)
    .bind::<Array<Int4>, _>(&rows.risk_informational)
    .execute(conn)
    .await
}

/// Links between cases and detections of one tenant. Each link gets its detection's sort
/// keys (observed_at, ingested_at, risk_score, rule_name_key) from the detection's row in
/// the inserting statement, as `links::add` does.
#[derive(Debug, Default)]
pub struct LinkRows {
    pub case_id: Vec<uuid::Uuid>,
    pub detection_id: Vec<uuid::Uuid>,
    pub added_at: Vec<DateTime<Utc>>,
}

impl LinkRows {
    pub fn len(&self) -> usize {
        self.case_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.case_id.is_empty()
    }
}

pub async fn insert_links(
    conn: &mut AsyncPgConnection,
    tenant: uuid::Uuid,
    rows: &LinkRows,
) -> QueryResult {
    diesel::sql_query(
        "INSERT INTO case_detections (tenant_id, case_id, detection_id, added_at, observed_at, \
         ingested_at, risk_score, rule_name_key) \
         SELECT $1, u.case_id, u.detection_id, u.added_at, d.observed_at, d.ingested_at, \
         d.risk_score, d.rule_name_key \
         FROM unnest($2, $3, $4) AS u(case_id, detection_id, added_at) \
         JOIN detections d ON d.tenant_id = $1 AND d.id = u.detection_id",
    )
    .bind::<Uuid, _>(tenant)
    .bind::<Array<Uuid>, _>(&rows.case_id)
    .bind::<Array<Uuid>, _>(&rows.detection_id)
    .bind::<Array<Timestamptz>, _>(&rows.added_at)
    .execute(conn)
    .await
}

/// Whether a tenant with any of these name keys exists (a database seeded before).
pub async fn any_tenant_named(conn: &mut AsyncPgConnection, keys: &[String]) -> QueryResult<bool> {
    use diesel::{ExpressionMethods, QueryDsl};

    use crate::db::schema::tenants;
    diesel::select(diesel::dsl::exists(tenants::table.filter(tenants::name_key.eq_any(keys))))
        .get_result(conn)
        .await
}

/// Refreshes the planner's statistics after a bulk load.
pub async fn analyze(conn: &mut AsyncPgConnection) -> QueryResult {
    diesel::sql_query("ANALYZE tenants, users, subjects, detections, cases, case_detections")
        .execute(conn)
        .await
}

type QueryResult<T = usize> = diesel::QueryResult<T>;

/// The tables a bulk load fills.
pub const BULK_TABLES: [&str; 3] = ["detections", "cases", "case_detections"];

/// What a bulk load sets aside while it writes, to put back before it commits: the
/// secondary indexes of the bulk tables (those no constraint uses) and their foreign
/// keys, each with the definition PostgreSQL gives for it.
#[derive(Debug, Default)]
pub struct SetAside {
    indexes: Vec<Definition>,
    foreign_keys: Vec<Definition>,
}

#[derive(Debug, QueryableByName)]
struct Definition {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    definition: String,
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    flag: bool,
}

/// Whether the bulk tables hold no row (a fresh database, where a bulk load may set
/// indexes and foreign keys aside).
pub async fn bulk_tables_empty(conn: &mut AsyncPgConnection) -> QueryResult<bool> {
    let row: Flag = diesel::sql_query(
        "SELECT NOT EXISTS (SELECT 1 FROM detections) AND NOT EXISTS (SELECT 1 FROM cases) \
         AND NOT EXISTS (SELECT 1 FROM case_detections) AS flag",
    )
    .get_result(conn)
    .await?;
    Ok(row.flag)
}

/// Drops the bulk tables' secondary indexes and foreign keys (in the caller's
/// transaction, which must put them back with [`put_back`] before it commits): filling
/// tables and then building each index in one sorted pass, and checking each foreign
/// key with one join, is several times faster than keeping them up to date row by row.
/// Indexes that back a constraint (primary keys, unique keys, the keys foreign keys
/// point at) stay.
pub async fn set_aside(conn: &mut AsyncPgConnection) -> QueryResult<SetAside> {
    let tables: Vec<&str> = BULK_TABLES.to_vec();
    let foreign_keys: Vec<Definition> = diesel::sql_query(
        "SELECT c.relname::text AS table_name, k.conname::text AS name, \
           pg_get_constraintdef(k.oid) AS definition \
         FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
         WHERE k.contype = 'f' AND c.relnamespace = current_schema()::regnamespace \
           AND c.relname = ANY($1) \
         ORDER BY c.relname, k.conname",
    )
    .bind::<Array<Text>, _>(&tables)
    .load(conn)
    .await?;
    let indexes: Vec<Definition> = diesel::sql_query(
        "SELECT c.relname::text AS table_name, x.relname::text AS name, \
           pg_get_indexdef(i.indexrelid) AS definition \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
           JOIN pg_class x ON x.oid = i.indexrelid \
         WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY($1) \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) \
         ORDER BY c.relname, x.relname",
    )
    .bind::<Array<Text>, _>(&tables)
    .load(conn)
    .await?;
    for fk in &foreign_keys {
        diesel::sql_query(format!(
            "ALTER TABLE {} DROP CONSTRAINT {}",
            quoted(&fk.table_name),
            quoted(&fk.name)
        ))
        .execute(conn)
        .await?;
    }
    if !indexes.is_empty() {
        let names: Vec<String> = indexes.iter().map(|i| quoted(&i.name)).collect();
        diesel::sql_query(format!("DROP INDEX {}", names.join(", "))).execute(conn).await?;
    }
    Ok(SetAside { indexes, foreign_keys })
}

/// Builds the indexes and adds the foreign keys [`set_aside`] dropped, by their own
/// definitions and names (the foreign keys checked against every row).
pub async fn put_back(conn: &mut AsyncPgConnection, aside: SetAside) -> QueryResult {
    // Index builds sort in memory when they can.
    diesel::sql_query("SET LOCAL maintenance_work_mem = '256MB'").execute(conn).await?;
    for index in &aside.indexes {
        diesel::sql_query(&index.definition).execute(conn).await?;
    }
    for fk in &aside.foreign_keys {
        diesel::sql_query(format!(
            "ALTER TABLE {} ADD CONSTRAINT {} {}",
            quoted(&fk.table_name),
            quoted(&fk.name),
            fk.definition
        ))
        .execute(conn)
        .await?;
    }
    Ok(aside.indexes.len() + aside.foreign_keys.len())
}

/// An SQL identifier, quoted.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

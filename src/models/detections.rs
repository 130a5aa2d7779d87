//! Detections: what sensors report, XDR detections and file events in one table.
//! Ingestion is idempotent on (tenant, source, external id). Lists and per-case
//! aggregates are in `detections/list.rs`.

pub mod list;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::detections;
use crate::models::enums::{DetectionSource, FileAvailability, Severity};
use crate::models::fold::{fold, fold_opt};
use crate::models::ids::{DetectionId, TenantId};

/// Most detections one `ingestDetections` call may carry.
pub const MAX_INGEST: usize = 1_000;
/// Largest `raw` JSON kept with a detection, serialized.
pub const RAW_MAX_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = detections, check_for_backend(diesel::pg::Pg))]
pub struct Detection {
    pub id: DetectionId,
    pub tenant_id: TenantId,
    pub external_id: String,
    pub source: DetectionSource,
    pub rule_name: String,
    pub description: Option<String>,
    pub observed_at: DateTime<Utc>,
    pub ingested_at: DateTime<Utc>,
    pub risk_score: i32,
    pub severity: Severity,
    pub risk_indicators: JsonText,
    pub device_id: Option<String>,
    pub device_hostname: Option<String>,
    pub device_type: Option<String>,
    pub device_ip: Option<String>,
    pub actor: Option<String>,
    pub mitre: JsonText,
    pub file_name: Option<String>,
    pub file_path: Option<String>,
    pub file_size: Option<i64>,
    pub file_sha256: Option<String>,
    pub file_md5: Option<String>,
    pub file_mime_type: Option<String>,
    pub file_availability: Option<FileAvailability>,
    pub file_content_stored: bool,
    pub raw: Option<JsonText>,
    /// The keys (`models::fold`) of the rule name, hostname and actor: filters, the
    /// rule-name order, and a subject's activity (`actor_key` = the username's key).
    pub rule_name_key: String,
    pub device_hostname_key: Option<String>,
    pub actor_key: Option<String>,
    /// The SHA-256 of the stored content this detection carries (`models::evidence`);
    /// `file_content_stored` is derived from it by the database.
    pub content_sha256: Option<String>,
}

/// A `jsonb` value as the JSON text PostgreSQL sends, parsed only when a reader asks
/// for it, into the types it wants: a page of 100 detections read into `serde_json::Value`
/// trees (their indicators and techniques) spent most of its row decoding building and
/// dropping maps nobody asked for.
#[derive(Debug, Clone, PartialEq, Eq, diesel::deserialize::FromSqlRow)]
pub struct JsonText(pub String);

impl diesel::deserialize::FromSql<diesel::sql_types::Jsonb, diesel::pg::Pg> for JsonText {
    fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        // The binary format: a version byte (1), then the JSON text.
        match value.as_bytes().split_first() {
            Some((1, text)) => Ok(JsonText(std::str::from_utf8(text)?.to_owned())),
            _ => Err("unsupported jsonb version number".into()),
        }
    }
}

impl JsonText {
    /// The value as `T`; `None` when the JSON is not a `T`.
    pub fn parse<'a, T: serde::Deserialize<'a>>(&'a self) -> Option<T> {
        serde_json::from_str(&self.0).ok()
    }
}

impl Detection {
    pub fn file_availability(&self) -> FileAvailability {
        // A detection without a file (an XDR detection) has no availability stored.
        self.file_availability.unwrap_or(FileAvailability::NoFileAvailable)
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = detections)]
pub struct NewDetection {
    pub id: DetectionId,
    pub tenant_id: TenantId,
    pub external_id: String,
    pub source: DetectionSource,
    pub rule_name: String,
    pub description: Option<String>,
    pub observed_at: DateTime<Utc>,
    pub risk_score: i32,
    pub risk_indicators: serde_json::Value,
    pub device_id: Option<String>,
    pub device_hostname: Option<String>,
    pub device_type: Option<String>,
    pub device_ip: Option<String>,
    pub actor: Option<String>,
    pub mitre: serde_json::Value,
    pub file_name: Option<String>,
    pub file_path: Option<String>,
    pub file_size: Option<i64>,
    pub file_sha256: Option<String>,
    pub file_md5: Option<String>,
    pub file_mime_type: Option<String>,
    pub file_availability: Option<FileAvailability>,
    pub raw: Option<serde_json::Value>,
}

/// The statement behind [`insert_new`] and [`insert_new_ids`]: the rows arrive column by
/// column as arrays (26 binds whatever the row count, so PostgreSQL parses and plans one
/// short statement instead of a `VALUES` list of 26,000 parameters), with the name keys
/// computed here through `models::fold`; rows whose (tenant, source, external id) exists
/// are skipped. `{returning}` names what comes back.
const INSERT_NEW: &str = "INSERT INTO detections (tenant_id, id, external_id, source, rule_name, \
     rule_name_key, description, observed_at, risk_score, risk_indicators, device_id, \
     device_hostname, device_hostname_key, device_type, device_ip, actor, actor_key, mitre, \
     file_name, file_path, file_size, file_sha256, file_md5, file_mime_type, \
     file_availability, raw) \
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], \
     $6::text[], $7::text[], $8::timestamptz[], $9::int4[], $10::jsonb[], $11::text[], \
     $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], \
     $18::jsonb[], $19::text[], $20::text[], $21::int8[], $22::text[], $23::text[], \
     $24::text[], $25::text[], $26::jsonb[]) \
     ON CONFLICT DO NOTHING RETURNING ";

/// [`INSERT_NEW`] with `rows` bound and `returning` after it.
fn insert_new_query<'a>(
    rows: &'a [NewDetection],
    returning: &str,
) -> diesel::query_builder::BoxedSqlQuery<'a, diesel::pg::Pg, diesel::query_builder::SqlQuery> {
    use diesel::sql_types::{Array, Int4, Int8, Jsonb, Nullable, Text, Timestamptz, Uuid};
    fn text(rows: &[NewDetection], f: fn(&NewDetection) -> &str) -> Vec<&str> {
        rows.iter().map(f).collect()
    }
    fn opt(rows: &[NewDetection], f: fn(&NewDetection) -> Option<&str>) -> Vec<Option<&str>> {
        rows.iter().map(f).collect()
    }
    let each = |f: fn(&NewDetection) -> Option<&str>| -> Vec<Option<String>> {
        rows.iter().map(|r| fold_opt(f(r))).collect()
    };
    diesel::sql_query(format!("{INSERT_NEW}{returning}"))
        .into_boxed()
        .bind::<Array<Uuid>, _>(rows.iter().map(|r| r.tenant_id).collect::<Vec<_>>())
        .bind::<Array<Uuid>, _>(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(text(rows, |r| &r.external_id))
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.source).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(text(rows, |r| &r.rule_name))
        .bind::<Array<Text>, _>(rows.iter().map(|r| fold(&r.rule_name)).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(opt(rows, |r| r.description.as_deref()))
        .bind::<Array<Timestamptz>, _>(rows.iter().map(|r| r.observed_at).collect::<Vec<_>>())
        .bind::<Array<Int4>, _>(rows.iter().map(|r| r.risk_score).collect::<Vec<_>>())
        .bind::<Array<Jsonb>, _>(rows.iter().map(|r| &r.risk_indicators).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(opt(rows, |r| r.device_id.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(opt(rows, |r| r.device_hostname.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(each(|r| r.device_hostname.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(opt(rows, |r| r.device_type.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(opt(rows, |r| r.device_ip.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(opt(rows, |r| r.actor.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(each(|r| r.actor.as_deref()))
        .bind::<Array<Jsonb>, _>(rows.iter().map(|r| &r.mitre).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(opt(rows, |r| r.file_name.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(opt(rows, |r| r.file_path.as_deref()))
        .bind::<Array<Nullable<Int8>>, _>(rows.iter().map(|r| r.file_size).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(opt(rows, |r| r.file_sha256.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(opt(rows, |r| r.file_md5.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(opt(rows, |r| r.file_mime_type.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(
            rows.iter().map(|r| r.file_availability).collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Jsonb>>, _>(rows.iter().map(|r| r.raw.as_ref()).collect::<Vec<_>>())
}

/// Stores the detections that are new, with their keys, in one statement; those whose
/// (source, external id) the tenant already has are skipped. Returns the stored rows.
pub async fn insert_new(
    conn: &mut AsyncPgConnection,
    rows: &[NewDetection],
) -> QueryResult<Vec<Detection>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    insert_new_query(rows, "*").load(conn).await
}

#[derive(QueryableByName)]
struct StoredId {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: DetectionId,
}

/// [`insert_new`] for callers that need only which rows were new: the ids of the stored
/// rows (nothing else travels back).
pub async fn insert_new_ids(
    conn: &mut AsyncPgConnection,
    rows: &[NewDetection],
) -> QueryResult<Vec<DetectionId>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let stored: Vec<StoredId> = insert_new_query(rows, "id").load(conn).await?;
    Ok(stored.into_iter().map(|s| s.id).collect())
}

/// The tenant's detections with these (source, external id) keys.
pub async fn find_by_keys(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    keys: &[(DetectionSource, String)],
) -> QueryResult<Vec<Detection>> {
    let external_ids: Vec<&str> = keys.iter().map(|(_, e)| e.as_str()).collect();
    let rows: Vec<Detection> = detections::table
        .filter(detections::tenant_id.eq(tenant))
        .filter(detections::external_id.eq_any(&external_ids))
        .select(Detection::as_select())
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|d| keys.iter().any(|(s, e)| *s == d.source && *e == d.external_id))
        .collect())
}

/// The tenant's detections among `ids`, in one statement (the DataLoader's query).
pub async fn find_many(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    ids: &[DetectionId],
) -> QueryResult<Vec<Detection>> {
    detections::table
        .filter(detections::tenant_id.eq(tenant).and(detections::id.eq_any(ids)))
        .select(Detection::as_select())
        .load(conn)
        .await
}

/// Deletes those of `ids` observed before `before` that no case holds any more.
pub async fn delete_unheld_before(
    conn: &mut AsyncPgConnection,
    ids: &[DetectionId],
    before: DateTime<Utc>,
) -> QueryResult<usize> {
    use crate::db::schema::case_detections;
    let held = case_detections::table
        .filter(case_detections::detection_id.eq(detections::id))
        .select(case_detections::detection_id);
    diesel::delete(
        detections::table
            .filter(detections::id.eq_any(ids))
            .filter(detections::observed_at.lt(before))
            .filter(diesel::dsl::not(diesel::dsl::exists(held))),
    )
    .execute(conn)
    .await
}

/// What an export shows of one detection (the `raw` JSON stays behind: up to 64 KiB a
/// row, never exported).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = detections, check_for_backend(diesel::pg::Pg))]
pub struct ExportedDetection {
    pub id: DetectionId,
    pub external_id: String,
    pub source: DetectionSource,
    pub rule_name: String,
    pub observed_at: DateTime<Utc>,
    pub risk_score: i32,
    pub severity: Severity,
    pub risk_indicators: serde_json::Value,
    pub actor: Option<String>,
    pub device_hostname: Option<String>,
    pub file_name: Option<String>,
    pub file_path: Option<String>,
    pub file_size: Option<i64>,
    pub file_sha256: Option<String>,
    pub file_md5: Option<String>,
    pub file_availability: Option<FileAvailability>,
    pub file_content_stored: bool,
}

/// Every detection the case holds, oldest observation first (ties by id), in one statement.
pub async fn of_case_for_export(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    case: crate::models::ids::CaseId,
) -> QueryResult<Vec<ExportedDetection>> {
    use crate::db::schema::case_detections;
    detections::table
        .inner_join(
            case_detections::table.on(case_detections::tenant_id
                .eq(detections::tenant_id)
                .and(case_detections::detection_id.eq(detections::id))),
        )
        .filter(case_detections::tenant_id.eq(tenant))
        .filter(case_detections::case_id.eq(case))
        .order((detections::observed_at.asc(), detections::id.asc()))
        .select(ExportedDetection::as_select())
        .load(conn)
        .await
}

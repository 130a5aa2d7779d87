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
    pub file_content_stored: bool,
    pub raw: Option<serde_json::Value>,
    /// The keys (`models::fold`) of the rule name, hostname and actor: filters, the
    /// rule-name order, and a subject's activity (`actor_key` = the username's key).
    pub rule_name_key: String,
    pub device_hostname_key: Option<String>,
    pub actor_key: Option<String>,
    /// The SHA-256 of the stored content this detection carries (`models::evidence`);
    /// `file_content_stored` is derived from it by the database.
    pub content_sha256: Option<String>,
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

/// Stores the detections that are new, with their keys; those whose (source, external
/// id) the tenant already has are skipped. Returns the stored rows.
pub async fn insert_new(
    conn: &mut AsyncPgConnection,
    rows: &[NewDetection],
) -> QueryResult<Vec<Detection>> {
    let mut stored = Vec::with_capacity(rows.len());
    // 26 columns per row: stay below PostgreSQL's 65,535 bind parameters.
    for chunk in rows.chunks(2_000) {
        let keyed: Vec<_> = chunk
            .iter()
            .map(|row| {
                (
                    row,
                    detections::rule_name_key.eq(fold(&row.rule_name)),
                    detections::device_hostname_key.eq(fold_opt(row.device_hostname.as_deref())),
                    detections::actor_key.eq(fold_opt(row.actor.as_deref())),
                )
            })
            .collect();
        let mut batch = diesel::insert_into(detections::table)
            .values(keyed)
            .on_conflict_do_nothing()
            .returning(Detection::as_returning())
            .get_results(conn)
            .await?;
        stored.append(&mut batch);
    }
    Ok(stored)
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

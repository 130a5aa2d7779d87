//! The links between cases and detections. The per-case aggregates on the case row are
//! recomputed from the links in the same transaction that changes them.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::{case_detections, detections};
use crate::models::ids::{CaseId, DetectionId, TenantId};

#[derive(Debug, Insertable)]
#[diesel(table_name = case_detections)]
struct NewLink {
    case_id: CaseId,
    detection_id: DetectionId,
    tenant_id: TenantId,
}

/// Which of `ids` the case already holds.
pub async fn linked_among(
    conn: &mut AsyncPgConnection,
    case: CaseId,
    ids: &[DetectionId],
) -> QueryResult<Vec<DetectionId>> {
    case_detections::table
        .filter(case_detections::case_id.eq(case))
        .filter(case_detections::detection_id.eq_any(ids))
        .select(case_detections::detection_id)
        .load(conn)
        .await
}

/// Links the detections to the case; links that exist already are left alone.
pub async fn add(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    case: CaseId,
    ids: &[DetectionId],
) -> QueryResult<usize> {
    let rows: Vec<NewLink> = ids
        .iter()
        .map(|&detection_id| NewLink { case_id: case, detection_id, tenant_id: tenant })
        .collect();
    let mut added = 0;
    // Stay well below PostgreSQL's 65,535 bind parameters per statement.
    for chunk in rows.chunks(5_000) {
        added += diesel::insert_into(case_detections::table)
            .values(chunk)
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
    }
    Ok(added)
}

/// Removes these detections from the case; returns those it held.
pub async fn remove(
    conn: &mut AsyncPgConnection,
    case: CaseId,
    ids: &[DetectionId],
) -> QueryResult<Vec<DetectionId>> {
    diesel::delete(
        case_detections::table
            .filter(case_detections::case_id.eq(case))
            .filter(case_detections::detection_id.eq_any(ids)),
    )
    .returning(case_detections::detection_id)
    .get_results(conn)
    .await
}

/// Removes every detection from the case (archival).
pub async fn remove_all(conn: &mut AsyncPgConnection, case: CaseId) -> QueryResult<usize> {
    diesel::delete(case_detections::table.filter(case_detections::case_id.eq(case)))
        .execute(conn)
        .await
}

/// The case's linked detections counted per severity rank (index 1–5; 0 unused).
pub async fn counts_by_severity(
    conn: &mut AsyncPgConnection,
    case: CaseId,
) -> QueryResult<[i32; 6]> {
    let rows: Vec<(i16, i64)> = case_detections::table
        .inner_join(
            detections::table.on(detections::tenant_id
                .eq(case_detections::tenant_id)
                .and(detections::id.eq(case_detections::detection_id))),
        )
        .filter(case_detections::case_id.eq(case))
        .group_by(detections::severity)
        .select((detections::severity, diesel::dsl::count_star()))
        .load(conn)
        .await?;
    let mut counts = [0_i32; 6];
    for (rank, count) in rows {
        if let Some(slot) = usize::try_from(rank).ok().and_then(|r| counts.get_mut(r)) {
            *slot = i32::try_from(count).unwrap_or(i32::MAX);
        }
    }
    Ok(counts)
}

/// The ids of the cases holding each of these detections, in one statement.
pub async fn cases_of(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    ids: &[DetectionId],
) -> QueryResult<Vec<(DetectionId, CaseId)>> {
    case_detections::table
        .filter(case_detections::tenant_id.eq(tenant))
        .filter(case_detections::detection_id.eq_any(ids))
        .select((case_detections::detection_id, case_detections::case_id))
        .load(conn)
        .await
}

/// Every detection the cases hold.
pub async fn detections_of(
    conn: &mut AsyncPgConnection,
    cases: &[CaseId],
) -> QueryResult<Vec<DetectionId>> {
    case_detections::table
        .filter(case_detections::case_id.eq_any(cases))
        .select(case_detections::detection_id)
        .distinct()
        .load(conn)
        .await
}

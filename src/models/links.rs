//! The links between cases and detections. The per-case aggregates on the case row are
//! recomputed from the links in the same transaction that changes them.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::{case_detections, detections};
use crate::models::ids::{CaseId, DetectionId, TenantId};

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

/// Links the detections of the tenant among `ids` to the case; links that exist already
/// are left alone. The only way links are written: each link copies its detection's sort
/// keys (observed, ingested, risk score, rule key) in the statement that inserts it, so a
/// case's detection page is a range scan of the link's index in every order.
pub async fn add(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    case: CaseId,
    ids: &[DetectionId],
) -> QueryResult<usize> {
    let source = detections::table
        .filter(detections::tenant_id.eq(tenant))
        .filter(detections::id.eq_any(ids))
        .select((
            case.into_sql::<diesel::sql_types::Uuid>(),
            detections::id,
            detections::tenant_id,
            detections::observed_at,
            detections::ingested_at,
            detections::risk_score,
            detections::rule_name_key,
        ));
    diesel::insert_into(case_detections::table)
        .values(source)
        .into_columns((
            case_detections::case_id,
            case_detections::detection_id,
            case_detections::tenant_id,
            case_detections::observed_at,
            case_detections::ingested_at,
            case_detections::risk_score,
            case_detections::rule_name_key,
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
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

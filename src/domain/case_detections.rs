//! Adding detections to a case and removing them. The case row is locked while its
//! links change, which keeps the 10,000 limit exact under concurrent adds, and the
//! aggregates on the row are recomputed in the same transaction.

use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::auth::Viewer;
use crate::domain::access::{self, CaseAction};
use crate::domain::case_record;
use crate::domain::cases::lock;
use crate::domain::record::{global_id, record};
use crate::error::{AppError, AppResult, Code};
use crate::graphql::ids::Kind;
use crate::models::cases::{self, Case, CaseChanges};
use crate::models::detections::{self, Detection};
use crate::models::enums::CaseKind;
use crate::models::events::{CaseEventKind, NewEvent};
use crate::models::ids::{CaseId, DetectionId};
use crate::models::links;

/// The tenant's detections with these ids (duplicates ignored); `NOT_FOUND` when one
/// does not exist.
async fn find_all(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    ids: &[DetectionId],
) -> AppResult<Vec<Detection>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut unique = ids.to_vec();
    unique.sort();
    unique.dedup();
    let found = detections::find_many(conn, viewer.tenant_id, &unique).await?;
    if found.len() != unique.len() {
        return Err(AppError::NotFound("detection"));
    }
    Ok(found)
}

/// The tenant's detections among `ids` (duplicates ignored), refusing ids that do not
/// exist and detections a case of `kind` may not hold.
pub(crate) async fn load_for_case(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    kind: CaseKind,
    ids: &[DetectionId],
) -> AppResult<Vec<Detection>> {
    let found = find_all(conn, viewer, ids).await?;
    if kind == CaseKind::SelfManaged
        && let Some(managed) = found.iter().find(|d| !d.source.allowed_in_self_managed())
    {
        return Err(AppError::Rule(
            Code::UnsupportedForKind,
            format!(
                "{} detections cannot go into a self-managed case ({})",
                managed.source.as_str(),
                managed.external_id
            ),
        ));
    }
    Ok(found)
}

pub(crate) fn limit_exceeded(held: i32, adding: usize) -> AppError {
    AppError::Rule(
        Code::LimitExceeded,
        format!(
            "a case holds at most {} detections: it holds {held}, and {adding} more would exceed it; none were added",
            cases::MAX_DETECTIONS
        ),
    )
}

/// Checks that the case takes detection changes from this viewer.
fn check_editable(viewer: &Viewer, case: &Case) -> AppResult<()> {
    access::require_self_managed(case.kind, "detections")?;
    access::check_role(viewer, CaseAction::Edit, case)?;
    access::check_open(case)
}

/// Adds detections to a case; those it holds already are left alone. Beyond 10,000
/// detections nothing is added.
pub async fn add(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    case_id: CaseId,
    ids: Vec<DetectionId>,
) -> AppResult<Case> {
    access::precheck(viewer, CaseAction::Edit)?;
    if ids.len() as i64 > cases::MAX_DETECTIONS {
        return Err(limit_exceeded(0, ids.len()));
    }
    let viewer = *viewer;
    conn.transaction(async |conn| {
        let case = lock(conn, &viewer, case_id).await?;
        check_editable(&viewer, &case)?;
        let found = load_for_case(conn, &viewer, case.kind, &ids).await?;
        let ids: Vec<DetectionId> = found.iter().map(|d| d.id).collect();
        let held = links::linked_among(conn, case.id, &ids).await?;
        let new: Vec<DetectionId> = ids.into_iter().filter(|id| !held.contains(id)).collect();
        if new.is_empty() {
            return Ok(case);
        }
        if i64::from(case.detection_count) + new.len() as i64 > cases::MAX_DETECTIONS {
            return Err(limit_exceeded(case.detection_count, new.len()));
        }
        links::add(conn, viewer.tenant_id, case.id, &new).await?;
        let mut changes = CaseChanges::default();
        changes.set_risk_counts(links::counts_by_severity(conn, case.id).await?);
        let updated = cases::update(conn, case.id, Some(viewer.user_id), &changes).await?;
        let event = detections_event(&case, &updated, &new, true);
        record(conn, viewer.tenant_id, &viewer.origin(), vec![event]).await?;
        Ok(updated)
    })
    .await
}

/// Removes detections from a case; those it does not hold are ignored.
pub async fn remove(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    case_id: CaseId,
    ids: Vec<DetectionId>,
) -> AppResult<Case> {
    access::precheck(viewer, CaseAction::Edit)?;
    let viewer = *viewer;
    conn.transaction(async |conn| {
        let case = lock(conn, &viewer, case_id).await?;
        check_editable(&viewer, &case)?;
        let found = find_all(conn, &viewer, &ids).await?;
        let unique: Vec<DetectionId> = found.iter().map(|d| d.id).collect();
        let mut held = links::remove(conn, case.id, &unique).await?;
        if held.is_empty() {
            return Ok(case);
        }
        held.sort();
        let mut changes = CaseChanges::default();
        changes.set_risk_counts(links::counts_by_severity(conn, case.id).await?);
        let updated = cases::update(conn, case.id, Some(viewer.user_id), &changes).await?;
        let event = detections_event(&case, &updated, &held, false);
        record(conn, viewer.tenant_id, &viewer.origin(), vec![event]).await?;
        Ok(updated)
    })
    .await
}

/// `case.detections_added` / `case.detections_removed`: the detections' global ids and
/// the case's changed fields (its detection count, and a severity raised by ingestion).
pub(crate) fn detections_event(
    before: &Case,
    after: &Case,
    ids: &[DetectionId],
    added: bool,
) -> NewEvent {
    let (action, kind, fact) = if added {
        ("case.detections_added", CaseEventKind::DetectionsAdded, "detectionsAdded")
    } else {
        ("case.detections_removed", CaseEventKind::DetectionsRemoved, "detectionsRemoved")
    };
    let ids: Vec<String> = ids.iter().map(|d| global_id(Kind::Detection, d.0)).collect();
    let changes = case_record::diff(Some(before), after).fact(fact, ids);
    case_record::event(action, kind, after, changes)
}

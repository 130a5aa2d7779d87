//! Reading a case for export: who may (readers of the case), and one consistent snapshot
//! of everything the parts show.

use crate::auth::Viewer;
use crate::db::{DbPool, pool};
use crate::error::{AppError, AppResult, Code};
use crate::export::{CaseSnapshot, Part};
use crate::models::ids::UserId;
use crate::models::{cases, detections, subjects, users};

/// The case with this number as the viewer may export it: `FORBIDDEN` for a role that
/// may not read, `NOT_FOUND` for a number the viewer's tenant does not have. Everything
/// is read in one repeatable-read, read-only transaction.
pub async fn snapshot(db: &DbPool, viewer: &Viewer, number: i32) -> AppResult<CaseSnapshot> {
    viewer.require_read()?;
    let tenant = viewer.tenant_id;
    let mut conn = pool::get(db).await?;
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(async |conn| {
            let case = cases::find_by_number(conn, tenant, number)
                .await?
                .ok_or(AppError::NotFound("case"))?;
            let subject = match case.subject_id {
                Some(id) => subjects::find_many(conn, tenant, &[id]).await?.into_iter().next(),
                None => None,
            };
            let ids: Vec<UserId> =
                [case.assignee_id, case.created_by_id, case.last_modified_by_id]
                    .into_iter()
                    .flatten()
                    .collect();
            let people = users::find_many(conn, tenant, &ids).await?;
            let find = |id: Option<UserId>| {
                id.and_then(|id| people.iter().find(|u| u.id == id).cloned())
            };
            let detections = detections::of_case_for_export(conn, tenant, case.id).await?;
            let mitre = detections::list::mitre_counts(conn, tenant, &[case.id]).await?;
            Ok::<_, AppError>(CaseSnapshot {
                assignee: find(case.assignee_id),
                created_by: find(case.created_by_id),
                last_modified_by: find(case.last_modified_by_id),
                case,
                subject,
                detections,
                mitre,
            })
        })
        .await
}

/// `EXPORT_TOO_LARGE` when the file contents come to more than `limit` bytes.
pub fn check_size(parts: &[Part], contents: u64, limit: u64) -> AppResult<()> {
    if parts.contains(&Part::Files) && contents > limit {
        return Err(AppError::Rule(
            Code::ExportTooLarge,
            format!(
                "the case's file contents come to {contents} bytes, over the export limit of {limit} bytes: export the summary and file activity without `files`"
            ),
        ));
    }
    Ok(())
}

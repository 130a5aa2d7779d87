//! Reading a case for export: who may (readers of the case), and one consistent snapshot
//! of everything the parts show.

use crate::auth::Viewer;
use diesel_async::AsyncConnection as _;

use crate::db::{DbPool, pool};
use crate::domain::audit;
use crate::domain::record::{Changes, global_id, record};
use crate::error::{AppError, AppResult, Code};
use crate::export::{CaseSnapshot, Part};
use crate::graphql::ids::Kind;
use crate::models::events::{self, NewEvent};
use crate::models::ids::UserId;
use crate::models::{cases, detections, evidence, subjects, users};
use crate::signing::AuditKey;

/// Most change-record events of one case a package carries.
const MAX_EVENTS: i64 = 1_000_000;

/// The case with this number as the viewer may export it: `FORBIDDEN` for a role that
/// may not read, `NOT_FOUND` for a number the viewer's tenant does not have. Everything
/// is read in one repeatable-read, read-only transaction.
pub async fn snapshot(
    db: &DbPool,
    viewer: &Viewer,
    number: i32,
    with_contents: bool,
    record_key: Option<&AuditKey>,
) -> AppResult<CaseSnapshot> {
    viewer.require_read()?;
    let tenant = viewer.tenant_id;
    let viewer = *viewer;
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
            let ids: Vec<UserId> = [
                case.assignee_id,
                case.created_by_id,
                case.last_modified_by_id,
                Some(viewer.user_id),
            ]
            .into_iter()
            .flatten()
            .collect();
            let people = users::find_many(conn, tenant, &ids).await?;
            let find =
                |id: Option<UserId>| id.and_then(|id| people.iter().find(|u| u.id == id).cloned());
            let detections = detections::of_case_for_export(conn, tenant, case.id).await?;
            let mitre = detections::list::mitre_counts(conn, tenant, &[case.id]).await?;
            let contents = if with_contents {
                evidence::contents_of_case(conn, tenant, case.id).await?
            } else {
                Vec::new()
            };
            // The change record as of this snapshot: the case's events, oldest first, and
            // the tenant's head signed (a package's proof that its events are the record's).
            let (events, checkpoint) = match record_key {
                Some(key) => {
                    let mut events =
                        events::list::activity(conn, tenant, &[case.id], None, MAX_EVENTS).await?;
                    events.reverse();
                    (events, Some(audit::sign_head(conn, tenant, key).await?))
                }
                None => (Vec::new(), None),
            };
            Ok::<_, AppError>(CaseSnapshot {
                events,
                checkpoint,
                assignee: find(case.assignee_id),
                created_by: find(case.created_by_id),
                last_modified_by: find(case.last_modified_by_id),
                exporter: find(Some(viewer.user_id)),
                contents,
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

/// Records `case.exported` in the change record: who took which parts of which case,
/// and the SHA-256 and size of exactly what was sent. Not a change of the case, so the
/// event names the case as its target (not as a case event that would reach the case's
/// subscribers as an update).
pub async fn record_exported(
    db: &DbPool,
    viewer: &Viewer,
    case: &cases::Case,
    parts: &[Part],
    file_name: &str,
    sha256: &str,
    size: u64,
) -> AppResult<()> {
    let event = NewEvent::new("case.exported").target(global_id(Kind::Case, case.id.0)).changes(
        Changes::new()
            .fact("caseNumber", case.number)
            .fact("parts", parts.iter().map(|p| p.as_str()).collect::<Vec<_>>())
            .fact("fileName", file_name)
            .fact("sha256", sha256)
            .fact("size", size)
            .into_value(),
    );
    let viewer = *viewer;
    let mut conn = pool::get(db).await?;
    conn.transaction(async |conn| {
        record(conn, viewer.tenant_id, &viewer.origin(), vec![event]).await
    })
    .await?;
    Ok(())
}

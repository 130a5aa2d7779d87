//! What archiving and deleting a case remove, in one implementation for the by-hand
//! mutations (`domain::cases`) and the retention jobs (`crate::jobs`), and the legal hold
//! that stops both.
//!
//! - Archive: the case's detection links and its stored file contents (those no other
//!   case still needs) go; subject, details and findings stay. (Messages go here too once
//!   the `messages` table exists: it is not on this branch yet.)
//! - Delete: the case with its details and findings; detections older than 90 days that no
//!   other case holds; stored contents no case needs any more.
//!
//! Both run inside the caller's transaction on a case the caller has locked; the objects
//! of released contents are removed after commit ([`remove_after_commit`]) and a queued
//! removal that fails is retried by the sweeper.

use chrono::{DateTime, Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::auth::Viewer;
use crate::domain::access::{self, CaseAction};
use crate::domain::case_record;
use crate::domain::cases::{ORPHAN_DETECTION_AGE_DAYS, deleted_event, lock};
use crate::domain::evidence::{self as evidence_domain, Swept};
use crate::domain::record::{Changes, record};
use crate::error::{AppError, AppResult, Code};
use crate::models::cases::{self, Case, CaseChanges};
use crate::models::enums::CaseStatus;
use crate::models::events::{CaseEventKind, Origin};
use crate::models::ids::{CaseId, TenantId, UserId};
use crate::models::{detections, evidence, links, messages};
use crate::storage::Storage;

/// Longest legal hold reason, in characters.
pub const MAX_HOLD_REASON: usize = 1_000;

/// Stored contents a committed archive or delete no longer needs: their objects go next.
#[derive(Debug, Default)]
#[must_use = "the released contents' objects must be removed after commit"]
pub struct Released {
    pub tenant: Option<TenantId>,
    pub contents: Vec<String>,
}

/// `LEGAL_HOLD` while the case is held.
pub fn check_not_held(case: &Case) -> AppResult<()> {
    if case.is_held() {
        Err(AppError::Rule(
            Code::LegalHold,
            format!("case {} is under legal hold: it is never archived or deleted", case.number),
        ))
    } else {
        Ok(())
    }
}

/// Archives a case locked by the caller's transaction, by `by` (`None`: a job), at `now`.
pub(crate) async fn archive_locked(
    conn: &mut AsyncPgConnection,
    case: &Case,
    by: Option<UserId>,
    origin: &Origin,
    now: DateTime<Utc>,
) -> AppResult<(Case, Released)> {
    check_not_held(case)?;
    let held = links::detections_of(conn, &[case.id]).await?;
    let contents = evidence::contents_of_detections(conn, case.tenant_id, &held).await?;
    links::remove_all(conn, case.id).await?;
    messages::delete_of_case(conn, case.id).await?;
    let mut changes = CaseChanges {
        status: Some(CaseStatus::Archived),
        archived_at: Some(Some(now)),
        ..CaseChanges::default()
    };
    changes.set_risk_counts([0; 6]);
    let archived = cases::update(conn, case.id, by, &changes).await?;
    let released = evidence::release_unlinked(conn, case.tenant_id, &contents).await?;
    let mut changes = case_record::diff(Some(case), &archived);
    if !released.is_empty() {
        changes = changes.fact("contentsRemoved", released.len());
    }
    let event = case_record::event("case.archived", CaseEventKind::Archived, &archived, changes);
    record(conn, case.tenant_id, origin, vec![event]).await?;
    Ok((archived, Released { tenant: Some(case.tenant_id), contents: released }))
}

/// Deletes cases locked by the caller's transaction (all of one tenant), at `now`.
pub(crate) async fn delete_locked(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    found: &[Case],
    origin: &Origin,
    now: DateTime<Utc>,
) -> AppResult<Released> {
    if let Some(held) = found.iter().find(|c| c.is_held()) {
        check_not_held(held)?;
    }
    let ids: Vec<CaseId> = found.iter().map(|c| c.id).collect();
    let held = links::detections_of(conn, &ids).await?;
    let contents = evidence::contents_of_detections(conn, tenant, &held).await?;
    cases::delete_many(conn, &ids).await?;
    let before = now - Duration::days(ORPHAN_DETECTION_AGE_DAYS);
    detections::delete_unheld_before(conn, &held, before).await?;
    let released = evidence::release_unlinked(conn, tenant, &contents).await?;
    let mut found = found.to_vec();
    found.sort_by_key(|c| c.number);
    let events = found.iter().map(deleted_event).collect();
    record(conn, tenant, origin, events).await?;
    Ok(Released { tenant: Some(tenant), contents: released })
}

/// Removes the objects of contents a committed transaction released; what fails stays
/// queued for the sweeper. Returns how many objects went.
pub async fn remove_after_commit(
    conn: &mut AsyncPgConnection,
    storage: &Storage,
    released: Released,
    now: DateTime<Utc>,
) -> u64 {
    let Some(tenant) = released.tenant else { return 0 };
    match evidence_domain::remove_released(conn, storage, tenant, &released.contents, now).await {
        Ok(swept) => swept.iter().filter(|s| **s == Swept::Removed).count() as u64,
        Err(error) => {
            tracing::warn!(%error, "removing released contents: the sweeper retries");
            0
        }
    }
}

/// Sets a legal hold with `reason`, or lifts it with `None` (ADMIN, ANALYST). Setting and
/// lifting are recorded; setting a held case again changes its reason.
pub async fn set_legal_hold(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: CaseId,
    reason: Option<String>,
) -> AppResult<Case> {
    access::precheck(viewer, CaseAction::Archive)?;
    let reason = match reason.as_deref().map(str::trim) {
        None => None,
        Some("") => {
            return Err(AppError::validation(
                "reason",
                "a legal hold needs a reason (null lifts the hold)",
            ));
        }
        Some(r) if r.chars().count() > MAX_HOLD_REASON => {
            return Err(AppError::validation(
                "reason",
                format!("`reason` has at most {MAX_HOLD_REASON} characters"),
            ));
        }
        Some(r) => Some(r.to_owned()),
    };
    let viewer = *viewer;
    conn.transaction(async |conn| {
        let case = lock(conn, &viewer, id).await?;
        access::check_role(&viewer, CaseAction::Archive, &case)?;
        if case.legal_hold_reason == reason {
            return Ok(case);
        }
        let now = Utc::now();
        let changes = CaseChanges {
            legal_hold_set_by_id: Some(reason.as_ref().map(|_| viewer.user_id)),
            legal_hold_set_at: Some(reason.as_ref().map(|_| now)),
            legal_hold_reason: Some(reason.clone()),
            ..CaseChanges::default()
        };
        let updated = cases::update(conn, case.id, Some(viewer.user_id), &changes).await?;
        let action =
            if reason.is_some() { "case.legal_hold_set" } else { "case.legal_hold_lifted" };
        let changes = Changes::new().field(
            "legalHold",
            case.legal_hold_reason.is_some(),
            updated.legal_hold_reason.is_some(),
        );
        let changes = match &reason {
            Some(r) => changes.text("legalHoldReason", case.legal_hold_reason.as_deref(), Some(r)),
            None => changes,
        };
        let event = case_record::event(action, CaseEventKind::Updated, &updated, changes);
        record(conn, viewer.tenant_id, &viewer.origin(), vec![event]).await?;
        Ok(updated)
    })
    .await
}

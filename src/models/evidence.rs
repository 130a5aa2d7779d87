//! Stored evidence contents: which contents a tenant holds (`evidence_contents`), which
//! detection carries which (`detections.content_sha256`), and the object removals left to
//! do after a commit (`evidence_removals`). The bytes themselves are in `crate::storage`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::{case_detections, detections, evidence_contents, evidence_removals};
use crate::models::detections::Detection;
use crate::models::ids::{CaseId, DetectionId, TenantId};

/// One stored content of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = evidence_contents, check_for_backend(diesel::pg::Pg))]
pub struct StoredContent {
    pub tenant_id: TenantId,
    pub sha256: String,
    pub size: i64,
    pub stored_at: DateTime<Utc>,
}

/// A detection of a case whose file content is stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct CaseContent {
    pub detection_id: DetectionId,
    pub sha256: String,
    pub size: i64,
}

/// A removal the object store still owes.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = evidence_removals, check_for_backend(diesel::pg::Pg))]
pub struct Removal {
    pub tenant_id: TenantId,
    pub sha256: String,
    pub attempts: i32,
}

/// Locks the tenant's detection for the rest of the transaction and returns it.
pub async fn lock_detection(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: DetectionId,
) -> QueryResult<Option<Detection>> {
    detections::table
        .filter(detections::tenant_id.eq(tenant).and(detections::id.eq(id)))
        .select(Detection::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// The tenant's detection with the size of its stored content, if any.
pub async fn find_detection(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: DetectionId,
) -> QueryResult<Option<(Detection, Option<i64>)>> {
    detections::table
        .left_join(
            evidence_contents::table.on(evidence_contents::tenant_id
                .eq(detections::tenant_id)
                .and(evidence_contents::sha256.nullable().eq(detections::content_sha256))),
        )
        .filter(detections::tenant_id.eq(tenant).and(detections::id.eq(id)))
        .select((Detection::as_select(), evidence_contents::size.nullable()))
        .first(conn)
        .await
        .optional()
}

/// Records the tenant's content (or finds it), locking its row until the transaction
/// ends, so a concurrent purge of the same content waits for this transaction. Any
/// removal still queued for it is cancelled: the object is wanted again. `true` when
/// the content is new (its object must be written).
pub async fn keep_content(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    sha256: &str,
    size: i64,
) -> QueryResult<bool> {
    diesel::delete(
        evidence_removals::table
            .filter(evidence_removals::tenant_id.eq(tenant))
            .filter(evidence_removals::sha256.eq(sha256)),
    )
    .execute(conn)
    .await?;
    loop {
        let inserted = diesel::insert_into(evidence_contents::table)
            .values((
                evidence_contents::tenant_id.eq(tenant),
                evidence_contents::sha256.eq(sha256),
                evidence_contents::size.eq(size),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        if inserted == 1 {
            return Ok(true);
        }
        let existing: Option<String> = evidence_contents::table
            .filter(evidence_contents::tenant_id.eq(tenant))
            .filter(evidence_contents::sha256.eq(sha256))
            .select(evidence_contents::sha256)
            .for_update()
            .first(conn)
            .await
            .optional()?;
        if existing.is_some() {
            return Ok(false);
        }
        // Purged between the two statements: insert it again.
    }
}

/// Links the detection to the tenant's content.
pub async fn set_detection_content(
    conn: &mut AsyncPgConnection,
    id: DetectionId,
    sha256: &str,
) -> QueryResult<usize> {
    diesel::update(detections::table.find(id))
        .set(detections::content_sha256.eq(sha256))
        .execute(conn)
        .await
}

/// The case's detections whose content is stored, with each content's hash and size,
/// in detection id order.
pub async fn contents_of_case(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    case: CaseId,
) -> QueryResult<Vec<CaseContent>> {
    case_detections::table
        .inner_join(
            detections::table.on(detections::tenant_id
                .eq(case_detections::tenant_id)
                .and(detections::id.eq(case_detections::detection_id))),
        )
        .inner_join(
            evidence_contents::table.on(evidence_contents::tenant_id
                .eq(detections::tenant_id)
                .and(evidence_contents::sha256.nullable().eq(detections::content_sha256))),
        )
        .filter(case_detections::tenant_id.eq(tenant))
        .filter(case_detections::case_id.eq(case))
        .order(detections::id)
        .select((detections::id, evidence_contents::sha256, evidence_contents::size))
        .load(conn)
        .await
}

/// The distinct contents carried by these detections.
pub async fn contents_of_detections(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    ids: &[DetectionId],
) -> QueryResult<Vec<String>> {
    detections::table
        .filter(detections::tenant_id.eq(tenant))
        .filter(detections::id.eq_any(ids))
        .filter(detections::content_sha256.is_not_null())
        .select(detections::content_sha256.assume_not_null())
        .distinct()
        .load(conn)
        .await
}

/// Of the tenant's `contents`, drops those that no detection held by a case carries any
/// more: their rows go, detections carrying them lose the link, and a removal of the
/// object is queued (done after commit, retried by the sweeper). Returns the dropped ones.
pub async fn release_unlinked(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    contents: &[String],
) -> QueryResult<Vec<String>> {
    if contents.is_empty() {
        return Ok(Vec::new());
    }
    // Lock the rows first (in key order): an upload of the same content waits, or is waited for.
    let locked: Vec<String> = evidence_contents::table
        .filter(evidence_contents::tenant_id.eq(tenant))
        .filter(evidence_contents::sha256.eq_any(contents))
        .order(evidence_contents::sha256)
        .select(evidence_contents::sha256)
        .for_update()
        .load(conn)
        .await?;
    let still_linked: Vec<String> = detections::table
        .inner_join(
            case_detections::table.on(case_detections::tenant_id
                .eq(detections::tenant_id)
                .and(case_detections::detection_id.eq(detections::id))),
        )
        .filter(detections::tenant_id.eq(tenant))
        .filter(detections::content_sha256.eq_any(&locked))
        .select(detections::content_sha256.assume_not_null())
        .distinct()
        .load(conn)
        .await?;
    let released: Vec<String> = locked.into_iter().filter(|c| !still_linked.contains(c)).collect();
    if released.is_empty() {
        return Ok(released);
    }
    diesel::update(
        detections::table
            .filter(detections::tenant_id.eq(tenant))
            .filter(detections::content_sha256.eq_any(&released)),
    )
    .set(detections::content_sha256.eq(None::<String>))
    .execute(conn)
    .await?;
    diesel::delete(
        evidence_contents::table
            .filter(evidence_contents::tenant_id.eq(tenant))
            .filter(evidence_contents::sha256.eq_any(&released)),
    )
    .execute(conn)
    .await?;
    let rows: Vec<_> = released
        .iter()
        .map(|sha| (evidence_removals::tenant_id.eq(tenant), evidence_removals::sha256.eq(sha)))
        .collect();
    diesel::insert_into(evidence_removals::table)
        .values(rows)
        .on_conflict((evidence_removals::tenant_id, evidence_removals::sha256))
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(released)
}

/// Locks the queued removal of one content, unless another worker holds it already.
pub async fn claim_removal(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    sha256: &str,
) -> QueryResult<Option<Removal>> {
    evidence_removals::table
        .filter(evidence_removals::tenant_id.eq(tenant))
        .filter(evidence_removals::sha256.eq(sha256))
        .select(Removal::as_select())
        .for_update()
        .skip_locked()
        .first(conn)
        .await
        .optional()
}

/// Locks up to `limit` removals due at `now` that no other worker holds.
pub async fn claim_due_removals(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<Removal>> {
    evidence_removals::table
        .filter(evidence_removals::next_attempt_at.le(now))
        .order(evidence_removals::next_attempt_at)
        .limit(limit)
        .select(Removal::as_select())
        .for_update()
        .skip_locked()
        .load(conn)
        .await
}

/// Whether the tenant holds the content again (uploaded after its removal was queued).
pub async fn content_exists(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    sha256: &str,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        evidence_contents::table
            .filter(evidence_contents::tenant_id.eq(tenant))
            .filter(evidence_contents::sha256.eq(sha256)),
    ))
    .get_result(conn)
    .await
}

/// The removal is done (or no longer wanted).
pub async fn finish_removal(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    sha256: &str,
) -> QueryResult<usize> {
    diesel::delete(
        evidence_removals::table
            .filter(evidence_removals::tenant_id.eq(tenant))
            .filter(evidence_removals::sha256.eq(sha256)),
    )
    .execute(conn)
    .await
}

/// The removal failed: try again at `next`, with the error kept for operators.
pub async fn postpone_removal(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    sha256: &str,
    next: DateTime<Utc>,
    error: &str,
) -> QueryResult<usize> {
    diesel::update(
        evidence_removals::table
            .filter(evidence_removals::tenant_id.eq(tenant))
            .filter(evidence_removals::sha256.eq(sha256)),
    )
    .set((
        evidence_removals::attempts.eq(evidence_removals::attempts + 1),
        evidence_removals::next_attempt_at.eq(next),
        evidence_removals::last_error.eq(error),
    ))
    .execute(conn)
    .await
}

/// How many removals are queued (the sweeper's backlog).
pub async fn pending_removals(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    evidence_removals::table.count().get_result(conn).await
}

//! Evidence file contents: who may upload and download them, the rules an upload must
//! follow, and the purge of contents no case needs any more (archive, delete, the jobs).
//!
//! An upload streams into a staging object first, hashed on the way; only then, in one
//! transaction holding the detection's row and the content's row, does it become the
//! tenant's content of that hash (stored once) and the detection's evidence.

use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::auth::Viewer;
use crate::db::{DbPool, pool};
use crate::domain::record::{Changes, global_id, record};
use crate::error::{AppError, AppResult, Code};
use crate::graphql::ids::Kind;
use crate::models::detections::Detection;
use crate::models::events::NewEvent;
use crate::models::evidence;
use crate::models::ids::{DetectionId, TenantId};
use crate::models::users::Role::{self, *};
use crate::storage::{ContentHash, StagedUpload, Storage};

/// Roles that may upload file contents.
pub const UPLOAD: &[Role] = &[Admin, Analyst, Ingest];

/// How an upload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uploaded {
    /// The detection's first content (HTTP 201).
    Created,
    /// The detection held this very content already (HTTP 200).
    Unchanged,
}

/// The detection a file is uploaded to, after checking the role and its file metadata.
pub async fn check_upload(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: DetectionId,
) -> AppResult<Detection> {
    viewer.require(UPLOAD)?;
    let (detection, _) = evidence::find_detection(conn, viewer.tenant_id, id)
        .await?
        .ok_or(AppError::NotFound("detection"))?;
    if detection.file_name.is_none() {
        return Err(AppError::validation(
            "file",
            "this detection has no file metadata: only a file event's contents are kept",
        ));
    }
    Ok(detection)
}

/// Makes a staged upload the detection's evidence, or refuses it (and discards it):
/// `VALIDATION_FAILED` on `sha256` when it differs from the detection's `file.sha256`,
/// `EVIDENCE_EXISTS` when the detection holds different content already.
pub async fn finish_upload(
    db: &DbPool,
    storage: &Storage,
    viewer: &Viewer,
    id: DetectionId,
    staged: StagedUpload,
) -> AppResult<Uploaded> {
    let result = commit_upload(db, storage, viewer, id, &staged).await;
    // The staged object became the content (renamed) or is not needed.
    if !matches!(result, Ok((_, true))) {
        storage.discard(staged).await;
    }
    result.map(|(uploaded, _)| uploaded)
}

async fn commit_upload(
    db: &DbPool,
    storage: &Storage,
    viewer: &Viewer,
    id: DetectionId,
    staged: &StagedUpload,
) -> AppResult<(Uploaded, bool)> {
    let mut conn = pool::get(db).await?;
    let tenant = viewer.tenant_id;
    let size = i64::try_from(staged.size).map_err(|_| anyhow::anyhow!("upload size overflow"))?;
    let result = conn.transaction(async |conn| {
        let detection = evidence::lock_detection(conn, tenant, id)
            .await?
            .ok_or(AppError::NotFound("detection"))?;
        if let Some(expected) = detection.file_sha256.as_deref().and_then(ContentHash::parse)
            && expected != staged.sha256
        {
            return Err(AppError::validation(
                "sha256",
                format!(
                    "the uploaded contents have SHA-256 {}, the detection's file has {expected}: nothing was kept",
                    staged.sha256
                ),
            ));
        }
        match detection.content_sha256.as_deref() {
            Some(held) if held == staged.sha256.as_str() => return Ok((Uploaded::Unchanged, false)),
            Some(_) => {
                return Err(AppError::Rule(
                    Code::EvidenceExists,
                    "this detection holds other contents already: evidence is never replaced"
                        .to_owned(),
                ));
            }
            None => {}
        }
        let new = evidence::keep_content(conn, tenant, staged.sha256.as_str(), size).await?;
        evidence::set_detection_content(conn, id, staged.sha256.as_str()).await?;
        let event = file_event("evidence.uploaded", &detection)
            .changes(
                Changes::new()
                    .field("contentStored", false, true)
                    .fact("sha256", staged.sha256.as_str())
                    .fact("size", staged.size)
                    .fact("fileName", detection.file_name.as_deref())
                    .into_value(),
            );
        record(conn, tenant, &viewer.origin(), vec![event]).await?;
        if new {
            // Under the content row's lock: a purge of the same content waits for us.
            storage.commit(tenant, staged).await.map_err(|e| anyhow::anyhow!(e))?;
        }
        // Otherwise stored once: another detection carries the same content already.
        Ok((Uploaded::Created, new))
    })
    .await;
    conn.settle(result).await
}

/// An event about a detection's file contents.
fn file_event(action: &'static str, detection: &Detection) -> NewEvent {
    NewEvent::new(action).target(global_id(Kind::Detection, detection.id.0))
}

/// Records who took a detection's stored content (whole, or the byte range `start..end`):
/// the chain of custody.
pub async fn record_download(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    detection: &Detection,
    hash: &ContentHash,
    size: u64,
    range: Option<(u64, u64)>,
) -> AppResult<()> {
    let mut changes = Changes::new()
        .fact("sha256", hash.as_str())
        .fact("size", size)
        .fact("fileName", detection.file_name.as_deref());
    if let Some((start, end)) = range {
        changes = changes.fact("range", format!("bytes {start}-{}", end.saturating_sub(1)));
    }
    let event = file_event("evidence.downloaded", detection).changes(changes.into_value());
    let viewer = *viewer;
    conn.transaction(async |conn| {
        record(conn, viewer.tenant_id, &viewer.origin(), vec![event]).await.map(|_| ())
    })
    .await
}

/// The detection whose stored content a reader downloads, with the content's size.
pub async fn find_download(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: DetectionId,
) -> AppResult<(Detection, ContentHash, u64)> {
    viewer.require_read()?;
    let (detection, size) = evidence::find_detection(conn, viewer.tenant_id, id)
        .await?
        .ok_or(AppError::NotFound("detection"))?;
    let hash = detection.content_sha256.as_deref().and_then(ContentHash::parse);
    match (hash, size) {
        (Some(hash), Some(size)) => Ok((detection, hash, u64::try_from(size).unwrap_or(0))),
        _ => Err(AppError::NotFound("stored file contents")),
    }
}

/// What became of one queued removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swept {
    /// The object is gone.
    Removed,
    /// Nothing to do: another worker holds it, or the content is wanted again.
    Skipped,
    /// The store failed: the removal stays queued, retried later by the sweeper.
    Failed,
}

/// Removes the objects of contents released in a committed transaction, and drops
/// their queued removals; a failure stays queued for the sweeper.
pub async fn remove_released(
    conn: &mut AsyncPgConnection,
    storage: &Storage,
    tenant: TenantId,
    released: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<Vec<Swept>> {
    let mut out = Vec::with_capacity(released.len());
    for sha in released {
        out.push(sweep_one(conn, storage, tenant, sha, now).await?);
    }
    Ok(out)
}

/// Removes one queued content's object, unless another worker holds its removal or the
/// content was uploaded again meanwhile.
pub async fn sweep_one(
    conn: &mut AsyncPgConnection,
    storage: &Storage,
    tenant: TenantId,
    sha256: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<Swept> {
    conn.transaction(async |conn| {
        let Some(removal) = evidence::claim_removal(conn, tenant, sha256).await? else {
            return Ok(Swept::Skipped);
        };
        remove_claimed(conn, storage, &removal, now).await
    })
    .await
}

/// Removes the object of a removal this transaction holds. A store failure postpones
/// the removal (a delay growing with the attempts) and is logged; the transaction goes on.
pub async fn remove_claimed(
    conn: &mut AsyncPgConnection,
    storage: &Storage,
    removal: &evidence::Removal,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<Swept> {
    let tenant = removal.tenant_id;
    let hash = ContentHash::parse(&removal.sha256);
    let wanted = evidence::content_exists(conn, tenant, &removal.sha256).await?;
    let Some(hash) = hash.filter(|_| !wanted) else {
        evidence::finish_removal(conn, tenant, &removal.sha256).await?;
        return Ok(Swept::Skipped);
    };
    match storage.remove(tenant, &hash).await {
        Ok(()) => {
            evidence::finish_removal(conn, tenant, &removal.sha256).await?;
            Ok(Swept::Removed)
        }
        Err(error) => {
            tracing::warn!(%error, attempts = removal.attempts + 1, "removing a stored content failed: retried later");
            let delay =
                chrono::Duration::seconds(30 * i64::from(removal.attempts.clamp(0, 60) + 1));
            evidence::postpone_removal(
                conn,
                tenant,
                &removal.sha256,
                now + delay,
                &error.to_string(),
            )
            .await?;
            Ok(Swept::Failed)
        }
    }
}

//! The auditor's questions: does the tenant's change record still hold together, and
//! does it extend a checkpoint the server signed earlier?

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use crate::auth::Viewer;
use crate::domain::access;
use crate::error::AppResult;
use crate::graphql::ids::{self, Kind};
use crate::models::events::{self, GENESIS_HASH};
use crate::models::ids::TenantId;
use crate::signing::AuditKey;

/// Events read per statement while verifying: memory stays constant.
const VERIFY_CHUNK: i64 = 1_000;

/// The head of a tenant's record, signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub sequence: i64,
    pub hash: String,
    pub at: DateTime<Utc>,
    /// Standard base64 of the raw 64-byte Ed25519 signature over [`signed_text`].
    pub signature: String,
    /// Standard base64 of the raw 32-byte public key.
    pub public_key: String,
}

/// A checkpoint an auditor kept and hands back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptCheckpoint {
    pub sequence: i64,
    pub hash: String,
    pub at: DateTime<Utc>,
    pub signature: String,
}

/// What the chain check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Every event up to the head holds together.
    pub ok: bool,
    /// Events checked (up to and including the first broken one).
    pub checked: i64,
    /// The first sequence where the chain breaks: an edited row, a missing one (its
    /// number), or one out of place.
    pub first_broken_sequence: Option<i64>,
    /// With a checkpoint: whether today's record extends it (signed by this server, and
    /// the event at its sequence still has its hash and time).
    pub extends_checkpoint: Option<bool>,
}

/// `at` exactly as the API shows a `DateTime` (what the signature covers).
pub fn api_time(at: DateTime<Utc>) -> String {
    match async_graphql::ScalarType::to_value(&at) {
        async_graphql::Value::String(text) => text,
        other => other.to_string(),
    }
}

/// The exact UTF-8 text a checkpoint's signature covers:
/// `casefile-audit-checkpoint:v1:<tenant global id>:<sequence>:<hash>:<at>`.
pub fn signed_text(tenant: TenantId, sequence: i64, hash: &str, at: DateTime<Utc>) -> String {
    format!(
        "casefile-audit-checkpoint:v1:{}:{sequence}:{hash}:{}",
        ids::encode(Kind::Tenant, tenant.0).0,
        api_time(at)
    )
}

/// The tenant's head, signed (ADMIN). `at` is the time of the head event (the time of
/// asking when the record is still empty).
pub async fn checkpoint(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    key: &AuditKey,
) -> AppResult<Checkpoint> {
    viewer.require(access::ADMINISTER)?;
    sign_head(conn, viewer.tenant_id, key).await
}

/// The tenant's head, signed, for a caller that has checked who may have it (the case
/// export puts one in every package's manifest).
pub async fn sign_head(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    key: &AuditKey,
) -> AppResult<Checkpoint> {
    let head = events::head(conn, tenant).await?;
    let at = if head.last_sequence == 0 {
        use chrono::SubsecRound;
        Utc::now().trunc_subsecs(6)
    } else {
        events::find_many(conn, tenant, &[head.last_sequence])
            .await?
            .first()
            .map_or_else(Utc::now, |e| e.at)
    };
    let text = signed_text(tenant, head.last_sequence, &head.last_hash, at);
    Ok(Checkpoint {
        sequence: head.last_sequence,
        hash: head.last_hash,
        at,
        signature: key.sign_base64(text.as_bytes()),
        public_key: key.public_key_base64(),
    })
}

/// Checks the whole chain of the tenant's record up to its head (ADMIN), and with a
/// checkpoint whether the record extends it.
pub async fn verify(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    key: &AuditKey,
    kept: Option<KeptCheckpoint>,
) -> AppResult<ChainReport> {
    viewer.require(access::ADMINISTER)?;
    let tenant = viewer.tenant_id;
    let head = events::head(conn, tenant).await?;
    let mut previous_hash = GENESIS_HASH.to_owned();
    let mut expected = 1_i64;
    let mut checked = 0_i64;
    let mut broken = None;
    // The kept checkpoint's event as found on the way: (hash, at).
    let mut at_checkpoint: Option<(String, DateTime<Utc>)> = None;
    'chunks: while expected <= head.last_sequence {
        let chunk = events::after(conn, tenant, expected - 1, VERIFY_CHUNK).await?;
        if chunk.is_empty() {
            broken = Some(expected);
            break;
        }
        for event in chunk {
            if event.sequence > head.last_sequence {
                break 'chunks;
            }
            checked += 1;
            if event.sequence != expected {
                // A missing row: the chain breaks at the number that is not there.
                broken = Some(expected);
                break 'chunks;
            }
            if event.previous_hash != previous_hash || event.compute_hash() != event.hash {
                broken = Some(event.sequence);
                break 'chunks;
            }
            if kept.as_ref().is_some_and(|k| k.sequence == event.sequence) {
                at_checkpoint = Some((event.hash.clone(), event.at));
            }
            previous_hash = event.hash;
            expected += 1;
        }
    }
    if broken.is_none() && previous_hash != head.last_hash {
        // The head names a hash the last event does not have.
        broken = Some(head.last_sequence.max(1));
    }
    let extends_checkpoint = kept.map(|kept| {
        let text = signed_text(tenant, kept.sequence, &kept.hash, kept.at);
        let signed = key.verify_base64(text.as_bytes(), &kept.signature);
        let intact = broken.is_none_or(|b| b > kept.sequence);
        let found = if kept.sequence == 0 {
            kept.hash == GENESIS_HASH
        } else {
            at_checkpoint.is_some_and(|(hash, at)| hash == kept.hash && at == kept.at)
        };
        signed && intact && found
    });
    Ok(ChainReport {
        ok: broken.is_none(),
        checked,
        first_broken_sequence: broken,
        extends_checkpoint,
    })
}

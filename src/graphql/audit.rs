//! The change record in the API: `AuditEvent`, `auditEvents`, `Case.activity`,
//! `verifyAuditChain` and `auditCheckpoint`.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};

use crate::domain::access;
use crate::domain::audit::{self as audit_domain, ChainReport, Checkpoint, KeptCheckpoint};
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::{Activity, ActivityKey, ActivityPage};
use crate::graphql::pagination::{Conn, ListCount, PageArgs, Total, connection};
use crate::graphql::scalars::DateTimeRange;
use crate::graphql::users::User;
use crate::graphql::viewer_and_loaders;
use crate::models::events::list::{self, EventFilter};
use crate::models::events::{ActorType, CaseEventKind, Event};
use crate::models::ids::{CaseId, UserId};
use crate::models::page::{Cursor, Key, KeyType, Page, PageRequest, Tie};
use crate::models::users::Role;
use crate::signing::AuditKey;

/// The order name audit cursors carry.
const ORDER: &str = "AUDIT_SEQUENCE_DESC";

fn cursor(event: &Event) -> String {
    Cursor {
        order: ORDER.to_owned(),
        key: Key::Int(event.sequence),
        tie: Tie::Number(event.sequence),
    }
    .encode()
}

fn decode_cursor(text: &str) -> Option<Cursor> {
    Cursor::decode(text, ORDER, KeyType::Int, true)
}

/// The sequence below which a page starts.
fn before(request: &PageRequest) -> Option<i64> {
    request.cursor.as_ref().and_then(|c| match c.key {
        Key::Int(sequence) => Some(sequence),
        _ => None,
    })
}

/// Rows fetched with one extra: the page and whether more follow.
fn page_of(mut rows: Vec<Event>, limit: i64) -> Page<Event> {
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    Page { rows, more }
}

/// One entry of the tenant's change record.
pub struct AuditEvent(pub Event);

/// One change, as the tenant's change record keeps it: who, when, from where, what, and
/// the hash that chains it to the event before.
#[Object]
impl AuditEvent {
    /// Global id.
    pub async fn id(&self) -> ID {
        ids::encode(Kind::AuditEvent, self.0.id)
    }

    /// The event's place in the tenant's record: 1, 2, 3, … without gaps.
    async fn sequence(&self) -> i32 {
        i32::try_from(self.0.sequence).unwrap_or(i32::MAX)
    }

    /// When the change was committed (microsecond precision).
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }

    /// The user whose token made the change; null for SYSTEM.
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.0.actor_id else { return Ok(None) };
        let (_, loaders) = viewer_and_loaders(ctx)?;
        Ok(loaders.users.load_one(UserId(id.0)).await?.map(User))
    }

    /// USER (a person's token), API_CLIENT (an INGEST user's token) or SYSTEM (jobs, the
    /// command line, the first start).
    async fn actor_type(&self) -> async_graphql::Result<ActorType> {
        self.0.actor_type().ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!("unknown stored actor type {:?}", self.0.actor_type))
                .into()
        })
    }

    /// The id of the request that made the change (as its `x-request-id` header and the
    /// server's log name it). ADMIN only: null for other roles.
    async fn request_id(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(if is_admin(ctx)? { self.0.request_id.clone() } else { None })
    }

    /// The network address the request came from. ADMIN only: null for other roles.
    async fn client_address(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(if is_admin(ctx)? { self.0.client_address.clone() } else { None })
    }

    /// What happened, as `<noun>.<verb>`: `case.created`, `case.updated`, `user.created`, …
    async fn action(&self) -> &str {
        &self.0.action
    }

    /// The global id of the case the event is about (kept after the case is deleted).
    async fn case_id(&self) -> Option<ID> {
        self.0.case_id.map(|c| ids::encode(Kind::Case, c.0))
    }

    /// The number of the case the event is about (kept after the case is deleted).
    async fn case_number(&self) -> Option<i32> {
        self.0.case_number
    }

    /// For an event about a case: what happened to it, as live case views name it.
    async fn case_event_kind(&self) -> Option<CaseEventKind> {
        self.0.case_event_kind()
    }

    /// The global id of the object the event changed (it may no longer exist).
    async fn target_id(&self) -> Option<ID> {
        self.0.target_id.clone().map(ID)
    }

    /// The changed fields as `{"<field>": {"before": …, "after": …}}` with the API's field
    /// names, and facts of the action (counts, ids). Long free text (description,
    /// findings, notes, message bodies) appears only as `{"sha256", "length"}`.
    async fn changes(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(self.0.changes.clone())
    }

    /// The hash of the event before (64 zeros for the tenant's first event).
    async fn previous_hash(&self) -> &str {
        &self.0.previous_hash
    }

    /// SHA-256 (hex) of the event's canonical encoding `casefile-audit-event:v1`: sixteen
    /// lines joined by `\n` — the encoding's name, `previousHash`, the tenant's global id,
    /// `sequence`, `id`, `at` (UTC, six fraction digits, `Z`), the actor's global id,
    /// `actorType`, `requestId`, `clientAddress`, `action`, `caseId`, `caseNumber`,
    /// `caseEventKind`, `targetId`, and `changes` as compact JSON with sorted keys (an
    /// absent value is an empty line). `GET /audit/export` gives exactly these values.
    async fn hash(&self) -> &str {
        &self.0.hash
    }
}

fn is_admin(ctx: &Context<'_>) -> async_graphql::Result<bool> {
    let (viewer, _) = viewer_and_loaders(ctx)?;
    Ok(viewer.role == Role::Admin)
}

/// Which events `auditEvents` lists; absent fields do not filter.
#[derive(Debug, Clone, Default, InputObject)]
#[graphql(name = "AuditEventFilter")]
pub struct AuditEventFilterInput {
    /// Only events about the case with this number.
    pub case_number: Option<i32>,
    /// Only changes made with tokens of this user.
    pub actor_id: Option<ID>,
    /// Only changes by this kind of actor.
    pub actor_type: Option<ActorType>,
    /// Only this action, e.g. `case.updated`.
    pub action: Option<String>,
    /// Only events committed in this range.
    pub at: Option<DateTimeRange>,
}

impl AuditEventFilterInput {
    fn into_model(self) -> Result<EventFilter, AppError> {
        let actor_id = self
            .actor_id
            .map(|id| ids::expect(Kind::User, &id, "filter.actorId").map(UserId))
            .transpose()?;
        let at = self.at.unwrap_or_default();
        Ok(EventFilter {
            case_number: self.case_number,
            actor_id,
            actor_type: self.actor_type,
            action: self.action,
            at_from: at.from,
            at_to: at.to,
        })
    }
}

/// A checkpoint an auditor kept, handed back to check that today's record extends it.
#[derive(Debug, Clone, InputObject)]
#[graphql(name = "AuditCheckpointInput")]
pub struct AuditCheckpointInput {
    /// The checkpoint's `sequence`.
    pub sequence: i32,
    /// The checkpoint's `hash`.
    pub hash: String,
    /// The checkpoint's `at`.
    #[graphql(validator(custom = "crate::graphql::scalars::storable_time"))]
    pub at: DateTime<Utc>,
    /// The checkpoint's `signature`.
    pub signature: String,
}

/// A signed head of the change record.
pub struct AuditCheckpoint(pub Checkpoint);

/// The head of the tenant's change record, signed by the server with Ed25519. The
/// signature covers exactly the UTF-8 text
/// `casefile-audit-checkpoint:v1:<tenant global id>:<sequence>:<hash>:<at>`, with `hash`
/// and `at` as returned here; verify it with `publicKey` (also at `GET /audit/public-key`).
#[Object]
impl AuditCheckpoint {
    /// The sequence of the last event (0 while the record is empty).
    async fn sequence(&self) -> i32 {
        i32::try_from(self.0.sequence).unwrap_or(i32::MAX)
    }

    /// The hash of the last event (64 zeros while the record is empty).
    async fn hash(&self) -> &str {
        &self.0.hash
    }

    /// When the last event was committed.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }

    /// Standard base64 of the raw 64-byte Ed25519 signature.
    async fn signature(&self) -> &str {
        &self.0.signature
    }

    /// Standard base64 of the server's raw 32-byte Ed25519 public key.
    async fn public_key(&self) -> &str {
        &self.0.public_key
    }
}

/// A chain check's result.
pub struct AuditChainReport(pub ChainReport);

/// What `verifyAuditChain` found: whether the tenant's change record holds together, how
/// much of it was checked, where it breaks, and whether it extends a kept checkpoint.
#[Object]
impl AuditChainReport {
    /// Whether every event up to the head holds together: gap-free sequences, each
    /// event's hash recomputed equal, each naming the hash of the one before.
    async fn ok(&self) -> bool {
        self.0.ok
    }

    /// How many events were checked (up to and including the first broken one).
    async fn checked(&self) -> i32 {
        i32::try_from(self.0.checked).unwrap_or(i32::MAX)
    }

    /// The first sequence where the chain breaks (an edited row, the number of a missing
    /// one, a row out of place); null when `ok`.
    async fn first_broken_sequence(&self) -> Option<i32> {
        self.0.first_broken_sequence.map(|s| i32::try_from(s).unwrap_or(i32::MAX))
    }

    /// With a checkpoint: whether today's record extends it (signed by this server's key,
    /// and the event at its sequence still has its hash and time, with an intact chain up
    /// to it). Null without a checkpoint.
    async fn extends_checkpoint(&self) -> Option<bool> {
        self.0.extends_checkpoint
    }
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The tenant's change record, newest first (ADMIN; others: `FORBIDDEN`).
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many events (1–100; default 50).")] first: Option<i32>,
        #[graphql(
            desc = "The events after this cursor (older ones), an `endCursor` or edge `cursor` of this list."
        )]
        after: Option<String>,
        #[graphql(desc = "Which events to list; absent: all.")] filter: Option<
            AuditEventFilterInput,
        >,
    ) -> async_graphql::Result<Conn<AuditEvent>> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        viewer.require(access::ADMINISTER)?;
        let filter = filter.unwrap_or_default().into_model()?;
        let request = PageArgs::forward(first, after).request(decode_cursor)?;
        let mut conn = crate::graphql::conn(ctx).await?;
        let rows =
            list::page(&mut conn, viewer.tenant_id, &filter, before(&request), request.limit + 1)
                .await
                .map_err(AppError::from)?;
        drop(conn);
        let total = Total::List(ListCount::AuditEvents(viewer.tenant_id, Box::new(filter)));
        Ok(connection(page_of(rows, request.limit), &request, total, cursor, AuditEvent))
    }

    /// Checks the tenant's whole change record (ADMIN). With `checkpoint` (one
    /// `auditCheckpoint` gave earlier) it also proves that today's record extends it,
    /// which catches even a consistent rewrite of the whole chain.
    async fn verify_audit_chain(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A signed checkpoint kept from `auditCheckpoint`.")] checkpoint: Option<
            AuditCheckpointInput,
        >,
    ) -> async_graphql::Result<AuditChainReport> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        viewer.require(access::ADMINISTER)?;
        let key = ctx.data::<Arc<AuditKey>>()?;
        let kept = checkpoint.map(|c| KeptCheckpoint {
            sequence: i64::from(c.sequence),
            hash: c.hash,
            at: c.at,
            signature: c.signature,
        });
        let mut conn = crate::graphql::conn(ctx).await?;
        Ok(AuditChainReport(audit_domain::verify(&mut conn, viewer, key, kept).await?))
    }

    /// The head of the tenant's change record, signed by the server (ADMIN). Keep it:
    /// `verifyAuditChain(checkpoint:)` later proves the record still extends it.
    async fn audit_checkpoint(&self, ctx: &Context<'_>) -> async_graphql::Result<AuditCheckpoint> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        viewer.require(access::ADMINISTER)?;
        let key = ctx.data::<Arc<AuditKey>>()?;
        let mut conn = crate::graphql::conn(ctx).await?;
        Ok(AuditCheckpoint(audit_domain::checkpoint(&mut conn, viewer, key).await?))
    }
}

/// `Case.activity`: the case's events, newest first, through the activity loader.
pub async fn activity(
    ctx: &Context<'_>,
    case: CaseId,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<Conn<AuditEvent>> {
    let (viewer, loaders) = viewer_and_loaders(ctx)?;
    viewer.require_read()?;
    let request = PageArgs::forward(first, after).request(decode_cursor)?;
    let page = ActivityPage { before: before(&request), limit: request.limit + 1 };
    let rows = match loaders.activity.load_one(ActivityKey::Page(case, page)).await? {
        Some(Activity::Page(rows)) => rows,
        _ => Vec::new(),
    };
    Ok(connection(
        page_of(rows, request.limit),
        &request,
        Total::Activity(case),
        cursor,
        AuditEvent,
    ))
}

//! Subscriptions: live case events and newly ingested detections, read from the change
//! record through the server's [`EventHub`]. With `after`, the log is replayed from that
//! cursor first; live events follow with no gap and no repeat.
//!
//! Access is checked for every event: the event must be of the viewer's tenant (the hub
//! keeps tenants apart), the viewer's role must read cases, and the event must be of the
//! subscription's case or list. A change to the viewer itself (its token revoked, its user
//! deactivated or its role changed) closes the whole socket (`http::ws`).

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::{Context, ID, Object, Subscription};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};

use crate::auth::Viewer;
use crate::db::{DbPool, pool};
use crate::error::{AppError, AppResult, Code, LoadError};
use crate::events::EventHub;
use crate::events::cursor::EventCursor;
use crate::graphql::cases::Case;
use crate::graphql::cases::inputs::CaseFilterInput;
use crate::graphql::detections::Detection;
use crate::graphql::ids::{self, Kind};
use crate::graphql::messages::Message;
use crate::graphql::users::User;
use crate::graphql::viewer_and_loaders;
use crate::models::cases::list::{self as case_list, CaseFilter};
use crate::models::enums::Severity;
use crate::models::events::{CaseEventKind, Event};
use crate::models::ids::{CaseId, DetectionId, MessageId};
use crate::models::{cases, detections, live};

/// How many matching cases a live list remembers, to send the event that makes one leave.
const LIST_MEMBERS: i64 = 10_000;

/// How long an event's fields wait for an unreachable database before they fail.
const PATIENCE: Duration = Duration::from_secs(60);
/// How many times a read that failed inside the database is tried before it fails.
const DATABASE_TRIES: u32 = 4;

/// Loads what an event's field shows, waiting out a database that went away (retrying
/// with backoff): an event read from the change record just before the database went
/// away reaches its subscriber late, with its fields, rather than at once with an error
/// in their place. `UNAVAILABLE` is waited out for up to [`PATIENCE`]; a database error
/// (a session the server ended as it shut down reports itself so) is tried again up to
/// [`DATABASE_TRIES`] times, which turns into `UNAVAILABLE` when the database is down.
async fn patiently<T, F, Fut>(mut load: F) -> Result<T, LoadError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, LoadError>>,
{
    let deadline = Instant::now() + PATIENCE;
    let mut wait = Duration::from_millis(100);
    let mut database_errors = 0;
    loop {
        let error = match load().await {
            Err(error) => error,
            done => return done,
        };
        let again = match error.0.as_ref() {
            _ if error.0.code() == Code::Unavailable => Instant::now() < deadline,
            AppError::Database(_) => {
                database_errors += 1;
                database_errors < DATABASE_TRIES
            }
            _ => false,
        };
        if !again {
            return Err(error);
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

/// Something that happened to a case, as a live view needs it.
pub struct CaseEvent(pub Arc<Event>);

/// Something that happened to a case: one event of the tenant's change record.
#[Object]
impl CaseEvent {
    /// The event's position: pass it as `after` to resume from here (on any server).
    async fn cursor(&self) -> String {
        EventCursor::of(&self.0).encode()
    }

    /// What happened.
    async fn kind(&self) -> async_graphql::Result<CaseEventKind> {
        let kind = self.0.case_event_kind();
        Ok(kind.ok_or_else(|| AppError::Internal(anyhow::anyhow!("not a case event")))?)
    }

    /// When it happened.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }

    /// The case's global id (also after the case is deleted).
    async fn case_id(&self) -> ID {
        ids::encode(Kind::Case, self.0.case_id.map(|c| c.0).unwrap_or_default())
    }

    /// The case as it is now; null once it is deleted.
    async fn case(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Case>> {
        let Some(id) = self.0.case_id else { return Ok(None) };
        let (_, loaders) = viewer_and_loaders(ctx)?;
        Ok(patiently(|| loaders.cases.load_one(id)).await?.map(Case))
    }

    /// Who did it; null when casefile did (a job).
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.0.actor_id else { return Ok(None) };
        let (_, loaders) = viewer_and_loaders(ctx)?;
        Ok(patiently(|| loaders.users.load_one(id)).await?.map(User))
    }

    /// The posted message (MESSAGE_POSTED); null for other kinds and once the case is
    /// archived (archival deletes its messages).
    async fn message(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Message>> {
        if self.0.case_event_kind() != Some(CaseEventKind::MessagePosted) {
            return Ok(None);
        }
        let Some((Kind::Message, id)) = self.0.target_id.as_deref().and_then(ids::decode) else {
            return Ok(None);
        };
        let (_, loaders) = viewer_and_loaders(ctx)?;
        Ok(patiently(|| loaders.messages.load_one(MessageId(id))).await?.map(Message))
    }

    /// The GraphQL names of the fields the event changed (empty when it changed none).
    async fn changed_fields(&self) -> Vec<String> {
        self.0.changes.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
    }
}

#[derive(Default)]
pub struct LiveSubscription;

/// Live updates over the WebSocket (`/graphql/ws`, both subprotocols). Every role but
/// INGEST may subscribe; at most `CASEFILE_WS_MAX_SUBSCRIPTIONS` (default 100) at once per
/// connection (`LIMIT_EXCEEDED`).
#[Subscription]
impl LiveSubscription {
    /// Events of one case. With `after` (a cursor from an earlier event), every later
    /// event is replayed first, then live ones follow. Errors: `FORBIDDEN`, `NOT_FOUND`
    /// (no such case in the viewer's tenant), `VALIDATION_FAILED` (`caseId`, `after`).
    async fn case_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The case's global id.")] case_id: ID,
        #[graphql(desc = "The cursor of the last event seen; absent: from now on.")] after: Option<
            String,
        >,
    ) -> async_graphql::Result<impl Stream<Item = CaseEvent> + use<>> {
        let (viewer, hub, db) = parts(ctx)?;
        viewer.require_read()?;
        let case = CaseId(ids::expect(Kind::Case, &case_id, "caseId")?);
        let after = start(&db, &viewer, after.as_deref()).await?;
        let mut conn = pool::get(&db).await?;
        let exists =
            cases::find(&mut conn, viewer.tenant_id, case).await.map_err(AppError::from)?.is_some()
                || live::case_logged(&mut conn, viewer.tenant_id, case)
                    .await
                    .map_err(AppError::from)?;
        drop(conn);
        if !exists {
            return Err(AppError::NotFound("case").into());
        }
        let events = hub.subscribe(viewer.tenant_id, after).await?;
        Ok(events.filter_map(move |event| {
            let keep = readable(&viewer, &event)
                && event.case_id == Some(case)
                && event.case_event_kind().is_some();
            std::future::ready(keep.then_some(CaseEvent(event)))
        }))
    }

    /// Events of every case the viewer may see that matches the filter: live case lists.
    /// A case that stops matching (resolved, reassigned, archived, deleted, …) gets the
    /// event that made it leave, so a list can drop it. With `after`, every later event is
    /// replayed first. Errors: `FORBIDDEN`, `VALIDATION_FAILED`.
    async fn case_list_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which cases, as `cases` takes it; absent: the open ones.")]
        filter: Option<CaseFilterInput>,
        #[graphql(desc = "The cursor of the last event seen; absent: from now on.")] after: Option<
            String,
        >,
    ) -> async_graphql::Result<impl Stream<Item = CaseEvent> + use<>> {
        let (viewer, hub, db) = parts(ctx)?;
        viewer.require_read()?;
        let filter = filter.unwrap_or_default().into_model()?;
        let after = start(&db, &viewer, after.as_deref()).await?;
        let events = hub.subscribe(viewer.tenant_id, after).await?;
        let replay_until = match after {
            Some(_) => hub.head(viewer.tenant_id).await?,
            None => 0,
        };
        let mut conn = pool::get(&db).await?;
        let members: HashSet<CaseId> =
            case_list::matching_ids(&mut conn, viewer.tenant_id, &filter, LIST_MEMBERS)
                .await
                .map_err(AppError::from)?
                .into_iter()
                .collect();
        drop(conn);
        let list = Arc::new(tokio::sync::Mutex::new(LiveList { filter, members, replay_until }));
        Ok(events.filter_map(move |event| {
            let db = db.clone();
            let list = list.clone();
            async move {
                let case = event.case_id?;
                if !readable(&viewer, &event) || event.case_event_kind().is_none() {
                    return None;
                }
                let mut list = list.lock().await;
                match list.admits(&db, &viewer, case, &event).await {
                    Ok(true) => Some(CaseEvent(event)),
                    Ok(false) => None,
                    Err(error) => {
                        tracing::warn!(%error, "checking a live list's filter");
                        Some(CaseEvent(event))
                    }
                }
            }
        }))
    }

    /// Newly ingested detections at or above a severity, as each ingestion commits.
    /// Errors: `FORBIDDEN`.
    async fn detections_ingested(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The lowest severity to send; absent: HIGH.",
            default_with = "Severity::High"
        )]
        min_severity: Severity,
    ) -> async_graphql::Result<impl Stream<Item = Detection> + use<>> {
        let (viewer, hub, db) = parts(ctx)?;
        viewer.require_read()?;
        let events = hub.subscribe(viewer.tenant_id, None).await?;
        Ok(events
            .filter_map(move |event| {
                let db = db.clone();
                async move {
                    if !readable(&viewer, &event) || event.action != "detections.ingested" {
                        return None;
                    }
                    let ids = ingested_ids(&event);
                    if ids.is_empty() {
                        return None;
                    }
                    let mut conn = pool::get(&db).await.ok()?;
                    let mut found =
                        detections::find_many(&mut conn, viewer.tenant_id, &ids).await.ok()?;
                    found.retain(|d| d.severity.rank() >= min_severity.rank());
                    found.sort_by_key(|d| ids.iter().position(|id| *id == d.id));
                    Some(futures_util::stream::iter(found.into_iter().map(Detection)))
                }
            })
            .flatten())
    }
}

/// The ids of the detections an ingestion event names: `changes.detectionIds` (or `ids`),
/// global ids or UUIDs.
fn ingested_ids(event: &Event) -> Vec<DetectionId> {
    let list = ["detectionIds", "ids", "detections"]
        .iter()
        .find_map(|key| event.changes.get(*key).and_then(|v| v.as_array()));
    list.map(|values| {
        values
            .iter()
            .filter_map(|v| v.as_str())
            .filter_map(|text| match ids::decode(text) {
                Some((Kind::Detection, id)) => Some(DetectionId(id)),
                _ => uuid::Uuid::parse_str(text).ok().map(DetectionId),
            })
            .collect()
    })
    .unwrap_or_default()
}

/// A live list's filter and the cases known to match it.
struct LiveList {
    filter: CaseFilter,
    members: HashSet<CaseId>,
    /// Events up to this sequence are replayed: the members are those of now, so a case
    /// that left meanwhile gets every event that may have made it leave.
    replay_until: i64,
}

impl LiveList {
    async fn admits(
        &mut self,
        db: &DbPool,
        viewer: &Viewer,
        case: CaseId,
        event: &Event,
    ) -> AppResult<bool> {
        let mut filter = self.filter.clone();
        filter.ids = Some(vec![case]);
        let mut conn = pool::get(db).await?;
        let matches =
            !case_list::matching_ids(&mut conn, viewer.tenant_id, &filter, 1).await?.is_empty();
        if matches {
            self.members.insert(case);
            return Ok(true);
        }
        if self.members.remove(&case) {
            return Ok(true);
        }
        let may_leave = !matches!(
            event.case_event_kind(),
            Some(CaseEventKind::Created | CaseEventKind::MessagePosted) | None
        );
        Ok(event.sequence <= self.replay_until && may_leave)
    }
}

/// Whether the viewer may see this event at all.
fn readable(viewer: &Viewer, event: &Event) -> bool {
    event.tenant_id == viewer.tenant_id && viewer.require_read().is_ok()
}

fn parts(ctx: &Context<'_>) -> async_graphql::Result<(Viewer, EventHub, DbPool)> {
    let viewer = *ctx.data::<Viewer>().map_err(|_| AppError::Unauthenticated)?;
    let hub = ctx.data::<EventHub>()?.clone();
    let db = ctx.data::<DbPool>()?.clone();
    Ok((viewer, hub, db))
}

/// The sequence after which to start: `None` for "from now on"; a cursor of another
/// tenant, of no event, or not a cursor at all is `VALIDATION_FAILED` on `after`.
async fn start(db: &DbPool, viewer: &Viewer, after: Option<&str>) -> AppResult<Option<i64>> {
    let Some(text) = after else { return Ok(None) };
    let bad = || AppError::validation("after", "`after` is not the cursor of an event of yours");
    let cursor = EventCursor::decode(text).ok_or_else(bad)?;
    if cursor.tenant != viewer.tenant_id {
        return Err(bad());
    }
    let mut conn = pool::get(db).await?;
    let event = live::find(&mut conn, viewer.tenant_id, cursor.sequence).await?.ok_or_else(bad)?;
    if !cursor.names(&event) {
        return Err(bad());
    }
    Ok(Some(cursor.sequence))
}

//! Delivery cursors: one row per (tenant, channel), the last event of the tenant's change
//! record the channel has handled, with a lease so one server at a time works a channel.
//! The worker that uses them is [`crate::delivery`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::schema::delivery_cursors;
use crate::models::events::{self, Event};
use crate::models::ids::TenantId;

/// A channel's cursor row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = delivery_cursors, check_for_backend(diesel::pg::Pg))]
pub struct Cursor {
    pub tenant_id: TenantId,
    /// `<kind>` or `<kind>:<key>`, e.g. `mail` or `webhook:<uuid>`.
    pub channel: String,
    /// The last sequence handled (0: none of the log yet).
    pub sequence: i64,
    /// Failures in a row of the event after `sequence`.
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// Set while the channel is paused (e.g. a disabled webhook): never claimed.
    pub paused_at: Option<DateTime<Utc>>,
}

/// The `<kind>` part of a channel name.
pub fn channel_kind(channel: &str) -> &str {
    channel.split_once(':').map_or(channel, |(kind, _)| kind)
}

/// Creates the channel's cursor at the tenant's head as it is now (no history is
/// replayed); nothing happens when the channel exists already. Call it in the
/// transaction that creates what the channel delivers for.
pub async fn open(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    channel: &str,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO delivery_cursors (tenant_id, channel, sequence) \
         SELECT tenant_id, $2, last_sequence FROM audit_heads WHERE tenant_id = $1 \
         ON CONFLICT (tenant_id, channel) DO NOTHING",
    )
    .bind::<diesel::sql_types::Uuid, _>(tenant.0)
    .bind::<Text, _>(channel)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes the channel's cursor (a worker holding it stops at its next step).
pub async fn close(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    channel: &str,
) -> QueryResult<()> {
    diesel::delete(
        delivery_cursors::table
            .filter(delivery_cursors::tenant_id.eq(tenant))
            .filter(delivery_cursors::channel.eq(channel)),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The channel's cursor.
pub async fn find(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    channel: &str,
) -> QueryResult<Option<Cursor>> {
    delivery_cursors::table
        .filter(delivery_cursors::tenant_id.eq(tenant))
        .filter(delivery_cursors::channel.eq(channel))
        .select(Cursor::as_select())
        .first(conn)
        .await
        .optional()
}

/// Pauses the channel (it is claimed again after [`resume`]); the cursor stays where it is.
pub async fn pause(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    channel: &str,
    reason: &str,
) -> QueryResult<()> {
    diesel::update(
        delivery_cursors::table
            .filter(delivery_cursors::tenant_id.eq(tenant))
            .filter(delivery_cursors::channel.eq(channel)),
    )
    .set((
        delivery_cursors::paused_at.eq(diesel::dsl::now),
        delivery_cursors::last_error.eq(reason),
        delivery_cursors::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// Resumes a paused channel from where it stopped, due now, with no failures counted.
pub async fn resume(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    channel: &str,
) -> QueryResult<()> {
    diesel::update(
        delivery_cursors::table
            .filter(delivery_cursors::tenant_id.eq(tenant))
            .filter(delivery_cursors::channel.eq(channel)),
    )
    .set((
        delivery_cursors::paused_at.eq(None::<DateTime<Utc>>),
        delivery_cursors::attempts.eq(0),
        delivery_cursors::next_attempt_at.eq(diesel::dsl::now),
        delivery_cursors::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes one due channel of these kinds that has events after its cursor, for `worker`,
/// for `lease`: not paused, not leased by another live worker, its next attempt due.
/// `FOR UPDATE SKIP LOCKED`: two servers never take the same row.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    kinds: &[&str],
    worker: Uuid,
    lease: Duration,
) -> QueryResult<Option<Cursor>> {
    let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
    diesel::sql_query(
        "UPDATE delivery_cursors c SET leased_by = $2, \
           leased_until = now() + make_interval(secs => $3) \
         FROM ( \
           SELECT d.tenant_id, d.channel FROM delivery_cursors d \
           JOIN audit_heads h ON h.tenant_id = d.tenant_id \
           WHERE d.paused_at IS NULL AND d.next_attempt_at <= now() \
             AND (d.leased_until IS NULL OR d.leased_until < now()) \
             AND h.last_sequence > d.sequence \
             AND split_part(d.channel, ':', 1) = ANY($1) \
           ORDER BY d.next_attempt_at \
           LIMIT 1 FOR UPDATE OF d SKIP LOCKED) due \
         WHERE c.tenant_id = due.tenant_id AND c.channel = due.channel \
         RETURNING c.tenant_id, c.channel, c.sequence, c.attempts, c.next_attempt_at, \
           c.last_error, c.paused_at",
    )
    .bind::<Array<Text>, _>(kinds)
    .bind::<diesel::sql_types::Uuid, _>(worker)
    .bind::<diesel::sql_types::Double, _>(lease.as_secs_f64())
    .get_result(conn)
    .await
    .optional()
}

/// When the next channel of these kinds with events to handle is due (`None`: none
/// is waiting, only new events will make one due).
pub async fn next_due(
    conn: &mut AsyncPgConnection,
    kinds: &[&str],
) -> QueryResult<Option<DateTime<Utc>>> {
    #[derive(QueryableByName)]
    struct Due {
        #[diesel(sql_type = Nullable<Timestamptz>)]
        at: Option<DateTime<Utc>>,
    }
    let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
    let due: Due = diesel::sql_query(
        "SELECT min(greatest(d.next_attempt_at, coalesce(d.leased_until, d.next_attempt_at))) \
           AS at \
         FROM delivery_cursors d JOIN audit_heads h ON h.tenant_id = d.tenant_id \
         WHERE d.paused_at IS NULL AND h.last_sequence > d.sequence \
           AND split_part(d.channel, ':', 1) = ANY($1)",
    )
    .bind::<Array<Text>, _>(kinds)
    .get_result(conn)
    .await?;
    Ok(due.at)
}

/// Moves the cursor to `sequence` and renews the lease, if `worker` still holds it;
/// clears the failure count. Returns whether it did (false: the lease was lost or the
/// channel is gone, and the worker must stop).
pub async fn advance(
    conn: &mut AsyncPgConnection,
    cursor: &Cursor,
    worker: Uuid,
    sequence: i64,
    lease: Duration,
) -> QueryResult<bool> {
    let moved = diesel::sql_query(
        "UPDATE delivery_cursors SET sequence = greatest(sequence, $3), attempts = 0, \
           last_error = NULL, updated_at = now(), \
           leased_until = now() + make_interval(secs => $5) \
         WHERE tenant_id = $1 AND channel = $2 AND leased_by = $4",
    )
    .bind::<diesel::sql_types::Uuid, _>(cursor.tenant_id.0)
    .bind::<Text, _>(&cursor.channel)
    .bind::<BigInt, _>(sequence)
    .bind::<diesel::sql_types::Uuid, _>(worker)
    .bind::<diesel::sql_types::Double, _>(lease.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(moved == 1)
}

/// Records a failure of the event after the cursor (now at `sequence`): one more
/// attempt, the next one after `retry_after`; releases the lease.
pub async fn fail(
    conn: &mut AsyncPgConnection,
    cursor: &Cursor,
    worker: Uuid,
    sequence: i64,
    retry_after: Duration,
    error: &str,
) -> QueryResult<bool> {
    let moved = diesel::sql_query(
        "UPDATE delivery_cursors SET \
           attempts = CASE WHEN sequence < $3 THEN 1 ELSE attempts + 1 END, \
           sequence = greatest(sequence, $3), \
           next_attempt_at = now() + make_interval(secs => $5), last_error = $6, \
           updated_at = now(), leased_by = NULL, leased_until = NULL \
         WHERE tenant_id = $1 AND channel = $2 AND leased_by = $4",
    )
    .bind::<diesel::sql_types::Uuid, _>(cursor.tenant_id.0)
    .bind::<Text, _>(&cursor.channel)
    .bind::<BigInt, _>(sequence)
    .bind::<diesel::sql_types::Uuid, _>(worker)
    .bind::<diesel::sql_types::Double, _>(retry_after.as_secs_f64())
    .bind::<Text, _>(truncate(error, 2000))
    .execute(conn)
    .await?;
    Ok(moved == 1)
}

/// Gives up the lease of one channel (`None`: every channel `worker` holds).
pub async fn release(
    conn: &mut AsyncPgConnection,
    worker: Uuid,
    channel: Option<(&TenantId, &str)>,
) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE delivery_cursors SET leased_by = NULL, leased_until = NULL \
         WHERE leased_by = $1 AND ($2::uuid IS NULL OR (tenant_id = $2 AND channel = $3))",
    )
    .bind::<diesel::sql_types::Uuid, _>(worker)
    .bind::<Nullable<diesel::sql_types::Uuid>, _>(channel.map(|(t, _)| t.0))
    .bind::<Nullable<Text>, _>(channel.map(|(_, c)| c))
    .execute(conn)
    .await
}

/// Up to `limit` of the tenant's events after the cursor, in sequence order.
pub async fn pending(
    conn: &mut AsyncPgConnection,
    cursor: &Cursor,
    limit: i64,
) -> QueryResult<Vec<Event>> {
    events::after(conn, cursor.tenant_id, cursor.sequence, limit).await
}

/// At most `max` characters of `text`.
fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

//! Webhook endpoints (`webhooks`) and their delivery log (`webhook_deliveries`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::schema::{webhook_deliveries, webhooks};
use crate::models::ids::TenantId;
use crate::models::page::{self, Cursor, Direction, Key, KeyType, Page, PageRequest, Tie};
use crate::models::sql::{Bind, Count, Sql};

/// A webhook endpoint. `secret` never leaves the server but in signatures.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = webhooks, check_for_backend(diesel::pg::Pg))]
pub struct Webhook {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub url: String,
    /// Case event kinds as stored (`STATUS_CHANGED`, …); empty: all.
    pub event_kinds: Vec<Option<String>>,
    pub secret: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Webhook {
    /// The delivery channel of this webhook (`webhook:<uuid>`).
    pub fn channel(&self) -> String {
        channel(self.id)
    }

    /// The stored kinds, without nulls.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.event_kinds.iter().flatten().map(String::as_str)
    }
}

/// The delivery channel of the webhook with this id.
pub fn channel(id: Uuid) -> String {
    format!("webhook:{id}")
}

/// The webhook of a channel name (`webhook:<uuid>`).
pub fn of_channel(channel: &str) -> Option<Uuid> {
    channel.strip_prefix("webhook:").and_then(|id| Uuid::parse_str(id).ok())
}

/// A new webhook.
#[derive(Debug, Insertable)]
#[diesel(table_name = webhooks)]
pub struct NewWebhook<'a> {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub url: &'a str,
    pub event_kinds: Vec<String>,
    pub secret: &'a str,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What an update sets (`None`: left alone; `disabled_reason: Some(None)` clears it).
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = webhooks)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub event_kinds: Option<Vec<String>>,
    pub secret: Option<String>,
    pub enabled: Option<bool>,
    pub disabled_reason: Option<Option<String>>,
    pub updated_at: Option<DateTime<Utc>>,
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewWebhook<'_>) -> QueryResult<Webhook> {
    diesel::insert_into(webhooks::table)
        .values(new)
        .returning(Webhook::as_returning())
        .get_result(conn)
        .await
}

/// The tenant's webhook with this id.
pub async fn find(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: Uuid,
) -> QueryResult<Option<Webhook>> {
    webhooks::table
        .filter(webhooks::tenant_id.eq(tenant))
        .filter(webhooks::id.eq(id))
        .select(Webhook::as_select())
        .first(conn)
        .await
        .optional()
}

/// The tenant's webhooks with these ids.
pub async fn find_many(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    ids: &[Uuid],
) -> QueryResult<Vec<Webhook>> {
    webhooks::table
        .filter(webhooks::tenant_id.eq(tenant).and(webhooks::id.eq_any(ids)))
        .select(Webhook::as_select())
        .load(conn)
        .await
}

/// The tenant's webhook with this id, locked for the rest of the transaction.
pub async fn lock(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: Uuid,
) -> QueryResult<Option<Webhook>> {
    webhooks::table
        .filter(webhooks::tenant_id.eq(tenant))
        .filter(webhooks::id.eq(id))
        .select(Webhook::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: Uuid,
    changes: &WebhookChanges,
) -> QueryResult<Webhook> {
    diesel::update(
        webhooks::table.filter(webhooks::tenant_id.eq(tenant)).filter(webhooks::id.eq(id)),
    )
    .set(changes)
    .returning(Webhook::as_returning())
    .get_result(conn)
    .await
}

/// Deletes the webhook and its delivery log.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: Uuid,
) -> QueryResult<usize> {
    diesel::delete(
        webhooks::table.filter(webhooks::tenant_id.eq(tenant)).filter(webhooks::id.eq(id)),
    )
    .execute(conn)
    .await
}

/// The cursor of a webhook in the list (oldest first).
pub fn cursor(webhook: &Webhook) -> String {
    Cursor { order: "webhook".into(), key: Key::Time(webhook.created_at), tie: Tie::Id(webhook.id) }
        .encode()
}

pub fn decode_cursor(text: &str) -> Option<Cursor> {
    Cursor::decode(text, "webhook", KeyType::Time, false)
}

/// One page of the tenant's webhooks, oldest first.
pub async fn page(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    request: &PageRequest,
) -> QueryResult<Page<Webhook>> {
    let mut sql = Sql::new("SELECT * FROM webhooks WHERE tenant_id = ");
    sql.bind(Bind::Uuid(tenant.0));
    page::push_keyset(&mut sql, "created_at", "id", Direction::Asc, request);
    // Two shapes: with or without a cursor.
    sql.cache(true);
    let rows: Vec<Webhook> = sql.into_query().load(conn).await?;
    Ok(Page::from_scan(rows, request))
}

pub async fn count(conn: &mut AsyncPgConnection, tenant: TenantId) -> QueryResult<i64> {
    webhooks::table.filter(webhooks::tenant_id.eq(tenant)).count().get_result(conn).await
}

/// One delivery of one event to one webhook, over all its attempts.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = webhook_deliveries, check_for_backend(diesel::pg::Pg))]
pub struct Delivery {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub webhook_id: Uuid,
    pub event_sequence: i64,
    pub kind: String,
    /// `PENDING`, `DELIVERED` or `FAILED`.
    pub status: String,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Starts an attempt: the delivery of `sequence` to the webhook (made at the first
/// attempt, with a new id that every repeat keeps), one attempt more, PENDING.
pub async fn begin_attempt(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    webhook: Uuid,
    sequence: i64,
    kind: &str,
) -> QueryResult<Delivery> {
    diesel::sql_query(
        "INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_sequence, kind, \
           status, attempts, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'PENDING', 1, now()) \
         ON CONFLICT (webhook_id, event_sequence) DO UPDATE \
           SET attempts = webhook_deliveries.attempts + 1, status = 'PENDING' \
         RETURNING *",
    )
    .bind::<diesel::sql_types::Uuid, _>(Uuid::now_v7())
    .bind::<diesel::sql_types::Uuid, _>(tenant.0)
    .bind::<diesel::sql_types::Uuid, _>(webhook)
    .bind::<BigInt, _>(sequence)
    .bind::<Text, _>(kind)
    .get_result(conn)
    .await
}

/// Ends an attempt: `DELIVERED` (with the time) or `PENDING`/`FAILED` with the error.
pub async fn end_attempt(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    status: &str,
    status_code: Option<i32>,
    error: Option<&str>,
) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE webhook_deliveries SET status = $2, last_status_code = $3, last_error = $4, \
           delivered_at = CASE WHEN $2 = 'DELIVERED' THEN now() ELSE delivered_at END \
         WHERE id = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(id)
    .bind::<Text, _>(status)
    .bind::<Nullable<Integer>, _>(status_code)
    .bind::<Nullable<Text>, _>(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// A delivery with the hash of its event (for the event's cursor).
#[derive(Debug, Clone, QueryableByName)]
pub struct LoggedDelivery {
    #[diesel(embed)]
    pub delivery: Delivery,
    #[diesel(sql_type = Text)]
    pub event_hash: String,
}

/// The cursor of a delivery in the log (newest event first).
pub fn delivery_cursor(logged: &LoggedDelivery) -> String {
    Cursor {
        order: "webhook_delivery".into(),
        key: Key::Int(logged.delivery.event_sequence),
        tie: Tie::Id(logged.delivery.id),
    }
    .encode()
}

pub fn decode_delivery_cursor(text: &str) -> Option<Cursor> {
    Cursor::decode(text, "webhook_delivery", KeyType::Int, false)
}

/// One page of the webhook's delivery log, newest event first.
pub async fn deliveries(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    webhook: Uuid,
    request: &PageRequest,
) -> QueryResult<Page<LoggedDelivery>> {
    let mut sql = Sql::new(
        "SELECT d.*, e.hash AS event_hash FROM webhook_deliveries d \
         JOIN audit_events e ON e.tenant_id = d.tenant_id AND e.sequence = d.event_sequence \
         WHERE d.tenant_id = ",
    );
    sql.bind(Bind::Uuid(tenant.0)).push(" AND d.webhook_id = ").bind(Bind::Uuid(webhook));
    page::push_keyset(&mut sql, "d.event_sequence", "d.id", Direction::Desc, request);
    // Two shapes: with or without a cursor.
    sql.cache(true);
    let rows: Vec<LoggedDelivery> = sql.into_query().load(conn).await?;
    Ok(Page::from_scan(rows, request))
}

pub async fn count_deliveries(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    webhook: Uuid,
) -> QueryResult<i64> {
    let row: Count = diesel::sql_query(
        "SELECT count(*) AS count FROM webhook_deliveries WHERE tenant_id = $1 AND webhook_id = $2",
    )
    .bind::<diesel::sql_types::Uuid, _>(tenant.0)
    .bind::<diesel::sql_types::Uuid, _>(webhook)
    .get_result(conn)
    .await?;
    Ok(row.count)
}

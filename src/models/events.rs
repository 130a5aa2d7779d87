//! The change record: a per-tenant, hash-chained log of events, appended in the
//! transaction of the change as its last statements (see [`append`]).
//!
//! # The hash (encoding `v1`)
//!
//! Each event's `hash` is the lowercase hex SHA-256 of the UTF-8 text below: sixteen
//! lines joined by a single `\n` (no line break after the last). An empty field is an
//! empty line. No field can hold a line break (the JSON line escapes them), so the text
//! is unambiguous.
//!
//! ```text
//! casefile-audit-event:v1
//! <previous hash: 64 lowercase hex digits; 64 zeros before the tenant's first event>
//! <tenant id: the UUID, lowercase, hyphenated>
//! <sequence: decimal, from 1, gap-free per tenant>
//! <event id: UUID>
//! <at: UTC, RFC 3339 with exactly 6 fraction digits and `Z`, e.g. 2026-11-30T05:45:51.123456Z>
//! <actor id: UUID, or empty>
//! <actor type: USER | API_CLIENT | SYSTEM>
//! <request id, or empty>
//! <client address (IP address as text), or empty>
//! <action, e.g. case.updated>
//! <case id: UUID, or empty>
//! <case number: decimal, or empty>
//! <case event kind, e.g. STATUS_CHANGED, or empty>
//! <target id: the global ID as the API shows it, or empty>
//! <changes: compact JSON, object keys sorted by their UTF-8 bytes, no whitespace>
//! ```
//!
//! The database stores exactly these values (the UUIDs in `uuid` columns, `at` in a
//! `timestamptz` column, which keeps microseconds, `changes` as `jsonb`), so an auditor
//! recomputes a row's hash from an export or a `SELECT` with common tools, e.g. the
//! changes line with `jq -cS .changes` and the digest with `sha256sum` (the values casefile
//! writes are strings, integers, booleans, null, arrays and objects; jq and casefile write
//! those alike). `previous_hash` of event n is the `hash` of event n − 1.
//!
//! # Notification
//!
//! Every append ends with one `NOTIFY` on [`CHANNEL`] whose payload is
//! `<tenant uuid>:<last sequence>`; PostgreSQL delivers it when (and only if) the
//! transaction commits.

use std::net::IpAddr;

use chrono::{DateTime, SubsecRound, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::schema::{audit_events, audit_heads};
use crate::models::enums::text_enum;
use crate::models::ids::{CaseId, TenantId, UserId};

/// The channel every append notifies on (payload `<tenant uuid>:<last sequence>`).
pub const CHANNEL: &str = "casefile_events";
/// The first line of the hashed text: names the encoding's version.
pub const ENCODING: &str = "casefile-audit-event:v1";
/// The `previous_hash` of a tenant's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

text_enum!(
    /// Who made a change: a person, an integration, or casefile itself.
    ActorType {
        /// A person, with a token of a user of any role but INGEST.
        User = "USER",
        /// An integration, with a token of an INGEST user.
        ApiClient = "API_CLIENT",
        /// casefile itself: background jobs, the command line, the first start.
        System = "SYSTEM",
    }
);

text_enum!(
    /// What happened to a case, as its activity and live views name it.
    CaseEventKind {
        /// The case was created.
        Created = "CREATED",
        /// Details changed (name, description, findings, severity, assignee), status unchanged.
        Updated = "UPDATED",
        /// The status changed (with or without other details).
        StatusChanged = "STATUS_CHANGED",
        /// Detections were added.
        DetectionsAdded = "DETECTIONS_ADDED",
        /// Detections were removed.
        DetectionsRemoved = "DETECTIONS_REMOVED",
        /// The subject was set or cleared.
        SubjectChanged = "SUBJECT_CHANGED",
        /// A message was posted.
        MessagePosted = "MESSAGE_POSTED",
        /// The case was archived.
        Archived = "ARCHIVED",
        /// The case was deleted.
        Deleted = "DELETED",
    }
);

/// Who made the changes of one transaction, and from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The user whose token was used; `None` for SYSTEM.
    pub actor: Option<UserId>,
    pub actor_type: ActorType,
    /// The request's id (as in the `x-request-id` header and the logs).
    pub request_id: Option<Uuid>,
    /// The TCP peer of the request.
    pub client_address: Option<IpAddr>,
}

impl Origin {
    /// casefile itself: jobs, the command line, the first start.
    pub const fn system() -> Self {
        Origin {
            actor: None,
            actor_type: ActorType::System,
            request_id: None,
            client_address: None,
        }
    }
}

/// The case an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseRef {
    pub id: CaseId,
    pub number: i32,
    pub kind: CaseEventKind,
}

/// One event to append: what happened, to what, and the changed fields.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// `<noun>.<verb>`, e.g. `case.updated`.
    pub action: &'static str,
    pub case: Option<CaseRef>,
    /// The global id of the changed object (as the API shows it).
    pub target_id: Option<String>,
    /// `{"<field>": {"before": …, "after": …}, …}`, or other facts of the action; an object.
    pub changes: Value,
}

impl NewEvent {
    /// An event of `action` with no case, target or changes yet.
    pub fn new(action: &'static str) -> Self {
        NewEvent { action, case: None, target_id: None, changes: Value::Object(Default::default()) }
    }

    /// About this case, as this kind of case event.
    pub fn case(mut self, id: CaseId, number: i32, kind: CaseEventKind) -> Self {
        self.case = Some(CaseRef { id, number, kind });
        self
    }

    /// About the object with this global id.
    pub fn target(mut self, id: impl Into<String>) -> Self {
        self.target_id = Some(id.into());
        self
    }

    /// With these changes (an object).
    pub fn changes(mut self, changes: Value) -> Self {
        self.changes = changes;
        self
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = audit_events, check_for_backend(diesel::pg::Pg))]
pub struct Event {
    pub tenant_id: TenantId,
    pub sequence: i64,
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor_id: Option<UserId>,
    /// Kept as text so that a row edited to an unknown value still loads (and fails the
    /// chain check) instead of failing the read.
    pub actor_type: String,
    pub request_id: Option<String>,
    pub client_address: Option<String>,
    pub action: String,
    pub case_id: Option<CaseId>,
    pub case_number: Option<i32>,
    pub case_event_kind: Option<String>,
    pub target_id: Option<String>,
    pub changes: Value,
    pub previous_hash: String,
    pub hash: String,
}

impl Event {
    /// The actor type; `None` when the stored text is not one this build knows.
    pub fn actor_type(&self) -> Option<ActorType> {
        ActorType::parse(&self.actor_type)
    }

    /// The case event kind; `None` for events that are not about a case (or unknown text).
    pub fn case_event_kind(&self) -> Option<CaseEventKind> {
        self.case_event_kind.as_deref().and_then(CaseEventKind::parse)
    }

    /// The text whose SHA-256 is this event's hash (see the module documentation).
    pub fn canonical_text(&self) -> String {
        fn opt<T: ToString>(value: &Option<T>) -> String {
            value.as_ref().map(ToString::to_string).unwrap_or_default()
        }
        let lines = [
            ENCODING.to_owned(),
            self.previous_hash.clone(),
            self.tenant_id.0.to_string(),
            self.sequence.to_string(),
            self.id.to_string(),
            format_at(self.at),
            opt(&self.actor_id.map(|a| a.0)),
            self.actor_type.clone(),
            opt(&self.request_id),
            opt(&self.client_address),
            self.action.clone(),
            opt(&self.case_id.map(|c| c.0)),
            opt(&self.case_number),
            opt(&self.case_event_kind),
            opt(&self.target_id),
            canonical_json(&self.changes),
        ];
        lines.join("\n")
    }

    /// SHA-256 of [`Event::canonical_text`], lowercase hex.
    pub fn compute_hash(&self) -> String {
        format!("{:x}", Sha256::digest(self.canonical_text().as_bytes()))
    }
}

/// `at` as hashed and shown: UTC, six fraction digits, `Z`.
pub fn format_at(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Compact JSON with object keys sorted (serde_json's maps are ordered by key).
pub fn canonical_json(value: &Value) -> String {
    // `Value`'s maps are `BTreeMap`s (no `preserve_order` feature): keys come out sorted.
    serde_json::to_string(value).unwrap_or_default()
}

/// A tenant's head: the last sequence and hash (0 and [`GENESIS_HASH`] before any event).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = audit_heads, check_for_backend(diesel::pg::Pg))]
pub struct Head {
    pub tenant_id: TenantId,
    pub last_sequence: i64,
    pub last_hash: String,
}

#[derive(QueryableByName)]
struct Appended {
    #[diesel(sql_type = BigInt)]
    inserted: i64,
    #[diesel(sql_type = BigInt)]
    moved: i64,
}

/// Appends `events` to the tenant's log; call it as the LAST step of the writing
/// transaction (the caller owns the transaction). Two statements: lock the head row,
/// then one statement that inserts the events, moves the head and notifies [`CHANNEL`].
/// Nothing is written for an empty list.
pub async fn append(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    origin: &Origin,
    events: Vec<NewEvent>,
) -> QueryResult<Vec<Event>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let head: Head = audit_heads::table
        .find(tenant)
        .select(Head::as_select())
        .for_update()
        .get_result(conn)
        .await?;
    // Read after the lock, so that a tenant's times never go back along its sequence.
    let at = Utc::now().trunc_subsecs(6);
    let mut previous = head.last_hash;
    let mut stored = Vec::with_capacity(events.len());
    for (n, new) in events.into_iter().enumerate() {
        let mut event = Event {
            tenant_id: tenant,
            sequence: head.last_sequence + 1 + n as i64,
            id: Uuid::now_v7(),
            at,
            actor_id: origin.actor,
            actor_type: origin.actor_type.as_str().to_owned(),
            request_id: origin.request_id.map(|r| r.to_string()),
            client_address: origin.client_address.map(|a| a.to_string()),
            action: new.action.to_owned(),
            case_id: new.case.map(|c| c.id),
            case_number: new.case.map(|c| c.number),
            case_event_kind: new.case.map(|c| c.kind.as_str().to_owned()),
            target_id: new.target_id,
            changes: new.changes,
            previous_hash: previous,
            hash: String::new(),
        };
        event.hash = event.compute_hash();
        previous = event.hash.clone();
        stored.push(event);
    }
    let last = stored.last().map_or(head.last_sequence, |e| e.sequence);
    let appended: Appended = diesel::sql_query(
        "WITH new AS ( \
           INSERT INTO audit_events (tenant_id, sequence, id, at, actor_id, actor_type, \
             request_id, client_address, action, case_id, case_number, case_event_kind, \
             target_id, changes, previous_hash, hash) \
           SELECT $1, e.sequence, e.id, $2, $3, $4, $5, $6, e.action, e.case_id, \
             e.case_number, e.kind, e.target_id, e.changes, e.previous_hash, e.hash \
           FROM unnest($7::bigint[], $8::uuid[], $9::text[], $10::uuid[], $11::int[], \
             $12::text[], $13::text[], $14::jsonb[], $15::text[], $16::text[]) \
             AS e(sequence, id, action, case_id, case_number, kind, target_id, changes, \
                  previous_hash, hash) \
           RETURNING 1), \
         head AS ( \
           UPDATE audit_heads SET last_sequence = $17, last_hash = $18 \
           WHERE tenant_id = $1 RETURNING 1) \
         SELECT (SELECT count(*) FROM new) AS inserted, (SELECT count(*) FROM head) AS moved \
         FROM (SELECT pg_notify($19, $20)) AS notified",
    )
    .bind::<diesel::sql_types::Uuid, _>(tenant.0)
    .bind::<Timestamptz, _>(at)
    .bind::<Nullable<diesel::sql_types::Uuid>, _>(origin.actor.map(|a| a.0))
    .bind::<Text, _>(origin.actor_type.as_str())
    .bind::<Nullable<Text>, _>(origin.request_id.map(|r| r.to_string()))
    .bind::<Nullable<Text>, _>(origin.client_address.map(|a| a.to_string()))
    .bind::<Array<BigInt>, _>(stored.iter().map(|e| e.sequence).collect::<Vec<_>>())
    .bind::<Array<diesel::sql_types::Uuid>, _>(stored.iter().map(|e| e.id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(stored.iter().map(|e| e.action.clone()).collect::<Vec<_>>())
    .bind::<Array<Nullable<diesel::sql_types::Uuid>>, _>(
        stored.iter().map(|e| e.case_id.map(|c| c.0)).collect::<Vec<_>>(),
    )
    .bind::<Array<Nullable<Integer>>, _>(stored.iter().map(|e| e.case_number).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(
        stored.iter().map(|e| e.case_event_kind.clone()).collect::<Vec<_>>(),
    )
    .bind::<Array<Nullable<Text>>, _>(
        stored.iter().map(|e| e.target_id.clone()).collect::<Vec<_>>(),
    )
    .bind::<Array<Jsonb>, _>(stored.iter().map(|e| e.changes.clone()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(stored.iter().map(|e| e.previous_hash.clone()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(stored.iter().map(|e| e.hash.clone()).collect::<Vec<_>>())
    .bind::<BigInt, _>(last)
    .bind::<Text, _>(previous)
    .bind::<Text, _>(CHANNEL)
    .bind::<Text, _>(format!("{}:{last}", tenant.0))
    .get_result(conn)
    .await?;
    if appended.inserted != stored.len() as i64 || appended.moved != 1 {
        return Err(diesel::result::Error::RollbackTransaction);
    }
    Ok(stored)
}

/// The tenant's head row.
pub async fn head(conn: &mut AsyncPgConnection, tenant: TenantId) -> QueryResult<Head> {
    audit_heads::table.find(tenant).select(Head::as_select()).get_result(conn).await
}

/// Up to `limit` of the tenant's events after `sequence`, in sequence order (for
/// subscriptions catching up, the chain check and the export).
pub async fn after(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    sequence: i64,
    limit: i64,
) -> QueryResult<Vec<Event>> {
    audit_events::table
        .filter(audit_events::tenant_id.eq(tenant))
        .filter(audit_events::sequence.gt(sequence))
        .order(audit_events::sequence.asc())
        .limit(limit)
        .select(Event::as_select())
        .load(conn)
        .await
}

/// The tenant's events with these sequences (any order).
pub async fn find_many(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    sequences: &[i64],
) -> QueryResult<Vec<Event>> {
    audit_events::table
        .filter(audit_events::tenant_id.eq(tenant))
        .filter(audit_events::sequence.eq_any(sequences))
        .select(Event::as_select())
        .load(conn)
        .await
}

/// The tenant's event with this id.
pub async fn find_by_id(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: Uuid,
) -> QueryResult<Option<Event>> {
    audit_events::table
        .filter(audit_events::tenant_id.eq(tenant))
        .filter(audit_events::id.eq(id))
        .select(Event::as_select())
        .first(conn)
        .await
        .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event {
            tenant_id: TenantId(Uuid::nil()),
            sequence: 1,
            id: Uuid::nil(),
            at: DateTime::parse_from_rfc3339("2026-11-30T05:45:51.123456Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
            actor_id: None,
            actor_type: "SYSTEM".to_owned(),
            request_id: None,
            client_address: None,
            action: "tenant.created".to_owned(),
            case_id: None,
            case_number: None,
            case_event_kind: None,
            target_id: Some("VGVuYW50".to_owned()),
            changes: serde_json::json!({"name": {"before": null, "after": "Default"}, "a": 1}),
            previous_hash: GENESIS_HASH.to_owned(),
            hash: String::new(),
        }
    }

    #[test]
    fn the_hashed_text_is_the_documented_sixteen_lines() {
        let text = sample().canonical_text();
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines.len(), 16);
        assert_eq!(lines[0], "casefile-audit-event:v1");
        assert_eq!(lines[5], "2026-11-30T05:45:51.123456Z");
        assert_eq!(lines[15], r#"{"a":1,"name":{"after":"Default","before":null}}"#);
        let expected = format!("{:x}", Sha256::digest(text.as_bytes()));
        assert_eq!(sample().compute_hash(), expected);
        let mut edited = sample();
        edited.action = "tenant.updated".to_owned();
        assert_ne!(edited.compute_hash(), expected);
    }
}

//! Reading the change record: the audit list (filtered, newest first, keyset by
//! sequence), each case's activity for a batch of cases, and the export's ranges.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::audit_events;
use crate::models::events::{ActorType, Event};
use crate::models::ids::{CaseId, TenantId, UserId};

/// Which events an audit list holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct EventFilter {
    pub case_number: Option<i32>,
    pub actor_id: Option<UserId>,
    pub actor_type: Option<ActorType>,
    pub action: Option<String>,
    /// From (inclusive) and to (exclusive).
    pub at_from: Option<DateTime<Utc>>,
    pub at_to: Option<DateTime<Utc>>,
}

type Boxed<'a> = audit_events::BoxedQuery<'a, diesel::pg::Pg>;

fn filtered<'a>(tenant: TenantId, filter: &'a EventFilter) -> Boxed<'a> {
    let mut query = audit_events::table.filter(audit_events::tenant_id.eq(tenant)).into_boxed();
    if let Some(number) = filter.case_number {
        query = query.filter(audit_events::case_number.eq(number));
    }
    if let Some(actor) = filter.actor_id {
        query = query.filter(audit_events::actor_id.eq(actor));
    }
    if let Some(actor_type) = filter.actor_type {
        query = query.filter(audit_events::actor_type.eq(actor_type.as_str()));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_events::action.eq(action));
    }
    if let Some(from) = filter.at_from {
        query = query.filter(audit_events::at.ge(from));
    }
    if let Some(to) = filter.at_to {
        query = query.filter(audit_events::at.lt(to));
    }
    query
}

/// Up to `limit` events of the list, newest first, with sequences below `before` (the
/// cursor) when given.
pub async fn page(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    filter: &EventFilter,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Event>> {
    let mut query = filtered(tenant, filter);
    if let Some(before) = before {
        query = query.filter(audit_events::sequence.lt(before));
    }
    query
        .order(audit_events::sequence.desc())
        .limit(limit)
        .select(Event::as_select())
        .load(conn)
        .await
}

/// How many events the list holds.
pub async fn count(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    filter: &EventFilter,
) -> QueryResult<i64> {
    filtered(tenant, filter).count().get_result(conn).await
}

/// Up to `limit` events of each case, newest first, below `before` when given: one
/// statement for the whole batch of cases.
pub async fn activity(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    cases: &[CaseId],
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Event>> {
    let ids: Vec<uuid::Uuid> = cases.iter().map(|c| c.0).collect();
    diesel::sql_query(
        "SELECT e.* FROM unnest($2::uuid[]) AS c(id) CROSS JOIN LATERAL ( \
           SELECT * FROM audit_events \
           WHERE tenant_id = $1 AND case_id = c.id AND sequence < $3 \
           ORDER BY sequence DESC LIMIT $4) AS e",
    )
    .bind::<SqlUuid, _>(tenant.0)
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<BigInt, _>(before.unwrap_or(i64::MAX))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

/// How many events each case has: one statement for the batch.
pub async fn activity_counts(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    cases: &[CaseId],
) -> QueryResult<Vec<(Option<CaseId>, i64)>> {
    audit_events::table
        .filter(audit_events::tenant_id.eq(tenant))
        .filter(audit_events::case_id.eq_any(cases.iter().map(|c| Some(*c)).collect::<Vec<_>>()))
        .group_by(audit_events::case_id)
        .select((audit_events::case_id, diesel::dsl::count_star()))
        .load(conn)
        .await
}

/// Up to `limit` events after `sequence` (oldest first) with `at` in [from, to): the
/// export's next chunk.
pub async fn range_after(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    sequence: i64,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: i64,
) -> QueryResult<Vec<Event>> {
    let filter = EventFilter { at_from: from, at_to: to, ..EventFilter::default() };
    filtered(tenant, &filter)
        .filter(audit_events::sequence.gt(sequence))
        .order(audit_events::sequence.asc())
        .limit(limit)
        .select(Event::as_select())
        .load(conn)
        .await
}

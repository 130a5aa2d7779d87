//! What the live subscriptions ask of the change record beyond reading it in order.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::audit_events;
use crate::models::events::Event;
use crate::models::ids::{CaseId, TenantId};

/// Makes `conn` hear of every append to the change record (`events::CHANNEL`).
pub async fn listen(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    diesel::sql_query(format!("LISTEN {}", crate::models::events::CHANNEL)).execute(conn).await
}

/// One trivial statement: is the connection still there?
pub async fn ping(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    diesel::sql_query("SELECT 1").execute(conn).await
}

/// Whether the tenant's log tells of this case (a case deleted since still has its events).
pub async fn case_logged(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    case: CaseId,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        audit_events::table
            .filter(audit_events::tenant_id.eq(tenant))
            .filter(audit_events::case_id.eq(case)),
    ))
    .get_result(conn)
    .await
}

/// The tenant's event with this sequence.
pub async fn find(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    sequence: i64,
) -> QueryResult<Option<Event>> {
    audit_events::table
        .filter(audit_events::tenant_id.eq(tenant))
        .filter(audit_events::sequence.eq(sequence))
        .select(Event::as_select())
        .first(conn)
        .await
        .optional()
}

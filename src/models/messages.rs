//! Messages on cases: inserts, lookups and the pages of each case's list (oldest first,
//! the id breaking ties), fetched for many cases in one statement.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::messages;
use crate::models::ids::{CaseId, MessageId, TenantId, UserId};
use crate::models::page::{self, Cursor, Direction, Key, KeyType, Page, PageRequest, Tie};
use crate::models::sql::{Bind, Sql};

/// The name of the list order in a message cursor.
pub const ORDER: &str = "MESSAGES";

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = messages, check_for_backend(diesel::pg::Pg))]
pub struct Message {
    pub id: MessageId,
    pub tenant_id: TenantId,
    pub case_id: CaseId,
    pub author_id: UserId,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

impl Message {
    /// The message's position in its case's list.
    pub fn cursor(&self) -> Cursor {
        Cursor { order: ORDER.into(), key: Key::Time(self.created_at), tie: Tie::Id(self.id.0) }
    }
}

/// A cursor of a case's message list, or `None` when `text` is not one.
pub fn decode_cursor(text: &str) -> Option<Cursor> {
    Cursor::decode(text, ORDER, KeyType::Time, false)
}

/// Stores a message.
pub async fn insert(conn: &mut AsyncPgConnection, message: &Message) -> QueryResult<Message> {
    diesel::insert_into(messages::table)
        .values(message)
        .returning(Message::as_returning())
        .get_result(conn)
        .await
}

/// Messages of the tenant by id.
pub async fn find_many(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    ids: &[MessageId],
) -> QueryResult<Vec<Message>> {
    messages::table
        .filter(messages::tenant_id.eq(tenant).and(messages::id.eq_any(ids)))
        .select(Message::as_select())
        .load(conn)
        .await
}

/// Deletes every message of the case (archival).
pub async fn delete_of_case(conn: &mut AsyncPgConnection, case: CaseId) -> QueryResult<usize> {
    diesel::delete(messages::table.filter(messages::case_id.eq(case))).execute(conn).await
}

#[derive(Debug, QueryableByName)]
struct Ranked {
    #[diesel(embed)]
    message: Message,
    #[diesel(sql_type = Text)]
    parent_key: String,
}

/// One page of each case's messages (oldest first), in one statement.
pub async fn pages_by_case(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    cases: &[CaseId],
    request: &PageRequest,
) -> QueryResult<HashMap<CaseId, Page<Message>>> {
    let mut inner = Sql::new(" FROM messages WHERE tenant_id = ");
    inner.bind(Bind::Uuid(tenant.0)).push(" AND case_id = ANY(");
    inner.bind(Bind::Uuids(cases.iter().map(|c| c.0).collect())).push(")");
    page::push_after(&mut inner, "created_at", "id", Direction::Asc, request);
    let select = "id, tenant_id, case_id, author_id, body, created_at";
    let mut sql =
        page::window(inner, select, "case_id", "created_at", "id", Direction::Asc, request);
    // Two shapes: with or without a cursor.
    sql.cache(true);
    let rows: Vec<Ranked> = sql.into_query().load(conn).await?;
    let rows = rows.into_iter().map(|r| (r.parent_key, r.message)).collect();
    let mut pages = page::pages_by_parent(rows, request);
    Ok(cases
        .iter()
        .map(|case| (*case, pages.remove(&case.0.to_string()).unwrap_or_default()))
        .collect())
}

#[derive(Debug, QueryableByName)]
struct CaseCount {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    case_id: CaseId,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// How many messages each of these cases holds, in one statement.
pub async fn counts_by_case(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    cases: &[CaseId],
) -> QueryResult<HashMap<CaseId, i64>> {
    let mut sql = Sql::new("SELECT case_id, count(*) AS count FROM messages WHERE tenant_id = ");
    sql.bind(Bind::Uuid(tenant.0)).push(" AND case_id = ANY(");
    // One shape.
    sql.bind(Bind::Uuids(cases.iter().map(|c| c.0).collect()))
        .push(") GROUP BY case_id")
        .cache(true);
    let rows: Vec<CaseCount> = sql.into_query().load(conn).await?;
    Ok(rows.into_iter().map(|r| (r.case_id, r.count)).collect())
}

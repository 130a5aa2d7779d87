//! Statements about the database itself rather than a table family: the migration it is
//! at, session settings and advisory locks.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Nullable<Text>)]
    version: Option<String>,
}

/// The version of the newest migration applied; `None` when none has run. Fails when
/// the migrations table does not exist.
pub async fn schema_version(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Option<String>> {
    let row: Version =
        diesel::sql_query("SELECT max(version) AS version FROM __diesel_schema_migrations")
            .get_result(conn)
            .await?;
    Ok(row.version)
}

/// A statement that does nothing: it succeeds while the connection's session lives.
pub async fn ping(conn: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
    diesel::sql_query("SELECT 1").execute(conn).await.map(drop)
}

/// Makes every later statement of this connection fail once it runs longer than `timeout`.
pub async fn set_statement_timeout(
    conn: &mut AsyncPgConnection,
    timeout: Duration,
) -> diesel::QueryResult<()> {
    diesel::sql_query(format!("SET statement_timeout = {}", timeout.as_millis()))
        .execute(conn)
        .await
        .map(drop)
}

/// Takes the transaction-scoped advisory lock `key`, waiting while another session holds
/// it; it is released when the transaction ends.
pub async fn lock_transaction(conn: &mut AsyncPgConnection, key: i64) -> diesel::QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(key)
        .execute(conn)
        .await
        .map(drop)
}

/// Takes the session-level advisory lock `key` on a blocking connection (the migration
/// runner's), waiting while another session holds it; closing the connection releases it.
pub fn lock_session<C>(conn: &mut C, key: i64) -> diesel::QueryResult<()>
where
    C: diesel::Connection<Backend = diesel::pg::Pg>,
{
    let query = diesel::sql_query("SELECT pg_advisory_lock($1)").bind::<BigInt, _>(key);
    diesel::RunQueryDsl::execute(query, conn).map(drop)
}

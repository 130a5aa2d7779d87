//! A small builder for the few statements whose shape depends on the request (list
//! filters, keyset conditions, orders): SQL text with numbered parameters and the
//! values bound to them. Values are always bound, never spliced into the text.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types;
use uuid::Uuid;

/// A value bound to a parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Uuid(Uuid),
    Uuids(Vec<Uuid>),
    Text(String),
    Texts(Vec<String>),
    Int(i64),
    SmallInts(Vec<i16>),
    Time(DateTime<Utc>),
}

/// SQL text and its parameters, built in order.
#[derive(Debug, Default)]
pub struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Self { text: text.to_owned(), binds: Vec::new() }
    }

    /// Appends SQL text (never user input).
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Puts SQL text (never user input) in front of what is there.
    pub fn prepend(&mut self, text: &str) -> &mut Self {
        self.text.insert_str(0, text);
        self
    }

    /// Appends a parameter placeholder bound to `value`.
    pub fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        self.text.push('$');
        self.text.push_str(&self.binds.len().to_string());
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The statement, ready to load rows with.
    pub fn into_query(self) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
        let mut query = diesel::sql_query(self.text).into_boxed();
        for value in self.binds {
            query = match value {
                Bind::Uuid(v) => query.bind::<sql_types::Uuid, _>(v),
                Bind::Uuids(v) => query.bind::<sql_types::Array<sql_types::Uuid>, _>(v),
                Bind::Text(v) => query.bind::<sql_types::Text, _>(v),
                Bind::Texts(v) => query.bind::<sql_types::Array<sql_types::Text>, _>(v),
                Bind::Int(v) => query.bind::<sql_types::BigInt, _>(v),
                Bind::SmallInts(v) => query.bind::<sql_types::Array<sql_types::SmallInt>, _>(v),
                Bind::Time(v) => query.bind::<sql_types::Timestamptz, _>(v),
            };
        }
        query
    }
}

/// A line of a plan in `EXPLAIN`'s text format.
#[derive(Debug, diesel::QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = sql_types::Text, column_name = "QUERY PLAN")]
    line: String,
}

/// How PostgreSQL runs `sql`, run once (`EXPLAIN (ANALYZE, COSTS OFF)`, text lines): the
/// plan tests read the shape of a list's statement from it.
pub async fn explain_analyze(
    conn: &mut diesel_async::AsyncPgConnection,
    mut sql: Sql,
) -> diesel::QueryResult<Vec<String>> {
    use diesel_async::RunQueryDsl;
    sql.prepend("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ");
    let lines: Vec<PlanLine> = sql.into_query().load(conn).await?;
    Ok(lines.into_iter().map(|l| l.line).collect())
}

/// The row of a `SELECT count(*) AS count …`.
#[derive(Debug, diesel::QueryableByName)]
pub struct Count {
    #[diesel(sql_type = sql_types::BigInt)]
    pub count: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_in_order_and_values_never_spliced() {
        let mut sql = Sql::new("SELECT 1 FROM cases WHERE tenant_id = ");
        sql.bind(Bind::Uuid(Uuid::nil())).push(" AND name = ").bind(Bind::Text("x'; --".into()));
        assert_eq!(sql.text(), "SELECT 1 FROM cases WHERE tenant_id = $1 AND name = $2");
    }
}

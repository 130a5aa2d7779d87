//! A small builder for the few statements whose shape depends on the request (list
//! filters, keyset conditions, orders): SQL text with numbered parameters and the
//! values bound to them. Values are always bound, never spliced into the text.
//!
//! A statement marked [`Sql::cache`] is prepared once per connection and reused (diesel
//! keys its statement cache by the text and the bind types); an unmarked one is prepared
//! unnamed before every run, as `sql_query` is. Each connection keeps every cached text it
//! has seen for its lifetime (diesel's cache has no bound), so only builders whose shapes
//! form a small fixed set mark their statements: every marking call site states how many
//! shapes it can produce, and a list with a request-dependent filter caches only its
//! default-filter shapes: about 340 texts in all (the case list's 244, the detection
//! lists' 54, users, subjects, messages, webhooks and authentication the rest), next to
//! the diesel DSL's own statements.
//!
//! PostgreSQL may run a cached statement with its generic plan after five runs; the plan
//! tests check that the case list and the case page keep their index plans with it.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{self, Untyped};
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
    Bytes(Vec<u8>),
}

impl Bind {
    fn walk_ast<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        match self {
            Bind::Uuid(v) => out.push_bind_param::<sql_types::Uuid, _>(v),
            Bind::Uuids(v) => out.push_bind_param::<sql_types::Array<sql_types::Uuid>, _>(v),
            Bind::Text(v) => out.push_bind_param::<sql_types::Text, _>(v),
            Bind::Texts(v) => out.push_bind_param::<sql_types::Array<sql_types::Text>, _>(v),
            Bind::Int(v) => out.push_bind_param::<sql_types::BigInt, _>(v),
            Bind::SmallInts(v) => {
                out.push_bind_param::<sql_types::Array<sql_types::SmallInt>, _>(v)
            }
            Bind::Time(v) => out.push_bind_param::<sql_types::Timestamptz, _>(v),
            Bind::Bytes(v) => out.push_bind_param::<sql_types::Bytea, _>(v),
        }
    }
}

/// SQL text and its parameters, built in order.
#[derive(Debug, Default)]
pub struct Sql {
    text: String,
    binds: Vec<Bind>,
    /// Where each parameter's `$n` stands in `text`, in order (start, end).
    marks: Vec<(usize, usize)>,
    cache: bool,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Self { text: text.to_owned(), ..Self::default() }
    }

    /// Appends SQL text (never user input).
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Puts SQL text (never user input) in front of what is there.
    pub fn prepend(&mut self, text: &str) -> &mut Self {
        self.text.insert_str(0, text);
        for (start, end) in &mut self.marks {
            *start += text.len();
            *end += text.len();
        }
        self
    }

    /// Appends a parameter placeholder bound to `value`.
    pub fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        let start = self.text.len();
        self.text.push('$');
        self.text.push_str(&self.binds.len().to_string());
        self.marks.push((start, self.text.len()));
        self
    }

    /// Marks the statement as one of a small fixed set of shapes (or not, `false`): it is
    /// then prepared once per connection and reused. See the module's documentation.
    pub fn cache(&mut self, cache: bool) -> &mut Self {
        self.cache = cache;
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The values, in the order of their parameters.
    pub fn binds(&self) -> &[Bind] {
        &self.binds
    }

    /// The statement, ready to load rows with.
    pub fn into_query(self) -> Statement {
        Statement(self)
    }
}

/// A statement built by [`Sql`]: its text with the values bound in order. Cached per
/// connection when the builder marked it ([`Sql::cache`]).
#[derive(Debug)]
pub struct Statement(Sql);

impl QueryFragment<Pg> for Statement {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        let Sql { text, binds, marks, cache } = &self.0;
        if !cache {
            out.unsafe_to_cache_prepared();
        }
        // The query builder numbers parameters in the order they are pushed, as `bind` did.
        let mut at = 0;
        for (bind, (start, end)) in binds.iter().zip(marks) {
            out.push_sql(&text[at..*start]);
            bind.walk_ast(&mut out)?;
            at = *end;
        }
        out.push_sql(&text[at..]);
        Ok(())
    }
}

impl QueryId for Statement {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Statement {
    type SqlType = Untyped;
}

impl<Conn> diesel::RunQueryDsl<Conn> for Statement {}

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
    sql.prepend("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ").cache(false);
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

    #[test]
    fn the_statement_is_the_builders_text_also_after_a_prepend() {
        let mut sql = Sql::new(" FROM cases WHERE tenant_id = ");
        sql.bind(Bind::Uuid(Uuid::nil())).push(" LIMIT ").bind(Bind::Int(10));
        sql.prepend("SELECT id");
        let text = sql.text().to_owned();
        let statement = sql.into_query();
        assert_eq!(
            diesel::debug_query::<Pg, _>(&statement).to_string().split(" -- ").next(),
            Some(text.as_str())
        );
    }
}

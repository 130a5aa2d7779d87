//! Prepared statements: a statement built by `Sql` with a bounded shape is prepared once
//! per connection and served from the cache afterwards; one of the unbounded shapes (a
//! filtered list) is not cached; the case list and the case page run cached statements
//! only.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};

use crate::case_lists::{analyst_named, new_case, subject};
use crate::common::TestApp;
use crate::common::fixtures::detection;
use crate::pages::{Q1, Q2};
use casefile::models::cases::list::{self, CaseFilter, CaseOrder};
use casefile::models::enums::CaseStatus;
use casefile::models::page::PageRequest;

/// What a connection did: `run` per statement, `prepare` per statement prepared into the
/// connection's cache.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<&'static str>>>);

impl Events {
    fn instrumentation(&self) -> impl Instrumentation {
        let events = self.0.clone();
        move |event: InstrumentationEvent<'_>| {
            let name = match event {
                InstrumentationEvent::StartQuery { .. } => "run",
                InstrumentationEvent::CacheQuery { .. } => "prepare",
                _ => return,
            };
            events.lock().unwrap_or_else(|e| e.into_inner()).push(name);
        }
    }

    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A statement of this connection's cache.
#[derive(diesel::QueryableByName)]
struct Prepared {
    #[diesel(sql_type = diesel::sql_types::Text)]
    statement: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    runs: i64,
}

/// The statements the connection prepared through the protocol (diesel's cache), with
/// how often each ran.
async fn prepared(conn: &mut AsyncPgConnection) -> Vec<Prepared> {
    diesel::sql_query(
        "SELECT statement, generic_plans + custom_plans AS runs FROM pg_prepared_statements \
         WHERE NOT from_sql",
    )
    .load(conn)
    .await
    .expect("prepared statements")
}

#[tokio::test]
async fn a_default_case_list_statement_is_prepared_once_then_served_from_the_cache() {
    let app = TestApp::new().await;
    new_case(&app, json!({ "name": "One" })).await;
    let mut conn = AsyncPgConnection::establish(&app.database_url).await.expect("connect");
    let events = Events::default();
    conn.set_instrumentation(events.instrumentation());

    let filter = CaseFilter { statuses: CaseStatus::OPEN.to_vec(), ..CaseFilter::default() };
    let request = PageRequest { limit: 50, cursor: None, backward: false };
    let order = CaseOrder::default();
    let text = list::page_and_count_sql(app.tenant_id, &filter, order, &request).text().to_owned();
    for run in 0..3 {
        let (page, total) =
            list::page_and_count(&mut conn, app.tenant_id, &filter, order, &request)
                .await
                .expect("list");
        assert_eq!((page.rows.len(), total), (1, 1));
        let expected: &[&str] = if run == 0 { &["run", "prepare"] } else { &["run"] };
        assert_eq!(events.take(), expected, "run {run}");
    }
    let cached = prepared(&mut conn).await;
    let ours: Vec<&Prepared> = cached.iter().filter(|p| p.statement == text).collect();
    assert_eq!(ours.len(), 1, "one prepared statement for the three runs");
    assert_eq!(ours[0].runs, 3);
    events.take();

    // A filtered list has too many shapes to keep: prepared unnamed before every run.
    let filter = CaseFilter { name_contains: Some("on".into()), ..filter };
    for _ in 0..2 {
        let (_, total) = list::page_and_count(&mut conn, app.tenant_id, &filter, order, &request)
            .await
            .expect("list");
        assert_eq!(total, 1);
    }
    assert_eq!(events.take(), ["run", "run"], "nothing cached");
    assert_eq!(prepared(&mut conn).await.len(), cached.len());
}

/// How often the single connection of `app`'s pool ran statements of its cache.
async fn cached_runs(app: &TestApp) -> i64 {
    let mut conn = app.conn().await;
    prepared(&mut conn).await.iter().map(|p| p.runs).sum()
}

/// Runs `query` with a token the server has not seen (authentication included) and
/// asserts that every statement it ran was served from the connection's cache.
async fn assert_all_cached(app: &TestApp, query: &str, variables: Value) {
    let (_, token) = app.admin_token_expiring(chrono::Utc::now() + chrono::Duration::days(1)).await;
    for _ in 0..2 {
        let before = cached_runs(app).await;
        let (body, statements) = app.graphql_counting(&token, query, variables.clone()).await;
        assert!(body.get("errors").is_none(), "{body}");
        let cached = cached_runs(app).await - before;
        assert!(statements > 0);
        assert_eq!(cached, i64::try_from(statements).expect("count"), "{query}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_case_list_and_the_case_page_run_only_cached_statements() {
    // One connection: the prepared statements of the whole request are on it.
    let app = TestApp::with_pool(1, Duration::from_secs(10)).await;
    let assignee = analyst_named(&app, "One").await;
    let subject = subject(&app, "s1@example.test").await;
    let held = app.ingest(&app.admin_token, vec![detection("cached-1", 5)]).await;
    let (_, number) = new_case(
        &app,
        json!({ "name": "Case", "assigneeId": assignee, "subjectId": subject,
                "detectionIds": held }),
    )
    .await;
    assert_all_cached(&app, Q1, json!({ "n": 50 })).await;
    assert_all_cached(&app, Q2, json!({ "c": number, "n": 100 })).await;
}

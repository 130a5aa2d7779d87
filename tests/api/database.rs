//! The database schema itself: facts the migrations must keep true.

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;

use crate::common::TestApp;

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[tokio::test]
async fn every_foreign_key_is_backed_by_an_index_that_leads_with_its_columns() {
    let app = TestApp::new().await;
    let mut conn = app.conn().await;
    let unindexed: Vec<Name> = diesel::sql_query(
        "SELECT c.conname::text AS name FROM pg_constraint c \
         JOIN pg_namespace n ON n.oid = c.connamespace AND n.nspname = 'public' \
         WHERE c.contype = 'f' AND NOT EXISTS ( \
           SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid \
             AND (string_to_array(i.indkey::text, ' ')::int2[])[1:array_length(c.conkey, 1)] \
                 = c.conkey)",
    )
    .load(&mut conn)
    .await
    .expect("query the catalog");
    let names: Vec<String> = unindexed.into_iter().map(|n| n.name).collect();
    assert!(names.is_empty(), "foreign keys without an index: {names:?}");

    let foreign_keys: Vec<Name> = diesel::sql_query(
        "SELECT conname::text AS name FROM pg_constraint WHERE contype = 'f' \
         AND connamespace = 'public'::regnamespace",
    )
    .load(&mut conn)
    .await
    .expect("query the catalog");
    assert!(foreign_keys.len() >= 12, "the check saw the foreign keys ({})", foreign_keys.len());
}

#[tokio::test]
async fn case_names_are_unique_per_tenant_ignoring_case_in_the_database_too() {
    let app = TestApp::new().await;
    let mut conn = app.conn().await;
    let indexes: Vec<Name> = diesel::sql_query(
        "SELECT indexdef::text AS name FROM pg_indexes WHERE indexname = 'cases_tenant_name_key'",
    )
    .load(&mut conn)
    .await
    .expect("query the catalog");
    let definition = indexes.into_iter().map(|n| n.name).next().unwrap_or_default();
    assert!(
        definition.starts_with("CREATE UNIQUE INDEX") && definition.contains("lower(name)"),
        "{definition}"
    );
}

#[tokio::test]
async fn a_test_database_is_dropped_when_its_test_app_is_done() {
    let app = TestApp::new().await;
    let name = app.database.name.clone();
    let conn = app.conn().await;
    assert!(crate::common::database_exists(&name).await, "the test's database exists while in use");
    // A connection still open to it does not keep it alive.
    drop(app);
    assert!(!crate::common::database_exists(&name).await, "{name} is still there after its test");
    drop(conn);
}

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
        definition.starts_with("CREATE UNIQUE INDEX")
            && definition.contains("(tenant_id, name_key)"),
        "{definition}"
    );
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = Text)]
    id: String,
}

/// Runs `sql`, which returns one id.
async fn insert_returning_id(conn: &mut casefile::db::DbConn, sql: &str) -> String {
    let rows: Vec<Id> = diesel::sql_query(sql).load(conn).await.expect(sql);
    rows.into_iter().next().expect("a row").id
}

/// A subject, a detection and a case of `tenant`, written in SQL; returns their ids.
async fn rows_of(conn: &mut casefile::db::DbConn, tenant: &str, tag: &str) -> [String; 3] {
    let subject = insert_returning_id(
        conn,
        &format!(
            "INSERT INTO subjects (id, tenant_id, username, username_key) \
             VALUES (gen_random_uuid(), '{tenant}', '{tag}@x.test', '{tag}@x.test') RETURNING id::text AS id"
        ),
    )
    .await;
    let detection = insert_returning_id(
        conn,
        &format!(
            "INSERT INTO detections (id, tenant_id, external_id, source, rule_name, rule_name_key, \
             observed_at, risk_score) VALUES (gen_random_uuid(), '{tenant}', '{tag}', 'XDR', 'r', 'r', \
             now(), 1) RETURNING id::text AS id"
        ),
    )
    .await;
    let case = insert_returning_id(
        conn,
        &format!(
            "INSERT INTO cases (id, tenant_id, number, kind, name, name_key, status, archive_at) \
             VALUES (gen_random_uuid(), '{tenant}', 900, 'SELF_MANAGED', '{tag}', '{tag}', 'NEW', \
             now() + interval '90 days') RETURNING id::text AS id"
        ),
    )
    .await;
    [subject, detection, case]
}

#[tokio::test]
async fn a_reference_to_another_tenants_row_is_refused_by_the_database_itself() {
    use casefile::models::users::Role;
    use diesel::result::{DatabaseErrorKind, Error};

    let app = TestApp::new().await;
    let other = app.create_tenant("Other", &[]).await;
    let (other_user, _) = app.create_user(other, Role::Analyst).await;
    let mut conn = app.conn().await;
    let (mine, theirs) = (app.tenant_id.0.to_string(), other.0.to_string());
    let [my_subject, my_detection, my_case] = rows_of(&mut conn, &mine, "mine").await;
    let [their_subject, their_detection, their_case] = rows_of(&mut conn, &theirs, "theirs").await;
    let (me, them) = (app.admin_id.0, other_user.0);
    let hash = "decode(repeat('ab', 32), 'hex')";

    let attempts = [
        (
            format!("UPDATE cases SET assignee_id = '{them}' WHERE id = '{my_case}'"),
            "cases_assignee_id_fkey",
        ),
        (
            format!("UPDATE cases SET subject_id = '{their_subject}' WHERE id = '{my_case}'"),
            "cases_subject_id_fkey",
        ),
        (
            format!("UPDATE cases SET created_by_id = '{them}' WHERE id = '{my_case}'"),
            "cases_created_by_id_fkey",
        ),
        (
            format!("UPDATE cases SET last_modified_by_id = '{them}' WHERE id = '{my_case}'"),
            "cases_last_modified_by_id_fkey",
        ),
        (
            format!(
                "INSERT INTO case_detections (case_id, detection_id, tenant_id, observed_at, \
                 ingested_at, risk_score, rule_name_key) \
                 VALUES ('{my_case}', '{their_detection}', '{mine}', now(), now(), 0, 'r')"
            ),
            "case_detections_detection_id_fkey",
        ),
        (
            format!(
                "INSERT INTO case_detections (case_id, detection_id, tenant_id, observed_at, \
                 ingested_at, risk_score, rule_name_key) \
                 VALUES ('{their_case}', '{my_detection}', '{mine}', now(), now(), 0, 'r')"
            ),
            "case_detections_case_id_fkey",
        ),
        (
            format!(
                "INSERT INTO api_tokens (tenant_id, user_id, name, token_hash) \
                 VALUES ('{mine}', '{them}', 'stray', {hash})"
            ),
            "api_tokens_user_id_fkey",
        ),
    ];
    for (sql, constraint) in &attempts {
        match diesel::sql_query(sql).execute(&mut conn).await {
            Err(Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info)) => {
                assert_eq!(info.constraint_name(), Some(*constraint), "{sql}");
            }
            other => panic!("{sql}: expected {constraint} to refuse it, got {other:?}"),
        }
    }

    // The same references within the tenant are fine: the keys refuse the tenant, not the link.
    let allowed = [
        format!(
            "UPDATE cases SET assignee_id = '{me}', subject_id = '{my_subject}', created_by_id = '{me}', \
             last_modified_by_id = '{me}' WHERE id = '{my_case}'"
        ),
        format!(
            "INSERT INTO case_detections (case_id, detection_id, tenant_id, observed_at, \
             ingested_at, risk_score, rule_name_key) \
             VALUES ('{my_case}', '{my_detection}', '{mine}', now(), now(), 0, 'r')"
        ),
        format!(
            "INSERT INTO api_tokens (tenant_id, user_id, name, token_hash) VALUES ('{mine}', '{me}', 'mine', {hash})"
        ),
    ];
    for sql in &allowed {
        diesel::sql_query(sql).execute(&mut conn).await.expect(sql);
    }
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

//! Stored enum values fail closed: a value this build does not know (written behind the
//! API's back) is an `INTERNAL` error, never a default such as an editable `NEW` case.

use diesel_async::RunQueryDsl;
use serde_json::json;

use crate::common::TestApp;
use crate::common::fixtures::{CASE_FIELDS, error_code};

/// Runs SQL on the test's own database (constraints may be dropped: nothing else uses it).
async fn raw_sql(app: &TestApp, statement: &str) {
    let mut conn = app.conn().await;
    diesel::sql_query(statement).execute(&mut conn).await.expect(statement);
}

#[derive(diesel::QueryableByName)]
struct Stored {
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    version: i32,
}

async fn stored_case(app: &TestApp, id: &str) -> (String, String, i32) {
    let mut conn = app.conn().await;
    let uuid = id_uuid(id);
    let row: Stored =
        diesel::sql_query("SELECT status, name, version FROM cases WHERE id = $1::uuid")
            .bind::<diesel::sql_types::Text, _>(uuid)
            .get_result(&mut conn)
            .await
            .expect("stored case");
    (row.status, row.name, row.version)
}

/// The UUID inside a case's global id.
fn id_uuid(id: &str) -> String {
    casefile::graphql::ids::decode(id).expect("a global id").1.to_string()
}

#[tokio::test]
async fn an_unknown_stored_status_is_internal_on_read_and_write_never_new() {
    let app = TestApp::new().await;
    let case = app.case_named("Tampered status").await;
    let id = case["id"].as_str().expect("id").to_owned();
    raw_sql(&app, "ALTER TABLE cases DROP CONSTRAINT cases_status_check").await;
    raw_sql(&app, &format!("UPDATE cases SET status = 'REOPENED' WHERE id = '{}'", id_uuid(&id)))
        .await;

    let (status, body) = app
        .graphql(
            &app.admin_token,
            &format!("query($id: ID!) {{ case(id: $id) {{ {CASE_FIELDS} }} }}"),
            json!({ "id": id }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(error_code(&body), Some("INTERNAL"), "{body}");
    assert!(body["data"]["case"].is_null(), "no case is shown: {body}");

    // Lists filter by known statuses in SQL: the row is in none of them, not among the open.
    let (_, list) =
        app.graphql(&app.admin_token, "{ cases(first: 10) { nodes { id } } }", json!({})).await;
    assert_eq!(list["data"]["cases"]["nodes"], json!([]), "{list}");

    let body = app
        .mutate(
            &app.admin_token,
            "updateCase",
            json!({ "id": id, "name": "Edited anyway" }),
            "case { id status }",
        )
        .await;
    assert_eq!(error_code(&body), Some("INTERNAL"), "{body}");
    let body = app
        .mutate(
            &app.admin_token,
            "resolveCase",
            json!({ "id": id, "resolution": "FALSE_POSITIVE" }),
            "case { id status }",
        )
        .await;
    assert_eq!(error_code(&body), Some("INTERNAL"), "{body}");
    assert_eq!(
        stored_case(&app, &id).await,
        ("REOPENED".to_owned(), "Tampered status".to_owned(), 1),
        "nothing was changed"
    );
}

#[tokio::test]
async fn an_unknown_stored_kind_or_severity_rank_is_internal_never_a_default() {
    let app = TestApp::new().await;
    let kind = app.case_named("Tampered kind").await["id"].as_str().expect("id").to_owned();
    let rank = app.case_named("Tampered rank").await["id"].as_str().expect("id").to_owned();
    raw_sql(&app, "ALTER TABLE cases DROP CONSTRAINT cases_kind_check").await;
    raw_sql(&app, "ALTER TABLE cases DROP CONSTRAINT cases_severity_check").await;
    raw_sql(&app, &format!("UPDATE cases SET kind = 'PARTNER' WHERE id = '{}'", id_uuid(&kind)))
        .await;
    raw_sql(&app, &format!("UPDATE cases SET severity = 9 WHERE id = '{}'", id_uuid(&rank))).await;
    for id in [&kind, &rank] {
        let (_, body) = app
            .graphql(
                &app.admin_token,
                "query($id: ID!) { case(id: $id) { id kind severity } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(error_code(&body), Some("INTERNAL"), "{body}");
    }
}

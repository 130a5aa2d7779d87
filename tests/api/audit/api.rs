//! `auditEvents`, `Case.activity` and `node` for events: who may read what, filters,
//! keyset paging newest first, and a fixed number of statements under a case list.

use casefile::models::users::Role;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::error_code;

const EVENTS: &str = "query($first: Int, $after: String, $filter: AuditEventFilter) { \
     auditEvents(first: $first, after: $after, filter: $filter) { totalCount \
     pageInfo { hasNextPage endCursor } nodes { id sequence at action actorType caseNumber \
     caseEventKind targetId requestId clientAddress changes actor { id } } } }";

async fn events(app: &TestApp, token: &str, variables: Value) -> Value {
    let (status, body) = app.graphql(token, EVENTS, variables).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn audit_events_are_paged_newest_first_and_filtered() {
    let app = TestApp::new().await;
    let case = app.case_named("Filtered").await;
    app.mutate(
        &app.admin_token,
        "updateCase",
        json!({"id": case["id"], "severity": "LOW"}),
        "case { id }",
    )
    .await;
    let all = app.events(app.tenant_id).await;
    let body = events(&app, &app.admin_token, json!({"first": 2})).await;
    let page = &body["data"]["auditEvents"];
    assert_eq!(page["totalCount"], all.len());
    let sequences: Vec<i64> = page["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["sequence"].as_i64())
        .collect();
    assert_eq!(sequences, [all.len() as i64, all.len() as i64 - 1]);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let next = events(
        &app,
        &app.admin_token,
        json!({"first": 100, "after": page["pageInfo"]["endCursor"]}),
    )
    .await;
    let rest = next["data"]["auditEvents"]["nodes"].as_array().map(Vec::len);
    assert_eq!(rest, Some(all.len() - 2));
    assert_eq!(next["data"]["auditEvents"]["pageInfo"]["hasNextPage"], false);

    let newest = &page["nodes"][0];
    assert_eq!(newest["action"], "case.updated");
    assert_eq!(newest["actorType"], "USER");
    assert_eq!(newest["caseEventKind"], "UPDATED");
    assert_eq!(newest["clientAddress"], "127.0.0.1");
    assert!(newest["requestId"].is_string());
    assert_eq!(newest["changes"]["severity"], json!({"before": null, "after": "LOW"}));

    let number = case["number"].clone();
    for (filter, expected) in [
        (json!({"caseNumber": number}), 2),
        (json!({"action": "case.created"}), 1),
        (json!({"actorType": "SYSTEM"}), 3),
        (json!({"actorId": newest["actor"]["id"]}), 2),
        (json!({"at": {"from": "2000-01-01T00:00:00Z", "to": "2000-01-02T00:00:00Z"}}), 0),
    ] {
        let body = events(&app, &app.admin_token, json!({"filter": filter})).await;
        assert_eq!(body["data"]["auditEvents"]["totalCount"], expected, "{filter}: {body}");
        assert_eq!(
            body["data"]["auditEvents"]["nodes"].as_array().map(Vec::len),
            Some(expected),
            "{filter}"
        );
    }
    let body = events(&app, &app.admin_token, json!({"after": "forged"})).await;
    assert_eq!(error_code(&body), Some("VALIDATION_FAILED"));
    let body = events(&app, &app.admin_token, json!({"filter": {"actorId": case["id"]}})).await;
    assert_eq!(error_code(&body), Some("VALIDATION_FAILED"));
}

#[tokio::test]
async fn only_admins_read_the_record_and_only_their_own_tenants() {
    let app = TestApp::new().await;
    for role in [Role::Analyst, Role::ReadOnly, Role::Ingest, Role::SuperAdmin] {
        let (_, token) = app.create_user(app.tenant_id, role).await;
        let body = events(&app, &token, json!({})).await;
        assert_eq!(error_code(&body), Some("FORBIDDEN"), "{role:?}: {body}");
        for query in ["{ auditCheckpoint { hash } }", "{ verifyAuditChain { ok } }"] {
            let (_, body) = app.graphql(&token, query, json!({})).await;
            assert_eq!(error_code(&body), Some("FORBIDDEN"), "{role:?} {query}");
        }
    }
    let other = app.create_tenant("Other", &[]).await;
    let (_, other_admin) = app.create_user(other, Role::Admin).await;
    let body = events(&app, &other_admin, json!({})).await;
    assert_eq!(body["data"]["auditEvents"]["totalCount"], 0, "{body}");
    let mine = app.events(app.tenant_id).await;
    let id =
        events(&app, &app.admin_token, json!({"first": 1})).await["data"]["auditEvents"]["nodes"]
            [0]["id"]
            .clone();
    let (_, body) = app
        .graphql(&other_admin, "query($id: ID!) { node(id: $id) { id } }", json!({"id": id}))
        .await;
    assert_eq!(body["data"]["node"], Value::Null, "{body}");
    let (_, body) = app
        .graphql(
            &app.admin_token,
            "query($id: ID!) { node(id: $id) { ... on AuditEvent { sequence } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(body["data"]["node"]["sequence"], mine.len());
    let report = app.query_ok("{ verifyAuditChain { ok checked } }").await;
    assert_eq!(report["verifyAuditChain"], json!({"ok": true, "checked": mine.len()}));
}

#[tokio::test]
async fn case_activity_is_for_every_reader_with_request_details_for_admins_only() {
    let app = TestApp::new().await;
    let case = app.case_named("Watched").await;
    app.mutate(
        &app.admin_token,
        "updateCase",
        json!({"id": case["id"], "status": "INVESTIGATING"}),
        "case { id }",
    )
    .await;
    let query = "query($id: ID!) { case(id: $id) { activity(first: 10) { totalCount nodes { action caseEventKind requestId clientAddress actor { id } } } } }";
    let (_, reader) = app.create_user(app.tenant_id, Role::ReadOnly).await;
    let (_, body) = app.graphql(&reader, query, json!({"id": case["id"]})).await;
    let activity = &body["data"]["case"]["activity"];
    assert_eq!(activity["totalCount"], 2, "{body}");
    assert_eq!(activity["nodes"][0]["caseEventKind"], "STATUS_CHANGED");
    assert_eq!(activity["nodes"][1]["caseEventKind"], "CREATED");
    assert_eq!(activity["nodes"][0]["requestId"], Value::Null);
    assert_eq!(activity["nodes"][0]["clientAddress"], Value::Null);
    assert!(activity["nodes"][0]["actor"]["id"].is_string());
    let (_, body) = app.graphql(&app.admin_token, query, json!({"id": case["id"]})).await;
    assert!(body["data"]["case"]["activity"]["nodes"][0]["requestId"].is_string(), "{body}");
    let (_, ingest) = app.create_user(app.tenant_id, Role::Ingest).await;
    let (_, body) = app.graphql(&ingest, query, json!({"id": case["id"]})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
}

const ACTIVITY_LIST: &str = "query($n: Int) { cases(first: $n) { nodes { number \
     activity(first: 5) { totalCount nodes { sequence action actor { id } } } } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_activity_under_a_list_runs_the_same_statements_for_five_cases_or_a_hundred() {
    let app = TestApp::new().await;
    for i in 0..100 {
        let case = app.case_named(&format!("Active {i}")).await;
        if i % 2 == 0 {
            app.mutate(
                &app.admin_token,
                "updateCase",
                json!({"id": case["id"], "severity": "LOW"}),
                "case { id }",
            )
            .await;
        }
    }
    let hundred = crate::case_lists::statements_for(&app, ACTIVITY_LIST, json!({"n": 100})).await;
    let five = crate::case_lists::statements_for(&app, ACTIVITY_LIST, json!({"n": 5})).await;
    println!(
        "Case.activity under a case list: {hundred} SQL statements for 100 cases, {five} for 5"
    );
    assert_eq!(hundred, five, "activity must not grow with the page size");
}

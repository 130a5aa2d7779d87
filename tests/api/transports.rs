//! HTTP and the WebSocket run operations through one pipeline: the same error codes, the
//! same request ids on internal errors, the viewer as it is now, and fields in the order
//! the operation asked for them.

use std::time::Duration;

use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::{detection, error_code, error_field};
use crate::common::ws::{self, operation, operation_text};
use casefile::graphql::ids;
use casefile::models::users::Role;

/// An operation, what is wrong with it, and the code (and field) it earns.
struct Coded {
    what: &'static str,
    query: String,
    variables: Value,
    code: &'static str,
    field: Option<&'static str>,
}

fn coded(what: &'static str, query: &str, variables: Value, code: &'static str) -> Coded {
    Coded { what, query: query.to_owned(), variables, code, field: None }
}

/// Every code a client can meet in a response, with an operation that earns it.
fn coded_operations() -> Vec<Coded> {
    let archive = "mutation($input: CaseRefInput!) { archiveCase(input: $input) { case { id } } }";
    let unknown_case = ids::encode(ids::Kind::Case, uuid::Uuid::now_v7());
    // Deeper than the default depth limit (15).
    let too_deep = format!(
        "{{ __type(name: \"User\") {{ {}name{} }} }}",
        "fields { type { ".repeat(8),
        " } }".repeat(8)
    );
    vec![
        coded("the syntax is broken", "{ viewer {", json!({}), "GRAPHQL_PARSE_FAILED"),
        coded("an unknown field", "{ notAField }", json!({}), "GRAPHQL_VALIDATION_FAILED"),
        coded(
            "no operation name where two are",
            "query A { viewer { id } } query B { viewer { id } }",
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        coded(
            "a literal argument of the wrong type",
            "{ cases(first: \"ten\") { totalCount } }",
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        Coded {
            field: Some("n"),
            ..coded(
                "a variable of the wrong type",
                "query($n: Int) { cases(first: $n) { totalCount } }",
                json!({ "n": "ten" }),
                "VALIDATION_FAILED",
            )
        },
        Coded {
            // A variable inside an input object: the argument names the input.
            field: Some("filter"),
            ..coded(
                "a malformed DateTime variable",
                "query($at: DateTime) { cases(filter: { createdAt: { from: $at } }) { totalCount } }",
                json!({ "at": "yesterday" }),
                "VALIDATION_FAILED",
            )
        },
        Coded {
            field: Some("filter"),
            ..coded(
                "a malformed DateTime literal",
                "{ cases(filter: { createdAt: { from: \"yesterday\" } }) { totalCount } }",
                json!({}),
                "VALIDATION_FAILED",
            )
        },
        Coded {
            field: Some("id"),
            ..coded(
                "a malformed global id",
                archive,
                json!({ "input": { "id": "not-a-global-id" } }),
                "VALIDATION_FAILED",
            )
        },
        coded(
            "a case that does not exist",
            archive,
            json!({ "input": { "id": unknown_case.as_str() } }),
            "NOT_FOUND",
        ),
        coded("a query nested too deep", &too_deep, json!({}), "QUERY_TOO_COMPLEX"),
    ]
}

#[tokio::test]
async fn every_code_is_the_same_on_http_and_on_the_websocket() {
    let app = TestApp::new().await;
    let mut socket = ws::open(&app, &app.admin_token).await;
    for (i, Coded { what, query, variables, code, field }) in
        coded_operations().into_iter().enumerate()
    {
        let (_, http) = app.graphql(&app.admin_token, &query, variables.clone()).await;
        assert_eq!(error_code(&http), Some(code), "HTTP, {what}: {http}");
        assert_eq!(error_field(&http), field, "HTTP, {what}: {http}");

        let response = operation(&mut socket, &i.to_string(), &query, variables).await;
        assert_eq!(error_code(&response), Some(code), "WebSocket, {what}: {response}");
        assert_eq!(error_field(&response), field, "WebSocket, {what}: {response}");
        assert_eq!(response["errors"], http["errors"], "{what}: the same errors on both");
    }
}

#[tokio::test]
async fn domain_rule_codes_are_the_same_on_http_and_on_the_websocket() {
    let app = TestApp::new().await;
    let taken = app.case_named("Taken").await;
    let closed = app.case_named("Closed").await;
    let resolve =
        "mutation($input: ResolveCaseInput!) { resolveCase(input: $input) { case { id } } }";
    let (_, body) = app
        .graphql(
            &app.admin_token,
            resolve,
            json!({ "input": { "id": closed["id"], "resolution": "FALSE_POSITIVE" } }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let create = "mutation($input: CreateCaseInput!) { createCase(input: $input) { case { id } } }";
    let update = "mutation($input: UpdateCaseInput!) { updateCase(input: $input) { case { id } } }";
    let rules = [
        (
            "a name taken ignoring case",
            create,
            json!({ "input": { "name": "TAKEN" } }),
            "NAME_TAKEN",
        ),
        (
            "an edit of a resolved case",
            update,
            json!({ "input": { "id": closed["id"], "description": "late" } }),
            "CASE_CLOSED",
        ),
        (
            "an edit of an older version",
            update,
            json!({ "input": { "id": taken["id"], "description": "x", "expectedVersion": 99 } }),
            "VERSION_CONFLICT",
        ),
        (
            "a service request without the license",
            create,
            json!({ "input": { "name": "Help", "kind": "MDR_SERVICE_REQUEST" } }),
            "LICENSE_REQUIRED",
        ),
    ];
    let mut socket = ws::open(&app, &app.admin_token).await;
    for (i, (what, query, variables, code)) in rules.into_iter().enumerate() {
        let (_, http) = app.graphql(&app.admin_token, query, variables.clone()).await;
        assert_eq!(error_code(&http), Some(code), "HTTP, {what}: {http}");
        let response = operation(&mut socket, &i.to_string(), query, variables).await;
        assert_eq!(response["errors"], http["errors"], "{what}: the same errors on both");
    }
}

#[tokio::test]
async fn a_forbidden_action_is_forbidden_on_both_transports() {
    let app = TestApp::new().await;
    let (_, analyst) = app.create_user(app.tenant_id, Role::Analyst).await;
    let query = "mutation { createUser(input: { email: \"new@example.test\", displayName: \"New\", role: ANALYST }) { user { id } } }";
    let (_, http) = app.graphql(&analyst, query, json!({})).await;
    assert_eq!(error_code(&http), Some("FORBIDDEN"), "{http}");
    let response = app.ws_graphql(&analyst, query, json!({})).await;
    assert_eq!(error_code(&response), Some("FORBIDDEN"), "{response}");
}

/// Breaks the database under the server: the tenant query then fails inside PostgreSQL.
async fn break_tenants(app: &TestApp) {
    let mut conn = app.conn().await;
    diesel::sql_query("ALTER TABLE tenants RENAME COLUMN name TO renamed")
        .execute(&mut conn)
        .await
        .expect("alter");
}

fn assert_internal(response: &Value) -> String {
    let error = &response["errors"][0];
    assert_eq!(error["extensions"]["code"], "INTERNAL", "{response}");
    assert_eq!(error["message"], "internal error", "{response}");
    let text = response.to_string().to_lowercase();
    for leak in ["tenants", "select", "renamed", "does not exist", "diesel"] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }
    let request_id = error["extensions"]["requestId"].as_str().expect("a requestId").to_owned();
    assert!(uuid::Uuid::parse_str(&request_id).is_ok(), "{request_id}");
    request_id
}

#[tokio::test]
async fn an_internal_error_carries_a_request_id_of_its_own_on_both_transports() {
    let app = TestApp::new().await;
    let mut socket = ws::open(&app, &app.admin_token).await;
    break_tenants(&app).await;

    let (_, http) = app.graphql(&app.admin_token, "{ tenant { name } }", json!({})).await;
    let http_id = assert_internal(&http);

    let first = operation(&mut socket, "1", "{ tenant { name } }", json!({})).await;
    let second = operation(&mut socket, "2", "{ tenant { name } }", json!({})).await;
    let (first_id, second_id) = (assert_internal(&first), assert_internal(&second));
    assert_ne!(first_id, second_id, "each WebSocket operation has its own request id");
    assert_ne!(first_id, http_id);
}

#[tokio::test]
async fn an_exhausted_pool_answers_unavailable_on_both_transports() {
    let app = TestApp::with_pool(1, Duration::from_millis(300)).await;
    let mut socket = ws::open(&app, &app.admin_token).await;
    // A token this server has not seen: authenticating it needs the database.
    let (_, fresh) = app.admin_token_expiring(chrono::Utc::now() + chrono::Duration::days(1)).await;
    let held = app.conn().await;

    let (status, http) = app.graphql(&fresh, "{ viewer { email } }", json!({})).await;
    assert_eq!(status, 503, "{http}");
    assert_eq!(error_code(&http), Some("UNAVAILABLE"), "{http}");

    let response = operation(&mut socket, "1", "{ viewer { email } }", json!({})).await;
    assert_eq!(error_code(&response), Some("UNAVAILABLE"), "{response}");
    assert_eq!(response["errors"][0]["message"], "the database is busy: try again");

    // The socket stays open, and serves again once a connection is free.
    drop(held);
    let response = operation(&mut socket, "2", "{ viewer { email } }", json!({})).await;
    assert_eq!(response["data"]["viewer"]["email"], "admin@localhost", "{response}");
}

#[tokio::test]
async fn a_role_changed_in_the_database_applies_to_the_next_websocket_operation() {
    let app = TestApp::new().await;
    let (user, token) = app.create_user(app.tenant_id, Role::Analyst).await;
    let mut socket = ws::open(&app, &token).await;
    let create = |email: &str| {
        format!(
            "mutation {{ createUser(input: {{ email: \"{email}\", displayName: \"New\", role: ANALYST }}) {{ user {{ email }} }} }}"
        )
    };
    let response = operation(&mut socket, "1", &create("one@example.test"), json!({})).await;
    assert_eq!(error_code(&response), Some("FORBIDDEN"), "{response}");

    let mut conn = app.conn().await;
    diesel::sql_query(format!("UPDATE users SET role = 'ADMIN' WHERE id = '{}'", user.0))
        .execute(&mut conn)
        .await
        .expect("promote");
    // Changed in the database (as another server would): applies within the token
    // cache's lifetime.
    tokio::time::sleep(casefile::auth::cache::LIFETIME).await;
    let response = operation(&mut socket, "2", &create("two@example.test"), json!({})).await;
    assert_eq!(response["data"]["createUser"]["user"]["email"], "two@example.test", "{response}");

    diesel::sql_query(format!("UPDATE users SET role = 'ANALYST' WHERE id = '{}'", user.0))
        .execute(&mut conn)
        .await
        .expect("demote");
    tokio::time::sleep(casefile::auth::cache::LIFETIME).await;
    let response = operation(&mut socket, "3", &create("three@example.test"), json!({})).await;
    assert_eq!(error_code(&response), Some("FORBIDDEN"), "{response}");
}

/// Where each of `keys` first appears in `text`, which must hold them in this order.
fn assert_in_order(text: &str, keys: &[&str]) {
    let positions: Vec<usize> = keys
        .iter()
        .map(|key| text.find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("{key} in {text}")))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{keys:?} in this order: {text}");
}

#[tokio::test]
async fn responses_keep_the_order_of_the_selection_on_both_transports() {
    let app = TestApp::new().await;
    let ingest = "mutation($input: IngestDetectionsInput!) { ingestDetections(input: $input) { accepted duplicates autoCases { id } } }";
    let variables = json!({ "input": { "detections": [detection("order-1", 2)] } });
    let reversed = "{ zz: viewer { role email displayName } tenant { name } aa: viewer { id } }";
    // Nested objects too: fields that wait for a loader come first, the ones at hand after.
    app.case_named("Ordered").await;
    let nested = "{ cases(first: 1) { nodes { createdBy { email } ...Late } totalCount } } \
                  fragment Late on Case { zulu: number name }";
    let expected: [(&str, Value, &[&str]); 3] = [
        (ingest, variables, &["accepted", "duplicates", "autoCases"]),
        (reversed, json!({}), &["zz", "role", "email", "displayName", "tenant", "name", "aa"]),
        (nested, json!({}), &["nodes", "createdBy", "email", "zulu", "name", "totalCount"]),
    ];
    let mut socket = ws::open(&app, &app.admin_token).await;
    for (i, (query, variables, keys)) in expected.into_iter().enumerate() {
        let response = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(&app.admin_token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request");
        let text = response.text().await.expect("text");
        assert!(!text.contains("\"errors\""), "{text}");
        assert_in_order(&text, keys);

        let text = operation_text(&mut socket, &i.to_string(), query, variables).await;
        assert!(!text.contains("\"errors\""), "{text}");
        assert_in_order(&text, keys);
    }
}

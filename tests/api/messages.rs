//! Messages on cases: posting (who, on which cases, the body's rules), the list under a
//! case (oldest first, keyset paged both ways, a fixed number of statements under a
//! list), and archival removing them.

use serde_json::{Value, json};

use crate::case_lists::statements_for;
use crate::common::TestApp;
use crate::common::fixtures::{error_code, error_field};
use casefile::models::tenants::License;
use casefile::models::users::Role;

const MESSAGE: &str = "message { id body createdAt author { id email } case { id number } }";

async fn post(app: &TestApp, token: &str, case: &Value, body: &str) -> Value {
    app.mutate(token, "postMessage", json!({ "caseId": case, "body": body }), MESSAGE).await
}

async fn post_ok(app: &TestApp, token: &str, case: &Value, body: &str) -> Value {
    let response = post(app, token, case, body).await;
    assert!(response.get("errors").is_none(), "postMessage failed: {response}");
    response["data"]["postMessage"]["message"].clone()
}

async fn messages_of(app: &TestApp, case: &Value, args: &str) -> Value {
    let query = format!(
        "query($id: ID!) {{ case(id: $id) {{ messages{args} {{ totalCount \
         edges {{ cursor node {{ body }} }} \
         pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }} }}"
    );
    let (status, body) = app.graphql(&app.admin_token, &query, json!({ "id": case })).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["case"]["messages"].clone()
}

fn bodies(connection: &Value) -> Vec<String> {
    connection["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["body"].as_str().expect("body").to_owned())
        .collect()
}

#[tokio::test]
async fn a_message_is_stored_exactly_as_sent_with_its_author_and_readable_by_its_id() {
    let app = TestApp::new().await;
    let case = app.case_named("Talk").await;
    let text = "  Hello <b>team</b>,\n\tline two 👋 — ünïcode  ";
    let message = post_ok(&app, &app.admin_token, &case["id"], text).await;
    assert_eq!(message["body"], text);
    assert_eq!(message["author"]["email"], "admin@localhost");
    assert_eq!(message["case"]["id"], case["id"]);
    let data = app
        .query_ok(&format!(
            "{{ node(id: \"{}\") {{ ... on Message {{ body author {{ email }} }} }} }}",
            message["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(data["node"]["body"], text);
}

#[tokio::test]
async fn a_body_has_one_to_ten_thousand_characters() {
    let app = TestApp::new().await;
    let case = app.case_named("Lengths").await;
    for bad in [String::new(), "   ".to_owned(), "x".repeat(10_001)] {
        let body = post(&app, &app.admin_token, &case["id"], &bad).await;
        assert_eq!(error_code(&body), Some("VALIDATION_FAILED"), "{body}");
        assert_eq!(error_field(&body), Some("body"), "{body}");
    }
    // 10,000 characters of two bytes each: the limit counts characters, not bytes.
    let longest = "é".repeat(10_000);
    let message = post_ok(&app, &app.admin_token, &case["id"], &longest).await;
    assert_eq!(message["body"].as_str().map(|b| b.chars().count()), Some(10_000));
    assert_eq!(messages_of(&app, &case["id"], "").await["totalCount"], 1);
}

#[tokio::test]
async fn resolved_and_archived_cases_take_no_messages_and_archiving_deletes_them() {
    let app = TestApp::new().await;
    let token = app.admin_token.clone();
    let resolved = app.case_named("Resolved").await;
    app.mutate(
        &token,
        "resolveCase",
        json!({ "id": resolved["id"], "resolution": "FALSE_POSITIVE" }),
        "case { id }",
    )
    .await;
    let body = post(&app, &token, &resolved["id"], "late").await;
    assert_eq!(error_code(&body), Some("CASE_CLOSED"), "{body}");

    let archived = app.case_named("Archived").await;
    let kept = post_ok(&app, &token, &archived["id"], "before archival").await;
    assert_eq!(messages_of(&app, &archived["id"], "").await["totalCount"], 1);
    let done =
        app.mutate(&token, "archiveCase", json!({ "id": archived["id"] }), "case { status }").await;
    assert_eq!(done["data"]["archiveCase"]["case"]["status"], "ARCHIVED", "{done}");
    let list = messages_of(&app, &archived["id"], "").await;
    assert_eq!(list["totalCount"], 0, "archival deletes the case's messages: {list}");
    let data = app
        .query_ok(&format!("{{ node(id: \"{}\") {{ id }} }}", kept["id"].as_str().expect("id")))
        .await;
    assert_eq!(data["node"], Value::Null, "the archived message is gone for good");
    let body = post(&app, &token, &archived["id"], "after").await;
    assert_eq!(error_code(&body), Some("CASE_ARCHIVED"), "{body}");
}

#[tokio::test]
async fn who_may_post_read_only_and_ingest_may_not_provider_analysts_work_service_requests() {
    let app = TestApp::new().await;
    let tenant = app.create_tenant("Managed", &[License::Mdr]).await;
    let (_, admin) = app.create_user(tenant, Role::Admin).await;
    let request = app
        .create_case(
            &admin,
            json!({ "kind": "MDR_SERVICE_REQUEST", "name": "Help", "description": "Please look" }),
        )
        .await;
    for (role, allowed) in [
        (Role::Admin, true),
        (Role::Analyst, true),
        (Role::SuperAdmin, true),
        (Role::ProviderAnalyst, true),
        (Role::ReadOnly, false),
        (Role::Ingest, false),
    ] {
        let (_, token) = app.create_user(tenant, role).await;
        let body = post(&app, &token, &request["id"], &format!("from {}", role.as_str())).await;
        if allowed {
            assert!(body.get("errors").is_none(), "{} may post: {body}", role.as_str());
        } else {
            assert_eq!(error_code(&body), Some("FORBIDDEN"), "{}: {body}", role.as_str());
        }
    }
    // The provider's team: messages and the status, nothing else.
    let (_, provider) = app.create_user(tenant, Role::ProviderAnalyst).await;
    let status = app
        .mutate(
            &provider,
            "updateCase",
            json!({ "id": request["id"], "status": "INVESTIGATING" }),
            "case { status viewerCanPostMessage }",
        )
        .await;
    assert_eq!(status["data"]["updateCase"]["case"]["status"], "INVESTIGATING", "{status}");
    assert_eq!(status["data"]["updateCase"]["case"]["viewerCanPostMessage"], true);
    let name = app
        .mutate(
            &provider,
            "updateCase",
            json!({ "id": request["id"], "name": "Other" }),
            "case { name }",
        )
        .await;
    assert!(error_code(&name).is_some(), "a provider analyst cannot rename: {name}");
    // Another tenant's case is not found.
    let foreign = app.case_named("Not yours").await;
    let body = post(&app, &admin, &foreign["id"], "hello").await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");
    let (_, reader) = app.create_user(tenant, Role::ReadOnly).await;
    let query =
        "query($id: ID!) { case(id: $id) { viewerCanPostMessage messages { totalCount } } }";
    let (_, body) = app.graphql(&reader, query, json!({ "id": request["id"] })).await;
    assert_eq!(body["data"]["case"]["viewerCanPostMessage"], false, "{body}");
    assert_eq!(body["data"]["case"]["messages"]["totalCount"], 4, "{body}");
}

#[tokio::test]
async fn messages_are_listed_oldest_first_and_paged_both_ways() {
    let app = TestApp::new().await;
    let case = app.case_named("Paged").await;
    let all: Vec<String> = (1..=7).map(|i| format!("m{i}")).collect();
    for body in &all {
        post_ok(&app, &app.admin_token, &case["id"], body).await;
    }
    let whole = messages_of(&app, &case["id"], "").await;
    assert_eq!(bodies(&whole), all);
    assert_eq!(whole["totalCount"], 7);

    let mut seen = Vec::new();
    let mut args = "(first: 3)".to_owned();
    loop {
        let page = messages_of(&app, &case["id"], &args).await;
        seen.extend(bodies(&page));
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        args = format!(
            "(first: 3, after: \"{}\")",
            page["pageInfo"]["endCursor"].as_str().expect("cursor")
        );
    }
    assert_eq!(seen, all, "forward pages");

    let last = messages_of(&app, &case["id"], "(last: 3)").await;
    assert_eq!(bodies(&last), ["m5", "m6", "m7"]);
    assert_eq!(last["pageInfo"]["hasPreviousPage"], true);
    let before = last["pageInfo"]["startCursor"].as_str().expect("cursor");
    let earlier = messages_of(&app, &case["id"], &format!("(last: 3, before: \"{before}\")")).await;
    assert_eq!(bodies(&earlier), ["m2", "m3", "m4"]);

    let query = "query($id: ID!) { case(id: $id) { messages(after: \"bogus\") { totalCount } } }";
    let (_, body) = app.graphql(&app.admin_token, query, json!({ "id": case["id"] })).await;
    assert_eq!(error_code(&body), Some("VALIDATION_FAILED"), "{body}");
}

const MESSAGES_LIST: &str = "query($n: Int) { cases(first: $n) { nodes { number viewerCanPostMessage \
     messages(first: 3) { totalCount nodes { body createdAt author { email } } pageInfo { hasNextPage } } } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_list_with_messages_runs_the_same_statements_for_five_cases_or_a_hundred() {
    let app = TestApp::new().await;
    let (_, analyst) = app.create_user(app.tenant_id, Role::Analyst).await;
    for i in 0..100 {
        let case = app.case_named(&format!("Chatty {i}")).await;
        for j in 0..(i % 5) {
            let token = if j % 2 == 0 { &app.admin_token } else { &analyst };
            post_ok(&app, token, &case["id"], &format!("message {j}")).await;
        }
    }
    let hundred = statements_for(&app, MESSAGES_LIST, json!({ "n": 100 })).await;
    let five = statements_for(&app, MESSAGES_LIST, json!({ "n": 5 })).await;
    println!(
        "Case.messages under a case list: {hundred} SQL statements for 100 cases, {five} for 5"
    );
    assert_eq!(hundred, five, "statements must not grow with the page size");
}

#[tokio::test]
async fn posting_records_message_posted_with_the_body_as_digest_only() {
    use sha2::Digest;
    let app = TestApp::new().await;
    let case = app.case_named("Recorded").await;
    let before = app.events(app.tenant_id).await.len();
    let body = "The secret plan: rotate every key tonight";
    let message = post_ok(&app, &app.admin_token, &case["id"], body).await;
    let events = app.events(app.tenant_id).await;
    assert_eq!(events.len(), before + 1, "exactly one event");
    let event = events.last().expect("event");
    assert_eq!(event.action, "message.posted");
    assert_eq!(event.case_event_kind.as_deref(), Some("MESSAGE_POSTED"));
    assert_eq!(event.case_number, case["number"].as_i64().map(|n| n as i32));
    assert_eq!(event.target_id.as_deref(), message["id"].as_str());
    assert_eq!(event.actor_id, Some(app.admin_id));
    assert_eq!(event.actor_type, "USER");
    let sha = format!("{:x}", sha2::Sha256::digest(body.as_bytes()));
    assert_eq!(
        event.changes,
        json!({ "body": { "before": null, "after": { "sha256": sha, "length": body.chars().count() } } })
    );
    assert!(!event.changes.to_string().contains("secret plan"), "the text never enters the record");
    // A refused post records nothing.
    let resolved = app.case_named("Closed").await;
    app.mutate(
        &app.admin_token,
        "resolveCase",
        json!({ "id": resolved["id"], "resolution": "FALSE_POSITIVE" }),
        "case { id }",
    )
    .await;
    let count = app.events(app.tenant_id).await.len();
    let refused = post(&app, &app.admin_token, &resolved["id"], "late").await;
    assert_eq!(error_code(&refused), Some("CASE_CLOSED"));
    assert_eq!(app.events(app.tenant_id).await.len(), count);
}

//! Apollo's automatic persisted queries, by the protocol's exact messages: a hash the
//! server does not know answers `PersistedQueryNotFound` (200, `PERSISTED_QUERY_NOT_FOUND`);
//! the document sent with its hash is checked, kept and run; afterwards the hash alone
//! runs it, by POST and by GET.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::TestApp;

const QUERY: &str = "query Viewer { viewer { email } }";

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn extension(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn post(app: &TestApp, body: Value) -> (u16, Value) {
    let response = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&app.admin_token)
        .header("accept", "application/json")
        .json(&body)
        .send()
        .await
        .expect("request");
    (response.status().as_u16(), response.json().await.expect("json"))
}

async fn get(app: &TestApp, params: &[(&str, String)]) -> (u16, Value) {
    let response = app
        .http
        .get(app.url("/graphql"))
        .query(params)
        .bearer_auth(&app.admin_token)
        .header("accept", "application/json")
        .send()
        .await
        .expect("request");
    (response.status().as_u16(), response.json().await.expect("json"))
}

fn not_found() -> Value {
    json!({
        "errors": [{
            "message": "PersistedQueryNotFound",
            "extensions": { "code": "PERSISTED_QUERY_NOT_FOUND" }
        }]
    })
}

#[tokio::test]
async fn an_unknown_hash_is_not_found_then_the_document_registers_and_the_hash_runs_alone() {
    let app = TestApp::new().await;
    let hash = sha256_hex(QUERY);
    let ask = json!({ "operationName": "Viewer", "extensions": extension(&hash) });

    assert_eq!(post(&app, ask.clone()).await, (200, not_found()));

    let register =
        json!({ "query": QUERY, "operationName": "Viewer", "extensions": extension(&hash) });
    let (status, body) = post(&app, register).await;
    assert_eq!(
        (status, &body),
        (200, &json!({ "data": { "viewer": { "email": "admin@localhost" } } }))
    );

    let (status, again) = post(&app, ask).await;
    assert_eq!((status, again), (200, body));
}

#[tokio::test]
async fn by_get_the_hash_alone_runs_a_known_query_and_an_unknown_one_is_not_found() {
    let app = TestApp::new().await;
    let hash = sha256_hex(QUERY);
    let ext = extension(&hash).to_string();
    let ask = [("operationName", "Viewer".to_owned()), ("extensions", ext.clone())];

    assert_eq!(get(&app, &ask).await, (200, not_found()));

    let register = [("query", QUERY.to_owned()), ("extensions", ext)];
    let (status, body) = get(&app, &register).await;
    assert_eq!(body["data"]["viewer"]["email"], "admin@localhost", "{body}");
    assert_eq!(status, 200);

    let (status, body) = get(&app, &ask).await;
    assert_eq!((status, &body["data"]["viewer"]["email"]), (200, &json!("admin@localhost")));
}

#[tokio::test]
async fn a_document_that_does_not_have_the_hash_given_is_refused_and_not_kept() {
    let app = TestApp::new().await;
    let hash = sha256_hex("{ somethingElse }");
    let (status, body) =
        post(&app, json!({ "query": QUERY, "extensions": extension(&hash) })).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    assert_eq!(body["errors"][0]["message"], "provided sha does not match query");
    assert_eq!(post(&app, json!({ "extensions": extension(&hash) })).await, (200, not_found()));
}

#[tokio::test]
async fn an_unsupported_version_or_a_malformed_hash_is_a_bad_request() {
    let app = TestApp::new().await;
    let version = json!({ "persistedQuery": { "version": 2, "sha256Hash": sha256_hex(QUERY) } });
    let (status, body) = post(&app, json!({ "query": QUERY, "extensions": version })).await;
    assert_eq!((status, &body["errors"][0]["extensions"]["code"]), (400, &json!("BAD_REQUEST")));
    let (status, body) = post(&app, json!({ "extensions": extension("not-hex") })).await;
    assert_eq!((status, &body["errors"][0]["extensions"]["code"]), (400, &json!("BAD_REQUEST")));
    // Without the extension a missing query stays what it was.
    let (status, body) = post(&app, json!({ "operationName": "Viewer" })).await;
    assert_eq!((status, &body["errors"][0]["extensions"]["code"]), (400, &json!("BAD_REQUEST")));
}

#[tokio::test]
async fn a_persisted_mutation_still_runs_only_by_post() {
    let app = TestApp::new().await;
    let mutation =
        "mutation { updateTenantPolicies(input: { autoCaseEnabled: true }) { tenant { name } } }";
    let hash = sha256_hex(mutation);
    let (status, body) =
        post(&app, json!({ "query": mutation, "extensions": extension(&hash) })).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let (status, _) = get(&app, &[("extensions", extension(&hash).to_string())]).await;
    assert_eq!(status, 405);
}

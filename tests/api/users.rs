//! Users and API tokens managed through the API: the checks on what an admin enters.

use serde_json::json;

use crate::common::TestApp;
use crate::common::fixtures::{error_code, error_field};

const USER: &str = "user { email displayName role assignable }";

#[tokio::test]
async fn create_user_checks_the_email_and_display_name_and_refuses_a_taken_email() {
    let app = TestApp::new().await;
    let body = app
        .mutate(
            &app.admin_token,
            "createUser",
            json!({ "email": " Ana@Acme.test ", "displayName": " Ana ", "role": "ANALYST" }),
            USER,
        )
        .await;
    assert_eq!(
        body["data"]["createUser"]["user"],
        json!({ "email": "Ana@Acme.test", "displayName": "Ana", "role": "ANALYST", "assignable": true }),
        "{body}"
    );
    let refused = [
        (
            json!({ "email": "not-an-email", "displayName": "X", "role": "ANALYST" }),
            "VALIDATION_FAILED",
            Some("email"),
        ),
        (
            json!({ "email": "x y@acme.test", "displayName": "X", "role": "ANALYST" }),
            "VALIDATION_FAILED",
            Some("email"),
        ),
        (
            json!({ "email": "bo@acme.test", "displayName": "  ", "role": "ANALYST" }),
            "VALIDATION_FAILED",
            Some("displayName"),
        ),
        (
            json!({ "email": "ANA@acme.TEST", "displayName": "Twin", "role": "READ_ONLY" }),
            "NAME_TAKEN",
            None,
        ),
    ];
    for (input, code, field) in refused {
        let body = app.mutate(&app.admin_token, "createUser", input.clone(), USER).await;
        assert_eq!(error_code(&body), Some(code), "{input}: {body}");
        assert_eq!(error_field(&body), field, "{input}: {body}");
    }
    let data = app.query_ok("{ users { totalCount } }").await;
    assert_eq!(data["users"]["totalCount"], 2, "the admin and Ana only");
}

#[tokio::test]
async fn create_api_token_needs_a_name_and_a_future_expiry() {
    let app = TestApp::new().await;
    let me = app.query_ok("{ viewer { id } }").await["viewer"]["id"].clone();
    for (input, field) in [
        (json!({ "userId": me, "name": " " }), "name"),
        (json!({ "userId": me, "name": "ci", "expiresAt": "2020-01-01T00:00:00Z" }), "expiresAt"),
        (json!({ "userId": "garbage", "name": "ci" }), "userId"),
    ] {
        let body =
            app.mutate(&app.admin_token, "createApiToken", input.clone(), "tokenId token").await;
        assert_eq!(error_code(&body), Some("VALIDATION_FAILED"), "{input}: {body}");
        assert_eq!(error_field(&body), Some(field), "{input}: {body}");
    }
    let body = app
        .mutate(&app.admin_token, "createApiToken", json!({ "userId": me, "name": "ci" }), "token")
        .await;
    let token = body["data"]["createApiToken"]["token"].as_str().expect("a token");
    let (status, viewer) = app.graphql(token, "{ viewer { email } }", json!({})).await;
    assert_eq!((status, &viewer["data"]["viewer"]["email"]), (200, &json!("admin@localhost")));
}

#[tokio::test]
async fn text_filters_refuse_values_longer_than_255_characters() {
    let app = TestApp::new().await;
    let long = "x".repeat(256);
    for (query, field) in [
        (
            "query($v: String) { subjects(filter: { usernameContains: $v }) { totalCount } }",
            "usernameContains",
        ),
        (
            "query($v: String) { cases(filter: { nameContains: $v }) { totalCount } }",
            "nameContains",
        ),
        ("query($v: String) { detections(filter: { actor: $v }) { totalCount } }", "actor"),
    ] {
        let (_, body) = app.graphql(&app.admin_token, query, json!({ "v": long })).await;
        assert_eq!(error_code(&body), Some("VALIDATION_FAILED"), "{query}: {body}");
        assert_eq!(error_field(&body), Some(field), "{query}: {body}");
    }
}

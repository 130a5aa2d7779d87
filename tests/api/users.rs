//! Users and API tokens managed through the API: the checks on what an admin enters, and
//! a user's life cycle (`updateUser`: display name, role, deactivation).

use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::{error_code, error_field};
use casefile::graphql::ids::{self, Kind};
use casefile::models::ids::UserId;
use casefile::models::users::Role;

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

const UPDATED: &str = "clientMutationId user { id displayName role active assignable }";

fn user_id(id: UserId) -> String {
    ids::encode(Kind::User, id.0).0
}

/// `updateUser` as `token`; returns the whole body.
async fn update_user(app: &TestApp, token: &str, input: Value) -> Value {
    app.mutate(token, "updateUser", input, UPDATED).await
}

/// A user read back by the bootstrap admin.
async fn read_user(app: &TestApp, id: &str) -> Value {
    let query = "query($id: ID!) { node(id: $id) { ... on User { displayName role active } } }";
    let (_, body) = app.graphql(&app.admin_token, query, json!({ "id": id })).await;
    body["data"]["node"].clone()
}

#[tokio::test]
async fn update_user_changes_name_role_and_activity_and_checks_its_input() {
    let app = TestApp::new().await;
    let (user, _) = app.create_user(app.tenant_id, Role::Analyst).await;
    let id = user_id(user);
    let input =
        json!({ "clientMutationId": "m1", "id": id, "displayName": " Bo ", "role": "READ_ONLY" });
    let body = update_user(&app, &app.admin_token, input).await;
    assert_eq!(
        body["data"]["updateUser"],
        json!({ "clientMutationId": "m1", "user": { "id": id, "displayName": "Bo", "role": "READ_ONLY", "active": true, "assignable": false } }),
        "{body}"
    );
    let body = update_user(&app, &app.admin_token, json!({ "id": id, "active": false })).await;
    assert_eq!(body["data"]["updateUser"]["user"]["active"], false, "{body}");
    let body = update_user(&app, &app.admin_token, json!({ "id": id })).await;
    assert_eq!(body["data"]["updateUser"]["user"]["displayName"], "Bo", "nothing asked: {body}");

    let refused = [
        (json!({ "id": id, "displayName": "  " }), "VALIDATION_FAILED", Some("displayName")),
        (
            json!({ "id": id, "displayName": "x".repeat(201) }),
            "VALIDATION_FAILED",
            Some("displayName"),
        ),
        (json!({ "id": "garbage", "active": true }), "VALIDATION_FAILED", Some("id")),
        (json!({ "id": user_id(UserId::new()), "active": true }), "NOT_FOUND", None),
    ];
    for (input, code, field) in refused {
        let body = update_user(&app, &app.admin_token, input.clone()).await;
        assert_eq!(error_code(&body), Some(code), "{input}: {body}");
        assert_eq!(error_field(&body), field, "{input}: {body}");
    }
    assert_eq!(
        read_user(&app, &id).await,
        json!({ "displayName": "Bo", "role": "READ_ONLY", "active": false })
    );
}

#[tokio::test]
async fn a_deactivated_users_tokens_answer_401_unauthenticated_at_once() {
    let app = TestApp::new().await;
    let (user, token) = app.create_user(app.tenant_id, Role::Analyst).await;
    let (status, _) = app.graphql(&token, "{ viewer { active } }", json!({})).await;
    assert_eq!(status, 200);
    let body =
        update_user(&app, &app.admin_token, json!({ "id": user_id(user), "active": false })).await;
    assert!(body.get("errors").is_none(), "{body}");

    let (status, body) = app.graphql(&token, "{ viewer { id } }", json!({})).await;
    assert_eq!((status, error_code(&body)), (401, Some("UNAUTHENTICATED")), "{body}");

    // Reactivated, the same token works again (it was never revoked).
    update_user(&app, &app.admin_token, json!({ "id": user_id(user), "active": true })).await;
    let (status, body) = app.graphql(&token, "{ viewer { active } }", json!({})).await;
    assert_eq!((status, &body["data"]["viewer"]["active"]), (200, &json!(true)), "{body}");
}

#[tokio::test]
async fn a_changed_role_applies_to_the_next_request() {
    let app = TestApp::new().await;
    let (user, token) = app.create_user(app.tenant_id, Role::Analyst).await;
    let create = |name: &str| json!({ "name": name });
    let body = app.mutate(&token, "createCase", create("Before demotion"), "case { id }").await;
    assert!(body.get("errors").is_none(), "an analyst creates cases: {body}");

    update_user(&app, &app.admin_token, json!({ "id": user_id(user), "role": "READ_ONLY" })).await;
    let body = app.mutate(&token, "createCase", create("After demotion"), "case { id }").await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    let (_, body) = app.graphql(&token, "{ viewer { role } }", json!({})).await;
    assert_eq!(body["data"]["viewer"]["role"], "READ_ONLY");

    update_user(&app, &app.admin_token, json!({ "id": user_id(user), "role": "ADMIN" })).await;
    let body = app
        .mutate(
            &token,
            "createUser",
            json!({ "email": "new@acme.test", "displayName": "New", "role": "ANALYST" }),
            "user { id }",
        )
        .await;
    assert!(body.get("errors").is_none(), "promoted to admin: {body}");
}

#[tokio::test]
async fn the_last_active_admin_can_be_neither_deactivated_nor_demoted() {
    let app = TestApp::new().await;
    let me = user_id(app.admin_id);
    for (input, field) in [
        (json!({ "id": me, "active": false }), "active"),
        (json!({ "id": me, "role": "ANALYST" }), "role"),
        (json!({ "id": me, "role": "ANALYST", "displayName": "Renamed" }), "role"),
    ] {
        let body = update_user(&app, &app.admin_token, input.clone()).await;
        assert_eq!(error_code(&body), Some("VALIDATION_FAILED"), "{input}: {body}");
        assert_eq!(error_field(&body), Some(field), "{input}: {body}");
    }
    let unchanged = json!({ "displayName": "Administrator", "role": "ADMIN", "active": true });
    assert_eq!(read_user(&app, &me).await, unchanged, "a refused change changes nothing");

    // A deactivated admin does not count; an active second one does.
    let (other, _) = app.create_user(app.tenant_id, Role::Admin).await;
    let other = user_id(other);
    update_user(&app, &app.admin_token, json!({ "id": other, "active": false })).await;
    let body = update_user(&app, &app.admin_token, json!({ "id": me, "role": "ANALYST" })).await;
    assert_eq!(error_field(&body), Some("role"), "{body}");
    update_user(&app, &app.admin_token, json!({ "id": other, "active": true })).await;
    let body = update_user(&app, &app.admin_token, json!({ "id": me, "active": false })).await;
    assert_eq!(body["data"]["updateUser"]["user"]["active"], false, "{body}");
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    let app = TestApp::new().await;
    for _ in 0..5 {
        let (first, first_token) = app.create_user(app.tenant_id, Role::Admin).await;
        let (second, second_token) = app.create_user(app.tenant_id, Role::Admin).await;
        // Only these two are active admins.
        update_user(&app, &first_token, json!({ "id": user_id(app.admin_id), "active": false }))
            .await;
        let (a, b) = tokio::join!(
            update_user(&app, &first_token, json!({ "id": user_id(second), "role": "ANALYST" })),
            update_user(&app, &second_token, json!({ "id": user_id(first), "role": "ANALYST" })),
        );
        let codes = [error_code(&a), error_code(&b)];
        // The loser either is refused by the rule or, demoted first, is no longer an admin.
        assert!(
            codes.contains(&None)
                && (codes.contains(&Some("VALIDATION_FAILED"))
                    || codes.contains(&Some("FORBIDDEN"))),
            "exactly one wins: {a} {b}"
        );
        // The bootstrap admin is inactive: read as the winner.
        let winner = if error_code(&a).is_none() { &first_token } else { &second_token };
        let (_, data) =
            app.graphql(winner, "{ users(first: 100) { nodes { role active } } }", json!({})).await;
        let admins = data["data"]["users"]["nodes"]
            .as_array()
            .expect("users")
            .iter()
            .filter(|u| u["role"] == "ADMIN" && u["active"] == true)
            .count();
        assert_eq!(admins, 1, "{data}");
        // Start the next round with the bootstrap admin back.
        update_user(&app, winner, json!({ "id": user_id(app.admin_id), "active": true })).await;
        for id in [first, second] {
            update_user(&app, &app.admin_token, json!({ "id": user_id(id), "active": false }))
                .await;
        }
    }
}

#[tokio::test]
async fn a_deactivated_user_cannot_be_assigned_and_keeps_its_open_assignments() {
    let app = TestApp::new().await;
    let (user, _) = app.create_user(app.tenant_id, Role::Analyst).await;
    let (idle, _) = app.create_user(app.tenant_id, Role::Analyst).await;
    let case = app
        .create_case(
            &app.admin_token.clone(),
            json!({ "name": "Kept", "assigneeId": user_id(user) }),
        )
        .await;
    let other = app.case_named("Unassigned").await;
    for id in [user, idle] {
        update_user(&app, &app.admin_token, json!({ "id": user_id(id), "active": false })).await;
    }
    assert_eq!(
        app.read_case(case["id"].as_str().expect("id")).await["assignee"]["id"],
        user_id(user)
    );

    let input = json!({ "id": other["id"], "assigneeId": user_id(idle) });
    let body = app.mutate(&app.admin_token, "updateCase", input, "case { id }").await;
    assert_eq!(
        (error_code(&body), error_field(&body)),
        (Some("VALIDATION_FAILED"), Some("assigneeId")),
        "{body}"
    );
    assert!(app.read_case(other["id"].as_str().expect("id")).await["assignee"].is_null());

    let data = app.query_ok("{ assignable: users(assignable: true) { nodes { id } } others: users(assignable: false) { nodes { id active assignable } } }").await;
    assert_eq!(data["assignable"]["nodes"], json!([{ "id": user_id(app.admin_id) }]), "{data}");
    let others = data["others"]["nodes"].as_array().expect("users");
    assert_eq!(others.len(), 2, "{data}");
    assert!(others.iter().all(|u| u["active"] == false && u["assignable"] == false), "{data}");
}

#[tokio::test]
async fn api_tokens_are_shown_to_admins_and_to_their_own_user_only() {
    let app = TestApp::new().await;
    let (user, token) = app.create_user(app.tenant_id, Role::Analyst).await;
    let tokens =
        "query($id: ID!) { node(id: $id) { ... on User { apiTokens { id name revokedAt } } } }";
    let (_, own) = app
        .graphql(
            &token,
            "{ viewer { apiTokens { id name createdAt expiresAt lastUsedAt revokedAt } } }",
            json!({}),
        )
        .await;
    let listed = own["data"]["viewer"]["apiTokens"].as_array().expect("own tokens").clone();
    assert_eq!(listed.len(), 1, "{own}");
    assert_eq!(listed[0]["name"], "test");
    assert!(
        listed[0]["lastUsedAt"].is_string(),
        "used by this very request's authentication: {own}"
    );

    let (_, seen) = app.graphql(&app.admin_token, tokens, json!({ "id": user_id(user) })).await;
    assert_eq!(seen["data"]["node"]["apiTokens"][0]["id"], listed[0]["id"], "{seen}");
    let (_, refused) = app.graphql(&token, tokens, json!({ "id": user_id(app.admin_id) })).await;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");

    // A token is a node for an admin and its own user, and null for anyone else.
    let node = "query($id: ID!) { node(id: $id) { ... on ApiToken { name } } }";
    let token_id = json!({ "id": listed[0]["id"] });
    let (_, body) = app.graphql(&app.admin_token, node, token_id.clone()).await;
    assert_eq!(body["data"]["node"]["name"], "test", "{body}");
    let (_, reader) = app.create_user(app.tenant_id, Role::ReadOnly).await;
    let (_, body) = app.graphql(&reader, node, token_id).await;
    assert!(body.get("errors").is_none() && body["data"]["node"].is_null(), "{body}");
}

#[tokio::test]
async fn a_renamed_assignee_sorts_the_case_list_by_the_new_name() {
    let app = TestApp::new().await;
    let (early, _) = app.create_user(app.tenant_id, Role::Analyst).await;
    let (late, _) = app.create_user(app.tenant_id, Role::Analyst).await;
    for (id, name) in [(early, "Anna"), (late, "Björn")] {
        let body =
            update_user(&app, &app.admin_token, json!({ "id": user_id(id), "displayName": name }))
                .await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    for (id, case) in [(early, "First"), (late, "Second")] {
        app.create_case(
            &app.admin_token.clone(),
            json!({ "name": case, "assigneeId": user_id(id) }),
        )
        .await;
    }
    let query = "{ cases(orderBy: { field: ASSIGNEE, direction: ASC }) { nodes { name } } }";
    let names = |data: Value| -> Vec<Value> {
        data["cases"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|c| c["name"].clone())
            .collect()
    };
    assert_eq!(names(app.query_ok(query).await), [json!("First"), json!("Second")]);

    // Anna becomes Zoë: her case now sorts after Björn's.
    let body =
        update_user(&app, &app.admin_token, json!({ "id": user_id(early), "displayName": "Zoë" }))
            .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(names(app.query_ok(query).await), [json!("Second"), json!("First")]);
}

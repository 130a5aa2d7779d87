//! Relay object identification: `node` and `nodes`, scoped to the viewer's tenant.

use serde_json::json;

use crate::common::TestApp;
use casefile::graphql::ids::{self, Kind};
use casefile::models::users::Role;

#[tokio::test]
async fn node_refetches_the_viewer_and_the_tenant_by_global_id() {
    let app = TestApp::new().await;
    let data = app.query_ok("{ viewer { id } tenant { id } }").await;
    let (user_id, tenant_id) = (data["viewer"]["id"].clone(), data["tenant"]["id"].clone());
    let (status, body) = app
        .graphql(
            &app.admin_token,
            "query($u: ID!, $t: ID!) { u: node(id: $u) { __typename id ... on User { email } } t: node(id: $t) { __typename ... on Tenant { name } } }",
            json!({ "u": user_id, "t": tenant_id }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["u"],
        json!({ "__typename": "User", "id": user_id, "email": "admin@localhost" })
    );
    assert_eq!(body["data"]["t"], json!({ "__typename": "Tenant", "name": "Default" }));
}

#[tokio::test]
async fn another_tenants_ids_answer_like_ids_that_do_not_exist() {
    let app = TestApp::new().await;
    let other = app.create_tenant("Other", &[]).await;
    let (other_user, _) = app.create_user(other, Role::Analyst).await;
    let foreign_user = ids::encode(Kind::User, other_user.0);
    let foreign_tenant = ids::encode(Kind::Tenant, other.0);
    let missing_user = ids::encode(Kind::User, uuid::Uuid::now_v7());
    let (status, body) = app
        .graphql(
            &app.admin_token,
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } a: node(id: \"garbage\") { id } }",
            json!({ "ids": [foreign_user, foreign_tenant, missing_user] }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], json!({ "nodes": [null, null, null], "a": null }), "{body}");
}

#[tokio::test]
async fn nodes_keeps_order_and_refuses_more_than_a_hundred_ids() {
    let app = TestApp::new().await;
    let data = app.query_ok("{ viewer { id } tenant { id } }").await;
    let ids_in = json!([data["tenant"]["id"], "nope", data["viewer"]["id"]]);
    let (_, body) = app
        .graphql(
            &app.admin_token,
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({ "ids": ids_in }),
        )
        .await;
    assert_eq!(
        body["data"]["nodes"],
        json!([{ "id": data["tenant"]["id"] }, null, { "id": data["viewer"]["id"] }])
    );

    let many: Vec<String> = (0..101).map(|_| "x".to_owned()).collect();
    let (_, body) = app
        .graphql(
            &app.admin_token,
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({ "ids": many }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "VALIDATION_FAILED");
    assert_eq!(body["errors"][0]["extensions"]["field"], "ids");
}

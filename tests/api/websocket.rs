//! `/graphql/ws`: both subprotocols, and no operation without a valid token in `connection_init`.

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::common::TestApp;
use crate::common::ws::{Socket, connect, next, send};

#[tokio::test]
async fn graphql_transport_ws_runs_operations_after_a_valid_init() {
    let app = TestApp::new().await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(&mut socket, json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", app.admin_token) } })).await;
    assert_eq!(next(&mut socket).await, Ok(json!({ "type": "connection_ack" })));
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ viewer { email } }" } }),
    )
    .await;
    let message = next(&mut socket).await.expect("next");
    assert_eq!(message["type"], "next");
    assert_eq!(message["payload"]["data"]["viewer"]["email"], "admin@localhost");
    assert_eq!(next(&mut socket).await, Ok(json!({ "type": "complete", "id": "1" })));
}

#[tokio::test]
async fn graphql_transport_ws_closes_4403_on_a_bad_token() {
    let app = TestApp::new().await;
    for payload in [json!({ "authorization": "Bearer cf_wrong" }), json!({}), Value::Null] {
        let mut socket = connect(&app, "graphql-transport-ws").await;
        send(&mut socket, json!({ "type": "connection_init", "payload": payload })).await;
        assert_eq!(next(&mut socket).await, Err(4403), "payload {payload}");
    }
}

#[tokio::test]
async fn graphql_transport_ws_closes_4401_when_subscribing_before_init() {
    let app = TestApp::new().await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ viewer { email } }" } }),
    )
    .await;
    assert_eq!(next(&mut socket).await, Err(4401));
}

#[tokio::test]
async fn legacy_graphql_ws_runs_operations_and_refuses_bad_tokens() {
    let app = TestApp::new().await;
    let mut socket = connect(&app, "graphql-ws").await;
    send(&mut socket, json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", app.admin_token) } })).await;
    assert_eq!(next(&mut socket).await, Ok(json!({ "type": "connection_ack" })));
    send(
        &mut socket,
        json!({ "id": "7", "type": "start", "payload": { "query": "{ viewer { role } }" } }),
    )
    .await;
    let message = next(&mut socket).await.expect("data");
    assert_eq!(message["type"], "data");
    assert_eq!(message["payload"]["data"]["viewer"]["role"], "ADMIN");
    assert_eq!(next(&mut socket).await, Ok(json!({ "type": "complete", "id": "7" })));

    let mut socket = connect(&app, "graphql-ws").await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "authorization": "Bearer cf_wrong" } }),
    )
    .await;
    let error = next(&mut socket).await.expect("connection_error");
    assert_eq!(error["type"], "connection_error");
    assert_eq!(next(&mut socket).await, Err(4403));
}

#[tokio::test]
async fn open_websockets_are_counted_in_metrics() {
    let app = TestApp::new().await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(&mut socket, json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", app.admin_token) } })).await;
    assert!(next(&mut socket).await.is_ok());
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("casefile_websocket_connections 1"), "{metrics}");
    socket
        .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }))
        .await
        .expect("close");
}

#[tokio::test]
async fn an_operation_after_the_token_was_revoked_closes_the_socket_with_4403() {
    let app = TestApp::new().await;
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        let (token_id, secret) =
            app.admin_token_expiring(chrono::Utc::now() + chrono::Duration::days(1)).await;
        let mut socket = connect(&app, protocol).await;
        let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {secret}") } });
        send(&mut socket, init).await;
        assert_eq!(next(&mut socket).await, Ok(json!({ "type": "connection_ack" })));
        let start = if protocol == "graphql-ws" { "start" } else { "subscribe" };
        send(
            &mut socket,
            json!({ "id": "1", "type": start, "payload": { "query": "{ viewer { email } }" } }),
        )
        .await;
        assert_eq!(
            next(&mut socket).await.expect("result")["payload"]["data"]["viewer"]["email"],
            "admin@localhost"
        );
        assert!(next(&mut socket).await.is_ok(), "complete");

        let mut conn = app.conn().await;
        casefile::models::tokens::revoke(&mut conn, app.tenant_id, token_id).await.expect("revoke");
        // Revoked in the database (as another server would): within the cache's lifetime.
        tokio::time::sleep(casefile::auth::cache::LIFETIME).await;
        send(
            &mut socket,
            json!({ "id": "2", "type": start, "payload": { "query": "{ viewer { email } }" } }),
        )
        .await;
        if protocol == "graphql-ws" {
            assert_eq!(
                next(&mut socket).await.expect("connection_error")["type"],
                "connection_error"
            );
        }
        assert_eq!(next(&mut socket).await, Err(4403), "{protocol}");
    }
}

/// `updateUser` of `user` as the bootstrap admin, over HTTP; fails the test on errors.
async fn update_user(app: &TestApp, user: casefile::models::ids::UserId, input: Value) {
    let mut input = input;
    input["id"] = json!(casefile::graphql::ids::encode(casefile::graphql::ids::Kind::User, user.0));
    let body = app.mutate(&app.admin_token, "updateUser", input, "user { id }").await;
    assert!(body.get("errors").is_none(), "{body}");
}

/// A `graphql-transport-ws` socket initialised with `token`.
async fn open_as(app: &TestApp, token: &str) -> Socket {
    let mut socket = connect(app, "graphql-transport-ws").await;
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    send(&mut socket, init).await;
    assert_eq!(next(&mut socket).await, Ok(json!({ "type": "connection_ack" })));
    socket
}

/// Runs one operation on the socket and returns its first `next` payload.
async fn operation(socket: &mut Socket, id: &str, query: &str) -> Result<Value, u16> {
    send(socket, json!({ "id": id, "type": "subscribe", "payload": { "query": query } })).await;
    let result = next(socket).await?;
    assert_eq!(next(socket).await, Ok(json!({ "type": "complete", "id": id })));
    Ok(result["payload"].clone())
}

#[tokio::test]
async fn a_deactivated_users_next_operation_closes_the_socket_with_4403() {
    let app = TestApp::new().await;
    let (user, token) =
        app.create_user(app.tenant_id, casefile::models::users::Role::Analyst).await;
    let mut socket = open_as(&app, &token).await;
    let first = operation(&mut socket, "1", "{ viewer { active } }").await;
    assert_eq!(first.expect("open")["data"]["viewer"]["active"], true);

    update_user(&app, user, json!({ "active": false })).await;
    send(
        &mut socket,
        json!({ "id": "2", "type": "subscribe", "payload": { "query": "{ viewer { id } }" } }),
    )
    .await;
    assert_eq!(next(&mut socket).await, Err(4403));
}

#[tokio::test]
async fn a_changed_role_applies_to_the_next_websocket_operation() {
    let app = TestApp::new().await;
    let (user, token) =
        app.create_user(app.tenant_id, casefile::models::users::Role::Analyst).await;
    let mut socket = open_as(&app, &token).await;
    let create = |name: &str| {
        format!("mutation {{ createCase(input: {{ name: {name:?} }}) {{ case {{ name }} }} }}")
    };
    let before = operation(&mut socket, "1", &create("Made on the socket")).await.expect("open");
    assert_eq!(before["data"]["createCase"]["case"]["name"], "Made on the socket", "{before}");

    update_user(&app, user, json!({ "role": "READ_ONLY" })).await;
    let role = operation(&mut socket, "2", "{ viewer { role } }").await.expect("open");
    assert_eq!(role["data"]["viewer"]["role"], "READ_ONLY", "{role}");
    let after = operation(&mut socket, "3", &create("Refused on the socket")).await.expect("open");
    assert_eq!(after["errors"][0]["extensions"]["code"], "FORBIDDEN", "{after}");
}

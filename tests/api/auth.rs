//! Bearer tokens: only a known, unrevoked, unexpired token gets in.

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::common::TestApp;
use casefile::models::tokens;

const VIEWER: &str = "{ viewer { email role } }";

async fn status_and_code(
    app: &TestApp,
    authorization: Option<&str>,
) -> (u16, Value, Option<String>) {
    let mut request = app.http.post(app.url("/graphql")).json(&json!({ "query": VIEWER }));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let www =
        response.headers().get("www-authenticate").map(|v| v.to_str().unwrap_or("").to_owned());
    let body: Value = response.json().await.expect("json body");
    (status, body["errors"][0]["extensions"]["code"].clone(), www)
}

#[tokio::test]
async fn a_valid_token_identifies_the_viewer() {
    let app = TestApp::new().await;
    let data = app.query_ok(VIEWER).await;
    assert_eq!(data["viewer"], json!({ "email": "admin@localhost", "role": "ADMIN" }));
}

#[tokio::test]
async fn a_missing_token_is_unauthenticated() {
    let app = TestApp::new().await;
    let (status, code, www) = status_and_code(&app, None).await;
    assert_eq!((status, code), (401, json!("UNAUTHENTICATED")));
    assert_eq!(www.as_deref(), Some("Bearer"));
}

#[tokio::test]
async fn an_unknown_or_malformed_token_is_unauthenticated() {
    let app = TestApp::new().await;
    let forged = format!("Bearer {}", tokens::generate().secret);
    for header in
        [forged.as_str(), "Bearer nonsense", "Basic YWRtaW46YWRtaW4=", "Bearer ", "cf_abc"]
    {
        let (status, code, _) = status_and_code(&app, Some(header)).await;
        assert_eq!((status, code), (401, json!("UNAUTHENTICATED")), "header {header:?}");
    }
}

#[tokio::test]
async fn a_revoked_token_is_unauthenticated_and_others_still_work() {
    let app = TestApp::new().await;
    let (token_id, secret) = app.admin_token_expiring(Utc::now() + Duration::days(1)).await;
    let bearer = format!("Bearer {secret}");
    assert_eq!(status_and_code(&app, Some(&bearer)).await.0, 200);

    // Revoked in the database (as another server would): refused within the token
    // cache's lifetime.
    let mut conn = app.conn().await;
    let revoked =
        tokens::revoke(&mut conn, app.tenant_id, token_id).await.expect("query").expect("token");
    assert!(revoked.revoked_at.is_some());
    tokio::time::sleep(casefile::auth::cache::LIFETIME).await;

    let (status, code, _) = status_and_code(&app, Some(&bearer)).await;
    assert_eq!((status, code), (401, json!("UNAUTHENTICATED")));
    assert_eq!(status_and_code(&app, Some(&format!("Bearer {}", app.admin_token))).await.0, 200);
}

#[tokio::test]
async fn a_token_is_revoked_only_within_its_tenant() {
    let app = TestApp::new().await;
    let (token_id, _) = app.admin_token_expiring(Utc::now() + Duration::days(1)).await;
    let other = app.create_tenant("Other", &[]).await;
    let mut conn = app.conn().await;
    assert!(tokens::revoke(&mut conn, other, token_id).await.expect("query").is_none());
}

#[tokio::test]
async fn an_expired_token_is_unauthenticated() {
    let app = TestApp::new().await;
    let (_, secret) = app.admin_token_expiring(Utc::now() - Duration::seconds(1)).await;
    let (status, code, _) = status_and_code(&app, Some(&format!("Bearer {secret}"))).await;
    assert_eq!((status, code), (401, json!("UNAUTHENTICATED")));
}

#[tokio::test]
async fn tokens_are_stored_only_as_hashes_and_record_their_last_use() {
    use casefile::db::schema::api_tokens;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;

    let app = TestApp::new().await;
    app.query_ok(VIEWER).await;
    let mut conn = app.conn().await;
    let rows: Vec<(Vec<u8>, Option<chrono::DateTime<Utc>>)> = api_tokens::table
        .select((api_tokens::token_hash, api_tokens::last_used_at))
        .load(&mut conn)
        .await
        .expect("tokens");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, tokens::hash(&app.admin_token));
    assert!(!String::from_utf8_lossy(&rows[0].0).contains(&app.admin_token));
    assert!(rows[0].1.is_some(), "last use recorded");
}

#[tokio::test]
async fn an_ingest_token_may_ask_who_it_is_but_not_read_the_tenant() {
    let app = TestApp::new().await;
    let (_, token) = app.create_user(app.tenant_id, casefile::models::users::Role::Ingest).await;
    let (status, body) = app.graphql(&token, "{ viewer { role } }", json!({})).await;
    assert_eq!((status, body["data"]["viewer"]["role"].clone()), (200, json!("INGEST")));
    let (_, body) = app.graphql(&token, "{ tenant { name } }", json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
}

#[tokio::test]
async fn a_token_revoked_through_the_api_is_refused_at_once_on_this_server() {
    use casefile::graphql::ids::{self, Kind};

    let app = TestApp::new().await;
    let (token_id, secret) = app.admin_token_expiring(Utc::now() + Duration::days(1)).await;
    let bearer = format!("Bearer {secret}");
    // Seen once: the token cache now holds it.
    assert_eq!(status_and_code(&app, Some(&bearer)).await.0, 200);

    let id = ids::encode(Kind::ApiToken, token_id.0).to_string();
    let body =
        app.mutate(&app.admin_token, "revokeApiToken", json!({ "tokenId": id }), "tokenId").await;
    assert_eq!(body["data"]["revokeApiToken"]["tokenId"], json!(id), "{body}");

    let (status, code, _) = status_and_code(&app, Some(&bearer)).await;
    assert_eq!((status, code), (401, json!("UNAUTHENTICATED")));
}

#[tokio::test]
async fn a_revocation_made_elsewhere_takes_effect_within_the_caches_lifetime() {
    use casefile::auth::cache::LIFETIME;

    let app = TestApp::new().await;
    let (token_id, secret) = app.admin_token_expiring(Utc::now() + Duration::days(1)).await;
    let bearer = format!("Bearer {secret}");
    assert_eq!(status_and_code(&app, Some(&bearer)).await.0, 200);
    let revoked_at = std::time::Instant::now();
    let mut conn = app.conn().await;
    tokens::revoke(&mut conn, app.tenant_id, token_id).await.expect("query").expect("token");
    // Until the cached entry ages out the token may still answer; after it, never.
    loop {
        let (status, code, _) = status_and_code(&app, Some(&bearer)).await;
        if status == 401 {
            assert_eq!(code, json!("UNAUTHENTICATED"));
            break;
        }
        assert_eq!(status, 200);
        assert!(revoked_at.elapsed() < LIFETIME, "still served {:?} after", revoked_at.elapsed());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(LIFETIME <= std::time::Duration::from_secs(1));
}

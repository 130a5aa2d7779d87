//! GraphQL over HTTP: methods, media types, status codes, limits, error codes.

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::common::TestApp;

const GQL: &str = "application/graphql-response+json";

impl TestApp {
    fn post_raw(&self) -> reqwest::RequestBuilder {
        self.http.post(self.url("/graphql")).bearer_auth(&self.admin_token)
    }

    fn get_raw(&self, params: &[(&str, &str)]) -> reqwest::RequestBuilder {
        self.http.get(self.url("/graphql")).bearer_auth(&self.admin_token).query(params)
    }
}

async fn parts(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let content_type =
        response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, content_type, body)
}

/// POSTs `body` as JSON with an optional `Accept`; returns status, content type and body.
async fn post_json(app: &TestApp, accept: Option<&str>, body: &Value) -> (u16, String, Value) {
    let mut request = app.post_raw().json(body);
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    parts(request.send().await.expect("request")).await
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn get_runs_queries_with_url_encoded_variables() {
    let app = TestApp::new().await;
    let response = app
        .get_raw(&[
            ("query", "query Q($name: String!) { __type(name: $name) { name } viewer { email } }"),
            ("variables", r#"{"name":"User"}"#),
        ])
        .send()
        .await
        .expect("request");
    let (status, content_type, body) = parts(response).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/json; charset=utf-8");
    assert_eq!(
        body["data"],
        json!({ "__type": { "name": "User" }, "viewer": { "email": "admin@localhost" } })
    );
}

#[tokio::test]
async fn a_mutation_by_get_is_405_with_allow_post() {
    let app = TestApp::new().await;
    for query in
        ["mutation { __typename }", "mutation M { __typename }", "subscription { __typename }"]
    {
        let response =
            app.get_raw(&[("query", query)]).header(ACCEPT, GQL).send().await.expect("request");
        assert_eq!(response.status().as_u16(), 405, "{query}");
        assert_eq!(response.headers().get("allow").and_then(|v| v.to_str().ok()), Some("POST"));
    }
    // The operation named by operationName decides.
    let response = app
        .get_raw(&[
            ("query", "query A { __typename } mutation B { __typename }"),
            ("operationName", "B"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 405);
}

#[tokio::test]
async fn the_response_media_type_follows_accept() {
    let app = TestApp::new().await;
    let cases = [
        (None, "application/json; charset=utf-8"),
        (Some("*/*"), "application/json; charset=utf-8"),
        (Some("application/json"), "application/json; charset=utf-8"),
        (Some(GQL), "application/graphql-response+json; charset=utf-8"),
        (
            Some("application/graphql-response+json, application/json;q=0.9"),
            "application/graphql-response+json; charset=utf-8",
        ),
    ];
    for (accept, expected) in cases {
        let (status, content_type, body) =
            post_json(&app, accept, &json!({ "query": "{ __typename }" })).await;
        assert_eq!((status, content_type.as_str()), (200, expected), "accept {accept:?}");
        assert_eq!(body["data"]["__typename"], "Query");
    }
    let (status, _, _) =
        post_json(&app, Some("text/html"), &json!({ "query": "{ __typename }" })).await;
    assert_eq!(status, 406);
}

#[tokio::test]
async fn document_errors_are_400_for_graphql_response_json_and_200_for_json() {
    let app = TestApp::new().await;
    let cases = [("{", "GRAPHQL_PARSE_FAILED"), ("{ notAField }", "GRAPHQL_VALIDATION_FAILED")];
    for (query, expected_code) in cases {
        let (status, _, body) = post_json(&app, Some(GQL), &json!({ "query": query })).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(code(&body), expected_code);
        assert!(body.get("data").is_none(), "no data entry on a request error: {body}");

        let (status, _, body) =
            post_json(&app, Some("application/json"), &json!({ "query": query })).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(code(&body), expected_code);
    }
}

#[tokio::test]
async fn variable_coercion_failure_is_a_request_error() {
    let app = TestApp::new().await;
    let body = json!({ "query": "query Q($id: ID!) { node(id: $id) { id } }", "variables": { "id": null } });
    let (status, _, response) = post_json(&app, Some(GQL), &body).await;
    assert_eq!(status, 400);
    assert!(response.get("data").is_none());
    let (status, _, _) = post_json(&app, None, &body).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn text_plain_form_and_multipart_bodies_are_never_executed() {
    let app = TestApp::new().await;
    let query = r#"{"query":"{ viewer { email } }"}"#;
    for content_type in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/json; charset=latin1"),
        None,
    ] {
        let mut request = app.post_raw().body(query);
        if let Some(ct) = content_type {
            request = request.header(CONTENT_TYPE, ct);
        }
        let (status, _, body) = parts(request.send().await.expect("request")).await;
        assert_eq!(status, 415, "content type {content_type:?}");
        assert!(body.get("data").is_none());
    }
}

#[tokio::test]
async fn malformed_bodies_are_400() {
    let app = TestApp::new().await;
    let cases: [&str; 9] = [
        "",
        "{not json",
        "42",
        "[]",
        r#"{"variables":{}}"#,
        r#"{"query":1}"#,
        r#"{"query":"{ __typename }","variables":"{}"}"#,
        r#"{"query":"{ __typename }","operationName":false}"#,
        r#"{"query":"{ __typename }","extensions":["x"]}"#,
    ];
    for body in cases {
        let response = app
            .post_raw()
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let (status, _, response) = parts(response).await;
        assert_eq!(status, 400, "body {body:?}");
        assert_eq!(code(&response), "BAD_REQUEST", "body {body:?}");
    }
}

#[tokio::test]
async fn batches_run_up_to_ten_operations() {
    let app = TestApp::new().await;
    let ten: Vec<Value> = (0..10).map(|_| json!({ "query": "{ viewer { email } }" })).collect();
    let (status, _, body) = parts(app.post_raw().json(&ten).send().await.expect("request")).await;
    assert_eq!(status, 200);
    let results = body.as_array().expect("an array of results");
    assert_eq!(results.len(), 10);
    assert!(results.iter().all(|r| r["data"]["viewer"]["email"] == "admin@localhost"));

    let eleven: Vec<Value> = (0..11).map(|_| json!({ "query": "{ viewer { email } }" })).collect();
    let (status, _, body) =
        parts(app.post_raw().json(&eleven).send().await.expect("request")).await;
    assert_eq!(status, 400);
    assert_eq!(code(&body), "BATCH_TOO_LARGE");
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_413() {
    let app = TestApp::new().await;
    let padding = " ".repeat(1024 * 1024);
    let body = format!(r#"{{"query":"{{ __typename }}"{padding}}}"#);
    let response = app
        .post_raw()
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 413);

    // Also without a Content-Length (chunked).
    let chunks =
        futures_util::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])));
    let response = app
        .post_raw()
        .header(CONTENT_TYPE, "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 413);
}

#[tokio::test]
async fn other_methods_are_405() {
    let app = TestApp::new().await;
    let response = app
        .http
        .put(app.url("/graphql"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 405);
}

#[tokio::test]
async fn an_internal_error_shows_only_its_code_and_request_id() {
    use diesel_async::RunQueryDsl;
    let app = TestApp::new().await;
    // Break the database under the server: the tenant query now fails inside PostgreSQL.
    let mut conn = app.conn().await;
    diesel::sql_query("ALTER TABLE tenants RENAME COLUMN name TO renamed")
        .execute(&mut conn)
        .await
        .expect("alter");
    let response = app
        .post_raw()
        .json(&json!({ "query": "{ tenant { name } }" }))
        .send()
        .await
        .expect("request");
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("x-request-id")
        .to_owned();
    let (status, _, body) = parts(response).await;
    assert_eq!(status, 200);
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "INTERNAL");
    assert_eq!(error["extensions"]["requestId"], request_id.as_str());
    assert_eq!(error["message"], "internal error");
    let text = body.to_string().to_lowercase();
    for leak in ["tenants", "select", "renamed", "does not exist", "diesel"] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }
}

#[tokio::test]
async fn introspection_as_graphiql_sends_it_passes_the_limits() {
    let app = TestApp::new().await;
    // The shape GraphiQL sends: nine levels of ofType under __schema.types.
    let type_ref = "kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }";
    let query = format!(
        "query IntrospectionQuery {{ __schema {{ queryType {{ name }} mutationType {{ name }} subscriptionType {{ name }} \
         types {{ kind name description fields(includeDeprecated: true) {{ name description args {{ name description type {{ {type_ref} }} defaultValue }} \
         type {{ {type_ref} }} isDeprecated deprecationReason }} inputFields {{ name type {{ {type_ref} }} defaultValue }} \
         interfaces {{ {type_ref} }} enumValues(includeDeprecated: true) {{ name isDeprecated }} possibleTypes {{ {type_ref} }} }} \
         directives {{ name locations args {{ name type {{ {type_ref} }} }} }} }} }}"
    );
    let data = app.query_ok(&query).await;
    assert!(
        data["__schema"]["types"].as_array().is_some_and(|t| t.iter().any(|t| t["name"] == "User"))
    );
}

#[tokio::test]
async fn too_deep_or_too_complex_queries_are_refused_with_query_too_complex() {
    let limits = casefile::config::Limits { max_depth: 3, max_complexity: 4, ..Default::default() };
    let app = TestApp::with_limits(limits).await;
    let deep = "{ __schema { types { fields { type { name } } } } }";
    let (_, body) = app.graphql(&app.admin_token, deep, json!({})).await;
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX", "{body}");
    let wide = "{ a: viewer { email } b: viewer { email } c: viewer { email } }";
    let (_, body) = app.graphql(&app.admin_token, wide, json!({})).await;
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX", "{body}");
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    use diesel_async::RunQueryDsl;
    let app = TestApp::new().await;
    let health = app.http.get(app.url("/healthz")).send().await.expect("request");
    assert_eq!(health.status().as_u16(), 200);
    let ready = app.http.get(app.url("/readyz")).send().await.expect("request");
    assert_eq!(ready.status().as_u16(), 200);

    app.query_ok("{ viewer { email } }").await;
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("text");
    for needle in [
        "casefile_graphql_requests_total{operation=\"query\",outcome=\"ok\"} 1",
        "casefile_graphql_request_duration_seconds_bucket",
        "casefile_db_pool_connections{state=\"in_use\"}",
        "casefile_db_pool_connections{state=\"waiting\"}",
        "casefile_websocket_connections",
    ] {
        assert!(metrics.contains(needle), "{needle} missing from:\n{metrics}");
    }

    // Without the migrations table the database is not ready.
    let mut conn = app.conn().await;
    diesel::sql_query("ALTER TABLE __diesel_schema_migrations RENAME TO gone")
        .execute(&mut conn)
        .await
        .expect("rename");
    let ready = app.http.get(app.url("/readyz")).send().await.expect("request");
    assert_eq!(ready.status().as_u16(), 503);
}

#[tokio::test]
async fn responses_carry_a_request_id_and_are_neither_sniffed_nor_cached() {
    let app = TestApp::new().await;
    let response =
        app.post_raw().json(&json!({ "query": "{ __typename }" })).send().await.expect("request");
    let header =
        |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(header("cache-control").as_deref(), Some("no-store"));
    let id = header("x-request-id").expect("x-request-id");
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
}

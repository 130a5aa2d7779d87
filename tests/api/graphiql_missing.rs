//! A build made without npm (`CASEFILE_NPM=none cargo test`, see `build.rs`): GraphiQL is
//! left out, `GET /` says how to get it, and the API works the same.

use crate::common::TestApp;
use casefile::http::graphiql::{EMBEDS_GRAPHIQL, MISSING_PAGE};

#[tokio::test]
async fn get_slash_answers_the_page_that_says_how_to_get_graphiql() {
    assert!(!EMBEDS_GRAPHIQL, "this test is compiled into builds without GraphiQL only");
    let app = TestApp::new().await;
    let page = app.http.get(app.url("/")).send().await.expect("page");
    assert_eq!(page.status().as_u16(), 200);
    let content_type = page.headers().get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("text/html; charset=utf-8"));
    let html = page.text().await.expect("html");
    assert_eq!(html, MISSING_PAGE);
    assert!(html.contains("npm was not found"), "{html}");
    let asset = app.http.get(app.url("/assets/graphiql.min.js")).send().await.expect("asset");
    assert_eq!(asset.status().as_u16(), 404, "no GraphiQL file is served");
    let data = app.query_ok("{ viewer { email } }").await;
    assert_eq!(data["viewer"]["email"], "admin@localhost", "the API works the same");
}

//! GraphiQL on `GET /`: every asset it loads is served by casefile itself.

use crate::common::TestApp;

#[tokio::test]
async fn graphiql_loads_only_assets_casefile_serves() {
    let app = TestApp::new().await;
    let page = app.http.get(app.url("/")).send().await.expect("page");
    assert_eq!(page.status().as_u16(), 200);
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("a CSP")
        .to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.expect("html");
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"),
        "external URL in the page"
    );

    let sources: Vec<&str> = html
        .split(['"', '\''])
        .filter(|part| part.starts_with("assets/") || part.starts_with("/assets/"))
        .collect();
    assert!(sources.len() >= 7, "the page links its scripts and styles: {sources:?}");
    for source in sources {
        let path = if source.starts_with('/') { source.to_owned() } else { format!("/{source}") };
        let response = app.http.get(app.url(&path)).send().await.expect("asset");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert!(
            content_type.starts_with("text/javascript") || content_type.starts_with("text/css"),
            "{path}: {content_type}"
        );
        let body = response.bytes().await.expect("body");
        assert!(body.len() > 100, "{path} is empty");
    }
    let missing = app.http.get(app.url("/assets/nope.js")).send().await.expect("request");
    assert_eq!(missing.status().as_u16(), 404);
}

#[tokio::test]
async fn large_assets_are_sent_compressed_when_the_client_accepts_gzip() {
    let app = TestApp::new().await;
    let plain = app.http.get(app.url("/assets/graphiql.min.js")).send().await.expect("asset");
    let plain_len = plain.bytes().await.expect("body").len();
    let gzipped = app
        .http
        .get(app.url("/assets/graphiql.min.js"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("asset");
    assert_eq!(
        gzipped.headers().get("content-encoding").and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    let gzipped_len = gzipped.bytes().await.expect("body").len();
    assert!(gzipped_len * 3 < plain_len, "gzip {gzipped_len} vs plain {plain_len}");
}

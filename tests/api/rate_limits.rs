//! Abuse limits: requests per token, failed authentications per client address, the
//! WebSocket caps, the client address behind trusted proxies, and CORS.

use std::time::Duration;

use casefile::config::AbuseLimits;
use casefile::models::users::Role;
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::TestApp;
use crate::common::fixtures::error_code;
use crate::common::ws;

const VIEWER: &str = "{ viewer { id } }";

/// A token that names no token of casefile.
const UNKNOWN_TOKEN: &str = "cf_this_token_does_not_exist";

async fn app_with(abuse: AbuseLimits) -> TestApp {
    TestApp::with_abuse_limits(abuse).await
}

/// A POST of `{ viewer { id } }`, from `forwarded_for` when given (an `X-Forwarded-For`).
async fn post(
    app: &TestApp,
    token: Option<&str>,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = app.http.post(app.url("/graphql")).json(&json!({ "query": VIEWER }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.expect("request")
}

/// The `Retry-After` of a response, checked to be whole seconds, at least 1.
fn retry_after(response: &reqwest::Response) -> u64 {
    let value = response.headers().get("retry-after").expect("a Retry-After header");
    let seconds: u64 = value.to_str().expect("text").parse().expect("whole seconds");
    assert!(seconds >= 1, "{seconds}");
    seconds
}

/// Asserts a 429 answer: `Retry-After` and a `RATE_LIMITED` body that agrees with it.
async fn assert_rate_limited(response: reqwest::Response, most_seconds: u64) -> Value {
    assert_eq!(response.status(), 429);
    let seconds = retry_after(&response);
    assert!(seconds <= most_seconds, "Retry-After {seconds} s");
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(error_code(&body), Some("RATE_LIMITED"), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["retryAfter"], json!(seconds), "{body}");
    body
}

#[tokio::test]
async fn the_sixth_request_of_a_token_in_a_minute_answers_429_and_other_tokens_go_on() {
    let app = app_with(AbuseLimits { rate_limit_per_minute: 5, ..Default::default() }).await;
    for n in 1..=5 {
        let response = post(&app, Some(&app.admin_token), None).await;
        assert_eq!(response.status(), 200, "request {n}");
    }
    // 5 a minute: the next one is allowed 12 s after the first.
    assert_rate_limited(post(&app, Some(&app.admin_token), None).await, 12).await;

    let (_, other) = app.create_user(app.tenant_id, Role::Analyst).await;
    let response = post(&app, Some(&other), None).await;
    assert_eq!(response.status(), 200, "another token has its own allowance");
}

#[tokio::test]
async fn the_rest_routes_count_against_the_token_too() {
    let app = app_with(AbuseLimits { rate_limit_per_minute: 5, ..Default::default() }).await;
    let token = app.admin_token.clone();
    for _ in 0..3 {
        assert_eq!(post(&app, Some(&token), None).await.status(), 200);
    }
    let export = || app.http.get(app.url("/cases/999/export")).bearer_auth(&token).send();
    assert_eq!(export().await.expect("export").status(), 404, "counted, then not found");
    let audit = app.http.get(app.url("/audit/export")).bearer_auth(&token).send();
    assert_eq!(audit.await.expect("audit export").status(), 200);
    assert_rate_limited(export().await.expect("export"), 12).await;
    let ingest = app
        .http
        .post(app.url("/ingest/detections"))
        .bearer_auth(&token)
        .header("content-type", "application/x-ndjson")
        .body("{}\n")
        .send();
    assert_rate_limited(ingest.await.expect("ingest"), 12).await;
}

#[tokio::test]
async fn a_limit_of_0_is_off() {
    let abuse =
        AbuseLimits { rate_limit_per_minute: 0, auth_failures_per_minute: 0, ..Default::default() };
    let app = app_with(abuse).await;
    for _ in 0..40 {
        assert_eq!(post(&app, Some(UNKNOWN_TOKEN), None).await.status(), 401);
    }
    for _ in 0..40 {
        assert_eq!(post(&app, Some(&app.admin_token), None).await.status(), 200);
    }
}

/// Trusts the loopback peer of the tests, so that `X-Forwarded-For` names the client.
fn behind_loopback_proxy(abuse: AbuseLimits) -> AbuseLimits {
    AbuseLimits { trusted_proxies: "127.0.0.0/8,::1".parse().expect("proxies"), ..abuse }
}

#[tokio::test]
async fn failed_authentications_lock_their_address_out_even_with_a_good_token() {
    let abuse = AbuseLimits { auth_failures_per_minute: 5, ..Default::default() };
    let app = app_with(behind_loopback_proxy(abuse)).await;
    let (guesser, neighbour) = (Some("203.0.113.5"), Some("203.0.113.6"));
    // Missing, unknown and malformed tokens all count.
    for token in [None, Some(UNKNOWN_TOKEN), Some("nonsense"), None, Some(UNKNOWN_TOKEN)] {
        let response = post(&app, token, guesser).await;
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.expect("json");
        assert_eq!(error_code(&body), Some("UNAUTHENTICATED"), "{body}");
    }
    // The sixth failure is over: 429, and so is the good token from that address.
    assert_rate_limited(post(&app, Some(UNKNOWN_TOKEN), guesser).await, 12).await;
    assert_rate_limited(post(&app, Some(&app.admin_token), guesser).await, 12).await;
    let audit = app
        .http
        .get(app.url("/audit/export"))
        .bearer_auth(&app.admin_token)
        .header("x-forwarded-for", "203.0.113.5")
        .send();
    assert_rate_limited(audit.await.expect("audit export"), 12).await;
    let mut socket = connect_from(&app, "203.0.113.5").await;
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", app.admin_token) } });
    ws::send(&mut socket, init).await;
    assert_eq!(ws::next(&mut socket).await, Err(4429), "the socket of a locked-out address");

    // Another address is not affected.
    assert_eq!(post(&app, Some(&app.admin_token), neighbour).await.status(), 200);
}

/// A `graphql-transport-ws` socket whose upgrade says `X-Forwarded-For: address`.
async fn connect_from(app: &TestApp, address: &str) -> ws::Socket {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = app.ws_url().into_client_request().expect("request");
    let headers = request.headers_mut();
    headers.insert("sec-websocket-protocol", "graphql-transport-ws".parse().expect("header"));
    headers.insert("x-forwarded-for", address.parse().expect("header"));
    tokio_tungstenite::connect_async(request).await.expect("connect").0
}

#[tokio::test]
async fn a_forged_forwarded_for_from_an_untrusted_peer_does_not_spread_the_failures() {
    let app = app_with(AbuseLimits { auth_failures_per_minute: 3, ..Default::default() }).await;
    for n in 0..3 {
        let forged = format!("198.51.100.{n}");
        let response = post(&app, Some(UNKNOWN_TOKEN), Some(&forged)).await;
        assert_eq!(response.status(), 401);
    }
    // All counted on the peer, whatever the header said: the fourth is over.
    assert_rate_limited(post(&app, Some(UNKNOWN_TOKEN), Some("198.51.100.3")).await, 20).await;
    let response = post(&app, Some(&app.admin_token), Some("198.51.100.200")).await;
    assert_rate_limited(response, 20).await;
}

/// The `clientAddress` the change record kept for the case created with this header.
async fn recorded_address(app: &TestApp, forwarded_for: &str) -> Option<String> {
    let query = "mutation($input: CreateCaseInput!) { createCase(input: $input) { case { id } } }";
    let body = json!({ "query": query, "variables": { "input": { "name": forwarded_for } } });
    let response = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&app.admin_token)
        .header("x-forwarded-for", forwarded_for)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert!(body.get("errors").is_none(), "{body}");
    let events = app.events(app.tenant_id).await;
    let created = events.iter().rev().find(|e| e.action == "case.created").expect("an event");
    created.client_address.clone()
}

#[tokio::test]
async fn the_change_record_keeps_the_forwarded_client_only_from_a_trusted_proxy() {
    let untrusted = app_with(AbuseLimits::default()).await;
    assert_eq!(
        recorded_address(&untrusted, "198.51.100.7").await.as_deref(),
        Some("127.0.0.1"),
        "a forged header from an untrusted peer is ignored"
    );

    let trusted = app_with(behind_loopback_proxy(AbuseLimits::default())).await;
    assert_eq!(recorded_address(&trusted, "198.51.100.7").await.as_deref(), Some("198.51.100.7"));
    // Walked from the right past the trusted proxies; the client's own forgery on the left
    // is not read.
    assert_eq!(
        recorded_address(&trusted, "192.0.2.66, 198.51.100.8, 127.0.0.2").await.as_deref(),
        Some("198.51.100.8")
    );
    assert_eq!(
        recorded_address(&trusted, "198.51.100.9, not-an-address").await.as_deref(),
        Some("127.0.0.1"),
        "a malformed header falls back to the peer"
    );
}

#[tokio::test]
async fn websocket_operations_count_against_the_token() {
    let app = app_with(AbuseLimits { rate_limit_per_minute: 5, ..Default::default() }).await;
    // connection_init counts one, each operation one more.
    let mut socket = ws::open(&app, &app.admin_token).await;
    for n in 0..4 {
        let payload = ws::operation(&mut socket, &n.to_string(), VIEWER, json!({})).await;
        assert!(payload.get("errors").is_none(), "{payload}");
    }
    let payload = ws::operation(&mut socket, "over", VIEWER, json!({})).await;
    assert_eq!(error_code(&payload), Some("RATE_LIMITED"), "{payload}");
    let wait = payload["errors"][0]["extensions"]["retryAfter"].as_u64().expect("retryAfter");
    assert!((1..=12).contains(&wait), "{wait}");
    // The socket stays open: a ping is still answered.
    ws::send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(ws::next(&mut socket).await, Ok(json!({ "type": "pong" })));
    assert_eq!(post(&app, Some(&app.admin_token), None).await.status(), 429, "the same count");
}

#[tokio::test]
async fn a_websocket_over_its_operations_a_second_answers_rate_limited_and_stays_open() {
    let app = app_with(AbuseLimits { ws_operations_per_second: 1, ..Default::default() }).await;
    let mut socket = ws::open(&app, &app.admin_token).await;
    for id in ["a", "b", "c"] {
        let subscribe = json!({ "id": id, "type": "subscribe", "payload": { "query": VIEWER } });
        ws::send(&mut socket, subscribe).await;
    }
    // The results may come in any order: the operations run side by side.
    let (mut results, mut completed) = (std::collections::BTreeMap::new(), 0);
    while results.len() < 3 || completed < 3 {
        let message = ws::next(&mut socket).await.expect("a message");
        match message["type"].as_str() {
            Some("next") => {
                let code = error_code(&message["payload"]).map(str::to_owned);
                results.insert(message["id"].as_str().expect("an id").to_owned(), code);
            }
            Some("complete") => completed += 1,
            _ => panic!("unexpected: {message}"),
        }
    }
    let limited = Some("RATE_LIMITED".to_owned());
    let expected =
        [("a".to_owned(), None), ("b".to_owned(), limited.clone()), ("c".to_owned(), limited)];
    assert_eq!(results, expected.into_iter().collect());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let payload = ws::operation(&mut socket, "later", VIEWER, json!({})).await;
    assert!(payload.get("errors").is_none(), "a second later one is allowed: {payload}");
}

#[tokio::test]
async fn a_token_holds_at_most_its_cap_of_open_websockets() {
    let app = app_with(AbuseLimits { ws_max_connections_per_token: 2, ..Default::default() }).await;
    let first = ws::open(&app, &app.admin_token).await;
    let _second = ws::open(&app, &app.admin_token).await;
    let mut third = ws::connect(&app, "graphql-transport-ws").await;
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", app.admin_token) } });
    ws::send(&mut third, init.clone()).await;
    assert_eq!(ws::next(&mut third).await, Err(4429));

    let (_, other) = app.create_user(app.tenant_id, Role::Analyst).await;
    let _theirs = ws::open(&app, &other).await;

    // Closing one frees its slot (once the server has seen it go).
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut socket = ws::connect(&app, "graphql-transport-ws").await;
        ws::send(&mut socket, init.clone()).await;
        match ws::next(&mut socket).await {
            Ok(ack) => {
                assert_eq!(ack, json!({ "type": "connection_ack" }));
                break;
            }
            Err(code) => assert_eq!(code, 4429),
        }
        assert!(std::time::Instant::now() < deadline, "the slot was not freed in 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_websocket_message_over_the_size_limit_closes_the_socket_with_1009() {
    let app =
        app_with(AbuseLimits { ws_max_message_bytes: Some(1024), ..Default::default() }).await;
    let mut socket = ws::open(&app, &app.admin_token).await;
    let padding = " ".repeat(900);
    let under =
        format!(r#"{{"id":"u","type":"subscribe","payload":{{"query":"{VIEWER}{padding}"}}}}"#);
    assert!(under.len() < 1024);
    socket.send(Message::Text(under.into())).await.expect("send");
    let message = ws::next(&mut socket).await.expect("a result");
    assert_eq!(message["type"], "next", "{message}");

    let padding = " ".repeat(2048);
    let over =
        format!(r#"{{"id":"o","type":"subscribe","payload":{{"query":"{VIEWER}{padding}"}}}}"#);
    socket.send(Message::Text(over.into())).await.expect("send");
    loop {
        match ws::next(&mut socket).await {
            Err(code) => {
                assert_eq!(code, 1009);
                break;
            }
            // The `complete` of the first operation may come first.
            Ok(message) => assert_eq!(message["type"], "complete", "{message}"),
        }
    }

    // A connection_init over the limit closes the socket the same way.
    let mut socket = ws::connect(&app, "graphql-transport-ws").await;
    let init = json!({ "type": "connection_init", "payload": { "padding": " ".repeat(2048) } });
    ws::send(&mut socket, init).await;
    assert_eq!(ws::next(&mut socket).await, Err(1009));
}

/// A preflight of a POST with a token from `origin`.
async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .await
        .expect("preflight")
}

fn cors_headers(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .keys()
        .map(|name| name.as_str().to_owned())
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn a_listed_origin_is_allowed_and_any_other_gets_no_cors_header() {
    let origins = "https://soc.example.com,http://localhost:5173".parse().expect("origins");
    let app = app_with(AbuseLimits { cors_origins: origins, ..Default::default() }).await;

    let allowed = preflight(&app, "https://soc.example.com").await;
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(header(&allowed, "access-control-allow-origin"), Some("https://soc.example.com"));
    let methods = header(&allowed, "access-control-allow-methods").expect("methods");
    for method in ["GET", "POST", "PUT", "OPTIONS"] {
        assert!(methods.contains(method), "{methods}");
    }
    let headers = header(&allowed, "access-control-allow-headers").expect("headers");
    for name in ["authorization", "content-type", "accept"] {
        assert!(headers.contains(name), "{headers}");
    }

    let refused = preflight(&app, "https://evil.example.net").await;
    assert_eq!(cors_headers(&refused), Vec::<String>::new());

    // The request itself: the origin allowed, the request id and Retry-After readable.
    let response = app
        .http
        .post(app.url("/graphql"))
        .header("origin", "http://localhost:5173")
        .bearer_auth(&app.admin_token)
        .json(&json!({ "query": VIEWER }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "access-control-allow-origin"), Some("http://localhost:5173"));
    let exposed = header(&response, "access-control-expose-headers").expect("exposed");
    assert!(exposed.contains("x-request-id") && exposed.contains("retry-after"), "{exposed}");
}

#[tokio::test]
async fn without_origins_there_is_no_cors_header_at_all() {
    let app = app_with(AbuseLimits::default()).await;
    let response = preflight(&app, "https://soc.example.com").await;
    assert_eq!(cors_headers(&response), Vec::<String>::new());
}

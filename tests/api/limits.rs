//! Query limits: a cost that counts pages, depth, aliases, root fields and directives, all
//! refused before anything runs with `QUERY_TOO_COMPLEX`, the limit and the measured
//! value; introspection and field suggestions turned off together; and the queries
//! clients really send (introspection, the README's, a case page) within the limits.

use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::{detection, error_code};
use casefile::config::Limits;

const GQL: &str = "application/graphql-response+json";

/// The query of issue 7: three nested pages of 100, a million rows.
const PAGES_IN_PAGES: &str = "{ cases(first: 100) { nodes { detections(first: 100) { nodes { \
     cases(first: 100) { nodes { id } } } } } } }";

/// POSTs one operation asking for `application/graphql-response+json`; returns status,
/// content type and body.
async fn post(app: &TestApp, query: &str, variables: Value) -> (u16, String, Value) {
    let response = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&app.admin_token)
        .header(ACCEPT, GQL)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let content_type =
        response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    (status, content_type, response.json().await.unwrap_or(Value::Null))
}

/// The refusal's `(measure, limit, cost)`, after checking it is a request error coded
/// `QUERY_TOO_COMPLEX` (400, nothing executed: no `data`).
async fn refusal(app: &TestApp, query: &str, variables: Value) -> (String, u64, u64) {
    let (status, content_type, body) = post(app, query, variables).await;
    assert_eq!(error_code(&body), Some("QUERY_TOO_COMPLEX"), "{body}");
    assert_eq!(status, 400, "{body}");
    assert!(content_type.starts_with(GQL), "{content_type}");
    assert!(body.get("data").is_none(), "nothing may run: {body}");
    let extensions = &body["errors"][0]["extensions"];
    let number = |key: &str| extensions[key].as_u64().unwrap_or_else(|| panic!("{key}: {body}"));
    let measure = extensions["measure"].as_str().expect("measure").to_owned();
    (measure, number("limit"), number("cost"))
}

/// A server whose cost limit is 0: it refuses everything and tells each query's cost.
async fn cost_meter() -> TestApp {
    TestApp::with_limits(Limits { max_complexity: 0, ..Limits::default() }).await
}

async fn cost(meter: &TestApp, query: &str, variables: Value) -> u64 {
    let (measure, limit, cost) = refusal(meter, query, variables).await;
    assert_eq!((measure.as_str(), limit), ("COST", 0));
    cost
}

#[tokio::test]
async fn pages_within_pages_multiply_so_the_million_row_query_is_refused() {
    let app = TestApp::new().await;
    // 100 × (1 + 100 × (1 + 1 + 100 × 1) + 1) + 1 + 1
    assert_eq!(refusal(&app, PAGES_IN_PAGES, json!({})).await, ("COST".into(), 25_000, 1_020_202));
}

#[tokio::test]
async fn the_websocket_refuses_the_million_row_query_with_the_same_error() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let app = TestApp::new().await;
    let mut request = app.ws_url().into_client_request().expect("request");
    let protocol = "graphql-transport-ws".parse().expect("header");
    request.headers_mut().insert("sec-websocket-protocol", protocol);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("connect");
    let authorization = format!("Bearer {}", app.admin_token);
    for message in [
        json!({ "type": "connection_init", "payload": { "authorization": authorization } }),
        json!({ "id": "1", "type": "subscribe", "payload": { "query": PAGES_IN_PAGES } }),
    ] {
        socket.send(Message::Text(message.to_string().into())).await.expect("send");
    }
    let mut replies = Vec::new();
    while replies.len() < 2 {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next()).await;
        if let Ok(Some(Ok(Message::Text(text)))) = frame {
            replies.push(serde_json::from_str::<Value>(&text).expect("json"));
        } else {
            panic!("no reply: {frame:?}");
        }
    }
    assert_eq!(replies[0]["type"], "connection_ack");
    // As `next` with the errors, or as `error` (either is the protocol's); nothing ran.
    let payload = &replies[1]["payload"];
    let errors = if payload.is_array() { payload } else { &payload["errors"] };
    assert!(payload["data"].is_null(), "{}", replies[1]);
    let extensions = &errors[0]["extensions"];
    assert_eq!(
        (&extensions["code"], &extensions["limit"], &extensions["cost"]),
        (&json!("QUERY_TOO_COMPLEX"), &json!(25_000), &json!(1_020_202)),
        "{}",
        replies[1]
    );
}

#[tokio::test]
async fn the_cost_of_small_queries_is_pinned() {
    let meter = cost_meter().await;
    for (query, expected) in [
        // Every field costs 1.
        ("{ viewer { email role } }", 3),
        // A page's nodes count once per item: 50 when no size is asked.
        ("{ cases { nodes { number name } } }", 1 + 1 + 50 * 2),
        // Edges too; totalCount and pageInfo once.
        (
            "{ cases(last: 10) { totalCount pageInfo { hasNextPage } edges { cursor node { number } } } }",
            1 + 1 + 2 + 1 + 10 * (1 + 2),
        ),
        // Other lists of objects count 10 items; a list of scalars is one value.
        (
            "{ case(number: 1) { mitreSummary { tacticId techniques { count } } } }",
            1 + 1 + 10 * (1 + 1 + 10),
        ),
        ("{ subject(username: \"a\") { watchlists } }", 2),
        // `nodes(ids:)` counts its ids.
        ("{ nodes(ids: [\"a\", \"b\", \"c\"]) { id } }", 1 + 3),
        // The README's examples.
        ("{ cases(first: 20) { totalCount nodes { number name } } }", 43),
        (
            "{ cases(first: 100) { nodes { number detections { nodes { id ruleName severity riskScore } } } } }",
            20_302,
        ),
        // Introspection counts 1 a field, unmultiplied.
        ("{ __typename __schema { types { name fields { name } } } }", 1 + 1 + 1 + 1 + 1 + 1),
    ] {
        assert_eq!(cost(&meter, query, json!({})).await, expected, "{query}");
    }
}

#[tokio::test]
async fn a_page_size_from_a_variable_costs_like_the_same_literal() {
    let meter = cost_meter().await;
    let literal = "{ cases(first: 100) { nodes { detections(first: 100) { nodes { id } } } } }";
    let expected = 1 + 1 + 100 * (1 + 1 + 100);
    assert_eq!(cost(&meter, literal, json!({})).await, expected);
    let variable =
        "query($n: Int) { cases(first: $n) { nodes { detections(first: $n) { nodes { id } } } } }";
    assert_eq!(cost(&meter, variable, json!({ "n": 100 })).await, expected);
    let default = "query($n: Int = 100) { cases(first: $n) { nodes { detections(last: $n) { nodes { id } } } } }";
    assert_eq!(cost(&meter, default, json!({})).await, expected, "a variable's default");
    assert_eq!(
        cost(&meter, variable, json!({ "n": null })).await,
        1 + 1 + 50 * (1 + 1 + 50),
        "null is no size: 50"
    );
    assert_eq!(
        cost(&meter, variable, json!({ "n": 100_000 })).await,
        expected,
        "no page holds more than 100 (a bigger size is refused when it runs)"
    );
}

#[tokio::test]
async fn a_connection_asked_only_for_its_count_or_page_info_is_not_multiplied() {
    let meter = cost_meter().await;
    let counts = "{ cases(first: 100) { totalCount pageInfo { hasNextPage endCursor } \
         nodes { detections(first: 100) { totalCount } } } }";
    assert_eq!(cost(&meter, counts, json!({})).await, 1 + 1 + 3 + 1 + 100 * (1 + 1));
    let app = TestApp::new().await;
    let data = app.query_ok(counts).await;
    assert_eq!(data["cases"]["totalCount"], 0);
}

#[tokio::test]
async fn fragments_and_inline_fragments_count_where_they_are_spread() {
    let meter = cost_meter().await;
    let inline = "{ cases(first: 20) { nodes { number name } } }";
    let spread = "query { cases(first: 20) { ...Page } } \
         fragment Page on CaseConnection { nodes { ...Row } } fragment Row on Case { number name }";
    let typed = "{ cases(first: 20) { nodes { ... on Case { number } ... { name } } } }";
    let expected = 1 + 1 + 20 * 2;
    for query in [inline, spread, typed] {
        assert_eq!(cost(&meter, query, json!({})).await, expected, "{query}");
    }
    // One fragment spread under two page sizes counts each.
    let twice = "query { a: cases(first: 10) { ...Page } b: cases(first: 30) { ...Page } } \
         fragment Page on CaseConnection { nodes { number } }";
    assert_eq!(cost(&meter, twice, json!({})).await, (1 + 1 + 10) + (1 + 1 + 30));
    // Selections under @skip and @include count whatever the variables say.
    let skipped = "query($s: Boolean!) { viewer { email } cases @skip(if: $s) { nodes { id } } \
         other: cases @include(if: false) { nodes { id } } }";
    assert_eq!(cost(&meter, skipped, json!({ "s": true })).await, 2 + 2 * (1 + 1 + 50));
}

#[tokio::test]
async fn fragments_spread_into_fragments_are_measured_once_and_refused_at_once() {
    let app = TestApp::new().await;
    // Each fragment spreads the next twice: 2^20 fields in a few hundred bytes, which
    // async-graphql's own checks would walk one by one.
    let fan = |on: &str, leaf: &str| {
        let mut fragments = String::new();
        for i in 0..20 {
            fragments.push_str(&format!(
                " fragment F{i} on {on} {{ ...F{} ...F{} }}",
                i + 1,
                i + 1
            ));
        }
        format!("{fragments} fragment F20 on {on} {{ {leaf} }}")
    };
    let started = Instant::now();
    let under_a_field = format!("query {{ viewer {{ ...F0 }} }}{}", fan("User", "email"));
    let (measure, _, cost) = refusal(&app, &under_a_field, json!({})).await;
    assert_eq!((measure.as_str(), cost), ("COST", (1 << 20) + 1));
    let at_the_root = format!("query {{ ...F0 }}{}", fan("Query", "viewer { email }"));
    let (measure, _, fields) = refusal(&app, &at_the_root, json!({})).await;
    assert_eq!((measure.as_str(), fields), ("ROOT_FIELDS", 1 << 20));
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_fragment_that_spreads_itself_is_refused_before_anything_walks_it() {
    let app = TestApp::new().await;
    let query = "query { ...A } fragment A on Query { viewer { email } ...B } \
         fragment B on Query { ...A }";
    let (status, _, body) = post(&app, query, json!({})).await;
    assert_eq!((status, error_code(&body)), (400, Some("GRAPHQL_VALIDATION_FAILED")), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("fragment `A` spreads itself"), "{body}");
    // One that is never spread is left to validation, which refuses it at once.
    let unused = "query { viewer { email } } fragment X on Query { ...X ...X }";
    let started = Instant::now();
    let (status, _, body) = post(&app, unused, json!({})).await;
    assert_eq!((status, error_code(&body)), (400, Some("GRAPHQL_VALIDATION_FAILED")), "{body}");
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn depth_and_directives_are_refused_with_the_same_code_and_numbers() {
    let app = TestApp::new().await;
    // __schema types fields type, then ofType to 16 fields deep.
    let deep = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType { ".repeat(11),
        "} ".repeat(11)
    );
    assert_eq!(refusal(&app, &deep, json!({})).await, ("DEPTH".into(), 15, 16));
    // Directives count over the whole operation: one each on 51 selections of a field.
    let directives =
        format!("{{ viewer @include(if: true) {{ {} }} }}", "email @skip(if: false) ".repeat(50));
    assert_eq!(refusal(&app, &directives, json!({})).await, ("DIRECTIVES".into(), 50, 51));
    let fifty = format!("{{ viewer {{ {} }} }}", "email @include(if: true) ".repeat(50));
    assert_eq!(app.query_ok(&fifty).await["viewer"]["email"], "admin@localhost");
}

#[tokio::test]
async fn aliases_are_counted_as_fragments_expand_and_refused_over_the_limit() {
    let app = TestApp::new().await;
    let aliased = |n: usize| (0..n).map(|i| format!("a{i}: email")).collect::<Vec<_>>().join(" ");
    let thirty = format!("{{ viewer {{ {} }} }}", aliased(30));
    assert_eq!(app.query_ok(&thirty).await["viewer"]["a29"], "admin@localhost");
    let over = format!("{{ viewer {{ {} }} }}", aliased(31));
    assert_eq!(refusal(&app, &over, json!({})).await, ("ALIASES".into(), 30, 31));
    // A fragment of 8 aliases spread under 4 aliased fields: 4 + 4 × 8.
    let fanned = format!(
        "{{ v1: viewer {{ ...F }} v2: viewer {{ ...F }} v3: viewer {{ ...F }} \
         v4: viewer {{ ...F }} }} fragment F on User {{ {} }}",
        aliased(8)
    );
    assert_eq!(refusal(&app, &fanned, json!({})).await, ("ALIASES".into(), 30, 36));
}

#[tokio::test]
async fn root_fields_are_counted_through_fragments_and_refused_over_the_limit() {
    let app = TestApp::new().await;
    let fields = |n: usize| vec!["__typename"; n].join(" ");
    let twenty = format!("{{ {} }}", fields(20));
    assert_eq!(app.query_ok(&twenty).await["__typename"], "Query");
    let over = format!("{{ {} }}", fields(21));
    assert_eq!(refusal(&app, &over, json!({})).await, ("ROOT_FIELDS".into(), 20, 21));
    // Two spreads of a fragment of 11 root fields, one inside an inline fragment.
    let spread =
        format!("{{ ...R ... on Query {{ ...R }} }} fragment R on Query {{ {} }}", fields(11));
    assert_eq!(refusal(&app, &spread, json!({})).await, ("ROOT_FIELDS".into(), 20, 22));
    // Mutations count the same way: 21 createCase under aliases run none of them.
    let creates = (0..21)
        .map(|i| format!("c{i}: createCase(input: {{ name: \"root {i}\" }}) {{ case {{ id }} }}"))
        .collect::<Vec<_>>()
        .join(" ");
    let limits = Limits { max_aliases: 100, ..Limits::default() };
    let roomy = TestApp::with_limits(limits).await;
    let (measure, limit, count) =
        refusal(&roomy, &format!("mutation {{ {creates} }}"), json!({})).await;
    assert_eq!((measure.as_str(), limit, count), ("ROOT_FIELDS", 20, 21));
    let listed = roomy.query_ok("{ cases(first: 5) { totalCount } }").await;
    assert_eq!(listed["cases"]["totalCount"], 0, "nothing may have run: {listed}");
}

#[tokio::test]
async fn introspection_off_refuses_schema_and_type_and_stops_suggesting_fields() {
    let on = TestApp::new().await;
    let (_, _, body) = post(&on, "{ viewr { email } }", json!({})).await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("Did you mean"), "suggestions are on by default: {body}");

    let off = TestApp::with_limits(Limits { introspection: false, ..Limits::default() }).await;
    for query in [
        "{ __schema { types { name } } }",
        "{ __type(name: \"Case\") { fields { name } } }",
        "{ viewer { email } ...I } fragment I on Query { __schema { queryType { name } } }",
    ] {
        let (status, _, body) = post(&off, query, json!({})).await;
        assert_eq!((status, error_code(&body)), (400, Some("GRAPHQL_VALIDATION_FAILED")), "{body}");
        assert!(body.get("data").is_none(), "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("introspection is turned off"), "{body}");
    }
    let (status, _, body) = post(&off, "{ viewr { email } }", json!({})).await;
    assert_eq!((status, error_code(&body)), (400, Some("GRAPHQL_VALIDATION_FAILED")), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(!message.contains("Did you mean") && !message.contains("viewer"), "{body}");
    // `__typename` is not introspection of the schema: clients (Apollo) ask it everywhere.
    let data = off.query_ok("{ __typename viewer { __typename email } }").await;
    assert_eq!(data["viewer"]["__typename"], "User");
}

async fn introspects(app: &TestApp, query: &str) {
    let data = app.query_ok(query).await;
    let types = data["__schema"]["types"].as_array().expect("types");
    assert!(types.iter().any(|t| t["name"] == "CaseConnection"), "{data}");
    let directives = data["__schema"]["directives"].as_array().expect("directives");
    assert!(directives.iter().any(|d| d["name"] == "skip"), "{data}");
}

#[tokio::test]
async fn the_introspection_queries_of_graphiql_apollo_and_codegen_pass() {
    let app = TestApp::new().await;
    introspects(&app, include_str!("limits/introspection_graphiql.graphql")).await;
    introspects(&app, include_str!("limits/introspection_apollo.graphql")).await;
    introspects(&app, include_str!("limits/introspection_codegen.graphql")).await;
}

#[tokio::test]
async fn the_readme_examples_pass() {
    let app = TestApp::new().await;
    let readme = include_str!("../../README.md");
    let block = readme.split("```graphql\n").nth(1).expect("a graphql block");
    let block = block.split("```").next().unwrap_or_default();
    let mut operations: Vec<String> = Vec::new();
    for line in block.lines() {
        match operations.last_mut() {
            Some(operation) if line.starts_with(' ') || line.starts_with('}') => {
                operation.push('\n');
                operation.push_str(line);
            }
            _ => operations.push(line.to_owned()),
        }
    }
    assert_eq!(operations.len(), 3, "{operations:?}");
    for operation in operations {
        let (status, _, body) = post(&app, &operation, json!({})).await;
        assert_eq!(status, 200, "{operation}: {body}");
        assert!(body.get("errors").is_none(), "{operation}: {body}");
    }
}

/// A case page as a front end asks for it: the case, and 100 of its detections with
/// their device, subject and indicators.
const CASE_PAGE: &str = "query($number: Int!) { case(number: $number) { id number name description \
     findings severity status resolution version detectionCount createdAt updatedAt \
     assignee { id displayName email } subject { id username displayName department } \
     riskSummary { critical high medium low informational highest } \
     viewerCanEdit viewerCanResolve \
     detections(first: 100) { totalCount pageInfo { hasNextPage endCursor } nodes { id \
       externalId source ruleName observedAt riskScore severity actor \
       device { hostname ip } subject { id username displayName } \
       riskIndicators { name weight } mitre { tacticId techniqueId techniqueName } } } \
     mitreSummary { tacticId tacticName techniques { techniqueId techniqueName count } } \
     impactedEntities { type name detectionCount } } }";

#[tokio::test]
async fn a_case_page_with_a_hundred_detections_passes() {
    let app = TestApp::new().await;
    let detections = (0..100).map(|i| detection(&format!("page-{i}"), 3)).collect();
    let ids = app.ingest(&app.admin_token, detections).await;
    let case =
        app.create_case(&app.admin_token, json!({ "name": "Big", "detectionIds": ids })).await;
    let (status, _, body) = post(&app, CASE_PAGE, json!({ "number": case["number"] })).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let nodes = body["data"]["case"]["detections"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 100);
}

#[tokio::test]
async fn the_statement_count_queries_cost_what_their_pages_hold() {
    use crate::case_lists::{DETAIL_QUERY, LIST_QUERY, NESTED_QUERY};
    let meter = cost_meter().await;
    let hundred = json!({ "n": 100 });
    let mut costs = Vec::new();
    for query in [LIST_QUERY, NESTED_QUERY, DETAIL_QUERY] {
        costs.push(cost(&meter, query, hundred.clone()).await);
    }
    let page = cost(&meter, CASE_PAGE, json!({ "number": 1 })).await;
    println!(
        "costs: list {}, nested {}, detail {}, case page {page}",
        costs[0], costs[1], costs[2]
    );
    assert_eq!(costs[..3], [1_103, 16_104, 413]);
    assert!(page < 25_000 / 2, "a case page costs {page}");
}

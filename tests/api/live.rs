//! Live subscriptions over the change record: events arrive after commit, on any server,
//! replayed from a cursor without gap or repeat, with access checked; changes to the
//! viewer close its sockets on every server. Waits are generous and print the time taken.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::error_code;
use crate::common::ws::{self, Arrived, Socket};
use casefile::graphql::ids::{self, Kind};
use casefile::models::users::Role;

const WAIT: Duration = Duration::from_secs(30);

const CASE_EVENTS: &str = "subscription($caseId: ID!, $after: String) { caseEvents(caseId: $caseId, after: $after) \
     { cursor kind caseId at changedFields actor { email } message { body author { email } } case { number } } }";

async fn post(app: &TestApp, token: &str, case: &Value, body: &str) {
    let response = app
        .mutate(token, "postMessage", json!({ "caseId": case, "body": body }), "message { id }")
        .await;
    assert!(response.get("errors").is_none(), "postMessage failed: {response}");
}

/// The sequence inside a cursor (opaque to clients; the tests know its form).
fn sequence(cursor: &Value) -> i64 {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.as_str().expect("cursor"))
        .expect("base64");
    let text = String::from_utf8(bytes).expect("utf-8");
    text.split(':').nth(2).expect("sequence").parse().expect("number")
}

async fn subscribe_case(
    server: &casefile::events::EventHub,
    socket: &mut Socket,
    case: &Value,
    after: Option<&Value>,
) {
    let started = server.follows();
    ws::subscribe(socket, "live", CASE_EVENTS, json!({ "caseId": case, "after": after })).await;
    ws::following(server, started + 1).await;
}

fn event(payload: &Value) -> &Value {
    assert!(payload.get("errors").is_none(), "{payload}");
    &payload["data"]["caseEvents"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_message_arrives_as_message_posted_on_both_protocols() {
    let app = TestApp::new().await;
    let case = app.case_named("Live").await;
    let mut modern = ws::open(&app, &app.admin_token).await;
    subscribe_case(&app.events, &mut modern, &case["id"], None).await;

    let mut legacy = ws::connect(&app, "graphql-ws").await;
    ws::send(&mut legacy, json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", app.admin_token) } })).await;
    assert!(
        matches!(ws::arrive(&mut legacy, WAIT).await, Arrived::Other(v) if v["type"] == "connection_ack")
    );
    let started = app.events.follows();
    ws::send(&mut legacy, json!({ "id": "1", "type": "start", "payload": { "query": CASE_EVENTS, "variables": { "caseId": case["id"] } } })).await;
    ws::following(&app.events, started + 1).await;

    let started = Instant::now();
    post(&app, &app.admin_token, &case["id"], "hello, team").await;
    for (name, socket) in [("graphql-transport-ws", &mut modern), ("graphql-ws", &mut legacy)] {
        let payload = ws::next_result(socket, WAIT).await;
        let event = event(&payload);
        println!("{name}: MESSAGE_POSTED after {:?}", started.elapsed());
        assert_eq!(event["kind"], "MESSAGE_POSTED");
        assert_eq!(event["caseId"], case["id"]);
        assert_eq!(event["message"]["body"], "hello, team");
        assert_eq!(event["message"]["author"]["email"], "admin@localhost");
        assert_eq!(event["actor"]["email"], "admin@localhost");
        assert_eq!(event["case"]["number"], case["number"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_share_events_and_a_revoked_token_closes_the_socket_on_both() {
    let app = TestApp::new().await;
    let replica = app.replica().await;
    let case = app.case_named("Replicated").await;
    let (user, token) = app.create_user(app.tenant_id, Role::Analyst).await;
    let mut socket = ws::open_url(&replica.ws_url(), &token).await;
    subscribe_case(&replica.events, &mut socket, &case["id"], None).await;
    assert!(replica.events.is_listening(), "server B holds a LISTEN connection of its own");

    let started = Instant::now();
    post(&app, &app.admin_token, &case["id"], "from the other server").await;
    let payload = ws::next_result(&mut socket, WAIT).await;
    println!("event from server A reached a subscriber on server B in {:?}", started.elapsed());
    assert_eq!(event(&payload)["message"]["body"], "from the other server");

    // Revoke the analyst's token through the first server: the second closes its socket.
    let tokens = app
        .query_ok(&format!(
            "{{ node(id: \"{}\") {{ ... on User {{ apiTokens {{ id }} }} }} }}",
            ids::encode(Kind::User, user.0).0
        ))
        .await;
    let token_id = tokens["node"]["apiTokens"][0]["id"].clone();
    let started = Instant::now();
    let revoked = app
        .mutate(&app.admin_token, "revokeApiToken", json!({ "tokenId": token_id }), "tokenId")
        .await;
    assert!(revoked.get("errors").is_none(), "{revoked}");
    loop {
        match ws::arrive(&mut socket, WAIT).await {
            Arrived::Closed(code) => {
                println!(
                    "revoked on server A: server B closed the socket ({code}) in {:?}",
                    started.elapsed()
                );
                assert_eq!(code, 4403);
                break;
            }
            Arrived::Nothing => panic!("the socket stayed open {WAIT:?} after the revocation"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivating_a_user_or_changing_its_role_closes_its_sockets() {
    let app = TestApp::new().await;
    for change in [json!({ "active": false }), json!({ "role": "READ_ONLY" })] {
        let (user, token) = app.create_user(app.tenant_id, Role::Analyst).await;
        let mut socket = ws::open(&app, &token).await;
        let started = Instant::now();
        let mut input = change.clone();
        input["id"] = json!(ids::encode(Kind::User, user.0).0);
        let updated = app.mutate(&app.admin_token, "updateUser", input, "user { id }").await;
        assert!(updated.get("errors").is_none(), "{updated}");
        match ws::arrive(&mut socket, WAIT).await {
            Arrived::Closed(code) => {
                println!("{change}: socket closed ({code}) in {:?}", started.elapsed());
                assert_eq!(code, 4403, "{change}");
            }
            other => panic!("{change}: expected the socket to close, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_with_the_last_cursor_gets_exactly_the_missed_events_in_order() {
    let app = TestApp::new().await;
    let case = app.case_named("Resume").await;
    let mut socket = ws::open(&app, &app.admin_token).await;
    subscribe_case(&app.events, &mut socket, &case["id"], None).await;
    post(&app, &app.admin_token, &case["id"], "seen").await;
    let payload = ws::next_result(&mut socket, WAIT).await;
    let cursor = event(&payload)["cursor"].clone();
    drop(socket);

    let missed: Vec<String> = (1..=5).map(|i| format!("missed {i}")).collect();
    for body in &missed {
        post(&app, &app.admin_token, &case["id"], body).await;
    }
    let mut socket = ws::open(&app, &app.admin_token).await;
    subscribe_case(&app.events, &mut socket, &case["id"], Some(&cursor)).await;
    let started = Instant::now();
    let mut got = Vec::new();
    let mut last = sequence(&cursor);
    for _ in 0..missed.len() {
        let payload = ws::next_result(&mut socket, WAIT).await;
        let event = event(&payload);
        assert!(sequence(&event["cursor"]) > last, "in sequence order: {event}");
        last = sequence(&event["cursor"]);
        got.push(event["message"]["body"].as_str().expect("body").to_owned());
    }
    println!("replayed {} missed events in {:?}", got.len(), started.elapsed());
    assert_eq!(got, missed);
    // Then live, with nothing repeated.
    post(&app, &app.admin_token, &case["id"], "live again").await;
    let payload = ws::next_result(&mut socket, WAIT).await;
    assert_eq!(event(&payload)["message"]["body"], "live again");
    assert!(matches!(ws::arrive(&mut socket, Duration::from_millis(500)).await, Arrived::Nothing));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_the_listen_connection_while_changes_keep_coming_loses_nothing() {
    let app = TestApp::new().await;
    let case = app.case_named("Unbroken").await;
    let mut socket = ws::open(&app, &app.admin_token).await;
    subscribe_case(&app.events, &mut socket, &case["id"], None).await;
    let connects = app.events.connects();
    let writer = {
        let app_url = app.url("/graphql");
        let token = app.admin_token.clone();
        let case = case["id"].clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for i in 0..40 {
                let query = "mutation($input: PostMessageInput!) { postMessage(input: $input) { message { id } } }";
                let body = json!({ "query": query, "variables": { "input": { "caseId": case, "body": format!("n{i}") } } });
                let response: Value = http
                    .post(&app_url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .expect("post")
                    .json()
                    .await
                    .expect("json");
                assert!(response.get("errors").is_none(), "{response}");
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut conn = app.conn().await;
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Terminated {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        count: i64,
    }
    let terminated: Terminated = diesel::sql_query(
        "SELECT count(*) AS count FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN %') t",
    )
    .get_result(&mut conn)
    .await
    .expect("terminate");
    assert!(terminated.count >= 1, "the LISTEN connection was found");
    let started = Instant::now();
    let mut got = Vec::new();
    while got.len() < 40 {
        let payload = ws::next_result(&mut socket, WAIT).await;
        got.push(event(&payload)["message"]["body"].as_str().expect("body").to_owned());
    }
    writer.await.expect("writer");
    println!(
        "after pg_terminate_backend: all 40 events in {:?}; LISTEN connected {} time(s) since",
        started.elapsed(),
        app.events.connects() - connects
    );
    assert_eq!(got, (0..40).map(|i| format!("n{i}")).collect::<Vec<_>>());
    assert!(app.events.connects() > connects, "the LISTEN connection came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_writers_are_seen_in_sequence_order() {
    let app = TestApp::with_pool(16, Duration::from_secs(30)).await;
    let case = app.case_named("Busy").await;
    let mut socket = ws::open(&app, &app.admin_token).await;
    subscribe_case(&app.events, &mut socket, &case["id"], None).await;
    let started = Instant::now();
    let writers: Vec<_> = (0..50)
        .map(|i| {
            let url = app.url("/graphql");
            let token = app.admin_token.clone();
            let case = case["id"].clone();
            tokio::spawn(async move {
                let query = "mutation($input: PostMessageInput!) { postMessage(input: $input) { message { id } } }";
                let body = json!({ "query": query, "variables": { "input": { "caseId": case, "body": format!("w{i}") } } });
                let response: Value = reqwest::Client::new().post(&url).bearer_auth(&token).json(&body).send().await.expect("post").json().await.expect("json");
                assert!(response.get("errors").is_none(), "{response}");
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let mut sequences = Vec::new();
    let mut bodies = std::collections::BTreeSet::new();
    while sequences.len() < 50 {
        let payload = ws::next_result(&mut socket, WAIT).await;
        let event = event(&payload);
        sequences.push(sequence(&event["cursor"]));
        bodies.insert(event["message"]["body"].as_str().expect("body").to_owned());
    }
    println!("50 concurrent writers: all seen in {:?}", started.elapsed());
    assert!(sequences.windows(2).all(|w| w[1] == w[0] + 1), "gap-free, in order: {sequences:?}");
    assert_eq!(bodies.len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_change_sends_nothing() {
    use casefile::models::events::{self, NewEvent};
    use diesel_async::AsyncConnection;
    let app = TestApp::new().await;
    let case = app.case_named("Rollback").await;
    let mut socket = ws::open(&app, &app.admin_token).await;
    subscribe_case(&app.events, &mut socket, &case["id"], None).await;
    let case_id =
        casefile::models::ids::CaseId(ids::decode(case["id"].as_str().expect("id")).expect("id").1);
    let number = case["number"].as_i64().expect("number") as i32;
    let mut conn = app.conn().await;
    let tenant = app.tenant_id;
    let rolled_back: Result<(), diesel::result::Error> = conn
        .transaction(async |conn| {
            let event = NewEvent::new("case.updated")
                .case(case_id, number, casefile::models::events::CaseEventKind::Updated)
                .changes(json!({ "severity": { "before": null, "after": "HIGH" } }));
            events::append(conn, tenant, &events::Origin::system(), vec![event]).await?;
            Err(diesel::result::Error::RollbackTransaction)
        })
        .await;
    assert!(rolled_back.is_err());
    assert!(
        matches!(ws::arrive(&mut socket, Duration::from_secs(2)).await, Arrived::Nothing),
        "a rolled-back change must send nothing"
    );
    let head = events::head(&mut conn, tenant).await.expect("head").last_sequence;
    post(&app, &app.admin_token, &case["id"], "committed").await;
    let payload = ws::next_result(&mut socket, WAIT).await;
    assert_eq!(event(&payload)["kind"], "MESSAGE_POSTED");
    assert_eq!(
        sequence(&event(&payload)["cursor"]),
        head + 1,
        "the rolled-back sequence is not used"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_another_tenants_case_a_role_that_may_not_read_and_forged_or_foreign_cursors() {
    let app = TestApp::new().await;
    let mine = app.case_named("Mine").await;
    let other_tenant = app.create_tenant("Other", &[]).await;
    let (_, other_admin) = app.create_user(other_tenant, Role::Admin).await;
    let theirs = app.create_case(&other_admin, json!({ "name": "Theirs" })).await;
    post(&app, &other_admin, &theirs["id"], "their secret").await;

    let first_error = |payload: &Value| error_code(payload).map(str::to_owned);
    let mut socket = ws::open(&app, &app.admin_token).await;
    ws::subscribe(&mut socket, "a", CASE_EVENTS, json!({ "caseId": theirs["id"] })).await;
    let payload = ws::next_result(&mut socket, WAIT).await;
    assert_eq!(first_error(&payload).as_deref(), Some("NOT_FOUND"), "{payload}");

    // A cursor of the other tenant's log, and made-up ones.
    let mut their_socket = ws::open(&app, &other_admin).await;
    subscribe_case(&app.events, &mut their_socket, &theirs["id"], None).await;
    post(&app, &other_admin, &theirs["id"], "another").await;
    let their_cursor = event(&ws::next_result(&mut their_socket, WAIT).await)["cursor"].clone();
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("ev1:{}:1:0123456789abcdef", app.tenant_id.0));
    for (n, cursor) in [their_cursor, json!(forged), json!("not a cursor")].into_iter().enumerate()
    {
        let id = format!("c{n}");
        ws::subscribe(
            &mut socket,
            &id,
            CASE_EVENTS,
            json!({ "caseId": mine["id"], "after": cursor }),
        )
        .await;
        let payload = ws::next_result(&mut socket, WAIT).await;
        assert_eq!(
            first_error(&payload).as_deref(),
            Some("VALIDATION_FAILED"),
            "{cursor}: {payload}"
        );
        assert_eq!(payload["errors"][0]["extensions"]["field"], "after", "{payload}");
    }

    let (_, ingest) = app.create_user(app.tenant_id, Role::Ingest).await;
    let mut socket = ws::open(&app, &ingest).await;
    ws::subscribe(&mut socket, "i", CASE_EVENTS, json!({ "caseId": mine["id"] })).await;
    let payload = ws::next_result(&mut socket, WAIT).await;
    assert_eq!(first_error(&payload).as_deref(), Some("FORBIDDEN"), "{payload}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_runs_at_most_its_limit_of_subscriptions() {
    let limits = casefile::config::Limits { ws_max_subscriptions: 3, ..Default::default() };
    let app = TestApp::with_limits(limits).await;
    let case = app.case_named("Limited").await;
    let mut socket = ws::open(&app, &app.admin_token).await;
    for n in 0..3 {
        ws::subscribe(&mut socket, &format!("s{n}"), CASE_EVENTS, json!({ "caseId": case["id"] }))
            .await;
    }
    ws::subscribe(&mut socket, "over", CASE_EVENTS, json!({ "caseId": case["id"] })).await;
    let payload = ws::next_result(&mut socket, WAIT).await;
    assert_eq!(error_code(&payload), Some("LIMIT_EXCEEDED"), "{payload}");
    // Ending one makes room for another.
    ws::send(&mut socket, json!({ "id": "s0", "type": "complete" })).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = app.events.follows();
    ws::subscribe(&mut socket, "again", CASE_EVENTS, json!({ "caseId": case["id"] })).await;
    ws::following(&app.events, started + 1).await;
    post(&app, &app.admin_token, &case["id"], "to all three").await;
    for _ in 0..3 {
        let payload = ws::next_result(&mut socket, WAIT).await;
        assert_eq!(event(&payload)["kind"], "MESSAGE_POSTED", "{payload}");
    }
}

const LIST_EVENTS: &str = "subscription($filter: CaseFilter) { caseListEvents(filter: $filter) { kind caseId changedFields } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_list_gets_the_event_that_makes_a_case_leave_it_and_nothing_of_other_cases() {
    let app = TestApp::new().await;
    let token = app.admin_token.clone();
    let high = app.create_case(&token, json!({ "name": "High one", "severity": "HIGH" })).await;
    let low = app.create_case(&token, json!({ "name": "Low one", "severity": "LOW" })).await;
    let mut socket = ws::open(&app, &token).await;
    let started = app.events.follows();
    ws::subscribe(&mut socket, "list", LIST_EVENTS, json!({ "filter": { "severity": ["HIGH"] } }))
        .await;
    ws::following(&app.events, started + 1).await;

    // A change to a case outside the list: nothing.
    app.mutate(
        &token,
        "updateCase",
        json!({ "id": low["id"], "name": "Low renamed" }),
        "case { id }",
    )
    .await;
    // A change that keeps the case in the list, then one that makes it leave.
    app.mutate(
        &token,
        "updateCase",
        json!({ "id": high["id"], "name": "High renamed" }),
        "case { id }",
    )
    .await;
    app.mutate(&token, "updateCase", json!({ "id": high["id"], "severity": "LOW" }), "case { id }")
        .await;
    for expected in [json!(["name"]), json!(["severity"])] {
        let payload = ws::next_result(&mut socket, WAIT).await;
        let event = &payload["data"]["caseListEvents"];
        assert_eq!(event["caseId"], high["id"], "{payload}");
        assert_eq!(event["changedFields"], expected, "{payload}");
    }
    // Out of the list now: its next change is not sent.
    app.mutate(
        &token,
        "updateCase",
        json!({ "id": high["id"], "name": "High gone" }),
        "case { id }",
    )
    .await;
    assert!(matches!(ws::arrive(&mut socket, Duration::from_secs(2)).await, Arrived::Nothing));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_reads_each_new_event_once_for_all_its_subscribers() {
    let app = TestApp::new().await;
    let case = app.case_named("Crowded").await;
    let mut sockets = Vec::new();
    // Each socket follows the log twice: its own revocation watch and the subscription.
    let started = app.events.follows();
    for _ in 0..20 {
        let mut socket = ws::open(&app, &app.admin_token).await;
        ws::subscribe(&mut socket, "s", CASE_EVENTS, json!({ "caseId": case["id"] })).await;
        sockets.push(socket);
    }
    ws::following(&app.events, started + 40).await;
    let reads = app.events.reads();
    post(&app, &app.admin_token, &case["id"], "to everyone").await;
    for socket in &mut sockets {
        let payload = ws::next_result(socket, WAIT).await;
        assert_eq!(event(&payload)["message"]["body"], "to everyone");
    }
    let used = app.events.reads() - reads;
    println!("20 subscribers on one server: {used} read(s) of the log for one event");
    assert!((1..=2).contains(&used), "one read per wake-up, not one per subscriber: {used}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detections_ingested_sends_new_detections_at_or_above_the_severity() {
    let app = TestApp::new().await;
    let mut socket = ws::open(&app, &app.admin_token).await;
    let query = "subscription { detectionsIngested(minSeverity: HIGH) { externalId severity } }";
    let started = app.events.follows();
    ws::subscribe(&mut socket, "d", query, json!({})).await;
    ws::following(&app.events, started + 1).await;
    let started = Instant::now();
    app.ingest(
        &app.admin_token,
        vec![
            crate::common::fixtures::detection("low-one", 2),
            crate::common::fixtures::detection("high-one", 7),
            crate::common::fixtures::detection("critical-one", 9),
        ],
    )
    .await;
    let mut got = Vec::new();
    for _ in 0..2 {
        let payload = ws::next_result(&mut socket, WAIT).await;
        assert!(payload.get("errors").is_none(), "{payload}");
        got.push(
            payload["data"]["detectionsIngested"]["externalId"].as_str().expect("id").to_owned(),
        );
    }
    println!("detectionsIngested: 2 detections in {:?}", started.elapsed());
    got.sort();
    assert_eq!(got, ["critical-one", "high-one"]);
    assert!(matches!(ws::arrive(&mut socket, Duration::from_millis(700)).await, Arrived::Nothing));
}

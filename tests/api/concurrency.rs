//! Concurrency: many clients editing one case with `expectedVersion` lose nothing (every
//! accepted update is in the change record, every rejected one got `VERSION_CONFLICT`),
//! and concurrent ingestions of one automatic-case group, through GraphQL and NDJSON at
//! once, file all their detections into one case.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::{detection, error_code};

const CLIENTS: usize = 50;

/// One client: reads the case's version, then renames the case expecting that version.
/// Returns the version it read and the answer.
async fn read_then_update(app: &TestApp, id: &str, client: usize) -> (i64, Value) {
    let read = app.read_case(id).await;
    let version = read["version"].as_i64().expect("a version");
    let body = app
        .mutate(
            &app.admin_token,
            "updateCase",
            json!({ "id": id, "expectedVersion": version, "name": format!("Race {client}") }),
            "case { name version }",
        )
        .await;
    (version, body)
}

#[tokio::test]
async fn fifty_clients_updating_one_case_lose_no_accepted_update_and_get_conflicts_for_the_rest() {
    let app = TestApp::new().await;
    let case = app.case_named("Contended").await;
    let id = case["id"].as_str().expect("id").to_owned();
    let initial = case["version"].as_i64().expect("version");
    let before = app.events(app.tenant_id).await.last().map(|e| e.sequence).unwrap_or(0);

    let answers = futures_util::future::join_all(
        (0..CLIENTS).map(|client| read_then_update(&app, &id, client)),
    )
    .await;

    let mut accepted = Vec::new();
    let mut rejected = 0;
    for (client, (read, body)) in answers.iter().enumerate() {
        match error_code(body) {
            None => {
                let version = body["data"]["updateCase"]["case"]["version"].as_i64().expect("v");
                assert_eq!(version, read + 1, "an accepted update moves the version by one");
                accepted.push((version, client));
            }
            Some("VERSION_CONFLICT") => rejected += 1,
            Some(other) => panic!("client {client} got {other}: {body}"),
        }
    }
    assert_eq!(accepted.len() + rejected, CLIENTS);
    assert!(!accepted.is_empty(), "at least the first update goes through");
    let versions: BTreeSet<i64> = accepted.iter().map(|(v, _)| *v).collect();
    assert_eq!(versions.len(), accepted.len(), "no two updates accepted at one version");

    let last = app.read_case(&id).await;
    assert_eq!(last["version"].as_i64(), Some(initial + accepted.len() as i64));
    let (_, newest) = accepted.iter().max().expect("an accepted update");
    assert_eq!(last["name"], json!(format!("Race {newest}")), "the newest update is the case");

    // The change record holds one update of this case per accepted update, each naming
    // the name it set, in version order.
    let case_uuid = casefile::graphql::ids::decode(&id).expect("a case id").1;
    let updates: Vec<String> = app
        .events_after(app.tenant_id, before)
        .await
        .into_iter()
        .filter(|e| e.case_id.map(|c| c.0) == Some(case_uuid) && e.action == "case.updated")
        .map(|e| e.changes.to_string())
        .collect();
    assert_eq!(updates.len(), accepted.len(), "{updates:?}");
    let mut in_order: Vec<(i64, usize)> = accepted.clone();
    in_order.sort();
    for ((_, client), changes) in in_order.iter().zip(&updates) {
        assert!(changes.contains(&format!("\"Race {client}\"")), "{changes}");
    }
    eprintln!("{CLIENTS} clients: {} accepted, {rejected} VERSION_CONFLICT", accepted.len());
}

/// A high-risk detection of the group (rule and host) with this external id.
fn grouped(external_id: &str, rule: &str, host: &str) -> Value {
    let mut d = detection(external_id, 8);
    d["ruleName"] = json!(rule);
    d["device"] = json!({ "hostname": host });
    d
}

/// Ingests through GraphQL; returns the automatic cases' ids.
async fn by_graphql(app: &TestApp, detections: Vec<Value>) -> Vec<String> {
    let body = app
        .mutate(
            &app.admin_token,
            "ingestDetections",
            json!({ "detections": detections }),
            "accepted autoCases { id }",
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["ingestDetections"]["autoCases"]
        .as_array()
        .expect("autoCases")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Ingests through NDJSON; returns the automatic cases' numbers.
async fn by_ndjson(app: &TestApp, detections: Vec<Value>) -> Vec<i64> {
    let body: String = detections.iter().map(|d| format!("{d}\n")).collect();
    let response = app
        .http
        .post(app.url("/ingest/detections"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("NDJSON");
    assert_eq!(response.status(), 200);
    let summary: Value = response.json().await.expect("a summary");
    assert_eq!(summary["rejected"], json!([]), "{summary}");
    assert_eq!(summary["accepted"], detections.len(), "{summary}");
    summary["autoCases"]
        .as_array()
        .expect("autoCases")
        .iter()
        .map(|n| n.as_i64().expect("n"))
        .collect()
}

#[tokio::test]
async fn concurrent_graphql_and_ndjson_ingests_of_one_group_open_one_case_holding_them_all() {
    const STREAMS: usize = 6;
    const EACH: usize = 5;
    let app = TestApp::new().await;
    let batch = |via: &str, stream: usize, host: &str| -> Vec<Value> {
        (0..EACH)
            .map(|i| grouped(&format!("{via}-{host}-{stream}-{i}"), "Lateral movement", host))
            .collect()
    };
    // Two groups (one rule on two hosts), each fed by GraphQL and NDJSON streams at once.
    let graphql = (0..STREAMS)
        .map(|s| by_graphql(&app, batch("gql", s, if s % 2 == 0 { "host-a" } else { "host-b" })));
    let ndjson = (0..STREAMS)
        .map(|s| by_ndjson(&app, batch("nd", s, if s % 2 == 0 { "host-a" } else { "host-b" })));
    let (graphql, ndjson) = tokio::join!(
        futures_util::future::join_all(graphql),
        futures_util::future::join_all(ndjson)
    );

    let cases = app
        .query_ok(
            "{ cases(filter: { nameContains: \"Lateral movement\" }) { totalCount \
             edges { node { id number name autoCreated detectionCount } } } }",
        )
        .await;
    assert_eq!(cases["cases"]["totalCount"], 2, "one case per group: {cases}");
    let mut by_host = std::collections::HashMap::new();
    for edge in cases["cases"]["edges"].as_array().expect("edges") {
        let case = &edge["node"];
        assert_eq!(case["autoCreated"], true);
        assert_eq!(case["detectionCount"], 2 * (STREAMS / 2) * EACH, "{case}");
        let host = if case["name"].as_str().expect("name").contains("host-a") {
            "host-a"
        } else {
            "host-b"
        };
        by_host.insert(
            host,
            (case["id"].as_str().expect("id").to_owned(), case["number"].as_i64().expect("n")),
        );
    }
    assert_eq!(by_host.len(), 2, "{cases}");
    for (s, ids) in graphql.iter().enumerate() {
        let host = if s % 2 == 0 { "host-a" } else { "host-b" };
        assert_eq!(ids, &vec![by_host[host].0.clone()], "GraphQL stream {s}");
    }
    for (s, numbers) in ndjson.iter().enumerate() {
        let host = if s % 2 == 0 { "host-a" } else { "host-b" };
        assert_eq!(numbers, &vec![by_host[host].1], "NDJSON stream {s}");
    }
    // Every detection is in its group's case.
    for (host, (id, _)) in &by_host {
        let held = app
            .query_ok(&format!(
                "{{ case(id: \"{id}\") {{ detections(first: 100) {{ edges {{ node {{ externalId }} }} }} }} }}"
            ))
            .await;
        let held: BTreeSet<String> = held["case"]["detections"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"]["externalId"].as_str().expect("id").to_owned())
            .collect();
        let expected: BTreeSet<String> = (0..STREAMS)
            .filter(|s| (if s % 2 == 0 { "host-a" } else { "host-b" }) == *host)
            .flat_map(|s| {
                ["gql", "nd"]
                    .into_iter()
                    .flat_map(move |via| (0..EACH).map(move |i| format!("{via}-{host}-{s}-{i}")))
            })
            .collect();
        assert_eq!(held, expected, "{host}");
    }
}
